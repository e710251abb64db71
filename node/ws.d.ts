// Public TypeScript declarations of `palaver/ws` (ws.js, ws.mjs): the npm `ws`
// package's server API on the Palaver engine. Hand-written, shaped like `@types/ws`
// (8.18) for the server side, so that a TypeScript app written against `ws`'s
// WebSocketServer type-checks after changing only the module name. What ws.js does
// not have or refuses (client connections, `noServer`/`handleUpgrade`, `verifyClient`,
// `handleProtocols`, the `on<event>` properties and `addEventListener`, events it never
// emits) is left out on purpose: using it is a compile error rather than a runtime one.
//
// Written as `export =` because ws.js assigns `module.exports = WebSocket` (the class,
// with `Server`/`WebSocketServer` beside it, as `ws` does): `const WebSocket =
// require('palaver/ws'); new WebSocket.Server({port})`, `import WebSocket from
// 'palaver/ws'` and `import { WebSocketServer } from 'palaver/ws'` all type-check, from
// CommonJS and from ES modules (module node16/nodenext).
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { ServerOptions as EngineConfig } from './index.js';

/**
 * One WebSocket connection, as `connection` listeners get it. Its frames are read and
 * written by the engine in Rust; its `message` and `close` listeners run here. It
 * cannot be created by the app: palaver/ws is a server (use the npm `ws` package or
 * the browser's WebSocket to open client connections).
 */
declare class WebSocket extends EventEmitter {
  /** The connection is not yet open. */
  static readonly CONNECTING: 0;
  /** The connection is open and ready to communicate. */
  static readonly OPEN: 1;
  /** The connection is in the process of closing. */
  static readonly CLOSING: 2;
  /** The connection is closed. */
  static readonly CLOSED: 3;

  /** Connections come from the server only (the constructor throws ERR_PALAVER_UNSUPPORTED). */
  private constructor();

  /**
   * How binary messages are given to `message` listeners: a Buffer (`nodebuffer`), an
   * ArrayBuffer (`arraybuffer`) or an array of Buffers (`fragments`, always one).
   * Text messages are always a Buffer.
   * @default "nodebuffer"
   */
  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments';
  /** Always 0: what `send` queues is buffered by the engine. */
  readonly bufferedAmount: number;
  /** Always `""`: the engine negotiates no extension (no permessage-deflate). */
  readonly extensions: string;
  /** The subprotocol the engine selected (the client's first), or `""`. */
  readonly protocol: string;
  /** The state of the connection: OPEN when the server hands it over. */
  readonly readyState:
    | typeof WebSocket.CONNECTING
    | typeof WebSocket.OPEN
    | typeof WebSocket.CLOSING
    | typeof WebSocket.CLOSED;
  /** Always undefined on the server side (as in `ws`). */
  readonly url: undefined;

  /** The connection is not yet open. */
  readonly CONNECTING: 0;
  /** The connection is open and ready to communicate. */
  readonly OPEN: 1;
  /** The connection is in the process of closing. */
  readonly CLOSING: 2;
  /** The connection is closed. */
  readonly CLOSED: 3;

