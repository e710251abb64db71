// The Koa routes around the tutorial's webSocketServer.js. The tutorial shows only the
// chat module, the page and how the server is shared; these are the least the page
// needs to work end to end.
const fs = require('fs');
const path = require('path');
const Router = require('@koa/router');
const JWT = require('./utils/jwt');

// Names the login route accepts: letters (any script), digits, _ . - ; at most 20.
// The tutorial's page puts names into innerHTML and unquoted attributes, so this route
// issues no token for a name that could carry markup.
const USERNAME = /^[\p{L}\p{N}_.-]{1,20}$/u;
const MAX_BODY_BYTES = 1024;

function page(name) {
  return (ctx) => {
    ctx.type = 'html';
    ctx.body = fs.createReadStream(path.join(__dirname, 'views', name));
  };
}

/** A small JSON request body, or undefined (Koa has no body parser of its own). */
async function jsonBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    return undefined;
  }
}

const router = new Router();

// The chat page: the tutorial's views/index.ejs with its <%= title%> filled in.
router.get('/', page('index.html'));

// The page loads /javascripts/socketio.js (in the tutorial, a copy of the Socket.IO
// client under public/): point it at the client the chat server itself serves.
router.get('/javascripts/socketio.js', (ctx) => {
  ctx.redirect('/socket.io/socket.io.js');
});

// Login: the page to type a name, and the route that issues a token for it.
router.get('/login', page('login.html'));
router.post('/login', async (ctx) => {
  const body = await jsonBody(ctx.req);
  const username = body && body.username;
  if (typeof username !== 'string' || !USERNAME.test(username)) {
    ctx.status = 400;
    ctx.body = { error: 'username: 1 to 20 letters, digits, _ . -' };
    return;
  }
  ctx.body = { token: JWT.generate({ username }, '1d') };
});

module.exports = (app) => {
  app.use(router.routes()).use(router.allowedMethods());
};
