'use strict';
// The public API of the Palaver Node package: a Socket.IO-like chat server whose
// traffic is handled by the Rust engine. The native binding (native/binding.js)
// stays private; everything a user touches is here.

const http = require('node:http');
const https = require('node:https');
const { EventEmitter } = require('node:events');

/** How long close() waits for clients before closing what is left. */
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
/** Extra room for Engine.IO framing on top of limits.max_payload_bytes. */
const BODY_SLACK_BYTES = 1024;
/** What the binding sends through the event function after the engine's last event. */
const END_OF_EVENTS = '';
/** How long close() waits for that marker once the engine has stopped. */
const END_OF_EVENTS_WAIT_MS = 2000;

/** The events the engine reports to the host (its own list, read once). */
let hostEvents = null;
function hostEventKinds() {
  if (!hostEvents) hostEvents = native().eventKinds();
  return hostEvents;
}

let binding = null;
function native() {
  if (!binding) {
    try {
      binding = require('./native/binding.js');
    } catch (cause) {
      throw new PalaverError(
        'ERR_PALAVER_NOT_BUILT',
        'the native addon is not built; run `npm run build` in the palaver package (or `make node` in the repository)',
        { cause },
      );
    }
  }
  return binding;
}

/** An error with a stable `code` (ERR_PALAVER_...). */
class PalaverError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'PalaverError';
    this.code = code;
  }
}

/** Native errors carry "ERR_PALAVER_X: text"; give them their code back. */
function fromNative(error) {
  const match = /^(ERR_PALAVER_[A-Z_]+): ([\s\S]*)$/.exec(error && error.message);
  return match ? new PalaverError(match[1], match[2], { cause: error }) : error;
}

async function call(promise) {
  try {
    return await promise;
  } catch (error) {
    throw fromNative(error);
  }
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype;
}

/** `{corsOrigins, limits: {maxTextChars}}` -> `{cors_origins, limits: {max_text_chars}}`. */
function toEngineConfig(options) {
  if (Array.isArray(options)) return options.map(toEngineConfig);
  if (!isPlainObject(options)) return options;
  const out = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    out[key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = toEngineConfig(value);
  }
  return out;
}

function isChatPath(url) {
  const path = (url || '').split('?', 1)[0];
  return path === '/socket.io' || path.startsWith('/socket.io/');
}

