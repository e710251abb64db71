'use strict';
// Helpers for the protocol tests in tests/e2e/: recorded clients, both transports,
// acks with timeouts, raw HTTP and connect-error probes. Built on ./server.js.

const assert = require('node:assert/strict');
const http = require('node:http');
const { test } = require('node:test');
const { io } = require('socket.io-client');
const { sleep } = require('./server.js');

/** socket.io-client options for each transport the server must support. */
const TRANSPORTS = {
  websocket: { transports: ['websocket'] },
  polling: { transports: ['polling'] },
};

/**
 * Defines one test per transport: `body(t, transportOptions, transportName)`.
 * Use it where the transport matters.
 */
function bothTransports(name, body, options = {}) {
  for (const [transport, transportOptions] of Object.entries(TRANSPORTS)) {
    test(`${name} [${transport}]`, options, (t) => body(t, transportOptions, transport));
  }
}

/**
 * A socket.io-client socket that records every event from the moment it is
 * created (so events that arrive together with the CONNECT packet, as they do over
 * polling, are not missed).
 */
class Client {
  constructor(socket) {
    this.socket = socket;
    this.events = [];
    this.waiters = new Set();
    this.disconnectReason = null;
    socket.onAny((event, payload) => this._push(event, payload));
    socket.on('disconnect', (reason) => {
      this.disconnectReason = reason;
      this._push('disconnect', reason);
    });
  }

  _push(event, payload) {
    const entry = { event, payload, at: Date.now() };
    this.events.push(entry);
    for (const waiter of [...this.waiters]) waiter(entry, this.events.length - 1);
  }

  get id() {
    return this.socket.id;
  }

  get connected() {
    return this.socket.connected;
  }

  /** The index of the next event to arrive: pass it as `from` to `wait`. */
  mark() {
    return this.events.length;
  }

  /** Payloads of every recorded `event` (optionally only those at or after `from`). */
  of(event, from = 0) {
    return this.events.slice(from).filter((e) => e.event === event).map((e) => e.payload);
  }

