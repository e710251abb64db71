'use strict';
// Conformance of `palaver/socket.io` to the Socket.IO protocol (v5) on Engine.IO (v4),
// written from the two specifications (https://github.com/socketio/socket.io-protocol
// and https://github.com/socketio/engine.io-protocol): the behaviours the official
// test suite of socket.io-protocol checks, each over both transports where it applies
// to both, plus what Palaver additionally requires (numeric event names).
//
// The server under test is the suite's reference server (server.js here), started as
// a child process on a free port. Clients are a real WebSocket client (npm `ws`) and
// Node's fetch for HTTP long-polling, speaking the wire format directly:
//
//   Engine.IO packets: 0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade, 6 noop;
//     long-polling payloads join packets with \x1e, binary ones as "b" + base64;
//     WebSocket sends one packet per frame, binary ones as binary frames.
//   Socket.IO packets (inside an Engine.IO message): 0 CONNECT, 1 DISCONNECT, 2 EVENT,
//     3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT, 6 BINARY_ACK, encoded as
//     <type>[<attachments>-][<namespace>,][<ack id>][JSON] plus the attachments.
//
// `make conformance-official SUITE=...` runs the official suite itself against the
// same server (see README.md here).
//
// PALAVER_CONFORMANCE_SERVER (for checking the tests, not for CI): another server
// script to test instead of server.js, e.g. a copy whose require line is the npm
// `socket.io` (4.8) and that prints `listening on <port>` once it listens on PORT (0:
// any free port). Against it, what only Palaver guarantees is not checked (an invalid
// WebSocket upgrade is refused with a 400; socket.io 4.8 accepts some and then fails
// them), and what Palaver does not do yet is checked as a normal test.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const WebSocket = require('ws');

// The reference server's settings (server.js).
const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const CONNECT_TIMEOUT = 1000;
const MAX_PAYLOAD = 1000000;
/**
 * Timer rounding allowed when checking that something did not happen too early (the
 * checks measure from a moment before the server's timer started).
 */
const TIMER_SLACK_MS = 10;
/** How long a wait for a packet or a close lasts before the test fails. */
const WAIT_MS = 3000;
const TEST_TIMEOUT_MS = 15000;

/** True when the server under test is not this repository's (see the header). */
const REFERENCE = Boolean(process.env.PALAVER_CONFORMANCE_SERVER);
const SERVER_JS = process.env.PALAVER_CONFORMANCE_SERVER
  ? path.resolve(process.env.PALAVER_CONFORMANCE_SERVER)
  : path.join(__dirname, 'server.js');
const START_TIMEOUT_MS = 60000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects when `promise` has not settled after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- the server ----------------------------------------------------------------

let server = null;
let HTTP_URL = null;
let WS_URL = null;

process.on('exit', () => {
  if (server) server.kill('SIGKILL');
});

async function startServer() {
  const child = spawn(process.execPath, [SERVER_JS], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the conformance server did not start:\n${output}`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk) => {
      output += chunk;
      const match = /listening on (\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the conformance server exited (${code ?? signal}):\n${output}`));
    });
  });
  // Faults the server reports later show up in the test output.
  child.stdout.removeAllListeners('data');
  child.stdout.on('data', (chunk) => process.stderr.write(`[server] ${chunk}`));
  child.stderr.on('data', (chunk) => process.stderr.write(`[server] ${chunk}`));
  return { child, port };
}

before(async () => {
  const started = await startServer();
  server = started.child;
  HTTP_URL = `http://localhost:${started.port}/socket.io/`;
  WS_URL = `ws://localhost:${started.port}/socket.io/`;
});

