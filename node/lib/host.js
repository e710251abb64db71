'use strict';
// One engine's life in a Node process, shared by every entry point: starting it
// with an event function, serving it on a Node http.Server (`attach`) or on a
// port of its own (`listen`), and closing it. Which requests are the engine's
// is the caller's choice (`claims`).
//
// On an attached server, requests the engine claims are forwarded to it
// in-process (long-polling, the client script) and WebSocket upgrades are handed
// over: the engine takes a duplicate of the connection's descriptor, so that the
// connection's traffic never passes through JavaScript. Everything else reaches
// the app's own listeners untouched.

const http = require('node:http');
const https = require('node:https');
const { native, PalaverError, fromNative, call } = require('./native');

/** How long close() waits for clients before closing what is left. */
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
/** Extra room for Engine.IO framing on top of limits.max_payload_bytes. */
const BODY_SLACK_BYTES = 1024;
/** What the binding sends through the event function after the engine's last event. */
const END_OF_EVENTS = '';
/** How long close() waits for that marker once the engine has stopped. */
const END_OF_EVENTS_WAIT_MS = 2000;

/** The request head as the client sent it, for the engine to read again. */
function requestHead(req) {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/** The path of a request URL, without its query. */
function pathOf(url) {
  return (url || '').split('?', 1)[0];
}

class EngineHost {
  /**
   * @param {object} options
   * @param {object} options.config engine configuration (snake_case)
   * @param {(json: string, buffers?: Buffer[]) => void} options.onEvent one engine event
   * @param {(error: Error) => void} options.onError a fault to report (never thrown)
   * @param {(req: http.IncomingMessage) => boolean} options.claims whether a request or
   *   upgrade on an attached server is the engine's
   * @param {() => string[]} [options.kinds] the engine events to take from the start
   *   (the engine builds and sends no other kind until `engine.listenTo`)
   */
  constructor({ config, onEvent, onError, claims, kinds = () => [] }) {
    this.config = config;
    this._kinds = kinds;
    this._onEvent = onEvent;
    this._onError = onError;
    this._claims = claims;
    this.closeTimeoutMs = config.stop_timeout_ms ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.engine = null;
    /** The http.Server attached to, until close. */
    this.attachedServer = null;
    this._detach = null;
    this._keepAlive = null;
    this._closing = null;
    this._endOfEvents = null;
    this._generation = 0;
    this._unsupportedReported = false;
  }

  /** Whether the engine runs and is not closing. */
  get running() {
    return this.engine !== null && this._closing === null;
  }

  /** The running engine, or a PalaverError. */
  requireEngine() {
    if (!this.running) {
      throw new PalaverError('ERR_PALAVER_CLOSED', 'the server is not running; attach or listen first');
    }
    return this.engine;
  }

  /**
   * Serves the engine on a Node http.Server (Express's `app.listen()`,
   * `http.createServer(app)`, Koa's `http.createServer(app.callback())`).
   */
  attach(server) {
    if (!(server instanceof http.Server || server instanceof https.Server)) {
      throw new PalaverError(
        'ERR_PALAVER_NOT_HTTP_SERVER',
        'attach() needs a Node http.Server (or https.Server), such as the one app.listen() returns',
      );
    }
    this.start({ listen: false });
    this.attachedServer = server;
    const generation = this._generation;
    const appRequestListeners = server.listeners('request');
    const appUpgradeListeners = server.listeners('upgrade');
    const maxBody = (this.config.limits && this.config.limits.max_payload_bytes) || 65536;

    const onRequest = (req, res) => {
      if (!this._claims(req)) {
        for (const listener of appRequestListeners) listener.call(server, req, res);
        return;
      }
      this._forward(req, res, maxBody + BODY_SLACK_BYTES, generation);
    };
    const onUpgrade = (req, socket, head) => {
      if (!this._claims(req)) {
        if (appUpgradeListeners.length === 0) socket.destroy();
        for (const listener of appUpgradeListeners) listener.call(server, req, socket, head);
        return;
      }
      this._handOver(req, socket, head, generation);
    };
    // The engine keeps its requests until close() has resolved, so that clients
    // can still reach it while it says goodbye; then the app gets its listeners back.
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
  }

  /**
   * Runs the engine on its own port (0 picks a free one; see `port`). The
   * engine keeps the process alive until `close()`.
   */
  listen(port, host) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new PalaverError('ERR_PALAVER_INVALID_OPTIONS', `port must be an integer 0..65535, got ${port}`);
    }
    this.start({ listen: true, port, ...(host === undefined ? {} : { host }) });
    // Native threads do not keep Node's event loop alive; a running server should.
    this._keepAlive = setInterval(() => {}, 2 ** 30);
  }

  /** The port the engine listens on after `listen()`; null when attached. */
  get port() {
    return this.engine ? this.engine.port : null;
  }

  /** Starts the engine with the configuration and these overrides. */
  start(overrides) {
    if (this.engine) {
      throw new PalaverError('ERR_PALAVER_ALREADY_STARTED', 'the server already runs; close() it first');
    }
    const config = { ...this.config, ...overrides };
    const generation = ++this._generation;
    const endOfEvents = marker();
    try {
      this.engine = native().NativeEngine.start(JSON.stringify(config), this._kinds(), (json, buffers) => {
        if (json === END_OF_EVENTS) endOfEvents.reached();
        // Closed meanwhile: no event after close.
        else if (generation === this._generation) this._onEvent(json, buffers);
      });
    } catch (error) {
      throw fromNative(error);
    }
    this._endOfEvents = endOfEvents;
    return this.engine;
  }

  /**
   * Stops the engine gracefully; resolves once it is gone and its last event was
   * delivered. No event fires afterwards. Calling it again meanwhile returns the
   * same promise; after it resolved, `attach`/`listen` may start anew.
   */
  close() {
    if (this._closing) return this._closing;
    if (!this.engine) return Promise.resolve();
    const engine = this.engine;
    const endOfEvents = this._endOfEvents;
    const closing = (async () => {
      try {
        // true: the binding queued END_OF_EVENTS behind the engine's last event.
        const markerSent = await call(engine.close(this.closeTimeoutMs));
        if (markerSent === true) await endOfEvents.wait(END_OF_EVENTS_WAIT_MS);
      } finally {
        this._generation += 1; // no event after this
        if (this._detach) this._detach();
        this._detach = null;
        this.attachedServer = null;
        if (this._keepAlive) clearInterval(this._keepAlive);
        this._keepAlive = null;
        this.engine = null;
        this._endOfEvents = null;
        this._closing = null;
      }
    })();
    this._closing = closing;
    return closing;
  }

  /** Forwards a request (long-polling, the client script) to the engine. */
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
      if (generation !== this._generation || !this.engine) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('the server is closed\n');
        return;
      }
      try {
        const response = await this.engine.serveRequest(
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
    if (generation !== this._generation || !this.engine || this._closing) {
      // Stopping: the engine takes no new connection (and refusing is no error).
      socket.end(
        'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n' +
          'the server is closed\n',
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
        this._onError(
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
      this.engine.adopt(fd, Buffer.concat([requestHead(req), head]));
    } catch (error) {
      socket.destroy();
      this._onError(fromNative(error));
      return;
    }
    // The engine holds its own duplicate of the descriptor; closing Node's copy
    // does not end the connection.
    socket.destroy();
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

/** Whether a request is for the Socket.IO path (`/socket.io/...`). */
function isSocketIoPath(req, path = '/socket.io') {
  const p = pathOf(req.url);
  return p === path || p.startsWith(`${path}/`);
}

module.exports = { EngineHost, isSocketIoPath, pathOf };
