'use strict';
// `palaver/ws`: the npm `ws` package's server API on the Palaver engine. Plain
// WebSocket connections (no Socket.IO) are accepted, read and written by the
// engine in Rust; the app's `connection`, `message` and `close` listeners run
// here, and `ws.send(...)` goes back as a command. docs/SOCKETIO.md lists what
// is supported and how it differs from `ws`.

const { EventEmitter } = require('node:events');
const {
  PalaverError,
  isPlainObject,
  toEngineConfig,
  configFromEnvironment,
  mergeConfig,
  reportError,
} = require('./lib/native');
const { EngineHost, pathOf } = require('./lib/host');
const { CommandBatch } = require('./lib/commands');

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/**
 * Largest message by default: 1 MiB (ws allows 100 MiB; the engine's own default,
 * 64 KiB, is for chat messages). `maxPayload` changes it.
 */
const DEFAULT_MAX_PAYLOAD = 1 << 20;
/** The engine events this entry point handles. */
const WS_EVENTS = ['ws_open', 'ws_message', 'ws_close'];

function isBinary(value) {
  return Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

function toBuffer(value) {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * The `ws` WebSocketServer: `new WebSocketServer({port})` listens on a port of
 * its own, `new WebSocketServer({server})` takes WebSocket upgrades of an
 * existing http.Server (at `path`, or at any path when none is given).
 */
class WebSocketServer extends EventEmitter {
  constructor(options = {}, callback) {
    super();
    if (!isPlainObject(options)) throw new TypeError('options must be an object');
    const { port, host, server, path, noServer, verifyClient, handleProtocols, maxPayload, clientTracking, palaver } = options;
    if ((port === undefined) === (server === undefined) || noServer) {
      throw new TypeError(
        noServer
          ? 'the "noServer" option is not supported by palaver/ws; use "server" or "port"'
          : 'one and only one of the "port" or "server" options must be given',
      );
    }
    if (verifyClient !== undefined || handleProtocols !== undefined) {
      throw new PalaverError(
        'ERR_PALAVER_UNSUPPORTED',
        'verifyClient and handleProtocols are not supported by palaver/ws (the engine checks the origin and takes the first subprotocol)',
      );
    }
    this.options = { ...options };
    this.path = path;
    /** Open connections (`clientTracking`, on by default). */
    this.clients = clientTracking === false ? undefined : new Set();
    this._sockets = new Map();
    this._closing = null;
    const config = mergeConfig(configFromEnvironment(), toEngineConfig(palaver ?? {}));
    config.builtin_chat = false;
    config.plain_websocket = { ...(config.plain_websocket ?? {}), path: path ?? '*' };
    // As ws: any origin may connect (a page opened from disk sends "null"),
    // unless the engine configuration lists the allowed ones.
    if (config.cors_origins === undefined) config.cors_origins = ['*'];
    // As ws, any host name, unless the configuration lists the allowed ones.
    if (config.allowed_hosts === undefined) config.allowed_hosts = ['*'];
    config.limits = {
      ...(config.limits ?? {}),
      max_payload_bytes: maxPayload ?? config.limits?.max_payload_bytes ?? DEFAULT_MAX_PAYLOAD,
    };
    this._host = new EngineHost({
      config,
      onEvent: (json, buffers) => this._onEngineEvent(json, buffers),
      onError: (error) => reportError(this, error),
      claims: (req) => this._claims(req),
      kinds: () => WS_EVENTS,
    });
    this._batch = new CommandBatch(this._host, this);
    if (server !== undefined) {
      this._host.attach(server);
    } else {
      this._host.listen(port, host);
    }
    if (typeof callback === 'function') this.once('listening', callback);
    process.nextTick(() => this.emit('listening'));
  }

  /** Where the server listens (`{port}` servers); null when attached. */
  address() {
    const attached = this._host.attachedServer;
    if (attached) return attached.address();
    const port = this._host.port;
    if (port === null) return null;
    const address = this.options.host ?? this._host.config.host ?? '127.0.0.1';
    return { port, family: address.includes(':') ? 'IPv6' : 'IPv4', address };
  }

  /** Whether a request is this server's: a WebSocket upgrade at its path. */
  shouldHandle(req) {
    return this._claims(req);
  }

  /** Closes every connection (1001) and stops the engine; `cb` when done. */
  close(callback) {
    if (!this._closing) {
      // What the app sent before closing still goes out first.
      this._batch.flush();
      this._batch.closing = true;
      this._closing = this._host.close().then(() => {
        for (const ws of [...this._sockets.values()]) ws._closed(1006, '');
        this.emit('close');
      });
    }
    const closing = this._closing;
    if (typeof callback === 'function') closing.then(() => callback(), (error) => callback(error));
    return closing;
  }

  handleUpgrade() {
    throw new PalaverError('ERR_PALAVER_UNSUPPORTED', 'handleUpgrade (noServer mode) is not supported by palaver/ws');
  }

  // -- internal ------------------------------------------------------------------

  _claims(req) {
    const upgrade = req.headers.upgrade;
    if (typeof upgrade !== 'string' || upgrade.toLowerCase() !== 'websocket') return false;
    if (this.path === undefined) return !pathOf(req.url).startsWith('/socket.io/');
    return pathOf(req.url) === this.path;
  }

  _command(command, buffer) {
    this._batch.push(command, buffer ? [buffer] : null);
  }

  _onEngineEvent(json, buffers) {
    let event;
    try {
      event = JSON.parse(json);
    } catch (error) {
      reportError(this, error);
      return;
    }
    switch (event.type) {
      case 'ws_open': {
        const ws = new WebSocket(this, event.id, event.handshake);
        this._sockets.set(event.id, ws);
        if (this.clients) this.clients.add(ws);
        guarded(this, this, 'connection', [ws, ws._request]);
        break;
      }
      case 'ws_message': {
        const ws = this._sockets.get(event.id);
        if (!ws) return;
        const isBinary = event.binary === true;
        const data = isBinary ? buffers?.[0] ?? Buffer.alloc(0) : Buffer.from(event.text, 'utf8');
        ws._message(data, isBinary);
        break;
      }
      case 'ws_close': {
        const ws = this._sockets.get(event.id);
        if (ws) ws._closed(event.code, event.reason);
        break;
      }
      default:
        break;
    }
  }
}

/** Emits with every listener guarded: a throwing listener is reported, never fatal. */
function guarded(server, emitter, event, args) {
  for (const listener of emitter.rawListeners(event)) {
    try {
      const result = listener.apply(emitter, args);
      if (result && typeof result.then === 'function') result.then(undefined, (error) => reportError(server, error));
    } catch (error) {
      reportError(server, error);
    }
  }
}

/**
 * One connection, as `ws` hands it to `connection` listeners. It cannot be
 * created by the app: palaver/ws is a server, not a client.
 */
class WebSocket extends EventEmitter {
  constructor(server, id, handshake) {
    if (!(server instanceof WebSocketServer)) {
      throw new PalaverError(
        'ERR_PALAVER_UNSUPPORTED',
        'palaver/ws is a server: use the npm "ws" package (or the browser WebSocket) to open client connections',
      );
    }
    super();
    this._server = server;
    this._id = id;
    this.readyState = OPEN;
    this.protocol = handshake.protocol ?? '';
    this.extensions = '';
    this.binaryType = 'nodebuffer';
    this.bufferedAmount = 0;
    this.url = undefined;
    this._request = {
      method: 'GET',
      url: handshake.url,
      headers: handshake.headers ?? {},
      socket: { remoteAddress: handshake.address ?? undefined },
      connection: { remoteAddress: handshake.address ?? undefined },
    };
  }

  get CONNECTING() {
    return CONNECTING;
  }

  get OPEN() {
    return OPEN;
  }

  get CLOSING() {
    return CLOSING;
  }

  get CLOSED() {
    return CLOSED;
  }

  /** Sends a text (string) or binary (Buffer, ArrayBuffer, typed array) message. */
  send(data, options, callback) {
    if (typeof options === 'function') {
      callback = options;
      options = {};
    }
    options = options ?? {};
    if (this.readyState !== OPEN) {
      const error = new Error(`WebSocket is not open: readyState ${this.readyState}`);
      if (callback) process.nextTick(callback, error);
      return;
    }
    const binary = options.binary ?? isBinary(data);
    if (binary) {
      const buffer = isBinary(data) ? toBuffer(data) : Buffer.from(String(data));
      this._server._command({ ws_send: { id: this._id } }, buffer);
    } else {
      const text = isBinary(data) ? toBuffer(data).toString('utf8') : String(data);
      this._server._command({ ws_send: { id: this._id, text } });
    }
    if (callback) process.nextTick(callback);
  }

  /** Closes the connection with `code` (1000, or 3000..4999) and `reason`. */
  close(code = 1000, reason = '') {
    if (this.readyState === CLOSED || this.readyState === CLOSING) return;
    this.readyState = CLOSING;
    this._server._command({ ws_close: { id: this._id, code, reason: String(reason) } });
  }

  /** Closes at once. */
  terminate() {
    this.close(1000, '');
  }

  /**
   * The engine answers client pings itself and sends none of its own: `ping()`
   * reports a `pong` at once, so that heartbeat code written for `ws` keeps its
   * connections (a dead peer still ends in `close` when the TCP connection fails).
   */
  ping(data, mask, callback) {
    if (typeof data === 'function') {
      callback = data;
      data = undefined;
    } else if (typeof mask === 'function') {
      callback = mask;
    }
    if (this.readyState !== OPEN) {
      if (callback) process.nextTick(callback, new Error(`WebSocket is not open: readyState ${this.readyState}`));
      return;
    }
    const payload = data === undefined ? Buffer.alloc(0) : isBinary(data) ? toBuffer(data) : Buffer.from(String(data));
    process.nextTick(() => {
      if (callback) callback();
      if (this.readyState === OPEN) guarded(this._server, this, 'pong', [payload]);
    });
  }

  pong(data, mask, callback) {
    const cb = [data, mask, callback].find((arg) => typeof arg === 'function');
    if (cb) process.nextTick(cb);
  }

  pause() {}

  resume() {}

  _message(data, isBinary) {
    let value = data;
    if (isBinary && this.binaryType === 'arraybuffer') {
      value = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    } else if (isBinary && this.binaryType === 'fragments') {
      value = [data];
    }
    guarded(this._server, this, 'message', [value, isBinary]);
  }

  _closed(code, reason) {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this._server._sockets.delete(this._id);
    if (this._server.clients) this._server.clients.delete(this);
    guarded(this._server, this, 'close', [code, Buffer.from(reason ?? '', 'utf8')]);
  }
}

for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSING, CLOSED })) {
  Object.defineProperty(WebSocket, name, { value, enumerable: true });
}

// `require("ws")` is the WebSocket class with the server beside it.
WebSocket.Server = WebSocketServer;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.WebSocket = WebSocket;
WebSocket.PalaverError = PalaverError;
WebSocket.default = WebSocket;
module.exports = WebSocket;