after(async () => {
  if (!server) return;
  const child = server;
  server = null;
  if (child.exitCode !== null || child.signalCode !== null) {
    assert.fail(`the conformance server died during the tests (${child.exitCode ?? child.signalCode})`);
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await within(exited, 10000, 'the conformance server to stop').catch(() => child.kill('SIGKILL'));
});

// ---- Engine.IO over HTTP long-polling ------------------------------------------

/** Decodes a long-polling payload into its packets (strings; binary ones as Buffers). */
function decodePayload(body) {
  return body
    .split('\x1e')
    .map((packet) => (packet.startsWith('b') ? Buffer.from(packet.slice(1), 'base64') : packet));
}

/** Encodes packets (strings, or Buffers for binary) as one long-polling payload. */
function encodePayload(packets) {
  return packets
    .map((packet) => (Buffer.isBuffer(packet) ? `b${packet.toString('base64')}` : packet))
    .join('\x1e');
}

async function httpRequest(query, { method = 'GET', body, signal } = {}) {
  const response = await fetch(`${HTTP_URL}?${query}`, { method, body, signal });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

const pollingQuery = (sid) => `EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
const poll = (sid, options) => httpRequest(pollingQuery(sid), options);
const push = (sid, body) => httpRequest(pollingQuery(sid), { method: 'POST', body });

/** Opens a long-polling session: the open packet's data. */
async function openPollingSession() {
  const response = await httpRequest('EIO=4&transport=polling');
  assert.equal(response.status, 200, `handshake answered ${response.status}: ${response.body}`);
  assert.ok(response.body.startsWith('0'), `not an open packet: ${response.body}`);
  return JSON.parse(response.body.slice(1));
}

/** Checks an Engine.IO open packet's data against the reference server's settings. */
function assertHandshake(handshake, upgrades) {
  assert.deepEqual(Object.keys(handshake).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
  assert.equal(typeof handshake.sid, 'string');
  assert.ok(handshake.sid.length > 0);
  assert.deepEqual(handshake.upgrades, upgrades);
  assert.equal(handshake.pingInterval, PING_INTERVAL);
  assert.equal(handshake.pingTimeout, PING_TIMEOUT);
  assert.equal(handshake.maxPayload, MAX_PAYLOAD);
}

// ---- connections that record what they receive -------------------------------------

/** Connections of the running test, ended after it. */
const open = new Set();

afterEach(async () => {
  const connections = [...open];
  open.clear();
  await Promise.all(connections.map((connection) => connection.end()));
});

/**
 * What a connection received, in order, waited on with `next()`. Engine.IO pings are
 * answered with a pong as they arrive (the reference server pings every 300 ms) and
 * skipped by `next()` unless asked for. `closed` resolves once the session is over.
 */
class Inbox {
  constructor() {
    this.packets = [];
    this.read = 0;
    this.waiter = null;
    this.isClosed = false;
    this.closed = new Promise((resolve) => {
      this._resolveClosed = resolve;
    });
  }

  deliver(packet) {
    this.packets.push(packet);
    if (this.waiter) this.waiter();
  }

  markClosed(how) {
    if (this.isClosed) return;
    this.isClosed = true;
    this._resolveClosed(how);
    if (this.waiter) this.waiter();
  }

  /** The next packet (pings skipped unless `pings`); fails on close or after `timeout`. */
  next({ pings = false, timeout = WAIT_MS } = {}) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no packet within ${timeout} ms; received so far: ${this.describe()}`));
      }, timeout);
      const check = () => {
        while (this.read < this.packets.length) {
          const packet = this.packets[this.read++];
          if (packet === '2' && !pings) continue;
          clearTimeout(timer);
          this.waiter = null;
          resolve(packet);
          return;
        }
        if (this.isClosed) {
          clearTimeout(timer);
          this.waiter = null;
          reject(new Error(`the connection closed; received: ${this.describe()}`));
        }
      };
      this.waiter = check;
      check();
    });
  }

  /** Packets received and not read yet, pings excluded. */
  unread() {
    return this.packets.slice(this.read).filter((packet) => packet !== '2');
  }

  describe() {
    return JSON.stringify(this.packets.map((p) => (Buffer.isBuffer(p) ? `<binary ${p.toString('hex')}>` : p)));
  }
}

