'use strict';
// Misuse of the API fails at once with a PalaverError and a stable code, and
// leaves nothing behind (no engine, no listener, nothing keeping Node alive).

const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { describe, test, after } = require('node:test');
const { once } = require('node:events');
const palaver = require('..');
const { TEST_OPTIONS, closeServer, connect, listen, request } = require('./helpers');

const { Server, PalaverError } = palaver;

function expectCode(code) {
  return (error) => {
    assert.ok(error instanceof PalaverError, `a PalaverError, got ${error && error.stack}`);
    assert.equal(error.name, 'PalaverError');
    assert.equal(error.code, code);
    assert.ok(error.message.length > 0);
    return true;
  };
}

describe('bad use', { timeout: 30_000 }, () => {
  const servers = [];
  const chats = [];
  function appServer() {
    const server = http.createServer((req, res) => res.end('app\n'));
    servers.push(server);
    return server;
  }
  function chat(options = TEST_OPTIONS) {
    const made = new Server(options);
    chats.push(made);
    return made;
  }

  after(async () => {
    await Promise.all(chats.map((c) => c.close()));
    await Promise.all(servers.filter((s) => s.listening).map(closeServer));
  });

  test('attach() to something that is not an HTTP server: ERR_PALAVER_NOT_HTTP_SERVER', () => {
    const netServer = net.createServer();
    for (const notHttp of [{}, netServer, null, undefined, 3000, 'http://localhost']) {
      assert.throws(() => chat().attach(notHttp), expectCode('ERR_PALAVER_NOT_HTTP_SERVER'));
    }
    assert.throws(() => palaver(netServer), expectCode('ERR_PALAVER_NOT_HTTP_SERVER'));
    assert.throws(() => palaver(null), expectCode('ERR_PALAVER_NOT_HTTP_SERVER'));
    assert.throws(() => palaver(netServer, TEST_OPTIONS), expectCode('ERR_PALAVER_NOT_HTTP_SERVER'));
    // Nothing started: the same chat can still attach to a real server.
    const survivor = chat();
    assert.throws(() => survivor.attach({}), expectCode('ERR_PALAVER_NOT_HTTP_SERVER'));
    assert.throws(() => survivor.stats(), expectCode('ERR_PALAVER_CLOSED'));
    survivor.attach(appServer());
    assert.equal(survivor.stats().connections, 0);
  });

  test('invalid options: ERR_PALAVER_INVALID_OPTIONS, and the server is left as it was', async () => {
    const server = appServer();
    const port = await listen(server);
    const appListeners = server.listeners('request');
    const invalid = [
      { limts: {} },
      { limits: { maxTextChars: 0 } },
      { limits: { maxTxtChars: 10 } },
      { identity: { mode: 'token' } },
      { identity: { mode: 'password' } },
      { history: { storage: 'paper' } },
      { transport: { websocket: false, polling: false } },
      { limits: { maxTextChars: 'many' } },
    ];
    for (const options of invalid) {
      assert.throws(() => palaver(server, options), expectCode('ERR_PALAVER_INVALID_OPTIONS'), JSON.stringify(options));
      assert.throws(() => new Server(options).attach(server), expectCode('ERR_PALAVER_INVALID_OPTIONS'));
      assert.throws(() => new Server(options).listen(0), expectCode('ERR_PALAVER_INVALID_OPTIONS'));
    }
    for (const notOptions of ['options', 42, null, [], new Map(), () => {}]) {
      assert.throws(() => new Server(notOptions), expectCode('ERR_PALAVER_INVALID_OPTIONS'), String(notOptions));
    }
    assert.throws(() => palaver(server, 'options'), expectCode('ERR_PALAVER_INVALID_OPTIONS'));
    for (const badPort of [-1, 65536, 1.5, '3000', NaN]) {
      assert.throws(() => chat().listen(badPort), expectCode('ERR_PALAVER_INVALID_OPTIONS'), String(badPort));
    }
    assert.deepEqual(server.listeners('request'), appListeners);
    assert.equal(server.listeners('upgrade').length, 0);
    assert.equal((await request(port, 'GET', '/socket.io/socket.io.js')).body, 'app\n');
  });

  test('listen() on a port in use: ERR_PALAVER_LISTEN', async () => {
    const taken = net.createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address();
    try {
      const blocked = chat();
      assert.throws(() => blocked.listen(port, '127.0.0.1'), expectCode('ERR_PALAVER_LISTEN'));
      assert.equal(blocked.port, null);
      assert.throws(() => palaver(port, TEST_OPTIONS), expectCode('ERR_PALAVER_LISTEN'));
      // The failed chat can start elsewhere.
      blocked.listen(0);
      assert.ok(blocked.port > 0);
      await blocked.close();
    } finally {
      taken.close();
    }
  });

  test('starting twice: ERR_PALAVER_ALREADY_STARTED', async () => {
    const attached = chat().attach(appServer());
    assert.throws(() => attached.attach(appServer()), expectCode('ERR_PALAVER_ALREADY_STARTED'));
    assert.throws(() => attached.listen(0), expectCode('ERR_PALAVER_ALREADY_STARTED'));
    const listening = chat().listen(0);
    assert.throws(() => listening.listen(0), expectCode('ERR_PALAVER_ALREADY_STARTED'));
    assert.throws(() => listening.attach(appServer()), expectCode('ERR_PALAVER_ALREADY_STARTED'));
    // One engine each: both still work.
    assert.equal(attached.stats().connections, 0);
    assert.equal(listening.stats().connections, 0);
    await Promise.all([attached.close(), listening.close()]);
  });

  test('commands before start, while closing and after close: ERR_PALAVER_CLOSED', async () => {
    const commands = (c) => [
      () => c.emit('news', {}),
      () => c.to('lobby').emit('news', {}),
      () => c.in('lobby').emit('news', {}),
      () => c.toUser('ada').emit('news', {}),
      () => c.disconnectUser('ada'),
      () => c.rooms(),
      () => c.stats(),
    ];
    const check = async (c) => {
      for (const command of commands(c)) {
        // Synchronous (stats) or a rejected promise (the rest): both carry the code.
        await assert.rejects(async () => command(), expectCode('ERR_PALAVER_CLOSED'));
      }
    };
    const neverStarted = chat();
    await check(neverStarted);

    const closing = chat().attach(appServer());
    const closed = closing.close();
    await check(closing);
    await closed;
    await check(closing);
    // The async commands reject rather than throw synchronously.
    const rejected = closing.emit('news', {});
    assert.ok(rejected instanceof Promise);
    await assert.rejects(rejected, expectCode('ERR_PALAVER_CLOSED'));
  });

  test('a user who is not online: ERR_PALAVER_USER_OFFLINE', async () => {
    const server = appServer();
    const online = chat().attach(server);
    const port = await listen(server);
    const ada = await connect(port, { transports: ['websocket'], auth: { name: 'ada' } });
    try {
      await online.toUser('ada').emit('hello', {});
      await assert.rejects(online.toUser('nobody').emit('hello', {}), expectCode('ERR_PALAVER_USER_OFFLINE'));
      await assert.rejects(online.disconnectUser('nobody'), expectCode('ERR_PALAVER_USER_OFFLINE'));
    } finally {
      ada.close();
    }
  });

  test('bad arguments: ERR_PALAVER_INVALID_ARG', async () => {
    const c = chat().attach(appServer());
    for (const event of ['nonsense', 'connection', 'Message', '', undefined]) {
      assert.throws(() => c.on(event, () => {}), expectCode('ERR_PALAVER_INVALID_ARG'), String(event));
      assert.throws(() => c.once(event, () => {}), expectCode('ERR_PALAVER_INVALID_ARG'));
    }
    // Socket.IO's reserved names, and impossible room names.
    await assert.rejects(c.emit('connect', {}), expectCode('ERR_PALAVER_INVALID_ARG'));
    await assert.rejects(c.emit('disconnect', {}), expectCode('ERR_PALAVER_INVALID_ARG'));
    await assert.rejects(c.to('no!room?').emit('news', {}), expectCode('ERR_PALAVER_INVALID_ARG'));
    await assert.rejects(c.to('lobby').emit('', {}), expectCode('ERR_PALAVER_INVALID_ARG'));
  });

  test('a socket without a libuv descriptor: ERR_PALAVER_UNSUPPORTED_RUNTIME, once', async () => {
    const server = appServer();
    const c = chat().attach(server);
    const reported = [];
    c.on('error', (error) => reported.push(error));
    // What another runtime's upgrade may hand over: no `_handle.fd` to take over.
    const upgrade = () => {
      const written = [];
      const socket = { _handle: null, encrypted: false, end: (text) => written.push(text), destroy() {} };
      const req = { method: 'GET', url: '/socket.io/?EIO=4&transport=websocket', httpVersion: '1.1', rawHeaders: [] };
      server.emit('upgrade', req, socket, Buffer.alloc(0));
      return written.join('');
    };
    assert.match(upgrade(), /^HTTP\/1\.1 501 /);
    assert.match(upgrade(), /^HTTP\/1\.1 501 /, 'refused again');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reported.length, 1, 'reported once');
    expectCode('ERR_PALAVER_UNSUPPORTED_RUNTIME')(reported[0]);
    assert.match(reported[0].message, /socket\._handle\.fd/);
  });
});
