'use strict';
// An ordinary Koa 3 app that also serves the Palaver chat: one line attaches the
// chat to the server of `http.createServer(app.callback())`, where
// `require('socket.io')(server)` would be.
//
//   npm install && node app.js        then open http://localhost:3000/
//
// WebSocket connections are handed to the Rust engine and long-polling requests
// are forwarded to it in-process: chat traffic does not run through Koa.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const Koa = require('koa');

const PORT = process.env.PORT ? Number(process.env.PORT) : 3000; // PORT=0: any free port
const HISTORY_DB = process.env.PALAVER_HISTORY_PATH || path.join(__dirname, 'palaver-history.db');
const CHAT_PAGE = path.join(__dirname, '..', 'server', 'static'); // the project's chat client

/** A tiny static file handler: GET `prefix`/file from `root` (index.html for a directory). */
function serveStatic(prefix, root) {
  const types = { '.html': 'html', '.css': 'css', '.js': 'application/javascript', '.svg': 'svg', '.png': 'png' };
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (prefix !== '/' && ctx.path === prefix.slice(0, -1)) return ctx.redirect(prefix); // /chat -> /chat/
    if (!ctx.path.startsWith(prefix)) return next();
    let relative;
    try {
      relative = decodeURIComponent(ctx.path.slice(prefix.length));
    } catch {
      return next();
    }
    const file = path.resolve(root, `./${relative}`);
    if (file !== root && !file.startsWith(root + path.sep)) return next(); // no way out of root
    const target = relative === '' || relative.endsWith('/') ? path.join(file, 'index.html') : file;
    const body = await fs.promises.readFile(target).catch(() => null); // small files: read whole
    if (!body) return next();
    ctx.type = types[path.extname(target)] || 'application/octet-stream';
    ctx.body = body;
  };
}

const app = new Koa();

// The app's own routes.
app.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/api/health') {
    ctx.body = { ok: true, uptime_s: Math.round(process.uptime()) };
  } else if (ctx.method === 'GET' && ctx.path === '/api/rooms') {
    ctx.body = await chat.rooms();
  } else if (ctx.method === 'GET' && ctx.path === '/api/stats') {
    ctx.body = chat.stats();
  } else {
    await next();
  }
});
app.use(serveStatic('/chat/', CHAT_PAGE)); // /chat/ -> the full chat page
app.use(serveStatic('/', path.join(__dirname, 'public'))); // / -> public/index.html

const server = http.createServer(app.callback());
const chat = require('palaver')(server, { history: { path: HISTORY_DB } });

// Host events: one line each.
const who = (user) => (user ? user.name : 'someone without a name yet');
chat.on('connected', (e) => console.log(`[chat] ${who(e.user)} connected over ${e.transport} from ${e.address}`));
chat.on('disconnected', (e) => console.log(`[chat] ${who(e.user)} disconnected (${e.reason})`));
chat.on('joined', (e) => console.log(`[chat] ${e.user.name} joined #${e.room}`));
chat.on('left', (e) => console.log(`[chat] ${e.user.name} left #${e.room}`));
chat.on('message', (e) => console.log(`[chat] #${e.message.room} <${e.message.user}> ${e.message.text}`));
chat.on('private', (e) => console.log(`[chat] private message ${e.message.from.name} -> ${e.message.to.name}`));

// Custom events (any event outside the chat protocol) are the app's to answer.
chat.on('custom', ({ event, data, user, ack }) => {
  console.log(`[chat] custom event ${event} from ${who(user)}`, data);
  if (!ack) return;
  if (event === 'server-time') ack({ ok: true, now: new Date().toISOString() });
  else ack({ ok: false, code: 'unknown_event', message: `this app does not answer ${JSON.stringify(event)}` });
});
chat.on('error', (error) => console.error('[chat] a listener failed:', error));

server.listen(PORT, () => {
  console.log(`Koa app with the Palaver chat on http://localhost:${server.address().port}/`);
  console.log(`  chat page: http://localhost:${server.address().port}/chat/  (Ctrl-C stops)`);
});

// Ctrl-C: close the chat first (clients get `shutdown`), then the HTTP server.
let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing the chat…`);
  chat
    .close()
    .then(() => new Promise((resolve) => server.close(resolve)))
    .then(() => console.log('stopped'))
    .catch((error) => {
      console.error(error);
      process.exitCode = 1;
    });
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