/** An Engine.IO session over WebSocket (npm ws). */
class WsConnection extends Inbox {
  constructor(query, { autoPong = true } = {}) {
    super();
    this.transport = 'websocket';
    this.autoPong = autoPong;
    this.httpStatus = null;
    this.ws = new WebSocket(`${WS_URL}?${query}`);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('close', () => reject(new Error(`the WebSocket closed before it opened (HTTP ${this.httpStatus})`)));
    });
    this.opened.catch(() => {});
    this.ws.on('unexpected-response', (_req, res) => {
      // The upgrade was refused with a plain HTTP answer.
      this.httpStatus = res.statusCode;
      res.resume();
      this.ws.emit('close', 1006, Buffer.alloc(0));
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => {
      const packet = isBinary ? Buffer.from(data) : data.toString('utf8');
      if (packet === '2' && this.autoPong) this.ws.send('3');
      this.deliver(packet);
    });
    this.ws.on('close', (code) => this.markClosed({ code, httpStatus: this.httpStatus }));
    open.add(this);
  }

  /** Sends packets, one frame each (Buffers as binary frames). */
  send(...packets) {
    for (const packet of packets) this.ws.send(packet);
  }

  async end() {
    open.delete(this);
    if (!this.isClosed) this.ws.terminate();
  }
}

/** An Engine.IO session over HTTP long-polling: one GET pending at any time. */
class PollingConnection extends Inbox {
  constructor(handshake, { autoPong = true } = {}) {
    super();
    this.transport = 'polling';
    this.sid = handshake.sid;
    this.autoPong = autoPong;
    this.abort = new AbortController();
    this.posts = Promise.resolve();
    this.closeReceived = false;
    open.add(this);
    this.loop = this._pollLoop();
  }

  /** Opens a session; the open packet is the first packet of the inbox. */
  static async open(options) {
    const handshake = await openPollingSession();
    const connection = new PollingConnection(handshake, options);
    connection.deliver(`0${JSON.stringify(handshake)}`);
    return connection;
  }

  async _pollLoop() {
    while (!this.isClosed) {
      let response;
      try {
        response = await poll(this.sid, { signal: this.abort.signal });
      } catch (error) {
        this.markClosed({ error });
        return;
      }
      if (response.status !== 200) {
        // The session is gone (closed, or never known).
        this.markClosed({ httpStatus: response.status, body: response.body });
        return;
      }
      for (const packet of decodePayload(response.body)) {
        if (packet === '2' && this.autoPong) this.send('3');
        if (packet === '1') this.closeReceived = true;
        this.deliver(packet);
      }
      if (this.closeReceived) {
        this.markClosed({ closePacket: true });
        return;
      }
    }
  }

  /** Sends packets in one POST, in order after the previous sends. */
  send(...packets) {
    const body = encodePayload(packets);
    const sent = this.posts.then(() => push(this.sid, body));
    this.posts = sent.then(
      () => {},
      () => {},
    );
    return sent;
  }

  async end() {
    open.delete(this);
    if (!this.isClosed) {
      this.markClosed({ ended: true });
      await push(this.sid, '1').catch(() => {});
    }
    this.abort.abort();
    await this.loop;
  }
}

/** Opens an Engine.IO session over `transport` and reads its open packet. */
async function openSession(transport, options) {
  if (transport === 'websocket') {
    const connection = new WsConnection('EIO=4&transport=websocket', options);
    const open = await connection.next();
    assert.ok(typeof open === 'string' && open.startsWith('0'), `not an open packet: ${open}`);
    connection.handshake = JSON.parse(open.slice(1));
    return connection;
  }
  const connection = await PollingConnection.open(options);
  const openPacket = await connection.next();
  connection.handshake = JSON.parse(openPacket.slice(1));
  return connection;
}

/** Waits until the session is over; fails if it stays open for `timeout`. */
async function assertCloses(connection, timeout = WAIT_MS) {
  const how = await within(connection.closed, timeout, `the ${connection.transport} session to close`);
  if (connection.transport === 'polling') {
    // However it ended, the session is gone: its sid is unknown now.
    const response = await poll(connection.sid);
    assert.equal(response.status, 400, `the closed session still answers a GET: ${response.status} ${response.body}`);
  }
  return how;
}