  /**
   * Sends a message: text for a string (or a number, sent as its decimal text), binary
   * for a Buffer, an ArrayBuffer or a typed array. When the connection is not open the
   * message is dropped and `cb` gets an error; otherwise `cb` is called on the next
   * tick, once the message is queued to the engine (not once it is written).
   */
  send(data: WebSocket.SendData, cb?: (err?: Error) => void): void;
  /**
   * Sends a message; `binary` forces the frame type (a string sent as binary is its
   * UTF-8 bytes; binary data sent as text is decoded as UTF-8). `compress` and `mask`
   * are ignored (the engine does not compress; server frames are never masked).
   */
  send(
    data: WebSocket.SendData,
    options: { binary?: boolean | undefined; compress?: boolean | undefined; mask?: boolean | undefined },
    cb?: (err?: Error) => void,
  ): void;
  /**
   * Starts the closing handshake with `code` (1000, or 3000..4999) and `data` as the
   * reason (a Buffer is read as UTF-8). Does nothing when already closing or closed.
   */
  close(code?: number, data?: string | Buffer): void;
  /**
   * Closes the connection: the same as `close(1000)` here (the engine sends a close
   * frame; `ws` would destroy the socket without one).
   */
  terminate(): void;
  /**
   * The engine answers the client's pings itself and sends none of its own: `ping()`
   * emits `pong` (with `data`) on the next tick while the connection is open, so that
   * heartbeat code written for `ws` keeps its connections. A dead peer still ends in
   * `close` when its TCP connection fails. No `mask` or callback arguments.
   */
  ping(data?: string | ArrayBuffer | ArrayBufferView | readonly number[]): void;
  /** Does nothing: the engine answers pings itself. */
  pong(data?: string | ArrayBuffer | ArrayBufferView | readonly number[]): void;
  /** Does nothing: the engine reads the connection at its own pace. */
  pause(): void;
  /** Does nothing: the engine reads the connection at its own pace. */
  resume(): void;

