'use strict';
// `palaver/socket.io`: the `socket.io` package's server API on the Palaver
// engine. An app moves over by changing its require line; its handlers run here
// in JavaScript, while the transport, the encoding and the fan-out stay in Rust.
//
// How it works: the engine runs with its built-in chat off, so every namespace
// is a host namespace. Events of connections arrive through one ordered event
// function (connect gates, connects, events with all their arguments and their
// ack, disconnects); what the app does (emit, join, leave, disconnect, ack,
// admit) goes back as commands, batched per tick and applied by the engine in
// the order given. Rooms of local connections are mirrored here, so that
// `socket.rooms` and `nsp.adapter.rooms` read synchronously, as in socket.io.
// docs/SOCKETIO.md lists what is supported and how it differs.

const { EventEmitter } = require('node:events');
const {
  PalaverError,
  fromNative,
  call,
  isPlainObject,
  toEngineConfig,
  configFromEnvironment,
  mergeConfig,
  reportError,
} = require('./lib/native');
const { EngineHost, isSocketIoPath } = require('./lib/host');
const { CommandBatch } = require('./lib/commands');

/** Event names socket.io reserves on a socket (never sent to clients). */
const RESERVED_EVENTS = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);
/** Socket-level events that are not client events (not forwarded by the engine). */
const LOCAL_EVENTS = new Set(['disconnect', 'disconnecting', 'error', 'newListener', 'removeListener']);
/** The engine's disconnect reasons, as socket.io names them. */
const REASONS = {
  transport_close: 'transport close',
  client_disconnect: 'client namespace disconnect',
  server_disconnect: 'server namespace disconnect',
  ping_timeout: 'ping timeout',
  transport_error: 'transport error',
  bad_packet: 'parse error',
  multiple_polling_requests: 'transport error',
  server_closing: 'server shutting down',
};
/** The engine events this entry point handles. */
const SOCKET_EVENTS = ['socket_gate', 'socket_connect', 'socket_event', 'socket_disconnect'];
/** How long past the engine's gate deadline a socket at the gate is kept here. */
const GATE_GRACE_MS = 5000;
/** How long an ack waits when the app set no timeout (socket.io waits forever). */
const ACK_WAIT_MS = 2 ** 31 - 1;
/**
 * The engine's disconnect reasons after which a connection can be resumed
 * (socket.io's RECOVERABLE_DISCONNECT_REASONS): it went without a goodbye.
 */
const RECOVERABLE = new Set(['transport_close', 'transport_error', 'ping_timeout']);
/** socket.io's default `connectionStateRecovery.maxDisconnectionDuration`. */
const RECOVERY_WINDOW_MS = 2 * 60 * 1000;
/** The engine's default `connection_state_recovery.max_sessions`. */
const RECOVERY_MAX_SESSIONS = 10_000;

// ---- arguments: JSON with binary placeholders ---------------------------------