/** Connects to the namespace (`auth` as the CONNECT payload) and reads its `auth` event. */
async function connectNamespace(connection, nsp = '/', auth) {
  const prefix = nsp === '/' ? '' : `${nsp},`;
  await connection.send(`40${prefix}${auth === undefined ? '' : JSON.stringify(auth)}`);
  const reply = await connection.next();
  assert.ok(reply.startsWith(`40${prefix}`), `not a CONNECT reply for ${nsp}: ${reply}`);
  const data = JSON.parse(reply.slice(2 + prefix.length));
  assert.deepEqual(Object.keys(data), ['sid']);
  assert.equal(typeof data.sid, 'string');
  assert.ok(data.sid.length > 0);
  const authEvent = await connection.next();
  assert.equal(authEvent, `42${prefix}${JSON.stringify(['auth', auth ?? {}])}`);
  return data.sid;
}

/** An Engine.IO session over `transport` connected to the main namespace. */
async function socketIoConnection(transport) {
  const connection = await openSession(transport);
  await connectNamespace(connection, '/');
  return connection;
}

const TRANSPORTS = ['websocket', 'polling'];
const options = { timeout: TEST_TIMEOUT_MS };

// ================================================================================
// Engine.IO
// ================================================================================

describe('Engine.IO handshake over HTTP long-polling', () => {
  test('a GET opens a session: the open packet has exactly the handshake fields', options, async () => {
    const response = await httpRequest('EIO=4&transport=polling');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    assert.ok(response.body.startsWith('0'), `not an open packet: ${response.body}`);
    assertHandshake(JSON.parse(response.body.slice(1)), ['websocket']);
  });

  test('a missing or invalid EIO is refused with 400', options, async () => {
    assert.equal((await httpRequest('transport=polling')).status, 400);
    assert.equal((await httpRequest('EIO=abc&transport=polling')).status, 400);
  });

  test('a missing or invalid transport is refused with 400', options, async () => {
    assert.equal((await httpRequest('EIO=4')).status, 400);
    assert.equal((await httpRequest('EIO=4&transport=abc')).status, 400);
  });

  test('a handshake with another method than GET is refused with 400', options, async () => {
    assert.equal((await httpRequest('EIO=4&transport=polling', { method: 'POST' })).status, 400);
    assert.equal((await httpRequest('EIO=4&transport=polling', { method: 'PUT' })).status, 400);
  });
});

describe('Engine.IO handshake over WebSocket', () => {
  test('an upgrade opens a session: open packet first, with no further upgrades', options, async () => {
    const connection = new WsConnection('EIO=4&transport=websocket', { autoPong: false });
    const first = await connection.next();
    assert.equal(typeof first, 'string');
    assert.ok(first.startsWith('0'), `not an open packet: ${first}`);
    assertHandshake(JSON.parse(first.slice(1)), []);
  });

  for (const [what, queries] of [
    ['a missing or invalid EIO', ['transport=websocket', 'EIO=abc&transport=websocket']],
    ['a missing or invalid transport', ['EIO=4', 'EIO=4&transport=abc']],
  ]) {
    test(`${what} is refused: 400, no session`, options, async () => {
      for (const query of queries) {
        const connection = new WsConnection(query);
        const how = await within(connection.closed, WAIT_MS, `the upgrade ${query} to be refused`);
        if (!REFERENCE) assert.equal(how.httpStatus, 400, `upgrade ?${query}: ${JSON.stringify(how)}`);
        assert.deepEqual(connection.packets, []);
      }
    });
  }
});

/**
 * The first ping comes pingInterval after the handshake (`elapsed` is measured from
 * before the handshake request, so it can only be longer); later ones are measured
 * from the previous one's arrival, which network jitter shifts either way.
 */
function assertPingSpacing(index, elapsed) {
  const least = index === 0 ? PING_INTERVAL - TIMER_SLACK_MS : PING_INTERVAL / 2;
  assert.ok(
    elapsed >= least,
    index === 0
      ? `the first ping came ${elapsed} ms after the handshake, before pingInterval`
      : `ping ${index + 1} came ${elapsed} ms after the previous one`,
  );
}