  // Events: `message`, `close`, `pong` (after `ping()`); `error` is never emitted.
  on(event: 'close', listener: (this: WebSocket, code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (this: WebSocket, error: Error) => void): this;
  on(event: 'message', listener: (this: WebSocket, data: WebSocket.RawData, isBinary: boolean) => void): this;
  on(event: 'pong', listener: (this: WebSocket, data: Buffer) => void): this;

  once(event: 'close', listener: (this: WebSocket, code: number, reason: Buffer) => void): this;
  once(event: 'error', listener: (this: WebSocket, error: Error) => void): this;
  once(event: 'message', listener: (this: WebSocket, data: WebSocket.RawData, isBinary: boolean) => void): this;
  once(event: 'pong', listener: (this: WebSocket, data: Buffer) => void): this;

  off(event: 'close', listener: (this: WebSocket, code: number, reason: Buffer) => void): this;
  off(event: 'error', listener: (this: WebSocket, error: Error) => void): this;
  off(event: 'message', listener: (this: WebSocket, data: WebSocket.RawData, isBinary: boolean) => void): this;
  off(event: 'pong', listener: (this: WebSocket, data: Buffer) => void): this;

  addListener(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  addListener(event: 'error', listener: (error: Error) => void): this;
  addListener(event: 'message', listener: (data: WebSocket.RawData, isBinary: boolean) => void): this;
  addListener(event: 'pong', listener: (data: Buffer) => void): this;

  removeListener(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  removeListener(event: 'error', listener: (error: Error) => void): this;
  removeListener(event: 'message', listener: (data: WebSocket.RawData, isBinary: boolean) => void): this;
  removeListener(event: 'pong', listener: (data: Buffer) => void): this;
}

declare const WebSocketAlias: typeof WebSocket;
interface WebSocketAlias extends WebSocket {}

/** The options every WebSocketServer takes, whether it listens or is attached. */
interface CommonServerOptions {
  /**
   * The host to listen on, with `port`.
   * @default `palaver.host`, else "127.0.0.1" (`ws` listens on every interface)
   */
  host?: string | undefined;
  /**
   * The only URL path WebSocket connections are accepted at (the query is ignored).
   * Without it: `/` for a server on a port of its own; any path outside `/socket.io/`
   * for a server attached to an http.Server.
   */
  path?: string | undefined;
  /**
   * The largest message in bytes (the engine's `limits.maxPayloadBytes`); a client
   * sending more is closed with 1009.
   * @default `palaver.limits.maxPayloadBytes`, else 1 MiB (ws: 100 MiB)
   */
  maxPayload?: number | undefined;
  /**
   * Whether to keep the open connections in `clients`.
   * @default true
   */
  clientTracking?: boolean | undefined;
  /** Ignored. */
  backlog?: number | undefined;
  /** Ignored: the engine does not compress (no permessage-deflate). */
  perMessageDeflate?: boolean | object | undefined;
  /** Ignored: the engine always validates UTF-8. */
  skipUTF8Validation?: boolean | undefined;
  /** Ignored: the engine always answers pings. */
  autoPong?: boolean | undefined;
  /** Ignored. */
  allowSynchronousEvents?: boolean | undefined;
  /**
   * Palaver: the engine's configuration (camelCase or snake_case keys, as for
   * `require('palaver')`; docs/PROTOCOL.md, "Configuration"): `limits`
   * (`requestsPerSecond`/`requestBurst` bound the messages of a client, which is
   * closed with 1008 over them; `maxConnectionsPerIp`), `corsOrigins` (the browser
   * origins allowed to connect; without it every origin may, as with `ws`),
   * `plainWebsocket.maxQueuedBytes` (a client reading slower is closed with 1013),
   * `host`, `stopTimeoutMs`, `workerThreads`. The built-in chat is off; `maxPayload`
   * above takes precedence.
   */
  palaver?: EngineConfig | undefined;
}

declare namespace WebSocket {
  /** A received message: a Buffer, an ArrayBuffer or Buffers, as `binaryType` says. */
  export type RawData = Buffer | ArrayBuffer | Buffer[];
  /** A message payload. */
  export type Data = string | Buffer | ArrayBuffer | Buffer[];
  /**
   * What `send` takes: text (a string, or a number as its decimal text) or binary data
   * (a Buffer, an ArrayBuffer, a typed array). An array, such as the Buffers a
   * `message` listener gets with binaryType `fragments`, is sent as the text of
   * `String(array)`: echo received messages with binaryType `nodebuffer`.
   */
  export type SendData = string | number | ArrayBuffer | ArrayBufferView | RawData;

  /**
   * The options of a WebSocketServer: exactly one of `port` (a server of its own) and
   * `server` (an existing http.Server shares its port with the app). `noServer`,
   * `verifyClient`, `handleProtocols` and a custom `WebSocket` class are not
   * supported (the engine checks the origin and selects the client's first
   * subprotocol).
   */
  export type ServerOptions =
    | (CommonServerOptions & {
        /** The port to listen on (0: any free port, see `address()`). */
        port: number;
        server?: undefined;
      })
    | (CommonServerOptions & {
        /**
         * The http.Server to take WebSocket upgrades from (Express's `app.listen()`,
         * `http.createServer(app)`): upgrades at `path` are handed to the engine, other
         * requests and upgrades reach the app. On an https.Server no connection can be
         * handed over (TLS): clients are answered 501.
         */
        server: HttpServer | HttpsServer;
        port?: undefined;
      });

  /** Where a server listens. */
  export interface AddressInfo {
    address: string;
    family: string;
    port: number;
  }

  /**
   * The request a connection was opened with, as `connection` listeners get it. `ws`
   * gives the `http.IncomingMessage` of the upgrade; the engine keeps no request
   * object, so this carries what it read of it.
   */
  export interface UpgradeRequest {
    /** Always `GET`. */
    readonly method: 'GET';
    /** The request URL (path and query). */
    readonly url: string;
    /** The request headers. */
    readonly headers: IncomingHttpHeaders;
    /** The client's address. */
    readonly socket: { readonly remoteAddress: string | undefined };
    /** The client's address. */
    readonly connection: { readonly remoteAddress: string | undefined };
  }

  /** An error with a stable `code`, thrown by palaver/ws. */
  export class PalaverError extends Error {
    constructor(code: string, message: string, options?: { cause?: unknown });
    /**
     * Among others: ERR_PALAVER_UNSUPPORTED (`verifyClient`, `handleProtocols`,
     * `handleUpgrade`, opening a client connection), ERR_PALAVER_INVALID_OPTIONS (a bad
     * port), ERR_PALAVER_NOT_HTTP_SERVER (`server` is not an http(s).Server),
     * ERR_PALAVER_LISTEN (the port is taken), ERR_PALAVER_START,
     * ERR_PALAVER_UNSUPPORTED_RUNTIME, ERR_PALAVER_NOT_BUILT.
     */
    code: string;
  }

  /**
   * The WebSocket server (`ws`'s WebSocketServer). `new WebSocket.Server({port})`
   * listens on a port of its own; `new WebSocket.Server({server})` takes the WebSocket
   * upgrades of an existing http.Server. Exactly one of them must be given (a
   * TypeError otherwise).
   */
  export class Server extends EventEmitter {
    /**
     * Starts the engine; `callback` is a `listening` listener (`listening` is emitted
     * on the next tick, also when attached).
     */
    constructor(options: ServerOptions, callback?: () => void);
    /** A copy of the options given. */
    options: ServerOptions;
    /** The `path` option (undefined when none was given). */
    readonly path: string | undefined;
    /** The open connections (undefined with `clientTracking: false`, as in `ws`). */
    clients: Set<WebSocket>;

    /**
     * Where the server listens: `{port, family: "IPv4", address}` for a server on a
     * port of its own, `address` being `palaver.host` or "127.0.0.1" (whatever the
     * `host` option); null when attached to an http.Server (`ws` gives the
     * http.Server's address then).
     */
    address(): AddressInfo | null;
    /**
     * Closes every open connection and stops the engine (attached: the http.Server
     * gets its own listeners back and keeps running); resolves, calls `cb` (with the
     * error if it failed) and emits `close` once it is gone. Each connection's
     * `close` listeners run (code 1006 unless the client's close came first).
     */
    close(cb?: (err?: Error) => void): Promise<void>;
    /** Whether a request is this server's: a WebSocket upgrade at its path. */
    shouldHandle(request: Pick<IncomingMessage, 'headers' | 'url'>): boolean;

    // Events: `connection`, `listening`, `close`, and `error` (what a listener threw or
    // rejected with, or an engine fault; without an `error` listener it is reported as
    // a process warning). `headers` and `wsClientError` are never emitted.
    on(event: 'connection', cb: (this: Server, websocket: WebSocket, request: UpgradeRequest) => void): this;
    on(event: 'error', cb: (this: Server, error: Error) => void): this;
    on(event: 'close' | 'listening', cb: (this: Server) => void): this;

    once(event: 'connection', cb: (this: Server, websocket: WebSocket, request: UpgradeRequest) => void): this;
    once(event: 'error', cb: (this: Server, error: Error) => void): this;
    once(event: 'close' | 'listening', cb: (this: Server) => void): this;

    off(event: 'connection', cb: (this: Server, websocket: WebSocket, request: UpgradeRequest) => void): this;
    off(event: 'error', cb: (this: Server, error: Error) => void): this;
    off(event: 'close' | 'listening', cb: (this: Server) => void): this;

    addListener(event: 'connection', cb: (websocket: WebSocket, request: UpgradeRequest) => void): this;
    addListener(event: 'error', cb: (error: Error) => void): this;
    addListener(event: 'close' | 'listening', cb: () => void): this;

    removeListener(event: 'connection', cb: (websocket: WebSocket, request: UpgradeRequest) => void): this;
    removeListener(event: 'error', cb: (error: Error) => void): this;
    removeListener(event: 'close' | 'listening', cb: () => void): this;
  }

  /** Same as `Server` (`import { WebSocketServer } from 'ws'`). */
  export const WebSocketServer: typeof Server;
  export interface WebSocketServer extends Server {}
  /** The connection class itself (`import { WebSocket } from 'ws'`). */
  export const WebSocket: typeof WebSocketAlias;
  export interface WebSocket extends WebSocketAlias {}
  export { WebSocketAlias as default };
}

export = WebSocket;