function isBinary(value) {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

function hasBinary(value, depth = 0) {
  if (value === null || typeof value !== 'object' || depth > 64) return false;
  if (isBinary(value)) return true;
  if (Array.isArray(value)) return value.some((item) => hasBinary(item, depth + 1));
  if (typeof value.toJSON === 'function') return false;
  for (const key of Object.keys(value)) if (hasBinary(value[key], depth + 1)) return true;
  return false;
}

function toBuffer(value) {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * Arguments out: the array to send (binary values replaced by placeholders) and
 * the attachments the placeholders name.
 */
function encodeArgs(args) {
  if (!args.some((arg) => hasBinary(arg))) return { args, buffers: null };
  const buffers = [];
  const replace = (value) => {
    if (value === null || typeof value !== 'object') return value;
    if (isBinary(value)) {
      buffers.push(toBuffer(value));
      return { _placeholder: true, num: buffers.length - 1 };
    }
    if (Array.isArray(value)) return value.map(replace);
    if (typeof value.toJSON === 'function') return value;
    const out = {};
    for (const key of Object.keys(value)) out[key] = replace(value[key]);
    return out;
  };
  return { args: args.map(replace), buffers };
}

/** Arguments in: placeholders become the Buffers they name. */
function decodeArgs(args, buffers) {
  if (!buffers || buffers.length === 0) return args;
  const revive = (value) => {
    if (value === null || typeof value !== 'object') return value;
    if (value._placeholder === true && typeof value.num === 'number' && Object.keys(value).length === 2) {
      return buffers[value.num] ?? value;
    }
    if (Array.isArray(value)) return value.map(revive);
    for (const key of Object.keys(value)) value[key] = revive(value[key]);
    return value;
  };
  return args.map(revive);
}

function checkEmitName(event) {
  if (RESERVED_EVENTS.has(event)) throw new Error(`"${event}" is a reserved event name`);
}

/** Calls a listener, reporting what it throws or rejects with; never throws. */
function invoke(server, listener, self, args) {
  try {
    const result = listener.apply(self, args);
    if (result && typeof result.then === 'function') {
      result.then(undefined, (error) => reportError(server, error));
    }
  } catch (error) {
    reportError(server, error);
  }
}

/** Emits on an EventEmitter with every listener guarded (socket.io's handlers may throw). */
function guardedEmit(server, emitter, event, args) {
  // rawListeners: once() wrappers must run (and remove themselves).
  const listeners = emitter.rawListeners(event);
  for (const listener of listeners) invoke(server, listener, emitter, args);
  return listeners.length > 0;
}

// ---- the server ----------------------------------------------------------------

/**
 * The socket.io `Server`: `new Server(httpServer, options)`, `new Server(port,
 * options)`, `new Server(options)` then `attach`/`listen`.
 */
class Server extends EventEmitter {
  constructor(srv, opts) {
    super();
    if (isPlainObject(srv) && opts === undefined) {
      opts = srv;
      srv = undefined;
    }
    this.opts = opts ?? {};
    if (!isPlainObject(this.opts)) {
      throw new PalaverError('ERR_PALAVER_INVALID_OPTIONS', 'options must be a plain object');
    }
    this._nsps = new Map();
    this._closingDown = false;
    const config = engineConfig(this.opts);
    this._recovery = recoverySettings(config);
    this._host = new EngineHost({
      config,
      onEvent: (json, buffers) => this._onEngineEvent(json, buffers),
      onError: (error) => reportError(this, error),
      claims: (req) => isSocketIoPath(req),
      kinds: () => SOCKET_EVENTS,
    });
    this._batch = new CommandBatch(this._host, this);
    /** The main namespace (`io.sockets`, `io.of("/")`). */
    this.sockets = this.of('/');
    this.engine = new EngineView(this);
    if (srv !== undefined && srv !== null) this.attach(srv);
  }

  /** Serves on an http.Server, or listens on a port (socket.io's `attach`). */
  attach(srv, opts) {
    if (opts !== undefined) {
      this.opts = { ...this.opts, ...opts };
      this._host.config = engineConfig(this.opts);
      this._recovery = recoverySettings(this._host.config);
    }
    if (typeof srv === 'number' || (typeof srv === 'string' && /^\d+$/.test(srv))) {
      this._host.listen(Number(srv));
    } else {
      this._host.attach(srv);
    }
    this._started();
    return this;
  }

  /** Same as `attach`. */
  listen(srv, opts) {
    return this.attach(srv, opts);
  }

  /** The port the server listens on when it was given a port. */
  get port() {
    return this._host.port;
  }

  /** A namespace by name (created on first use), as `io.of("/admin")`. */
  of(name, fn) {
    if (typeof name !== 'string') {
      throw new PalaverError('ERR_PALAVER_INVALID_ARG', 'dynamic namespaces (regular expressions, functions) are not supported');
    }
    const path = name.startsWith('/') ? name : `/${name}`;
    let nsp = this._nsps.get(path);
    if (!nsp) {
      nsp = new Namespace(this, path);
      this._nsps.set(path, nsp);
      if (path !== '/' && this._host.engine) this._command({ namespace: { ns: path, gated: nsp._fns.length > 0 } });
    }
    if (fn) nsp.on('connection', fn);
    return nsp;
  }

  /** Connection middleware of the main namespace (`io.use((socket, next) => ...)`). */
  use(fn) {
    this.sockets.use(fn);
    return this;
  }

  on(event, listener) {
    if (event === 'connection' || event === 'connect') {
      this.sockets.on(event, listener);
      return this;
    }
    return super.on(event, listener);
  }

  addListener(event, listener) {
    return this.on(event, listener);
  }

  once(event, listener) {
    if (event === 'connection' || event === 'connect') {
      this.sockets.once(event, listener);
      return this;
    }
    return super.once(event, listener);
  }

  prependListener(event, listener) {
    if (event === 'connection' || event === 'connect') {
      this.sockets.prependListener(event, listener);
      return this;
    }
    return super.prependListener(event, listener);
  }

  off(event, listener) {
    return this.removeListener(event, listener);
  }

  removeListener(event, listener) {
    if (event === 'connection' || event === 'connect') {
      this.sockets.removeListener(event, listener);
      return this;
    }
    return super.removeListener(event, listener);
  }

  removeAllListeners(event) {
    if (event === 'connection' || event === 'connect') {
      this.sockets.removeAllListeners(event);
      return this;
    }
    if (event === undefined) this.sockets.removeAllListeners();
    return event === undefined ? super.removeAllListeners() : super.removeAllListeners(event);
  }

  listeners(event) {
    return event === 'connection' || event === 'connect' ? this.sockets.listeners(event) : super.listeners(event);
  }

  listenerCount(event) {
    return event === 'connection' || event === 'connect'
      ? this.sockets.listenerCount(event)
      : super.listenerCount(event);
  }

  /** Emits to every connection of the main namespace. */
  emit(event, ...args) {
    return this.sockets.emit(event, ...args);
  }

  /** Same as `emit("message", ...args)`. */
  send(...args) {
    this.sockets.send(...args);
    return this;
  }

  write(...args) {
    return this.send(...args);
  }

  to(room) {
    return this.sockets.to(room);
  }

  in(room) {
    return this.sockets.in(room);
  }

  except(room) {
    return this.sockets.except(room);
  }

  timeout(ms) {
    return this.sockets.timeout(ms);
  }

  get volatile() {
    return this.sockets.volatile;
  }

  get local() {
    return this.sockets.local;
  }

  compress() {
    return this.sockets.compress();
  }

  emitWithAck(event, ...args) {
    return this.sockets.emitWithAck(event, ...args);
  }

  fetchSockets() {
    return this.sockets.fetchSockets();
  }

  socketsJoin(room) {
    return this.sockets.socketsJoin(room);
  }

  socketsLeave(room) {
    return this.sockets.socketsLeave(room);
  }

  disconnectSockets(close = false) {
    return this.sockets.disconnectSockets(close);
  }

  allSockets() {
    return this.sockets.allSockets();
  }

  serverSideEmit() {
    throw new PalaverError(
      'ERR_PALAVER_UNSUPPORTED',
      'serverSideEmit is not supported: Palaver nodes share rooms through Redis, not server-side events',
    );
  }

  serverSideEmitWithAck() {
    return Promise.reject(
      new PalaverError('ERR_PALAVER_UNSUPPORTED', 'serverSideEmitWithAck is not supported'),
    );
  }

  /** Options that exist in socket.io and are settings here. */
  path(value) {
    if (value === undefined) return '/socket.io';
    if (value !== '/socket.io' && value !== '/socket.io/') {
      throw new PalaverError('ERR_PALAVER_UNSUPPORTED', 'the Socket.IO path is /socket.io');
    }
    return this;
  }

  serveClient(value) {
    return value === undefined ? true : this;
  }

  adapter(value) {
    if (value === undefined) return undefined;
    throw new PalaverError(
      'ERR_PALAVER_UNSUPPORTED',
      'custom adapters are not supported; for several nodes use the engine cluster mode (cluster.redisUrl)',
    );
  }

  /** Engine counters (connections, events_dropped, ...). */
  stats() {
    try {
      return this._host.requireEngine().stats();
    } catch (error) {
      throw fromNative(error);
    }
  }

  /**
   * Closes every connection and stops the engine, then the HTTP server it was
   * attached to (as socket.io does); resolves (and calls `fn`) once the engine
   * is gone. Every socket gets its `disconnect`.
   */
  close(fn) {
    // What the app gave before closing still goes out first.
    this._flush();
    this._closingDown = true;
    this._batch.closing = true;
    const httpServer = this._host.attachedServer;
    const closing = this._host.close().then(() => {
      this._closingDown = false;
      this._batch.closing = false;
      for (const nsp of this._nsps.values()) {
        nsp._closeAll('server shutting down');
        nsp._forgetKept();
      }
      // As socket.io: the underlying HTTP server closes too.
      if (httpServer && httpServer.listening) httpServer.close();
    });
    if (typeof fn === 'function') closing.then(() => fn(), (error) => fn(error));
    return closing;
  }

  // -- internal ------------------------------------------------------------------

  /** Runs when the engine has started: namespaces and gates are registered. */
  _started() {
    for (const nsp of this._nsps.values()) {
      if (nsp.name !== '/' || nsp._fns.length > 0) {
        this._command({ namespace: { ns: nsp.name, gated: nsp._fns.length > 0 } });
      }
    }
  }

  /** Queues one command (applied in order, handed over once per tick). */
  _command(command, buffers) {
    this._batch.push(command, buffers);
  }

  _flush() {
    this._batch.flush();
  }

  /** A look-up, answered after every command given before it. */
  async _query(query, buffers) {
    this._flush();
    const engine = this._host.requireEngine();
    const answer = await call(engine.query(JSON.stringify(query), buffers && buffers.length > 0 ? buffers : undefined));
    const result = JSON.parse(answer.json);
    // Acknowledgements: each reply's binary arguments back as Buffers.
    let next = 0;
    for (const reply of Array.isArray(result) ? result : []) {
      if (!reply.bin) continue;
      const own = answer.buffers.slice(next, next + reply.bin);
      next += reply.bin;
      if (reply.args) reply.args = decodeArgs(reply.args, own);
    }
    return result;
  }

  _onEngineEvent(json, buffers) {
    let event;
    try {
      event = JSON.parse(json);
    } catch (error) {
      reportError(this, error);
      return;
    }
    const nsp = this._nsps.get(event.ns);
    if (!nsp) return;
    switch (event.type) {
      case 'socket_gate':
        nsp._gate(event);
        break;
      case 'socket_connect':
        nsp._connect(event);
        break;
      case 'socket_event':
        nsp._event(event, buffers);
        break;
      case 'socket_disconnect':
        // While the server closes, every socket goes with socket.io's reason.
        nsp._disconnected(
          event.sid,
          this._closingDown ? 'server shutting down' : REASONS[event.reason] ?? event.reason,
          event.reason,
        );
        break;
      default:
        break;
    }
  }
}

/** socket.io options → engine configuration. */
function engineConfig(opts) {
  const config = mergeConfig(configFromEnvironment(), toEngineConfig(opts.palaver ?? {}));
  config.builtin_chat = false;
  const transport = { ...(config.transport ?? {}) };
  if (opts.pingInterval !== undefined) transport.ping_interval_ms = opts.pingInterval;
  if (opts.pingTimeout !== undefined) transport.ping_timeout_ms = opts.pingTimeout;
  if (opts.connectTimeout !== undefined) transport.connect_timeout_ms = opts.connectTimeout;
  if (Array.isArray(opts.transports)) {
    transport.websocket = opts.transports.includes('websocket');
    transport.polling = opts.transports.includes('polling');
  }
  config.transport = transport;
  if (opts.maxHttpBufferSize !== undefined) {
    config.limits = { ...(config.limits ?? {}), max_payload_bytes: opts.maxHttpBufferSize };
  }
  const origins = corsOrigins(opts.cors);
  if (origins !== undefined) config.cors_origins = origins;
  // socket.io answers whatever host name it is reached by, and a moved app must
  // keep working under its domain: every host name, unless the engine
  // configuration lists the allowed ones (DNS rebinding protection).
  if (config.allowed_hosts === undefined) config.allowed_hosts = ['*'];
  if (opts.path !== undefined && opts.path !== '/socket.io' && opts.path !== '/socket.io/') {
    throw new PalaverError('ERR_PALAVER_UNSUPPORTED', `the Socket.IO path is /socket.io (got path: ${JSON.stringify(opts.path)})`);
  }
  const recovery = recoveryOptions(opts.connectionStateRecovery);
  if (recovery !== undefined) {
    config.connection_state_recovery = { ...(config.connection_state_recovery ?? {}), ...recovery };
  }
  if (opts.adapter !== undefined) {
    throw new PalaverError(
      'ERR_PALAVER_UNSUPPORTED',
      'custom adapters are not supported; for several nodes use the engine cluster mode ({palaver: {cluster: {redisUrl}}})',
    );
  }
  if (opts.parser !== undefined) {
    throw new PalaverError('ERR_PALAVER_UNSUPPORTED', 'custom parsers are not supported (the engine speaks the default parser)');
  }
  if (typeof opts.allowRequest === 'function') {
    throw new PalaverError(
      'ERR_PALAVER_UNSUPPORTED',
      'allowRequest is not supported; use io.use() (a connect gate) to refuse connections',
    );
  }
  return config;
}

/**
 * socket.io's `connectionStateRecovery` option → the engine's
 * `connection_state_recovery` settings it names (`undefined`: off, unless the
 * engine configuration turns it on). The bounds (`maxBufferBytes`,
 * `maxSessions`, `maxSessionsBytes`, `maxSessionBytes`) are engine settings: `palaver:
 * {connectionStateRecovery: {...}}`.
 */
function recoveryOptions(option) {
  if (option === undefined || option === false || option === null) return undefined;
  if (option === true) return {};
  if (!isPlainObject(option)) {
    throw new PalaverError('ERR_PALAVER_INVALID_OPTIONS', 'connectionStateRecovery must be an object');
  }
  const out = {};
  if (option.maxDisconnectionDuration !== undefined) {
    const ms = option.maxDisconnectionDuration;
    if (!Number.isInteger(ms) || ms <= 0) {
      throw new PalaverError(
        'ERR_PALAVER_INVALID_OPTIONS',
        'connectionStateRecovery.maxDisconnectionDuration must be a positive whole number of milliseconds',
      );
    }
    out.max_disconnection_ms = ms;
  }
  if (option.skipMiddlewares !== undefined) out.skip_middlewares = Boolean(option.skipMiddlewares);
  return out;
}

/** What this side keeps of recovery: how long and how many sessions' `socket.data`. */
function recoverySettings(config) {
  const recovery = config.connection_state_recovery;
  if (!recovery) return null;
  return {
    windowMs: recovery.max_disconnection_ms ?? RECOVERY_WINDOW_MS,
    maxSessions: recovery.max_sessions ?? RECOVERY_MAX_SESSIONS,
  };
}

/**
 * socket.io's `cors` option → the engine's allowed origins. `cors: true`,
 * `cors: {origin: "*"}` or `{origin: true}` allow every origin (socket.io's
 * meaning); a string or an array lists them. Without the option only the page's
 * own origin may connect (socket.io would let any origin open a WebSocket).
 */
function corsOrigins(cors) {
  if (cors === undefined || cors === false) return undefined;
  if (cors === true) return ['*'];
  if (!isPlainObject(cors)) return undefined;
  const origin = cors.origin;
  if (origin === undefined || origin === true || origin === '*') return ['*'];
  if (typeof origin === 'string') return [origin.replace(/\/$/, '')];
  if (Array.isArray(origin) && origin.every((o) => typeof o === 'string')) return origin.map((o) => o.replace(/\/$/, ''));
  throw new PalaverError(
    'ERR_PALAVER_UNSUPPORTED',
    'cors.origin must be true, "*", a string or an array of strings (functions and regular expressions are not supported)',
  );
}

/** `io.engine`: what apps read of the Engine.IO server. */
class EngineView extends EventEmitter {
  constructor(server) {
    super();
    this._server = server;
  }

  /** Engine.IO connections now (Socket.IO connections of all namespaces, counted once per namespace). */
  get clientsCount() {
    const engine = this._server._host.engine;
    return engine ? Number(engine.stats().connections) : 0;
  }
}

// ---- namespaces -----------------------------------------------------------------

class Namespace extends EventEmitter {
  constructor(server, name) {
    super();
    this.name = name;
    this.server = server;
    /** Live sockets of this node by id. */
    this.sockets = new Map();
    /** Rooms of this node's sockets, as socket.io's in-memory adapter keeps them. */
    this.adapter = { nsp: this, rooms: new Map(), sids: new Map() };
    this._fns = [];
    this._waiting = new Map();
    /**
     * Connection state recovery: `socket.data` and rooms of sockets gone without
     * a goodbye, by socket id (a resumed socket keeps its id; the engine decides,
     * from the client's private session id, which socket resumes), for as long as
     * the engine keeps their sessions.
     */
    this._kept = new Map();
  }

  /** Connection middleware: `fn(socket, next)`; `next(err)` refuses with err.message. */
  use(fn) {
    if (typeof fn !== 'function') throw new TypeError('middleware must be a function');
    this._fns.push(fn);
    if (this._fns.length === 1) this.server._command({ namespace: { ns: this.name, gated: true } });
    return this;
  }

  to(room) {
    return new BroadcastOperator(this).to(room);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    return new BroadcastOperator(this).except(room);
  }

  timeout(ms) {
    return new BroadcastOperator(this).timeout(ms);
  }

  get volatile() {
    return new BroadcastOperator(this, { volatile: true });
  }

  get local() {
    return new BroadcastOperator(this, { local: true });
  }

  compress() {
    return new BroadcastOperator(this);
  }

  emit(event, ...args) {
    return new BroadcastOperator(this).emit(event, ...args);
  }

  emitWithAck(event, ...args) {
    return new BroadcastOperator(this).emitWithAck(event, ...args);
  }

  send(...args) {
    this.emit('message', ...args);
    return this;
  }

  write(...args) {
    return this.send(...args);
  }

  fetchSockets() {
    return new BroadcastOperator(this).fetchSockets();
  }

  socketsJoin(room) {
    return new BroadcastOperator(this).socketsJoin(room);
  }

  socketsLeave(room) {
    return new BroadcastOperator(this).socketsLeave(room);
  }

  disconnectSockets(close = false) {
    return new BroadcastOperator(this).disconnectSockets(close);
  }

  allSockets() {
    return new BroadcastOperator(this).allSockets();
  }

  serverSideEmit() {
    return this.server.serverSideEmit();
  }

  // -- internal ------------------------------------------------------------------

  /** A connection at the gate: runs the middlewares, then lets it in or not. */
  _gate(event) {
    const socket = new Socket(this, event.sid, event.handshake);
    if (event.recovered) this._resume(socket);
    this._waiting.set(event.sid, socket);
    // A connection that never arrives (its client left at the gate, or the engine
    // refused it at the deadline) is forgotten after the deadline.
    const deadline = (this.server._host.config.host_ack_timeout_ms ?? 10_000) + GATE_GRACE_MS;
    setTimeout(() => {
      if (this._waiting.get(event.sid) === socket) this._waiting.delete(event.sid);
    }, deadline).unref();
    const fns = this._fns.slice();
    const decide = (refusal) => {
      if (refusal === undefined) {
        this.server._command({ admit: { gate: event.gate } });
      } else {
        this._waiting.delete(event.sid);
        this.server._command({ admit: { gate: event.gate, refuse: refusal } });
      }
    };
    const run = (i) => {
      if (i >= fns.length) return decide(undefined);
      let called = false;
      const next = (err) => {
        if (called) return;
        called = true;
        if (err) {
          const message = err instanceof Error ? err.message : String(err);
          return decide(message || 'refused');
        }
        run(i + 1);
      };
      try {
        const result = fns[i](socket, next);
        if (result && typeof result.then === 'function') {
          result.then(undefined, (error) => next(error instanceof Error ? error : new Error(String(error))));
        }
      } catch (error) {
        next(error);
      }
    };
    run(0);
  }

  _connect(event) {
    const socket = this._waiting.get(event.sid) ?? new Socket(this, event.sid, event.handshake);
    this._waiting.delete(event.sid);
    if (event.recovered && !socket.recovered) this._resume(socket);
    socket.connected = true;
    this.sockets.set(socket.id, socket);
    socket._joinLocal([socket.id]);
    // Its rooms are back in the engine already; here they are mirrored.
    if (socket._resumedRooms) socket._joinLocal(socket._resumedRooms);
    socket._resumedRooms = null;
    // What the middlewares did to the socket, now that it exists in the engine.
    for (const [command, buffers] of socket._preConnect) this.server._command(command, buffers);
    socket._preConnect = [];
    guardedEmit(this.server, this, 'connection', [socket]);
    guardedEmit(this.server, this, 'connect', [socket]);
    // The listeners the connection handlers registered: from now on the engine
    // forwards only those events of this connection.
    socket._setUp = true;
    socket._syncListening();
  }

  _event(event, buffers) {
    const socket = this.sockets.get(event.sid);
    if (!socket) return;
    const args = decodeArgs(event.args, buffers);
    if (event.ack !== null && event.ack !== undefined) args.push(socket._ackFunction(event.ack));
    // A name the client sent as a number is a number, as socket.io hands it over
    // (EventEmitter keys it as its text either way).
    socket._dispatch([event.numeric ? Number(event.event) : event.event, ...args]);
  }

  _disconnected(sid, reason, code) {
    const socket = this.sockets.get(sid) ?? this._waiting.get(sid);
    this._waiting.delete(sid);
    if (!socket) return;
    if (socket.connected && RECOVERABLE.has(code)) this._keep(socket);
    socket._onclose(reason);
  }

  _closeAll(reason) {
    for (const socket of [...this.sockets.values()]) socket._onclose(reason);
    this._waiting.clear();
  }

  /** Keeps what a resumed socket gets back of a socket gone without a goodbye. */
  _keep(socket) {
    const recovery = this.server._recovery;
    if (!recovery) return;
    this._forget(socket.id);
    // Bounded as the engine bounds its sessions: the oldest goes first.
    while (this._kept.size >= recovery.maxSessions) this._forget(this._kept.keys().next().value);
    const timer = setTimeout(() => this._kept.delete(socket.id), recovery.windowMs);
    timer.unref();
    this._kept.set(socket.id, { data: socket.data, rooms: [...socket.rooms], timer });
  }

  _forget(sid) {
    const kept = this._kept.get(sid);
    if (!kept) return;
    clearTimeout(kept.timer);
    this._kept.delete(sid);
  }

  _forgetKept() {
    for (const sid of [...this._kept.keys()]) this._forget(sid);
  }

  /** A socket the engine resumed: its `data` and rooms back (socket.io's `previousSession`). */
  _resume(socket) {
    socket.recovered = true;
    const kept = this._kept.get(socket.id);
    if (!kept) return;
    this._forget(socket.id);
    socket.data = kept.data;
    socket._resumedRooms = kept.rooms.filter((room) => room !== socket.id);
  }

  _addToRoom(id, room) {
    let members = this.adapter.rooms.get(room);
    if (!members) this.adapter.rooms.set(room, (members = new Set()));
    members.add(id);
    let rooms = this.adapter.sids.get(id);
    if (!rooms) this.adapter.sids.set(id, (rooms = new Set()));
    rooms.add(room);
  }

  _removeFromRoom(id, room) {
    const members = this.adapter.rooms.get(room);
    if (members) {
      members.delete(id);
      if (members.size === 0) this.adapter.rooms.delete(room);
    }
    const rooms = this.adapter.sids.get(id);
    if (rooms) {
      rooms.delete(room);
      if (rooms.size === 0) this.adapter.sids.delete(id);
    }
  }

  /** This node's sockets a target reaches (from the mirrored rooms). */
  _localTargets(rooms, except) {
    const excluded = new Set();
    for (const room of except) for (const id of this.adapter.rooms.get(room) ?? []) excluded.add(id);
    const out = [];
    if (rooms.size === 0) {
      for (const socket of this.sockets.values()) if (!excluded.has(socket.id)) out.push(socket);
      return out;
    }
    const seen = new Set();
    for (const room of rooms) {
      for (const id of this.adapter.rooms.get(room) ?? []) {
        if (seen.has(id) || excluded.has(id)) continue;
        seen.add(id);
        const socket = this.sockets.get(id);
        if (socket) out.push(socket);
      }
    }
    return out;
  }
}

// ---- broadcasting -----------------------------------------------------------------

function roomList(room) {
  if (Array.isArray(room)) return room.map(String);
  if (room instanceof Set) return [...room].map(String);
  return [String(room)];
}

/** `io.to(room).except(id).emit(...)`: immutable, like socket.io's. */
class BroadcastOperator {
  constructor(nsp, flags = {}, rooms = new Set(), exceptRooms = new Set()) {
    this._nsp = nsp;
    this._flags = flags;
    this.rooms = rooms;
    this.exceptRooms = exceptRooms;
  }

  to(room) {
    const rooms = new Set(this.rooms);
    for (const r of roomList(room)) rooms.add(r);
    return new BroadcastOperator(this._nsp, this._flags, rooms, this.exceptRooms);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    const exceptRooms = new Set(this.exceptRooms);
    for (const r of roomList(room)) exceptRooms.add(r);
    return new BroadcastOperator(this._nsp, this._flags, this.rooms, exceptRooms);
  }

  compress() {
    return this;
  }

  get volatile() {
    return new BroadcastOperator(this._nsp, { ...this._flags, volatile: true }, this.rooms, this.exceptRooms);
  }

  get local() {
    return new BroadcastOperator(this._nsp, { ...this._flags, local: true }, this.rooms, this.exceptRooms);
  }

  timeout(ms) {
    return new BroadcastOperator(this._nsp, { ...this._flags, timeout: ms }, this.rooms, this.exceptRooms);
  }

  _target() {
    const to = { ns: this._nsp.name };
    if (this.rooms.size > 0) to.rooms = [...this.rooms];
    if (this.exceptRooms.size > 0) to.except = [...this.exceptRooms];
    if (this._flags.volatile) to.volatile = true;
    if (this._flags.local) to.local = true;
    return to;
  }

  emit(event, ...args) {
    checkEmitName(event);
    const name = String(event);
    const callback = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    if (callback) {
      if (this._flags.timeout === undefined) {
        throw new Error('Callbacks with broadcast emits need a timeout: io.timeout(ms).emit(event, ..., cb)');
      }
      this._withAck(name, args).then(
        (responses) => invoke(this._nsp.server, callback, null, [null, responses]),
        (error) => invoke(this._nsp.server, callback, null, [error, error.responses ?? []]),
      );
      return true;
    }
    const encoded = encodeArgs(args);
    this._nsp.server._command({ emit: { to: this._target(), event: name, args: encoded.args } }, encoded.buffers);
    return true;
  }

  emitWithAck(event, ...args) {
    checkEmitName(event);
    if (this._flags.timeout === undefined) {
      return Promise.reject(new Error('emitWithAck on a broadcast needs a timeout: io.timeout(ms).emitWithAck(...)'));
    }
    return this._withAck(String(event), args);
  }

  /** Every connection's answer; rejects (with the answers so far) when one did not answer in time. */
  async _withAck(event, args) {
    const encoded = encodeArgs(args);
    const replies = await this._nsp.server._query(
      { emit_with_ack: { to: this._target(), event, args: encoded.args, timeout_ms: this._flags.timeout } },
      encoded.buffers,
    );
    const responses = replies.filter((r) => r.args).map((r) => r.args[0]);
    if (replies.some((r) => !r.args)) {
      const error = new Error('operation has timed out');
      error.responses = responses;
      throw error;
    }
    return responses;
  }

  async fetchSockets() {
    const found = await this._nsp.server._query({ fetch_sockets: { to: this._target() } });
    return found.map((info) => this._nsp.sockets.get(info.id) ?? new RemoteSocket(this._nsp, info));
  }

  async allSockets() {
    const sockets = await this.fetchSockets();
    return new Set(sockets.map((socket) => socket.id));
  }

  socketsJoin(room) {
    const rooms = roomList(room);
    for (const socket of this._nsp._localTargets(this.rooms, this.exceptRooms)) socket._joinLocal(rooms);
    this._nsp.server._command({ sockets_join: { to: this._target(), rooms } });
  }

  socketsLeave(room) {
    const rooms = roomList(room);
    for (const socket of this._nsp._localTargets(this.rooms, this.exceptRooms)) socket._leaveLocal(rooms);
    this._nsp.server._command({ sockets_leave: { to: this._target(), rooms } });
  }

  disconnectSockets(close = false) {
    for (const socket of this._nsp._localTargets(this.rooms, this.exceptRooms)) socket.disconnect(close);
    if (!this._flags.local) this._nsp.server._command({ disconnect_sockets: { to: this._target(), close } });
  }
}

/** A socket of another node (cluster mode), as `fetchSockets()` gives it. */
class RemoteSocket {
  constructor(nsp, info) {
    this._nsp = nsp;
    this.id = info.id;
    this.rooms = new Set(info.rooms);
    this.handshake = undefined;
    this.data = {};
  }

  emit(event, ...args) {
    return new BroadcastOperator(this._nsp).to(this.id).emit(event, ...args);
  }

  join(room) {
    this._nsp.server._command({ join: { ns: this._nsp.name, sid: this.id, rooms: roomList(room) } });
  }

  leave(room) {
    this._nsp.server._command({ leave: { ns: this._nsp.name, sid: this.id, rooms: roomList(room) } });
  }

  disconnect(close = false) {
    this._nsp.server._command({ disconnect: { ns: this._nsp.name, sid: this.id, close } });
    return this;
  }
}

// ---- sockets ------------------------------------------------------------------------

/** socket.io's `socket.handshake` from the engine's. */
function handshakeOf(handshake) {
  const headers = handshake.headers ?? {};
  return {
    headers,
    time: new Date(handshake.issued).toString(),
    address: handshake.address ?? '',
    xdomain: headers.origin !== undefined,
    secure: false,
    issued: handshake.issued,
    url: handshake.url,
    query: handshake.query ?? {},
    auth: handshake.auth ?? {},
  };
}

class Socket extends EventEmitter {
  constructor(nsp, id, handshake) {
    super();
    this.nsp = nsp;
    this.server = nsp.server;
    this.id = id;
    this.handshake = handshakeOf(handshake ?? {});
    this.data = {};
    this.connected = false;
    this.recovered = false;
    this.conn = {
      transport: { name: handshake?.transport ?? 'websocket' },
      remoteAddress: this.handshake.address,
      protocol: 4,
    };
    this.request = {
      headers: this.handshake.headers,
      url: this.handshake.url,
      method: 'GET',
      connection: { remoteAddress: this.handshake.address },
      socket: { remoteAddress: this.handshake.address },
    };
    this.client = { conn: this.conn, request: this.request };
    this._flags = {};
    this._preConnect = [];
    this._fns = [];
    this._anyListeners = [];
    this._anyOutgoingListeners = [];
    this._setUp = false;
    this._listeningKey = null;
    this._syncScheduled = false;
    this._resumedRooms = null;
  }

  get disconnected() {
    return !this.connected;
  }

  /** The rooms this socket is in (its own id included). */
  get rooms() {
    return new Set(this.nsp.adapter.sids.get(this.id) ?? []);
  }

  get broadcast() {
    return this._newBroadcast();
  }

  get volatile() {
    this._flags.volatile = true;
    return this;
  }

  get local() {
    return this._newBroadcast().local;
  }

  compress() {
    return this;
  }

  timeout(ms) {
    this._flags.timeout = ms;
    return this;
  }

  to(room) {
    return this._newBroadcast().to(room);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    return this._newBroadcast().except(room);
  }

  /** Emits to this client; a function as last argument receives its ack. */
  emit(event, ...args) {
    checkEmitName(event);
    const flags = this._flags;
    this._flags = {};
    const name = String(event);
    for (const listener of this._anyOutgoingListeners.slice()) invoke(this.server, listener, this, [name, ...args]);
    const callback = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    if (!this._usable()) return true;
    if (callback) {
      const withTimeout = flags.timeout !== undefined;
      const encoded = encodeArgs(args);
      this.server
        ._query(
          {
            emit_with_ack: {
              to: { ns: this.nsp.name, rooms: [this.id] },
              event: name,
              args: encoded.args,
              timeout_ms: withTimeout ? flags.timeout : ACK_WAIT_MS,
            },
          },
          encoded.buffers,
        )
        .then(
          (replies) => {
            const reply = replies[0];
            if (reply && reply.args) {
              const answer = reply.args;
              invoke(this.server, callback, this, withTimeout ? [null, ...answer] : answer);
            } else if (withTimeout) {
              invoke(this.server, callback, this, [new Error('operation has timed out')]);
            }
          },
          (error) => {
            if (withTimeout) invoke(this.server, callback, this, [error]);
          },
        );
      return true;
    }
    const encoded = encodeArgs(args);
    const command = { emit_to: { ns: this.nsp.name, sid: this.id, event: name, args: encoded.args } };
    if (flags.volatile) command.emit_to.volatile = true;
    this._send(command, encoded.buffers);
    return true;
  }

  /** Emits and resolves with the client's first ack argument. */
  emitWithAck(event, ...args) {
    const withTimeout = this._flags.timeout !== undefined;
    return new Promise((resolve, reject) => {
      args.push((first, second) => {
        if (withTimeout) return first ? reject(first) : resolve(second);
        return resolve(first);
      });
      this.emit(event, ...args);
    });
  }

  send(...args) {
    this.emit('message', ...args);
    return this;
  }

  write(...args) {
    return this.send(...args);
  }

  join(rooms) {
    const list = roomList(rooms).filter((room) => !this.nsp.adapter.sids.get(this.id)?.has(room));
    if (list.length === 0 || !this._usable()) return;
    this._joinLocal(list);
    this._send({ join: { ns: this.nsp.name, sid: this.id, rooms: list } });
  }

  leave(room) {
    const list = roomList(room);
    if (!this._usable()) return;
    this._leaveLocal(list);
    this._send({ leave: { ns: this.nsp.name, sid: this.id, rooms: list } });
  }

  /** Disconnects this socket (`close`: the whole connection, every namespace). */
  disconnect(close = false) {
    if (!this.connected) return this;
    this.server._command({ disconnect: { ns: this.nsp.name, sid: this.id, close: Boolean(close) } });
    this._onclose('server namespace disconnect');
    return this;
  }

  /** Incoming-packet middleware: `fn([event, ...args], next)`. */
  use(fn) {
    this._fns.push(fn);
    // A packet middleware sees every event: the engine forwards them all.
    this._syncListening();
    return this;
  }

  onAny(listener) {
    this._anyListeners.push(listener);
    this._syncListening();
    return this;
  }

  prependAny(listener) {
    this._anyListeners.unshift(listener);
    this._syncListening();
    return this;
  }

  offAny(listener) {
    this._anyListeners = listener ? this._anyListeners.filter((l) => l !== listener) : [];
    this._syncListening();
    return this;
  }

  listenersAny() {
    return this._anyListeners.slice();
  }

  onAnyOutgoing(listener) {
    this._anyOutgoingListeners.push(listener);
    return this;
  }

  prependAnyOutgoing(listener) {
    this._anyOutgoingListeners.unshift(listener);
    return this;
  }

  offAnyOutgoing(listener) {
    this._anyOutgoingListeners = listener ? this._anyOutgoingListeners.filter((l) => l !== listener) : [];
    return this;
  }

  listenersAnyOutgoing() {
    return this._anyOutgoingListeners.slice();
  }

  // -- internal ------------------------------------------------------------------

  /**
   * Whether commands for this socket make sense: connected, or still at the gate
   * (socket.io lets middleware join rooms and emit; those wait for the connect).
   */
  _usable() {
    return this.connected || this.nsp._waiting.get(this.id) === this;
  }

  /** Sends a command for this socket now, or once it is connected. */
  _send(command, buffers) {
    if (this.connected) this.server._command(command, buffers);
    else this._preConnect.push([command, buffers]);
  }

  _newBroadcast() {
    const flags = this._flags;
    this._flags = {};
    return new BroadcastOperator(this.nsp, flags, new Set(), new Set([this.id]));
  }

  _joinLocal(rooms) {
    for (const room of rooms) this.nsp._addToRoom(this.id, room);
  }

  _leaveLocal(rooms) {
    for (const room of rooms) this.nsp._removeFromRoom(this.id, room);
  }

  /** The function a client's ack request becomes (socket.io's last argument). */
  _ackFunction(ackId) {
    let sent = false;
    return (...answer) => {
      if (sent) return;
      sent = true;
      const encoded = encodeArgs(answer);
      this.server._command({ ack: { ack: ackId, args: encoded.args } }, encoded.buffers);
    };
  }

  /** An event from the client: middlewares, then the any-listeners, then its listeners. */
  _dispatch(packet) {
    const deliver = () => {
      if (!this.connected) return;
      for (const listener of this._anyListeners.slice()) invoke(this.server, listener, this, packet);
      guardedEmit(this.server, this, packet[0], packet.slice(1));
    };
    if (this._fns.length === 0) return deliver();
    const fns = this._fns.slice();
    const run = (i) => {
      if (i >= fns.length) return deliver();
      let called = false;
      const next = (err) => {
        if (called) return;
        called = true;
        if (err) {
          // As socket.io: the error goes to the socket's `error` listeners.
          if (this.listenerCount('error') > 0) guardedEmit(this.server, this, 'error', [err]);
          else reportError(this.server, err);
          return;
        }
        run(i + 1);
      };
      try {
        fns[i](packet, next);
      } catch (error) {
        next(error);
      }
    };
    run(0);
  }

  _onclose(reason) {
    if (!this.connected && !this.nsp._waiting.has(this.id)) return;
    const wasConnected = this.connected;
    if (wasConnected) guardedEmit(this.server, this, 'disconnecting', [reason]);
    this.connected = false;
    for (const room of this.rooms) this.nsp._removeFromRoom(this.id, room);
    this.nsp.sockets.delete(this.id);
    if (wasConnected) guardedEmit(this.server, this, 'disconnect', [reason, undefined]);
  }

  /** Tells the engine which events of this connection reach JS (coalesced per tick). */
  _syncListening() {
    if (!this._setUp || this._syncScheduled) return;
    this._syncScheduled = true;
    queueMicrotask(() => {
      this._syncScheduled = false;
      if (!this.connected) return;
      let events = null;
      if (this._anyListeners.length === 0 && this._fns.length === 0) {
        events = this.eventNames()
          .filter((name) => typeof name === 'string' && !LOCAL_EVENTS.has(name))
          .sort();
      }
      const key = events === null ? '*' : events.join('\u0000');
      if (key === this._listeningKey) return;
      this._listeningKey = key;
      const command = { listen: { ns: this.nsp.name, sid: this.id } };
      if (events !== null) command.listen.events = events;
      this.server._command(command);
    });
  }
}

// A listener added or removed changes what the engine forwards.
for (const method of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener']) {
  Socket.prototype[method] = function listen(event, listener) {
    EventEmitter.prototype[method].call(this, event, listener);
    this._syncListening();
    return this;
  };
}
for (const method of ['off', 'removeListener', 'removeAllListeners']) {
  Socket.prototype[method] = function unlisten(...args) {
    EventEmitter.prototype[method].apply(this, args);
    this._syncListening();
    return this;
  };
}

/** `require("socket.io")(srv, opts)` */
function createServer(srv, opts) {
  return new Server(srv, opts);
}

createServer.Server = Server;
createServer.Namespace = Namespace;
createServer.Socket = Socket;
createServer.BroadcastOperator = BroadcastOperator;
createServer.RemoteSocket = RemoteSocket;
createServer.PalaverError = PalaverError;
createServer.default = createServer;
module.exports = createServer;
