'use strict';
// The public API of the Palaver Node package: a Socket.IO-like chat server whose
// traffic is handled by the Rust engine. The native binding (native/binding.js)
// stays private; everything a user touches is here.

const { EventEmitter } = require('node:events');
const { PalaverError, fromNative, call, isPlainObject, toEngineConfig, hostEventKinds, reportError } =
  require('./lib/native');
const { EngineHost, isSocketIoPath } = require('./lib/host');

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
    this._listeners = new EventEmitter();
    this._host = new EngineHost({
      config: toEngineConfig(options),
      onEvent: (json) => this._dispatch(json),
      onError: (error) => reportError(this._listeners, error),
      claims: (req) => isSocketIoPath(req),
      kinds: () => this._listenedKinds(),
    });
  }

  /**
   * Serves the chat on an existing Node HTTP server (Express's `app.listen()`,
   * `http.createServer(app)`, Koa's `http.createServer(app.callback())`): requests
   * under /socket.io/ go to the engine, all others to the app as before.
   * WebSocket connections are handed over to the engine (their traffic never
   * passes through JavaScript); long-polling requests are forwarded to it.
   */
  attach(server) {
    this._host.attach(server);
    this._syncListeners();
    return this;
  }

  /**
   * Runs the chat on its own port (0 picks a free one; see `port`). `host`
   * defaults to the configured host (127.0.0.1). The server keeps the process
   * alive until `close()`.
   */
  listen(port, host) {
    this._host.listen(port, host);
    this._syncListeners();
    return this;
  }

  /** The port the chat listens on after `listen()`; null when attached. */
  get port() {
    return this._host.port;
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
    const engine = this._host.engine;
    if (!engine) return;
    engine.listenTo(this._listenedKinds());
  }

  /** The engine events with listeners. */
  _listenedKinds() {
    return hostEventKinds().filter((type) => this._listeners.listenerCount(type) > 0);
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
    return this._host.close();
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
    return this._host.requireEngine();
  }

  /** Delivers one engine event to the listeners; a throwing listener is reported. */
  _dispatch(json) {
    const event = JSON.parse(json);
    const type = event.type;
    if (type === 'custom') {
      // A custom event comes only while `custom` has a listener: without one the
      // engine itself refuses it to the client with unknown_event. One that was on
      // its way when the last listener went is refused the same way.
      const engine = this._host.engine;
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
        reportError(this._listeners, error);
      }
    }
    // The last once() listener of this type may just have gone.
    if (this._listeners.listenerCount(type) === 0) this._syncListeners();
  }
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