describe('Engine.IO heartbeat', () => {
  test('polling: the server pings every pingInterval (not before) and takes pongs', options, async () => {
    const started = Date.now();
    const { sid } = await openPollingSession();
    let since = started;
    for (let i = 0; i < 3; i++) {
      const response = await poll(sid);
      assert.equal(response.status, 200);
      assert.equal(response.body, '2');
      assertPingSpacing(i, Date.now() - since);
      since = Date.now();
      const pong = await push(sid, '3');
      assert.equal(pong.status, 200);
      assert.equal(pong.body, 'ok');
    }
  });

  test('polling: without a pong, the session is closed after pingInterval + pingTimeout', options, async () => {
    const { sid } = await openPollingSession();
    await sleep(PING_INTERVAL + PING_TIMEOUT + 100);
    const response = await poll(sid);
    assert.equal(response.status, 400);
  });

  test('websocket: the server pings every pingInterval (not before) and takes pongs', options, async () => {
    const started = Date.now();
    const connection = new WsConnection('EIO=4&transport=websocket', { autoPong: false });
    const first = await connection.next();
    assert.ok(first.startsWith('0'));
    let since = started;
    for (let i = 0; i < 3; i++) {
      const packet = await connection.next({ pings: true });
      assert.equal(packet, '2');
      assertPingSpacing(i, Date.now() - since);
      since = Date.now();
      connection.send('3');
    }
    assert.equal(connection.isClosed, false);
  });

  test('websocket: without a pong, the connection is closed after pingInterval + pingTimeout', options, async () => {
    const started = Date.now();
    const connection = new WsConnection('EIO=4&transport=websocket', { autoPong: false });
    await within(connection.closed, WAIT_MS, 'the ping timeout');
    const elapsed = Date.now() - started;
    assert.ok(connection.packets[0].startsWith('0'));
    assert.equal(connection.packets[1], '2', `no ping before the close: ${connection.describe()}`);
    assert.ok(
      elapsed >= PING_INTERVAL + PING_TIMEOUT - TIMER_SLACK_MS,
      `closed after ${elapsed} ms, before pingInterval + pingTimeout`,
    );
  });
});

describe('Engine.IO close', () => {
  test('polling: a close packet ends the pending GET with a noop, and the session is gone', options, async () => {
    const { sid } = await openPollingSession();
    const pending = poll(sid);
    await sleep(50); // the GET is pending
    const close = await push(sid, '1');
    assert.equal(close.status, 200);
    const response = await within(pending, WAIT_MS, 'the pending GET to end');
    assert.equal(response.status, 200);
    assert.equal(response.body, '6');
    assert.equal((await poll(sid)).status, 400);
  });

  test('websocket: a close packet closes the connection', options, async () => {
    const connection = new WsConnection('EIO=4&transport=websocket');
    assert.ok((await connection.next()).startsWith('0'));
    connection.send('1');
    await within(connection.closed, WAIT_MS, 'the close');
  });
});

describe('Engine.IO upgrade from polling to WebSocket', () => {
  /** Opens a polling session and upgrades it: probe, then the upgrade packet. */
  async function upgraded() {
    const { sid } = await openPollingSession();
    const pending = poll(sid);
    await sleep(50); // a GET is pending when the upgrade starts
    const ws = new WsConnection(`EIO=4&transport=websocket&sid=${sid}`);
    await ws.opened;
    ws.send('2probe');
    assert.equal(await ws.next(), '3probe');
    // The server releases the pending GET with a noop. (On a slow machine a ping may
    // have been due first: it is answered, and the next GET gets the noop.)
    let released = await within(pending, WAIT_MS, 'the pending GET to be released');
    for (let pings = 0; released.status === 200 && released.body === '2' && pings < 3; pings++) {
      await push(sid, '3');
      released = await within(poll(sid), WAIT_MS, 'a GET during the upgrade to be released');
    }
    assert.equal(released.status, 200);
    assert.deepEqual(decodePayload(released.body).filter((packet) => packet !== '2'), ['6']);
    ws.send('5');
    // The session now runs over the WebSocket: a Socket.IO connect is answered there.
    await connectNamespace(ws, '/');
    return { sid, ws };
  }

  test('probe, noop to the pending GET, upgrade; the session continues over WebSocket', options, async () => {
    const { ws } = await upgraded();
    ws.send('42["message","over websocket"]');
    assert.equal(await ws.next(), '42["message-back","over websocket"]');
  });

  test('HTTP requests with the sid are refused after the upgrade', options, async () => {
    const { sid, ws } = await upgraded();
    assert.equal((await poll(sid)).status, 400);
    assert.equal((await push(sid, '42["message","late"]')).status, 400);
    assert.equal(ws.isClosed, false);
  });

  test('a second WebSocket with the sid is closed after the upgrade; the first one lives on', options, async () => {
    const { sid, ws } = await upgraded();
    const second = new WsConnection(`EIO=4&transport=websocket&sid=${sid}`);
    await within(second.closed, WAIT_MS, 'the second WebSocket to be closed');
    assert.deepEqual(second.packets, []);
    ws.send('42["message","still upgraded"]');
    assert.equal(await ws.next(), '42["message-back","still upgraded"]');
  });
});

