'use strict';
// `palaver/ws` end to end with the npm `ws` client: the `ws` package's server API
// (v8) as apps use it — {port} and {server} servers, paths, text and binary
// messages, close codes both ways, wss.clients, throwing listeners, wss.close(),
// and seed 003's echo server. Every expectation is what ws 8 does with the same
// code, unless a test says otherwise (docs/SOCKETIO.md lists the differences).

const assert = require('node:assert/strict');
const http = require('node:http');
const { once } = require('node:events');
const { describe, test } = require('node:test');
const WsClient = require('ws');
const WebSocket = require('palaver/ws');
const { listen, request } = require('./helpers');
const { ErrorSink, Harness, WsPeer, nextEvent, until } = require('./sio-support');

const { WebSocketServer } = WebSocket;

/** A {port: 0} server, listening; resolves with {wss, port}. */
async function portServer(h, options = {}, connection) {
  const wss = h.trackWs(new WebSocketServer({ port: 0, ...options }));
  if (connection) wss.on('connection', connection);
  await once(wss, 'listening');
  return { wss, port: wss.address().port };
}

/** Echoes each message back as it came (text as text, binary as binary). */
function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

/** An npm ws client that must fail to open: resolves with the error or the HTTP status. */
function refusedWs(url) {
  return new Promise((resolve, reject) => {
    const ws = new WsClient(url);
    const timer = setTimeout(() => reject(new Error('neither opened nor failed')), 8000);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.close();
      reject(new Error(`${url} opened, but it should not have`));
    });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      req.destroy();
      resolve({ status: res.statusCode });
    });
    ws.once('error', (error) => {
      clearTimeout(timer);
      resolve({ error: error.message });
    });
  });
}

