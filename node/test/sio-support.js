'use strict';
// Shared by the tests of `palaver/socket.io` and `palaver/ws` (socketio-*.test.js,
// ws.test.js): servers that are closed after the test, real clients (npm
// socket.io-client and npm ws) that record what they receive, and waits on events
// with every argument. No test of its own (`node --test test/` loads it and
// nothing happens).
//
// Every wait has a timeout and rejects with what it waited for; nothing sleeps for
// a fixed time where an event can be awaited.

const http = require('node:http');
const { io: ioClient } = require('socket.io-client');
const WsClient = require('ws');
const { listen, closeServer } = require('./helpers');

/** How long a wait lasts before it fails (generous: the suite also runs on busy machines). */
const WAIT_MS = 8000;

/**
 * Resolves with the arguments (an array) of the next `event` of `emitter`
 * (Node EventEmitter, socket.io-client socket, ws client) for which `filter(...args)`
 * is true.
 */
function nextEvent(emitter, event, { timeout = WAIT_MS, filter = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out after ${timeout} ms waiting for "${String(event)}"`));
    }, timeout);
    function listener(...args) {
      if (!filter(...args)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args);
    }
    emitter.on(event, listener);
  });
}

/** Resolves once `predicate()` is true (checked every 5 ms); rejects after `timeout`. */
async function until(predicate, { timeout = WAIT_MS, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Collects what is reported while it is set up: `error` events of `emitter` (when
 * given) and process warnings. `dispose()` removes its listeners.
 */
class ErrorSink {
  constructor(emitter) {
    this.errors = [];
    this.warnings = [];
    this._onError = (error) => this.errors.push(error);
    this._onWarning = (warning) => this.warnings.push(warning);
    this.emitter = emitter;
    if (emitter) emitter.on('error', this._onError);
    process.on('warning', this._onWarning);
  }

  /** Both lists, as messages. */
  get messages() {
    return [...this.errors, ...this.warnings].map((e) => (e && e.message) || String(e));
  }

  dispose() {
    if (this.emitter) this.emitter.off('error', this._onError);
    process.off('warning', this._onWarning);
  }
}

/**
 * Everything a socket.io-client socket receives: `items` ({event, args}), waits on
 * a count of one event.
 */
class Inbox {
  constructor(socket) {
    this.items = [];
    this._waiters = new Set();
    socket.onAny((event, ...args) => {
      this.items.push({ event, args });
      for (const waiter of [...this._waiters]) waiter();
    });
  }

  /** The argument lists of `event`, in arrival order. */
  of(event) {
    return this.items.filter((item) => item.event === event).map((item) => item.args);
  }

  /** Resolves with the argument lists of `event` once there are `count` of them. */
  wait(event, count = 1, timeout = WAIT_MS) {
    const ready = () => this.of(event).length >= count;
    if (ready()) return Promise.resolve(this.of(event));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${count} "${event}" (got ${this.of(event).length})`));
      }, timeout);
      const waiter = () => {
        if (!ready()) return;
        clearTimeout(timer);
        this._waiters.delete(waiter);
        resolve(this.of(event));
      };
      this._waiters.add(waiter);
    });
  }
}

/**
 * A test's servers and clients, all closed when the test ends (`t.after`). Each
 * client of `connect()` is matched with its server-side socket.
 */
class Harness {
  constructor(t) {
    this.clients = [];
    this.ios = [];
    this.httpServers = [];
    this.wsServers = [];
    t.after(() => this.close());
  }

  /** An http.Server with `handler` (or none), closed at the end; not listening yet. */
  async httpServer(handler) {
    const server = handler ? http.createServer(handler) : http.createServer();
    this.httpServers.push(server);
    return server;
  }

  /** Registers a socket.io server (palaver's) to close at the end. */
  track(io) {
    this.ios.push(io);
    return io;
  }

  /**
   * `new Server(httpServer, opts)` on a fresh http.Server listening on 127.0.0.1;
   * resolves with {io, server, port}.
   */
  async io(Server, opts, handler) {
    const server = await this.httpServer(handler);
    const io = this.track(new Server(server, opts));
    const port = await listen(server);
    return { io, server, port };
  }