// ================================================================================
// Socket.IO, over each transport
// ================================================================================

for (const transport of TRANSPORTS) {
  describe(`Socket.IO connect over ${transport}`, () => {
    test('CONNECT to the main namespace: CONNECT with only the sid, then the auth event', options, async () => {
      const connection = await openSession(transport);
      await connection.send('40');
      const reply = await connection.next();
      assert.ok(reply.startsWith('40{'), `not a CONNECT: ${reply}`);
      const data = JSON.parse(reply.slice(2));
      assert.deepEqual(Object.keys(data), ['sid']);
      assert.equal(typeof data.sid, 'string');
      assert.ok(data.sid.length > 0);
      assert.equal(await connection.next(), '42["auth",{}]');
    });

    // Protocol v5 made the Socket.IO id differ from the Engine.IO session id, so that
    // an id apps show to others (socket.id) cannot be used to poll or post on the
    // session (released socketioxide reuses the Engine.IO sid; docs/UPSTREAM.md).
    test(
      'the CONNECT sid is not the Engine.IO session id',
      options,
      async () => {
        const connection = await openSession(transport);
        await connection.send('40');
        const reply = await connection.next();
        assert.notEqual(JSON.parse(reply.slice(2)).sid, connection.handshake.sid);
      },
    );

    test('CONNECT to the main namespace with an auth payload', options, async () => {
      const connection = await openSession(transport);
      await connectNamespace(connection, '/', { token: '123' });
    });

    test('CONNECT to a custom namespace', options, async () => {
      const connection = await openSession(transport);
      await connection.send('40/custom,');
      const reply = await connection.next();
      assert.ok(reply.startsWith('40/custom,{'), `not a CONNECT of /custom: ${reply}`);
      assert.deepEqual(Object.keys(JSON.parse(reply.slice('40/custom,'.length))), ['sid']);
      assert.equal(await connection.next(), '42/custom,["auth",{}]');
    });

    test('CONNECT to a custom namespace with an auth payload', options, async () => {
      const connection = await openSession(transport);
      await connectNamespace(connection, '/custom', { token: 'abc' });
    });

    test('CONNECT to an unknown namespace: CONNECT_ERROR "Invalid namespace"', options, async () => {
      const connection = await openSession(transport);
      await connection.send('40/random');
      assert.equal(await connection.next(), '44/random,{"message":"Invalid namespace"}');
    });

    test('an invalid first packet closes the connection', options, async () => {
      const connection = await openSession(transport);
      await connection.send('4abc');
      await assertCloses(connection);
    });

    test('without CONNECT the connection is closed after connectTimeout (pongs answered)', options, async () => {
      const started = Date.now();
      const connection = await openSession(transport);
      await assertCloses(connection, CONNECT_TIMEOUT + WAIT_MS);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= CONNECT_TIMEOUT - TIMER_SLACK_MS, `closed after ${elapsed} ms, before connectTimeout`);
      assert.deepEqual(connection.unread().filter((p) => p !== '1'), []);
    });
  });

  describe(`Socket.IO disconnect over ${transport}`, () => {
    test('DISCONNECT from the main namespace: nothing more but pings; the session stays open', options, async () => {
      const connection = await socketIoConnection(transport);
      await connection.send('41');
      // The next packet is the next ping (answered): the session is alive and silent.
      assert.equal(await connection.next({ pings: true }), '2');
      // ... and it can connect again.
      await connectNamespace(connection, '/');
    });

    test('CONNECT then DISCONNECT a custom namespace; the main namespace still answers', options, async () => {
      const connection = await socketIoConnection(transport);
      await connectNamespace(connection, '/custom');
      await connection.send('41/custom,');
      await connection.send('42["message","message to main namespace"]');
      assert.equal(await connection.next(), '42["message-back","message to main namespace"]');
    });
  });

  describe(`Socket.IO messages over ${transport}`, () => {
    test('EVENT with every argument type is answered with all its arguments', options, async () => {
      const connection = await socketIoConnection(transport);
      await connection.send('42["message",1,"2",{"3":[true]}]');
      assert.equal(await connection.next(), '42["message-back",1,"2",{"3":[true]}]');
    });

    test('BINARY_EVENT with two attachments comes back with both', options, async () => {
      const connection = await socketIoConnection(transport);
      await connection.send(
        '452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        Buffer.from([1, 2, 3]),
        Buffer.from([4, 5, 6]),
      );
      assert.equal(
        await connection.next(),
        '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      );
      assert.deepEqual(await connection.next(), Buffer.from([1, 2, 3]));
      assert.deepEqual(await connection.next(), Buffer.from([4, 5, 6]));
    });

    test('EVENT with an ack id is acknowledged with all its arguments', options, async () => {
      const connection = await socketIoConnection(transport);
      await connection.send('42456["message-with-ack",1,"2",{"3":[false]}]');
      assert.equal(await connection.next(), '43456[1,"2",{"3":[false]}]');
    });

    test('BINARY_EVENT with an ack id is acknowledged with a BINARY_ACK and both attachments', options, async () => {
      const connection = await socketIoConnection(transport);
      await connection.send(
        '452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        Buffer.from([1, 2, 3]),
        Buffer.from([4, 5, 6]),
      );
      assert.equal(await connection.next(), '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      assert.deepEqual(await connection.next(), Buffer.from([1, 2, 3]));
      assert.deepEqual(await connection.next(), Buffer.from([4, 5, 6]));
    });

    for (const [what, packet] of [
      ['an unknown packet type', '4abc'],
      ['an EVENT payload that is not an array', '42{}'],
      ['an invalid ack id', '42abc["message-with-ack",1,"2",{"3":[false]}]'],
    ]) {
      test(`${what} closes the connection`, options, async () => {
        const connection = await socketIoConnection(transport);
        await connection.send(packet);
        await assertCloses(connection);
      });
    }

    // socket.io-parser's Decoder.isPayloadValid: these names are socket.io's own
    // (RESERVED_EVENTS); a client EVENT with one of them is an invalid packet. Were it
    // dispatched, an app with a middleware or onAny would run its own `disconnect`
    // handler with the client's arguments while the socket stays connected. A JSON
    // escape does not make the name another one.
    for (const [label, name] of [
      ...['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'].map((n) => [n, n]),
      ['disconnect (spelled with a JSON escape)', 'disconn\\u0065ct'],
    ]) {
      test(`an EVENT named ${label} (reserved by socket.io) closes the connection`, options, async () => {
        const connection = await socketIoConnection(transport);
        await connection.send(`42["${name}","junk"]`);
        await assertCloses(connection);
      });
    }

    test('numeric and unhandled event names: the connection stays open and answers', options, async () => {
      const connection = await socketIoConnection(transport);
      await connection.send('42[2,{"a":1}]');
      await connection.send('42["x"]');
      await connection.send('42["message","still open"]');
      assert.equal(await connection.next(), '42["message-back","still open"]');
      assert.equal(connection.isClosed, false);
      // Still open after a heartbeat round, and still answering.
      assert.equal(await connection.next({ pings: true }), '2');
      await connection.send('42["message","after a ping"]');
      assert.equal(await connection.next(), '42["message-back","after a ping"]');
    });
  });
}