describe('palaver/ws: servers', { timeout: 60_000 }, () => {
  test('new WebSocket.Server({port: 0}): "listening" (event and callback), address().port, clients at 127.0.0.1 and localhost', async (t) => {
    const h = new Harness(t);
    let calledBack = false;
    const wss = h.trackWs(new WebSocket.Server({ port: 0 }, () => (calledBack = true)));
    assert.equal(WebSocket.Server, WebSocketServer);
    await once(wss, 'listening');
    assert.equal(calledBack, true);
    const { port } = wss.address();
    assert.ok(Number.isInteger(port) && port > 0, `a port, got ${port}`);
    const opened = [];
    wss.on('connection', (ws) => {
      opened.push(ws);
      echo(ws);
    });
    for (const host of ['127.0.0.1', 'localhost']) {
      const peer = await h.ws(`ws://${host}:${port}`);
      await peer.send(`via ${host}`);
      const [message] = await peer.wait(1);
      assert.equal(message.data.toString(), `via ${host}`);
    }
    assert.equal(opened.length, 2);
  });

  test('a {port} server without `path` takes WebSocket connections at any path, as ws does', async (t) => {
    const h = new Harness(t);
    const urls = [];
    const { port } = await portServer(h, {}, (ws, req) => urls.push(req.url));
    await h.ws(`ws://127.0.0.1:${port}/`);
    await h.ws(`ws://127.0.0.1:${port}/?token=abc`);
    await h.ws(`ws://127.0.0.1:${port}/chat/room-1?x=1`);
    await until(() => urls.length === 3, { what: 'three connections' });
    assert.deepEqual(urls, ['/', '/?token=abc', '/chat/room-1?x=1']);
  });

  test('new WebSocketServer({server}): the http server\'s routes still work, ws://host/ upgrades', async (t) => {
    const h = new Harness(t);
    const server = await h.httpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<h1>page ${req.method} ${req.url}</h1>`);
    });
    const wss = h.trackWs(new WebSocketServer({ server }));
    wss.on('connection', echo);
    const port = await listen(server);
    const page = await request(port, 'GET', '/');
    assert.equal(page.status, 200);
    assert.equal(page.body, '<h1>page GET /</h1>');
    assert.equal((await request(port, 'POST', '/form', { body: 'a=1' })).body, '<h1>page POST /form</h1>');
    const peer = await h.ws(`ws://127.0.0.1:${port}/`);
    await peer.send('over the app server');
    assert.equal((await peer.wait(1))[0].data.toString(), 'over the app server');
    const elsewhere = await h.ws(`ws://127.0.0.1:${port}/any/path`);
    await elsewhere.send('any path');
    assert.equal((await elsewhere.wait(1))[0].data.toString(), 'any path');
    // The page is still served while WebSocket connections are open.
    assert.equal((await request(port, 'GET', '/again')).body, '<h1>page GET /again</h1>');
    assert.deepEqual(wss.address(), server.address(), "attached: the http server's address, as ws gives it");
  });

  test('new WebSocketServer({server, path: "/ws"}): upgrades at /ws only; GET /ws and other routes stay the app\'s', async (t) => {
    const h = new Harness(t);
    const server = await h.httpServer((req, res) => res.end(`app ${req.url}`));
    const urls = [];
    const wss = h.trackWs(new WebSocketServer({ server, path: '/ws' }));
    wss.on('connection', (ws, req) => {
      urls.push(req.url);
      echo(ws);
    });
    const port = await listen(server);
    const peer = await h.ws(`ws://127.0.0.1:${port}/ws?user=ann`);
    await peer.send('hi');
    assert.equal((await peer.wait(1))[0].data.toString(), 'hi');
    const refused = await refusedWs(`ws://127.0.0.1:${port}/elsewhere`);
    assert.ok(refused.status === 400 || refused.error, JSON.stringify(refused));
    assert.equal((await request(port, 'GET', '/ws')).body, 'app /ws');
    assert.equal((await request(port, 'GET', '/')).body, 'app /');
    assert.deepEqual(urls, ['/ws?user=ann']);
    assert.equal(wss.path ?? wss.options.path, '/ws');
  });

  test('connection gives (ws, req): req.url, req.headers, the remote address; ws.protocol is the first subprotocol', async (t) => {
    const h = new Harness(t);
    const seen = [];
    const { port } = await portServer(h, {}, (ws, req) => {
      seen.push({
        url: req.url,
        header: req.headers['x-app'],
        host: req.headers.host,
        address: req.socket.remoteAddress,
        protocol: ws.protocol,
        readyState: ws.readyState,
        OPEN: ws.OPEN,
      });
    });
    const first = await h.ws(`ws://127.0.0.1:${port}/?room=1`, ['chat.v1', 'chat.v0']);
    assert.equal(first.ws.protocol, 'chat.v1', 'the client is told the chosen subprotocol');
    await h.ws(`ws://127.0.0.1:${port}/`, { headers: { 'x-app': 'yes' } });
    await until(() => seen.length === 2, { what: 'both connections' });
    assert.deepEqual(seen[0], {
      url: '/?room=1',
      header: undefined,
      host: `127.0.0.1:${port}`,
      address: seen[0].address,
      protocol: 'chat.v1',
      readyState: WebSocket.OPEN,
      OPEN: 1,
    });
    assert.match(seen[0].address, /^(::ffff:)?127\.0\.0\.1$/);
    assert.equal(seen[1].header, 'yes');
    assert.equal(seen[1].protocol, '');
  });
});