  /**
   * A socket.io-client socket to `port` (and namespace `nsp`), connected; rejects
   * with the connect_error. With `io`, also waits for the server side of it and
   * resolves with {client, socket (server side), inbox}.
   */
  async connect(port, { nsp = '/', io, transport = 'websocket', ...options } = {}) {
    const client = ioClient(`http://127.0.0.1:${port}${nsp === '/' ? '' : nsp}`, {
      reconnection: false,
      forceNew: true,
      timeout: WAIT_MS,
      transports: transport === 'both' ? ['polling', 'websocket'] : [transport],
      ...options,
    });
    this.clients.push(client);
    const inbox = new Inbox(client);
    // The server side of this client: its namespace's `connection` with the same id.
    let serverSide = null;
    if (io) {
      const namespace = io.of(nsp);
      const seen = new Map();
      const onConnection = (socket) => seen.set(socket.id, socket);
      namespace.on('connection', onConnection);
      serverSide = { namespace, seen, onConnection };
    }
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out connecting')), WAIT_MS);
        client.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        client.once('connect_error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
      if (!serverSide) return { client, inbox };
      const { namespace, seen } = serverSide;
      await until(() => seen.has(client.id) || namespace.sockets.has(client.id), {
        what: `the server side of ${client.id}`,
      });
      return { client, socket: seen.get(client.id) ?? namespace.sockets.get(client.id), inbox };
    } finally {
      if (serverSide) serverSide.namespace.off('connection', serverSide.onConnection);
    }
  }

  /** A socket.io-client socket that is expected not to connect: resolves with its connect_error. */
  async refused(port, { nsp = '/', transport = 'websocket', ...options } = {}) {
    const client = ioClient(`http://127.0.0.1:${port}${nsp === '/' ? '' : nsp}`, {
      reconnection: false,
      forceNew: true,
      timeout: WAIT_MS,
      transports: [transport],
      ...options,
    });
    this.clients.push(client);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no connect_error')), WAIT_MS);
      client.once('connect', () => {
        clearTimeout(timer);
        reject(new Error('connected, but it should have been refused'));
      });
      client.once('connect_error', (error) => {
        clearTimeout(timer);
        resolve(error);
      });
    });
  }

  /** An npm `ws` client to `url`, open; resolves with a WsPeer. */
  async ws(url, options) {
    const peer = new WsPeer(new WsClient(url, options));
    this.clients.push(peer);
    await peer.opened;
    return peer;
  }

  /** Registers a palaver/ws server to close at the end. */
  trackWs(wss) {
    this.wsServers.push(wss);
    return wss;
  }

  async close() {
    for (const client of this.clients) client.close();
    await Promise.all(this.ios.map((io) => Promise.resolve(io.close()).catch(() => {})));
    await Promise.all(
      this.wsServers.map((wss) => new Promise((resolve) => wss.close(() => resolve())).catch(() => {})),
    );
    await Promise.all(this.httpServers.filter((s) => s.listening).map(closeServer));
  }
}

/** An npm `ws` client with what it received recorded. */
class WsPeer {
  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this._waiters = new Set();
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      this.messages.push({ data, isBinary });
      for (const waiter of [...this._waiters]) waiter();
    });
  }

  send(data, options) {
    return new Promise((resolve, reject) => this.ws.send(data, options ?? {}, (e) => (e ? reject(e) : resolve())));
  }

  /** Resolves with the messages once there are `count`. */
  wait(count = 1, timeout = WAIT_MS) {
    const ready = () => this.messages.length >= count;
    if (ready()) return Promise.resolve(this.messages);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${count} ws messages (got ${this.messages.length})`));
      }, timeout);
      const waiter = () => {
        if (!ready()) return;
        clearTimeout(timer);
        this._waiters.delete(waiter);
        resolve(this.messages);
      };
      this._waiters.add(waiter);
    });
  }

  /** Resolves with the close {code, reason}, failing after `timeout`. */
  async waitClosed(timeout = WAIT_MS) {
    let timer;
    const timedOut = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error('the ws client was not closed')), timeout);
    });
    try {
      return await Promise.race([this.closed, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(code, reason) {
    if (this.ws.readyState === WsClient.OPEN || this.ws.readyState === WsClient.CONNECTING) {
      try {
        this.ws.close(code, reason);
      } catch {
        this.ws.terminate();
      }
    }
  }
}

module.exports = { WAIT_MS, ErrorSink, Harness, Inbox, WsPeer, nextEvent, until };