/** The request head as the client sent it, for the engine to read again. */
function requestHead(req) {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/**
 * A chat server. Create it with options (the engine configuration of
 * docs/PROTOCOL.md, camelCase or snake_case keys), then `attach(httpServer)` to
 * share the app's port, or `listen(port)` to run on a port of its own.
 */
class Server {
  constructor(options = {}) {
    if (!isPlainObject(options)) {
      throw new PalaverError('ERR_PALAVER_INVALID_OPTIONS', 'options must be a plain object');
    }
    this._config = toEngineConfig(options);
    this._closeTimeoutMs = DEFAULT_CLOSE_TIMEOUT_MS;
    if (this._config.stop_timeout_ms !== undefined) this._closeTimeoutMs = this._config.stop_timeout_ms;
    this._listeners = new EventEmitter();
    this._engine = null;
    this._detach = null;
    this._keepAlive = null;
    this._closing = null;
    this._endOfEvents = null;
    this._generation = 0;
    this._unsupportedReported = false;
  }

  /**
   * Serves the chat on an existing Node HTTP server (Express's `app.listen()`,
   * `http.createServer(app)`, Koa's `http.createServer(app.callback())`): requests
   * under /socket.io/ go to the engine, all others to the app as before.
   * WebSocket connections are handed over to the engine (their traffic never
   * passes through JavaScript); long-polling requests are forwarded to it.
   */
  attach(server) {
    if (!(server instanceof http.Server || server instanceof https.Server)) {
      throw new PalaverError(
        'ERR_PALAVER_NOT_HTTP_SERVER',
        'attach() needs a Node http.Server (or https.Server), such as the one app.listen() returns',
      );
    }
    this._start({ listen: false });
    const generation = this._generation;
    const appRequestListeners = server.listeners('request');
    const appUpgradeListeners = server.listeners('upgrade');
    const maxBody = (this._config.limits && this._config.limits.max_payload_bytes) || 65536;

    const onRequest = (req, res) => {
      if (!isChatPath(req.url)) {
        for (const listener of appRequestListeners) listener.call(server, req, res);
        return;
      }
      this._forward(req, res, maxBody + BODY_SLACK_BYTES, generation);
    };
    const onUpgrade = (req, socket, head) => {
      if (!isChatPath(req.url)) {
        if (appUpgradeListeners.length === 0) socket.destroy();
        for (const listener of appUpgradeListeners) listener.call(server, req, socket, head);
        return;
      }
      this._handOver(req, socket, head, generation);
    };
    // The chat keeps /socket.io/ until close() has resolved, so that clients can
    // still reach it while it says goodbye; then the app gets its listeners back.
    server.removeAllListeners('request');
    server.removeAllListeners('upgrade');
    server.on('request', onRequest);
    server.on('upgrade', onUpgrade);
    this._detach = () => {
      server.removeListener('request', onRequest);
      server.removeListener('upgrade', onUpgrade);
      for (const listener of appRequestListeners) server.on('request', listener);
      for (const listener of appUpgradeListeners) server.on('upgrade', listener);
    };
    return this;
  }

  /**
   * Runs the chat on its own port (0 picks a free one; see `port`). `host`
   * defaults to the configured host (127.0.0.1). The server keeps the process
   * alive until `close()`.
   */
  listen(port, host) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new PalaverError('ERR_PALAVER_INVALID_OPTIONS', `port must be an integer 0..65535, got ${port}`);
    }
    this._start({ listen: true, port, ...(host === undefined ? {} : { host }) });
    // Native threads do not keep Node's event loop alive; a running server should.
    this._keepAlive = setInterval(() => {}, 2 ** 30);
    return this;
  }

  /** The port the chat listens on after `listen()`; null when attached. */
  get port() {
    return this._engine ? this._engine.port : null;
  }

  /**
   * Subscribes to engine events: connected, disconnected, joined, left, message,
   * private, custom, and `error` (a listener of another event threw).
   */
  on(event, listener) {
    this._checkEvent(event);
    this._listeners.on(event, listener);
    this._syncListeners();
    return this;
  }

  once(event, listener) {
    this._checkEvent(event);
    this._listeners.once(event, listener);
    this._syncListeners();
    return this;
  }

  off(event, listener) {
    this._listeners.removeListener(event, listener);
    this._syncListeners();
    return this;
  }

  /**
   * Tells the engine which events have listeners: it builds and sends only those,
   * and refuses custom events to clients while `custom` has none. Called whenever
   * a listener is added or removed (also a once() listener that ran).
   */
  _syncListeners() {
    if (!this._engine) return;
    this._engine.listenTo(hostEventKinds().filter((type) => this._listeners.listenerCount(type) > 0));
  }

  /** Emits an event to every client. */
  async emit(event, data) {
    return call(this._running().emitToAll(String(event), JSON.stringify(data ?? null)));
  }

  /** Targets a room: `chat.to('lobby').emit('news', {...})`. */
  to(room) {
    const engine = () => this._running();
    return {
      emit: async (event, data) =>
        call(engine().emitToRoom(String(room), String(event), JSON.stringify(data ?? null))),
    };
  }

  /** Same as `to(room)`. */
  in(room) {
    return this.to(room);
  }

  /** Targets every connection of one user: `chat.toUser('ada').emit(...)`. */
  toUser(userId) {
    const engine = () => this._running();
    return {
      emit: async (event, data) =>
        call(engine().emitToUser(String(userId), String(event), JSON.stringify(data ?? null))),
    };
  }

  /** Disconnects every connection of a user (they get `kicked {reason}`). */
  async disconnectUser(userId, reason = 'disconnected by the server') {
    return call(this._running().disconnectUser(String(userId), String(reason)));
  }

  /** The rooms with their members, most populated first. */
  async rooms() {
    return call(this._running().rooms());
  }

  /** Counters: connections, users_online, rooms, messages, ... */
  stats() {
    try {
      return this._running().stats();
    } catch (error) {
      throw fromNative(error);
    }
  }

  /**
   * Stops the chat gracefully: clients get `shutdown` and a disconnect, accepted
   * messages are stored, the attached server gets its listeners back. Events keep
   * coming while it stops (the `disconnected` of each client, for example); the
   * promise resolves once the engine is gone and its last event was delivered, and
   * no event fires afterwards. Calling it again meanwhile returns the same promise;
   * after it resolved, `attach`/`listen` may start anew.
   */
  close() {
    if (this._closing) return this._closing;
    if (!this._engine) return Promise.resolve();
    const engine = this._engine;
    const endOfEvents = this._endOfEvents;
    const closing = (async () => {
      try {
        // true: the binding queued END_OF_EVENTS behind the engine's last event.
        const markerSent = await call(engine.close(this._closeTimeoutMs));
        if (markerSent === true) await endOfEvents.wait(END_OF_EVENTS_WAIT_MS);
      } finally {
        this._generation += 1; // no event after this
        if (this._detach) this._detach();
        this._detach = null;
        if (this._keepAlive) clearInterval(this._keepAlive);
        this._keepAlive = null;
        this._engine = null;
        this._endOfEvents = null;
        this._closing = null;
      }
    })();
    this._closing = closing;
    return closing;
  }

  _checkEvent(event) {
    if (event !== 'error' && !hostEventKinds().includes(event)) {
      throw new PalaverError(
        'ERR_PALAVER_INVALID_ARG',
        `unknown event ${JSON.stringify(event)}; expected one of ${hostEventKinds().join(', ')}, error`,
      );
    }
  }

  _running() {
    if (!this._engine || this._closing) {
      throw new PalaverError('ERR_PALAVER_CLOSED', 'the chat is not running; call attach() or listen() first');
    }
    return this._engine;
  }

  _start(overrides) {
    if (this._engine) {
      throw new PalaverError('ERR_PALAVER_ALREADY_STARTED', 'the chat already runs; close() it first');
    }
    const config = { ...this._config, ...overrides };
    const generation = ++this._generation;
    const endOfEvents = marker();
    try {
      this._engine = native().NativeEngine.start(JSON.stringify(config), (json) => {
        if (json === END_OF_EVENTS) endOfEvents.reached();
        else this._dispatch(json, generation);
      });
    } catch (error) {
      throw fromNative(error);
    }
    this._endOfEvents = endOfEvents;
    this._syncListeners();
  }

  /** Delivers one engine event to the listeners; a throwing listener is reported. */
  _dispatch(json, generation) {
    if (generation !== this._generation) return; // closed meanwhile: no event after close
    const event = JSON.parse(json);
    const type = event.type;
    if (type === 'custom') {
      // A custom event comes only while `custom` has a listener: without one the
      // engine itself refuses it to the client with unknown_event. One that was on
      // its way when the last listener went is refused the same way.
      const engine = this._engine;
      const ackId = event.ack;
      event.ack = null;
      if (this._listeners.listenerCount('custom') === 0) {
        if (ackId !== null && ackId !== undefined) engine.refuseUnheard(ackId, String(event.event));
        return;
      }
      if (ackId !== null && ackId !== undefined) {
        let answered = false;
        event.ack = (answer) => {
          if (answered) return false;
          answered = true;
          return engine.ack(ackId, JSON.stringify(answer ?? null));
        };
      }
    }
    // rawListeners: once() wrappers must run (and remove themselves).
    for (const listener of this._listeners.rawListeners(type)) {
      try {
        listener.call(this, event);
      } catch (error) {
        if (this._listeners.listenerCount('error') > 0) {
          this._listeners.emit('error', error);
        } else {
          // The process's usual path for an uncaught exception; the engine runs on.
          process.nextTick(() => {
            throw error;
          });
        }
      }
    }
    // The last once() listener of this type may just have gone.
    if (this._listeners.listenerCount(type) === 0) this._syncListeners();
  }

  /** Forwards a long-polling request (or the client script) to the engine. */
  _forward(req, res, maxBody, generation) {
    const chunks = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > maxBody && !refused) {
        refused = true;
        res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
        res.end('payload too large\n');
        req.destroy();
        return;
      }
      if (!refused) chunks.push(chunk);
    });
    req.on('end', async () => {
      if (refused) return;
      if (generation !== this._generation || !this._engine) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('the chat is closed\n');
        return;
      }
      try {
        const response = await this._engine.serveRequest(
          req.method,
          req.url,
          req.rawHeaders,
          Buffer.concat(chunks),
          req.socket.remoteAddress ?? null,
          req.socket.remotePort ?? null,
        );
        if (res.destroyed) return;
        const headers = [];
        for (let i = 0; i < response.headers.length; i += 2) {
          headers.push([response.headers[i], response.headers[i + 1]]);
        }
        res.writeHead(response.status, headers);
        res.end(response.body);
      } catch (error) {
        if (!res.headersSent) res.writeHead(503, { 'content-type': 'text/plain' });
        res.end(`${fromNative(error).message}\n`);
      }
    });
  }

  /**
   * Hands a WebSocket upgrade's connection to the engine: the descriptor of
   * Node's libuv TCP handle (`socket._handle.fd`, not public API; tested on
   * Node 20), duplicated by the engine.
   */
  _handOver(req, socket, head, generation) {
    if (generation !== this._generation || !this._engine || this._closing) {
      // Stopping: the engine takes no new connection (and refusing is no error).
      socket.end(
        'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n' +
          'the chat is closed\n',
      );
      return;
    }
    const notHandedOver =
      'HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n' +
      'WebSocket hand-over needs a plain TCP server; clients stay on long-polling\n';
    if (socket.encrypted) {
      // A TLS socket's descriptor carries ciphertext; the engine cannot take it
      // over. Refusing the upgrade keeps the client on long-polling.
      socket.end(notHandedOver);
      return;
    }
    const fd = socket._handle ? socket._handle.fd : undefined;
    if (!Number.isInteger(fd) || fd < 0) {
      // Not Node's libuv TCP socket (another runtime, or a socket wrapped in
      // JavaScript): clients stay on long-polling, and the host is told once.
      socket.end(notHandedOver);
      if (!this._unsupportedReported) {
        this._unsupportedReported = true;
        this._report(
          new PalaverError(
            'ERR_PALAVER_UNSUPPORTED_RUNTIME',
            "attach() needs Node's libuv TCP sockets (socket._handle.fd) to hand WebSocket " +
              'connections to the engine; tested on Node 20. Clients stay on long-polling.',
          ),
        );
      }
      return;
    }
    socket.pause();
    try {
      this._engine.adopt(fd, Buffer.concat([requestHead(req), head]));
    } catch (error) {
      socket.destroy();
      this._report(fromNative(error));
      return;
    }
    // The engine holds its own duplicate of the descriptor; closing Node's copy
    // does not end the connection.
    socket.destroy();
  }

  _report(error) {
    if (this._listeners.listenerCount('error') > 0) this._listeners.emit('error', error);
    else process.nextTick(() => {
      throw error;
    });
  }
}

/** A promise settled by `reached()`; `wait(ms)` gives up after `ms`. */
function marker() {
  let reached;
  const promise = new Promise((resolve) => {
    reached = resolve;
  });
  return {
    reached,
    wait(ms) {
      let timer;
      // The (ref'd) timer also keeps Node running until the marker arrives.
      const timeout = new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
      });
      return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
    },
  };
}

/**
 * `require('palaver')(server, options)`: a drop-in for `require('socket.io')(server)`.
 * With an http.Server the chat is attached to it; with a port it listens there.
 */
function palaver(serverOrPort, options) {
  if (isPlainObject(serverOrPort) && options === undefined) return new Server(serverOrPort);
  const chat = new Server(options);
  if (serverOrPort === undefined) return chat;
  if (typeof serverOrPort === 'number') return chat.listen(serverOrPort);
  return chat.attach(serverOrPort);
}

palaver.Server = Server;
palaver.PalaverError = PalaverError;
palaver.default = palaver;
module.exports = palaver;
