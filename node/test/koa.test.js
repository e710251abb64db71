'use strict';
// The chat attached to a Koa 3 app's server (see attached-suite.js for the checks).

const Koa = require('koa');
const { defineAttachedSuite } = require('./attached-suite');

/** The request body as text (Koa has no body parser of its own). */
async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

defineAttachedSuite('koa', () => {
  const app = new Koa();
  app.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/api/health') {
      ctx.body = { ok: true, framework: 'koa' };
    } else if (ctx.method === 'POST' && ctx.path === '/api/echo') {
      ctx.body = { received: JSON.parse(await readBody(ctx.req)) };
    } else {
      await next();
    }
  });
  return app.callback();
});