  /**
   * Resolves with the first `event` payload matching `predicate` recorded at or
   * after index `from` (already recorded or still to come).
   */
  wait(event, predicate = () => true, { from = 0, timeout = 5000 } = {}) {
    for (let i = from; i < this.events.length; i++) {
      const e = this.events[i];
      if (e.event === event && predicate(e.payload)) return Promise.resolve(e.payload);
    }
    return new Promise((resolve, reject) => {
      const waiter = (e, index) => {
        if (index < from || e.event !== event || !predicate(e.payload)) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(e.payload);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no ${event} event within ${timeout} ms; got: ${this.describe(from)}`));
      }, timeout);
      this.waiters.add(waiter);
    });
  }

  /** Waits for the `n`-th `event` matching `predicate` at or after `from`; resolves with all n. */
  async waitCount(event, n, predicate = () => true, { from = 0, timeout = 5000 } = {}) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const found = this.of(event, from).filter(predicate);
      if (found.length >= n) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`only ${found.length} of ${n} ${event} events within ${timeout} ms`);
      }
      await new Promise((resolve) => {
        const waiter = (e) => {
          if (e.event !== event) return;
          this.waiters.delete(waiter);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.waiters.delete(waiter);
          resolve();
        }, left);
        this.waiters.add(waiter);
      });
    }
  }

  /** A short summary of the events recorded since `from`, for failure messages. */
  describe(from = 0) {
    return JSON.stringify(this.events.slice(from).map(({ event, payload }) => [event, payload])).slice(0, 2000);
  }

  /** Emits with an ack callback; resolves with the ack (rejects after `timeout`). */
  request(event, ...args) {
    return this.socket.timeout(5000).emitWithAck(event, ...args);
  }

  /** Emits without an ack callback. */
  send(event, ...args) {
    this.socket.emit(event, ...args);
  }

  /** Resolves once disconnected (immediately if already). */
  disconnected(timeout = 5000) {
    if (this.disconnectReason !== null) return Promise.resolve(this.disconnectReason);
    return this.wait('disconnect', () => true, { timeout });
  }

  close() {
    this.socket.close();
  }
}

/**
 * Keeps every client a test opens so that they can all be closed at the end.
 * `const clients = pool(t, server.url)`: closed automatically after the test `t`
 * (pass null and call `closeAll()` yourself otherwise).
 */
function pool(t, url) {
  const all = [];
  const p = {
    url,
    all,
    /** Connects a recorded client; rejects with the connect_error. */
    async connect(options = {}) {
      const socket = io(p.url, { forceNew: true, reconnection: false, timeout: 5000, ...options });
      const client = new Client(socket);
      all.push(client);
      await new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', (err) => {
          socket.close();
          reject(err);
        });
      });
      return client;
    },
    /** Connects a client and waits for the room lists every new client gets. */
    async ready(options = {}) {
      const client = await p.connect(options);
      await client.wait('rooms');
      return client;
    },
    /** Connects a client with a name (handshake auth) and joins `rooms`. */
    async member(name, rooms = [], options = {}) {
      const client = await p.connect({ ...options, auth: { ...(options.auth || {}), name } });
      for (const room of rooms) {
        const reply = await client.request('join', { room });
        assert.equal(reply.ok, true, `join ${room}: ${JSON.stringify(reply)}`);
      }
      return client;
    },
    /** Expects the connection to be refused; resolves with the connect_error message. */
    async refused(options = {}) {
      try {
        await p.connect(options);
      } catch (err) {
        return err.message;
      }
      throw new Error('the connection was accepted');
    },
    closeAll() {
      for (const client of all) client.close();
    },
  };
  if (t) t.after(() => p.closeAll());
  return p;
}

/** Asserts a refusal ack `{ok: false, code, message}` (plus `retry_after_ms` for rate_limited). */
function assertRefused(reply, code, context = '') {
  assert.equal(typeof reply, 'object', `${context} reply is not an object: ${JSON.stringify(reply)}`);
  assert.notEqual(reply, null, `${context} reply is null`);
  assert.equal(reply.ok, false, `${context} expected a refusal, got ${JSON.stringify(reply)}`);
  assert.equal(reply.code, code, `${context} expected code ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.message, 'string', `${context} refusal without message: ${JSON.stringify(reply)}`);
  assert.ok(reply.message.length > 0, `${context} empty refusal message`);
  const expectedKeys = code === 'rate_limited' ? ['code', 'message', 'ok', 'retry_after_ms'] : ['code', 'message', 'ok'];
  assert.deepEqual(Object.keys(reply).sort(), expectedKeys, `${context} refusal fields: ${JSON.stringify(reply)}`);
}

/** Asserts that `client` records no `event` matching `predicate` (at or after `from`) for `ms`. */
async function assertNone(client, event, predicate = () => true, { from = 0, ms = 300 } = {}) {
  await sleep(ms);
  const got = client.of(event, from).filter(predicate);
  assert.deepEqual(got, [], `unexpected ${event} events: ${JSON.stringify(got)}`);
}

/** An HTTP request; resolves with {status, headers, body}. */
function httpRequest(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`HTTP ${method} ${url} timed out`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Numeric-aware comparison of room message ids (strings increasing within a room). */
function compareIds(a, b) {
  assert.equal(typeof a, 'string');
  assert.equal(typeof b, 'string');
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  // Redis stream ids (cluster mode): "<ms>-<seq>", both parts numeric.
  const stream = /^(\d+)-(\d+)$/;
  if (stream.test(a) && stream.test(b)) {
    const [, am, as] = stream.exec(a);
    const [, bm, bs] = stream.exec(b);
    return compareIds(am, bm) || compareIds(as, bs);
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Asserts that ids are strictly increasing. */
function assertIncreasing(ids, context = '') {
  for (let i = 1; i < ids.length; i++) {
    assert.ok(compareIds(ids[i - 1], ids[i]) < 0, `${context} ids not increasing at ${i}: ${ids[i - 1]} then ${ids[i]}`);
  }
}

/** Asserts a stored chat message's exact shape. */
function assertChat(message, { room, user, user_id = user, text }) {
  assert.deepEqual(Object.keys(message).sort(), ['epoch', 'id', 'kind', 'offset', 'room', 'text', 'ts', 'user', 'user_id']);
  assert.ok(Number.isInteger(message.offset) && message.offset >= 1, `offset ${message.offset}`);
  assert.equal(typeof message.epoch, 'string');
  assert.equal(typeof message.id, 'string');
  assert.ok(message.id.length > 0);
  assert.equal(message.room, room);
  assert.equal(message.user, user);
  assert.equal(message.user_id, user_id);
  assert.equal(message.text, text);
  assert.equal(message.kind, 'chat');
  assert.ok(Number.isInteger(message.ts), `ts ${message.ts}`);
  assert.ok(Math.abs(message.ts - Date.now()) < 60000, `ts ${message.ts} is not now`);
}

/** Asserts a join/leave notice's exact shape. */
function assertNotice(message, { room, kind }) {
  assert.deepEqual(Object.keys(message).sort(), ['id', 'kind', 'room', 'text', 'ts', 'user', 'user_id']);
  assert.equal(message.id, null);
  assert.equal(message.room, room);
  assert.equal(message.user, 'system');
  assert.equal(message.user_id, null);
  assert.equal(message.kind, kind);
  assert.equal(typeof message.text, 'string');
  assert.ok(message.text.length > 0);
  assert.ok(Number.isInteger(message.ts), `ts ${message.ts}`);
  assert.ok(Math.abs(message.ts - Date.now()) < 60000, `ts ${message.ts} is not now`);
}

/** The message payload without the ack's `ok`. */
function withoutOk(reply) {
  const { ok, ...rest } = reply;
  return rest;
}

module.exports = {
  TRANSPORTS,
  bothTransports,
  Client,
  pool,
  assertRefused,
  assertNone,
  httpRequest,
  compareIds,
  assertIncreasing,
  assertChat,
  assertNotice,
  withoutOk,
};