describe('palaver/ws: messages', { timeout: 60_000 }, () => {
  test('echo: text and binary messages with the isBinary flag, data a Buffer on the server', async (t) => {
    const h = new Harness(t);
    const serverSaw = [];
    const { port } = await portServer(h, {}, (ws) => {
      ws.on('message', (data, isBinary) => {
        serverSaw.push({ isBuffer: Buffer.isBuffer(data), isBinary, hex: data.toString('hex') });
        ws.send(data, { binary: isBinary });
      });
    });
    const peer = await h.ws(`ws://127.0.0.1:${port}`);
    const binary = Buffer.from([0, 1, 2, 254, 255]);
    await peer.send('héllo 举头望明月');
    await peer.send(binary);
    await peer.send('');
    await peer.send(Buffer.alloc(0));
    const got = await peer.wait(4);
    assert.deepEqual(
      got.map((m) => [m.isBinary, m.data.toString('hex')]),
      [
        [false, Buffer.from('héllo 举头望明月').toString('hex')],
        [true, binary.toString('hex')],
        [false, ''],
        [true, ''],
      ],
    );
    assert.deepEqual(
      serverSaw.map((s) => [s.isBuffer, s.isBinary]),
      [
        [true, false],
        [true, true],
        [true, false],
        [true, true],
      ],
    );
  });

  test('ws.send: a string is text, a Buffer / Uint8Array / ArrayBuffer is binary, options.binary overrides; the callback is called', async (t) => {
    const h = new Harness(t);
    const callbacks = [];
    const { port } = await portServer(h, {}, (ws) => {
      ws.on('message', () => {
        ws.send('text', (error) => callbacks.push(error ?? null));
        ws.send(Buffer.from('buf'));
        ws.send(new Uint8Array([1, 2]));
        ws.send(new Uint8Array([3, 4]).buffer);
        ws.send(Buffer.from('as text'), { binary: false });
        ws.send('as binary', { binary: true }, (error) => callbacks.push(error ?? null));
      });
    });
    const peer = await h.ws(`ws://127.0.0.1:${port}`);
    await peer.send('go');
    const got = await peer.wait(6);
    assert.deepEqual(
      got.map((m) => [m.isBinary, m.isBinary ? m.data.toString('hex') : m.data.toString()]),
      [
        [false, 'text'],
        [true, Buffer.from('buf').toString('hex')],
        [true, '0102'],
        [true, '0304'],
        [false, 'as text'],
        [true, Buffer.from('as binary').toString('hex')],
      ],
    );
    await until(() => callbacks.length === 2, { what: 'both send callbacks' });
    assert.deepEqual(callbacks, [null, null]);
  });

  test('a message of 1 MB is echoed (under the default maxPayload of ws and of Palaver)', async (t) => {
    const h = new Harness(t);
    const { port } = await portServer(h, {}, echo);
    const peer = await h.ws(`ws://127.0.0.1:${port}`);
    const big = Buffer.alloc(1_000_000, 7);
    await peer.send(big);
    const [message] = await peer.wait(1);
    assert.equal(message.data.length, big.length);
    assert.ok(message.data.equals(big));
  });

  test('maxPayload: a bigger message closes the connection with 1009', async (t) => {
    const h = new Harness(t);
    const { port } = await portServer(h, { maxPayload: 1000 }, (ws) => {
      ws.on('error', () => {}); // ws reports the oversized message there too
      echo(ws);
    });
    const peer = await h.ws(`ws://127.0.0.1:${port}`);
    await peer.send('x'.repeat(500));
    await peer.wait(1);
    peer.ws.send('y'.repeat(2000));
    const { code } = await peer.waitClosed();
    assert.equal(code, 1009);
  });

  test('a burst of 200 messages is echoed in full once the flood limit is raised (Palaver: 30/s, burst 60 by default)', async (t) => {
    const h = new Harness(t);
    const limits = { requestsPerSecond: 1000, requestBurst: 1000 };
    const { port } = await portServer(h, { palaver: { limits } }, echo);
    const peer = await h.ws(`ws://127.0.0.1:${port}`);
    for (let i = 0; i < 200; i += 1) peer.ws.send(`m${i}`);
    const got = await peer.wait(200);
    assert.deepEqual(
      got.map((m) => m.data.toString()),
      Array.from({ length: 200 }, (_, i) => `m${i}`),
    );
  });

  test('with the default flood limit, a client over it is closed with 1008 "rate_limited" (documented difference)', async (t) => {
    // RFC 6455 7.1.1: after its close frame the server waits for the client's before
    // closing the TCP connection, so that the client reads the frame.
    const h = new Harness(t);
    const serverSide = [];
    const { port } = await portServer(h, {}, (ws) => {
      echo(ws);
      ws.on('close', (code, reason) => serverSide.push([code, reason.toString()]));
    });
    const peer = await h.ws(`ws://127.0.0.1:${port}`);
    // A flooding client: it keeps sending until it is closed.
    let open = true;
    peer.closed.then(() => (open = false));
    for (let i = 0; open && i < 5000; i += 1) {
      peer.ws.send(`m${i}`);
      if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    const closed = await peer.waitClosed();
    await until(() => serverSide.length === 1, { what: 'the server-side close' });
    assert.deepEqual(serverSide, [[1008, 'rate_limited']]);
    assert.deepEqual(closed, { code: 1008, reason: 'rate_limited' }, 'the client gets the close frame');
  });
});

describe('palaver/ws: closing and clients', { timeout: 60_000 }, () => {
  test('close codes and reasons both ways; server-side "close" gets (code, reason Buffer)', async (t) => {
    const h = new Harness(t);
    const serverClosed = [];
    const { wss, port } = await portServer(h, {}, (ws) => {
      ws.on('message', (data) => {
        if (data.toString() === 'close me') ws.close(4001, 'server bye');
      });
      ws.on('close', (code, reason) => {
        serverClosed.push({ code, reason: reason.toString(), isBuffer: Buffer.isBuffer(reason), state: ws.readyState });
      });
    });
    // The client closes with a code and a reason.
    const a = await h.ws(`ws://127.0.0.1:${port}`);
    a.ws.close(4000, 'client bye');
    assert.deepEqual(await a.waitClosed(), { code: 4000, reason: 'client bye' });
    await until(() => serverClosed.length === 1, { what: 'the server-side close' });
    assert.deepEqual(serverClosed[0], { code: 4000, reason: 'client bye', isBuffer: true, state: WebSocket.CLOSED });
    // The server closes with a code and a reason.
    const b = await h.ws(`ws://127.0.0.1:${port}`);
    await b.send('close me');
    assert.deepEqual(await b.waitClosed(), { code: 4001, reason: 'server bye' });
    await until(() => serverClosed.length === 2, { what: 'the second server-side close' });
    assert.deepEqual(serverClosed[1], { code: 4001, reason: 'server bye', isBuffer: true, state: WebSocket.CLOSED });
    // No code: 1005; a dropped connection: 1006.
    const c = await h.ws(`ws://127.0.0.1:${port}`);
    c.ws.close();
    await c.waitClosed();
    const d = await h.ws(`ws://127.0.0.1:${port}`);
    d.ws.terminate();
    await until(() => serverClosed.length === 4, { what: 'four server-side closes' });
    assert.deepEqual(serverClosed.slice(2).map((s) => s.code).sort(), [1005, 1006]);
    assert.equal(wss.clients.size, 0);
  });

  test('wss.clients: the open connections, as handed to "connection"; a closed one leaves the set', async (t) => {
    const h = new Harness(t);
    const handed = [];
    const { wss, port } = await portServer(h, {}, (ws) => handed.push(ws));
    assert.ok(wss.clients instanceof Set);
    assert.equal(wss.clients.size, 0);
    const a = await h.ws(`ws://127.0.0.1:${port}`);
    await h.ws(`ws://127.0.0.1:${port}`);
    await until(() => wss.clients.size === 2, { what: 'two clients' });
    assert.deepEqual([...wss.clients].sort(), [...handed].sort());
    assert.ok([...wss.clients].every((ws) => ws.readyState === WebSocket.OPEN));
    // A broadcast over wss.clients, as the ws README does it.
    for (const ws of wss.clients) if (ws.readyState === WebSocket.OPEN) ws.send('to everyone');
    const others = h.clients.filter((c) => c instanceof WsPeer);
    await Promise.all(others.map((peer) => peer.wait(1)));
    a.ws.close();
    await until(() => wss.clients.size === 1, { what: 'one client left' });
    assert.equal([...wss.clients][0], handed[1]);
  });

  test('a throwing "message" listener is reported (wss "error", else a process warning), not fatal; others unaffected', async (t) => {
    const h = new Harness(t);
    const { wss, port } = await portServer(h, {}, (ws) => {
      ws.on('message', (data) => {
        if (data.toString() === 'boom') throw new Error('listener boom');
        if (data.toString() === 'async boom') return Promise.reject(new Error('async listener boom'));
        ws.send(`ok ${data}`);
      });
    });
    // With an error listener on the server.
    const sink = new ErrorSink(wss);
    t.after(() => sink.dispose());
    const thrower = await h.ws(`ws://127.0.0.1:${port}`);
    const bystander = await h.ws(`ws://127.0.0.1:${port}`);
    await thrower.send('boom');
    await thrower.send('async boom');
    await thrower.send('after');
    await bystander.send('me');
    assert.equal((await thrower.wait(1))[0].data.toString(), 'ok after');
    assert.equal((await bystander.wait(1))[0].data.toString(), 'ok me');
    await until(() => sink.errors.length === 2, { what: 'both errors at wss "error"' });
    assert.deepEqual(sink.errors.map((e) => e.message).sort(), ['async listener boom', 'listener boom']);
    assert.deepEqual(sink.warnings, []);
    // Without one: a process warning.
    sink.dispose();
    const warnings = new ErrorSink(null);
    t.after(() => warnings.dispose());
    await thrower.send('boom');
    await thrower.send('after again');
    await thrower.wait(2);
    await until(() => warnings.warnings.length === 1, { what: 'a process warning' });
    assert.match(warnings.warnings[0].message, /listener boom/);
    assert.equal(thrower.ws.readyState, WsClient.OPEN);
  });

  test('wss.close(cb): "close" and cb, the open connections closed (1001, Palaver\'s documented choice), new ones refused; a second close calls back', async (t) => {
    const h = new Harness(t);
    const serverSide = [];
    const { wss, port } = await portServer(h, {}, (ws) => ws.on('close', (code) => serverSide.push(code)));
    const peer = await h.ws(`ws://127.0.0.1:${port}`);
    const closeEvent = nextEvent(wss, 'close');
    await new Promise((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
    await closeEvent;
    const { code } = await peer.waitClosed();
    assert.equal(code, 1001);
    assert.deepEqual(serverSide, [1001]);
    assert.equal(wss.clients.size, 0);
    const refused = await refusedWs(`ws://127.0.0.1:${port}`);
    assert.match(refused.error ?? '', /ECONNREFUSED/);
    await new Promise((resolve) => wss.close(() => resolve()));
  });

  test('wss.close() on a {server} server: the connections close, the http server keeps serving the app', async (t) => {
    const h = new Harness(t);
    const server = await h.httpServer((req, res) => res.end('still the app'));
    const wss = h.trackWs(new WebSocketServer({ server }));
    wss.on('connection', echo);
    const port = await listen(server);
    const peer = await h.ws(`ws://127.0.0.1:${port}`);
    await new Promise((resolve) => wss.close(resolve));
    await peer.waitClosed();
    assert.equal(server.listening, true, 'ws leaves an external server open');
    assert.equal((await request(port, 'GET', '/')).body, 'still the app');
  });
});

describe('palaver/ws: seed 003 (the tutorial\'s echo server)', { timeout: 60_000 }, () => {
  test('its exact server code: each message comes back to its sender as text with 举头望明月，低头思故乡, appended', async (t) => {
    const h = new Harness(t);
    const logged = [];
    const originalLog = console.log;
    console.log = (...args) => logged.push(args.join(' '));
    t.after(() => {
      console.log = originalLog;
    });
    // Seed 003's server.js, with {port: 0} for its port.
    const wss = h.trackWs(new WebSocket.Server({ port: 0 })); //生成一个WebSockets实例,并指明使用的端口
    //单一连接ws
    wss.on('connection', (ws) => {
      console.log('有个人进来了');
      //数据传输
      ws.on('message', (data) => {
        ws.send(data + '举头望明月，低头思故乡,');
      });
      ws.on('close', () => {
        console.log('ta又走了！呜呜呜');
      });
    });
    await once(wss, 'listening');
    const url = `ws://localhost:${wss.address().port}`;
    const a = await h.ws(url);
    const b = await h.ws(url);
    await a.send('床前明月光，原来是惠康;');
    await a.send(Buffer.from('binary in'));
    await b.send('abc');
    const fromA = await a.wait(2);
    assert.deepEqual(
      fromA.map((m) => [m.isBinary, m.data.toString()]),
      [
        [false, '床前明月光，原来是惠康;举头望明月，低头思故乡,'],
        [false, 'binary in举头望明月，低头思故乡,'],
      ],
    );
    assert.deepEqual(
      (await b.wait(1)).map((m) => m.data.toString()),
      ['abc举头望明月，低头思故乡,'],
    );
    assert.equal(a.messages.length, 2, 'no echo of b at a');
    b.ws.close();
    await until(() => logged.includes('ta又走了！呜呜呜'), { what: 'the close log line' });
    assert.deepEqual(logged, ['有个人进来了', '有个人进来了', 'ta又走了！呜呜呜']);
  });
});

describe('palaver/ws: what only the server side can be', { timeout: 60_000 }, () => {
  test('the module is ws\'s: the WebSocket class with Server / WebSocketServer and the state constants', () => {
    assert.equal(typeof WebSocket, 'function');
    assert.equal(WebSocket.WebSocketServer, WebSocketServer);
    assert.deepEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
  });

  test('an http.Server with both: the app on GET, palaver/ws on upgrades, plain requests never see the engine', async (t) => {
    const h = new Harness(t);
    const server = http.createServer((req, res) => res.end(`app ${req.url}`));
    h.httpServers.push(server);
    const wss = h.trackWs(new WebSocketServer({ server }));
    wss.on('connection', echo);
    const port = await listen(server);
    const results = await Promise.all([
      request(port, 'GET', '/a'),
      h.ws(`ws://127.0.0.1:${port}/a`).then(async (peer) => {
        await peer.send('x');
        return (await peer.wait(1))[0].data.toString();
      }),
      request(port, 'GET', '/b'),
    ]);
    assert.deepEqual([results[0].body, results[1], results[2].body], ['app /a', 'x', 'app /b']);
  });
});
