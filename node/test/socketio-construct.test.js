'use strict';
// palaver/socket.io: every way a socket.io app makes its server — the module as a
// function, `new Server(httpServer, opts)`, `new Server(port)`, `new Server()` then
// `attach`/`listen`, ESM `import { Server }` — on a plain http.Server, Express 5 and
// Koa, over WebSocket and long-polling, with the app's own routes still served.

const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { describe, test } = require('node:test');
const express = require('express');
const Koa = require('koa');
const createServer = require('palaver/socket.io');
const { FIXTURES, listen, request, runNode } = require('./helpers');
const { Harness } = require('./sio-support');

const { Server } = createServer;
const TRANSPORTS = ['websocket', 'polling'];

/** A port that was free a moment ago. */
async function freePort() {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Whether a TCP connection to 127.0.0.1:port is refused. */
function refusesConnections(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** The app's handlers: an echo with ack and a greeting on connect. */
function echoApp(io) {
  io.on('connection', (socket) => {
    socket.emit('welcome', { id: socket.id, transport: socket.conn.transport.name });
    socket.on('echo', (...args) => {
      const cb = args.pop();
      cb(...args);
    });
  });
  return io;
}

/** Connects over `transport`, checks the welcome and an echo round trip. */
async function roundTrip(h, port, io, transport) {
  const { client, inbox } = await h.connect(port, { io, transport });
  const [[welcome]] = await inbox.wait('welcome');
  assert.equal(welcome.id, client.id);
  assert.equal(welcome.transport, transport);
  const answer = await new Promise((resolve) => client.emit('echo', 'hi', { n: 1 }, [2], (...a) => resolve(a)));
  assert.deepEqual(answer, ['hi', { n: 1 }, [2]]);
  return client;
}

describe('palaver/socket.io: making the server', { timeout: 90_000 }, () => {
  test('the module is socket.io\'s: a function making a Server, with Server, Namespace, Socket beside it', () => {
    assert.equal(typeof createServer, 'function');
    assert.equal(typeof Server, 'function');
    assert.equal(typeof createServer.Namespace, 'function');
    assert.equal(typeof createServer.Socket, 'function');
  });

  for (const transport of TRANSPORTS) {
    test(`require('palaver/socket.io')(httpServer): the app's routes and the client script still served (${transport})`, async (t) => {
      const h = new Harness(t);
      const server = await h.httpServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<p>page at ${req.url}</p>`);
      });
      const io = h.track(echoApp(createServer(server)));
      assert.ok(io instanceof Server);
      const port = await listen(server);
      await roundTrip(h, port, io, transport);
      const page = await request(port, 'GET', '/');
      assert.equal(page.status, 200);
      assert.equal(page.body, '<p>page at /</p>');
      assert.equal((await request(port, 'GET', '/other?x=1')).body, '<p>page at /other?x=1</p>');
      const script = await request(port, 'GET', '/socket.io/socket.io.js');
      assert.equal(script.status, 200);
      assert.match(script.headers['content-type'], /javascript/);
    });

    test(`new Server(httpServer, opts) with socket.io options (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server, {
        pingInterval: 5000,
        pingTimeout: 4000,
        connectTimeout: 5000,
        maxHttpBufferSize: 1e6,
        transports: ['polling', 'websocket'],
        cors: { origin: '*' },
      });
      echoApp(io);
      await roundTrip(h, port, io, transport);
    });

    test(`new Server(port) listens on that port; io.close() frees it (${transport})`, async (t) => {
      const h = new Harness(t);
      const port = await freePort();
      const io = h.track(echoApp(new Server(port)));
      const client = await roundTrip(h, port, io, transport);
      const gone = new Promise((resolve) => client.once('disconnect', resolve));
      await io.close();
      await gone;
      assert.equal(await refusesConnections(port), true, 'nothing listens any more');
    });

    test(`new Server() then io.attach(httpServer), and new Server(opts) then io.listen(port) (${transport})`, async (t) => {
      const h = new Harness(t);
      const server = await h.httpServer((req, res) => res.end('attached app\n'));
      const attached = h.track(new Server());
      assert.equal(attached.attach(server), attached, 'attach returns the server');
      echoApp(attached);
      const port = await listen(server);
      await roundTrip(h, port, attached, transport);
      assert.equal((await request(port, 'GET', '/')).body, 'attached app\n');

      const ownPort = await freePort();
      const listening = h.track(new Server({ pingInterval: 10_000 }));
      assert.equal(listening.listen(ownPort), listening, 'listen returns the server');
      echoApp(listening);
      await roundTrip(h, ownPort, listening, transport);
    });
  }

  test('attached to an Express 5 app (app.listen()): its routes and both transports', async (t) => {
    const h = new Harness(t);
    const app = express();
    app.use(express.json());
    app.get('/api/health', (req, res) => res.json({ ok: true, framework: 'express' }));
    app.post('/api/echo', (req, res) => res.json({ received: req.body }));
    const server = app.listen(0, '127.0.0.1');
    h.httpServers.push(server);
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address();
    const io = h.track(echoApp(new Server(server)));
    for (const transport of TRANSPORTS) await roundTrip(h, port, io, transport);
    const health = await request(port, 'GET', '/api/health');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { ok: true, framework: 'express' });
    const echo = await request(port, 'POST', '/api/echo', {
      body: JSON.stringify({ a: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    assert.deepEqual(JSON.parse(echo.body), { received: { a: 1 } });
    assert.equal((await request(port, 'GET', '/missing')).status, 404, "Express's own 404");
  });

  test('attached to a Koa app (http.createServer(app.callback())): its routes and both transports', async (t) => {
    const h = new Harness(t);
    const app = new Koa();
    app.use(async (ctx, next) => {
      if (ctx.method === 'GET' && ctx.path === '/api/health') ctx.body = { ok: true, framework: 'koa' };
      else await next();
    });
    const server = await h.httpServer(app.callback());
    const io = h.track(echoApp(new Server(server)));
    const port = await listen(server);
    for (const transport of TRANSPORTS) await roundTrip(h, port, io, transport);
    const health = await request(port, 'GET', '/api/health');
    assert.deepEqual(JSON.parse(health.body), { ok: true, framework: 'koa' });
    assert.equal((await request(port, 'GET', '/missing')).status, 404, "Koa's own 404");
  });

  test('any host name by default, as socket.io; only the listed ones when palaver.allowedHosts is set', async (t) => {
    const h = new Harness(t);
    const handshake = (port, host) =>
      request(port, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Host: `${host}:${port}` } });
    const open = await h.httpServer();
    h.track(echoApp(new Server(open)));
    const openPort = await listen(open);
    assert.equal((await handshake(openPort, 'chat.example.com')).status, 200);
    const listed = await h.httpServer();
    h.track(echoApp(new Server(listed, { palaver: { allowedHosts: ['chat.example.com'] } })));
    const listedPort = await listen(listed);
    assert.equal((await handshake(listedPort, 'chat.example.com')).status, 200);
    const rebound = await handshake(listedPort, 'attacker.example');
    assert.equal(rebound.status, 403);
    assert.equal(JSON.parse(rebound.body).code, 'host_not_allowed');
  });

  test("ESM: import { Server } from 'palaver/socket.io' (child process)", async () => {
    const { io: ioClient } = require('socket.io-client');
    let talking = null;
    /** Both transports say hello; then the app is asked to close and both are disconnected. */
    async function talk(port) {
      const clients = TRANSPORTS.map((transport) =>
        ioClient(`http://127.0.0.1:${port}`, { transports: [transport], reconnection: false, forceNew: true }),
      );
      try {
        await Promise.all(
          clients.map(
            (client) =>
              new Promise((resolve, reject) => {
                client.once('connect', resolve);
                client.once('connect_error', reject);
              }),
          ),
        );
        const answers = [];
        for (const [i, client] of clients.entries()) {
          answers.push(await client.timeout(5000).emitWithAck('hello', TRANSPORTS[i]));
        }
        const gone = clients.map((client) => new Promise((resolve) => client.once('disconnect', resolve)));
        clients[0].emit('please-close');
        await Promise.all(gone);
        return answers;
      } finally {
        for (const client of clients) client.close();
      }
    }
    const run = await runNode([path.join(FIXTURES, 'sio-esm.mjs')], {
      timeout: 20_000,
      onLine(line) {
        if (line.port !== undefined && !talking) talking = talk(line.port);
      },
    });
    assert.equal(run.timedOut, false, `the ESM app did not exit by itself: ${run.stdout}${run.stderr}`);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(talking, run.stdout + run.stderr);
    assert.deepEqual(await talking, ['hello websocket from esm', 'hello polling from esm']);
    assert.deepEqual(run.lines.find((l) => l.imported).imported, {
      isServer: true,
      sameAsNamespaceImport: true,
      namedExports: ['Namespace', 'Server', 'Socket'],
    });
    assert.ok(run.lines.some((l) => l.closed), run.stdout);
  });
});
