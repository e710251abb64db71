// Public TypeScript declarations of `palaver/socket.io` (socket.io.js, socket.io.mjs):
// the `socket.io` v4 server API on the Palaver engine. Hand-written, shaped like
// socket.io's own typings (socket.io 4.8) for what socket.io.js implements, so that a
// TypeScript app written against `socket.io` type-checks after changing only the
// module name. Members socket.io.js does not have, or always refuses (serverSideEmit,
// dynamic namespaces, custom adapters, allowRequest, ...),
// are left out on purpose: using them is a compile error rather than a runtime one.
//
// Written as `export =` because socket.io.js assigns `module.exports = createServer`:
// `require('palaver/socket.io')(server)`, `import { Server } from 'palaver/socket.io'`
// and `import createServer from 'palaver/socket.io'` all type-check, from CommonJS and
// from ES modules (module node16/nodenext).
//
// The event-map type utilities below are those of socket.io's typed-events.d.ts
// (MIT), so that typed events infer exactly as they do with socket.io.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { ParsedUrlQuery } from 'node:querystring';
import type { ServerOptions as EngineConfig, Stats as EngineStats } from './index.js';

// ---- typed events (as socket.io's typed-events.d.ts) ---------------------------------

/** An events map: event names to the type of their listener. */
interface EventsMap {
  [event: string]: any;
}

/** The events map used when none is given: every event name, any arguments. */
interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void;
}

type EventNames<Map extends EventsMap> = keyof Map & (string | symbol);

type EventNamesWithAck<Map extends EventsMap, K extends EventNames<Map> = EventNames<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (
    Parameters<Map[K]> extends never[] ? never : Last<Parameters<Map[K]>> extends (...args: any[]) => any ? K : never
  )
    ? K
    : never
>;

type EventNamesWithoutAck<Map extends EventsMap, K extends EventNames<Map> = EventNames<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (Parameters<Map[K]> extends never[] ? K : never)
    ? K
    : K extends (Last<Parameters<Map[K]>> extends (...args: any[]) => any ? never : K)
      ? K
      : never
>;

type RemoveAcknowledgements<E extends EventsMap> = {
  [K in EventNamesWithoutAck<E>]: E[K];
};

type EventNamesWithError<Map extends EventsMap, K extends EventNamesWithAck<Map> = EventNamesWithAck<Map>> = IfAny<
  Last<Parameters<Map[K]>> | Map[K],
  K,
  K extends (LooseParameters<Last<Parameters<Map[K]>>>[0] extends Error ? K : never) ? K : never
>;

type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;

type ReservedOrUserEventNames<ReservedEventsMap extends EventsMap, UserEvents extends EventsMap> =
  | EventNames<ReservedEventsMap>
  | EventNames<UserEvents>;

type ReservedOrUserListener<
  ReservedEvents extends EventsMap,
  UserEvents extends EventsMap,
  Ev extends ReservedOrUserEventNames<ReservedEvents, UserEvents>,
> = FallbackToUntypedListener<
  Ev extends EventNames<ReservedEvents> ? ReservedEvents[Ev] : Ev extends EventNames<UserEvents> ? UserEvents[Ev] : never
>;

type FallbackToUntypedListener<T> = [T] extends [never] ? (...args: any[]) => void | Promise<void> : T;

type IsAny<T> = 0 extends 1 & T ? true : false;
type IfAny<T, TypeIfAny = true, TypeIfNotAny = false> = IsAny<T> extends true ? TypeIfAny : TypeIfNotAny;

type Last<ValueType extends readonly unknown[]> = ValueType extends readonly [infer ElementType]
  ? ElementType
  : ValueType extends readonly [infer _, ...infer Tail]
    ? Last<Tail>
    : ValueType extends ReadonlyArray<infer ElementType>
      ? ElementType
      : never;

type FirstNonErrorTuple<T extends unknown[]> = T[0] extends Error ? T[1] : T[0];
type AllButLast<T extends any[]> = T extends [...infer H, infer L] ? H : any[];
type LooseParameters<T> = T extends (...args: infer P) => any ? P : never;
type FirstNonErrorArg<T> = T extends (...args: infer Params) => any ? FirstNonErrorTuple<Params> : any;

type PrependTimeoutError<T extends any[]> = {
  [K in keyof T]: T[K] extends (...args: infer Params) => infer Result
    ? Params[0] extends Error
      ? T[K]
      : (err: Error, ...args: Params) => Result
    : T[K];
};

type MultiplyArray<T extends unknown[]> = {
  [K in keyof T]: T[K][];
};

type InferFirstAndPreserveLabel<T extends any[]> = T extends [any, ...infer R]
  ? T extends [...infer H, ...R]
    ? H
    : never
  : never;

type ExpectMultipleResponses<T extends any[]> = {
  [K in keyof T]: T[K] extends (...args: infer Params) => infer Result
    ? Params extends [Error]
      ? (err: Error) => Result
      : Params extends [Error, ...infer Rest]
        ? (err: Error, ...args: InferFirstAndPreserveLabel<MultiplyArray<Rest>>) => Result
        : Params extends []
          ? () => Result
          : (...args: InferFirstAndPreserveLabel<MultiplyArray<Params>>) => Result
    : T[K];
};

/** Acknowledgement callbacks get a leading `Error` (the timeout) after `timeout(ms)`. */
type DecorateAcknowledgements<E> = {
  [K in keyof E]: E[K] extends (...args: infer Params) => infer Result ? (...args: PrependTimeoutError<Params>) => Result : E[K];
};

/** Acknowledgement callbacks of a broadcast get one answer per client. */
type DecorateAcknowledgementsWithMultipleResponses<E> = {
  [K in keyof E]: E[K] extends (...args: infer Params) => infer Result
    ? (...args: ExpectMultipleResponses<Params>) => Result
    : E[K];
};

/**
 * An `EventEmitter` whose `on`, `once`, `emit` and `listeners` are typed by event maps
 * (socket.io's `StrictEventEmitter`).
 */
declare abstract class StrictEventEmitter<
  ListenEvents extends EventsMap,
  EmitEvents extends EventsMap,
  ReservedEvents extends EventsMap = {},
> extends EventEmitter {
  /** Adds `listener` for `ev`. */
  on<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    ev: Ev,
    listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>,
  ): this;
  /** Adds a one-time `listener` for `ev`. */
  once<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    ev: Ev,
    listener: ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>,
  ): this;
  /** Emits `ev` with `args`. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  /** The listeners of `event`. */
  listeners<Ev extends ReservedOrUserEventNames<ReservedEvents, ListenEvents>>(
    event: Ev,
  ): ReservedOrUserListener<ReservedEvents, ListenEvents, Ev>[];
}

// ---- reserved events ----------------------------------------------------------------

/** Events a namespace emits (`io.on("connection", ...)` is the main namespace's). */
interface NamespaceReservedEventsMap<
  ListenEvents extends EventsMap,
  EmitEvents extends EventsMap,
  ServerSideEvents extends EventsMap,
  SocketData,
> {
  /** A socket connected (after the middlewares of `use()` let it in). */
  connection: (socket: createServer.Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void;
  /** Same as `connection`. */
  connect: (socket: createServer.Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void;
}

/**
 * Events of the server: those of the main namespace, and `error`. socket.io's
 * `new_namespace` is not emitted (namespaces are created by `of()` only) and
 * server-side events are not supported, so neither can be listened to.
 */
interface ServerReservedEventsMap<
  ListenEvents extends EventsMap,
  EmitEvents extends EventsMap,
  ServerSideEvents extends EventsMap,
  SocketData,
> extends NamespaceReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {
  /**
   * Palaver: what a handler threw or rejected with (a listener of any namespace or
   * socket, a middleware), or an engine fault. Without an `error` listener it is
   * reported as a process warning; the server runs on either way.
   */
  error: (err: Error) => void;
}

/** Events of a socket besides the client's events. */
interface SocketReservedEventsMap {
  /** The socket is gone: `reason` as socket.io names it; `description` is always undefined. */
  disconnect: (reason: createServer.DisconnectReason, description?: any) => void;
  /** The socket is about to leave: `socket.rooms` still holds its rooms. */
  disconnecting: (reason: createServer.DisconnectReason, description?: any) => void;
  /** A middleware of `socket.use()` called `next(err)`. */
  error: (err: Error) => void;
}

// ---- the module -------------------------------------------------------------------

/**
 * `require("palaver/socket.io")(srv, opts)`: the same as `new Server(srv, opts)`
 * (socket.io's CommonJS export).
 */
declare function createServer<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
>(opts?: createServer.ServerOptions): createServer.Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
declare function createServer<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
>(
  srv?: HttpServer | HttpsServer | number,
  opts?: createServer.ServerOptions,
): createServer.Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;

declare namespace createServer {
  export { createServer as default };
  export type { EventsMap, DefaultEventsMap };

  /** A room name. */
  export type Room = string;
  /** A socket id (also the name of the room each socket is in). */
  export type SocketId = string;
  /** What a socket middleware (`socket.use`) receives: the event name, then its arguments. */
  export type Event = [string, ...any[]];
  /** The transports a client may use. */
  export type Transport = 'polling' | 'websocket' | 'webtransport';

  /**
   * Why a socket disconnected, as socket.io names it. Palaver reports `transport
   * close`, `transport error` (also for several polling requests at once), `ping
   * timeout`, `parse error`, `client namespace disconnect`, `server namespace
   * disconnect` (also for `disconnect(true)`) and `server shutting down`; never
   * `forced close` nor `forced server close`.
   */
  export type DisconnectReason =
    | 'transport error'
    | 'transport close'
    | 'forced close'
    | 'ping timeout'
    | 'parse error'
    | 'server shutting down'
    | 'forced server close'
    | 'client namespace disconnect'
    | 'server namespace disconnect';

  /** The error a connection middleware refuses a connection with (`next(err)`). */
  export interface ExtendedError extends Error {
    /**
     * socket.io sends `data` to the client with the refusal; Palaver sends only
     * `message` (the client's `connect_error` has no `data`).
     */
    data?: any;
  }

  /** socket.io's `cors` option, read for its `origin` only. */
  export interface CorsOptions {
    /**
     * The origins allowed to connect: `true`, `"*"` or no `origin` allow every origin;
     * a string or an array of strings lists them (a trailing `/` is dropped). Functions
     * and regular expressions are refused (ERR_PALAVER_UNSUPPORTED), and so is `false`.
     */
    origin?: true | string | readonly string[];
    /** Ignored: the engine answers CORS requests itself. */
    methods?: string | readonly string[];
    /** Ignored: the engine answers CORS requests itself. */
    allowedHeaders?: string | readonly string[];
    /** Ignored: the engine answers CORS requests itself. */
    exposedHeaders?: string | readonly string[];
    /** Ignored: the engine answers CORS requests itself. */
    credentials?: boolean;
    /** Ignored: the engine answers CORS requests itself. */
    maxAge?: number;
    /** Ignored: the engine answers CORS requests itself. */
    preflightContinue?: boolean;
    /** Ignored: the engine answers CORS requests itself. */
    optionsSuccessStatus?: number;
  }

  /**
   * socket.io's server options, as far as they mean something on the engine: some
   * map onto its configuration, some are accepted and ignored. Those socket.io.js
   * refuses with ERR_PALAVER_UNSUPPORTED (`adapter`, `parser`,
   * an `allowRequest` function, any `path` but
   * `/socket.io`) are not declared. socket.io declares the interface with required members and takes
   * `Partial<ServerOptions>`; here every member is optional, so both spellings work.
   */
  export interface ServerOptions {
    /**
     * The Socket.IO path: only `/socket.io` (the engine's); any other path throws
     * ERR_PALAVER_UNSUPPORTED.
     * @default "/socket.io"
     */
    path?: '/socket.io' | '/socket.io/';
    /**
     * Ignored: the engine always serves the client at `/socket.io/socket.io.js`
     * (also `.min.js` and `.esm.min.js`).
     * @default true
     */
    serveClient?: boolean;
    /**
     * How long a client may take to connect to a namespace (the engine's
     * `transport.connectTimeoutMs`).
     * @default 5000 (socket.io: 45000)
     */
    connectTimeout?: number;
    /** Ignored: there are no dynamic (child) namespaces. */
    cleanupEmptyChildNamespaces?: boolean;
    /**
     * How long to wait for a pong before the connection is dead (the engine's
     * `transport.pingTimeoutMs`).
     * @default 20000
     */
    pingTimeout?: number;
    /**
     * How often to ping (the engine's `transport.pingIntervalMs`).
     * @default 25000
     */
    pingInterval?: number;
    /** Ignored: the engine's own upgrade timeout applies. */
    upgradeTimeout?: number;
    /**
     * The largest message in bytes (the engine's `limits.maxPayloadBytes`); a larger
     * one closes the connection.
     * @default 65536 (socket.io: 1e6)
     */
    maxHttpBufferSize?: number;
    /**
     * The transports clients may use: `websocket` and `polling` switch the engine's
     * `transport.websocket`/`transport.polling`; `webtransport` is ignored.
     * @default ["polling", "websocket"]
     */
    transports?: readonly Transport[];
    /** Ignored: polling clients may always upgrade to WebSocket. */
    allowUpgrades?: boolean;
    /** Ignored: the engine does not compress WebSocket messages. */
    perMessageDeflate?: boolean | object;
    /** Ignored: the engine does not compress polling responses. */
    httpCompression?: boolean | object;
    /** Ignored: the WebSocket implementation is the engine's. */
    wsEngine?: any;
    /** Ignored. */
    initialPacket?: any;
    /** Ignored: the engine sets no cookie. */
    cookie?: boolean | object;
    /**
     * The origins allowed to connect (the engine's `corsOrigins`), which also covers
     * WebSocket upgrades. `true` allows every origin, as `{origin: true}` and
     * `{origin: "*"}` do; see {@link CorsOptions}. Differs from socket.io without the
     * option: only the page's own origin may connect then (socket.io lets any origin
     * open a WebSocket and leaves polling to the browser's CORS check).
     */
    cors?: boolean | CorsOptions;
    /**
     * Connection state recovery, as in socket.io: a client that lost its
     * connection and comes back within `maxDisconnectionDuration` resumes its
     * socket (id, rooms, `data`) and gets the broadcasts it missed. One node only
     * (refused with cluster mode). Bounds are engine settings:
     * `palaver.connectionStateRecovery.{maxBufferBytes, maxSessions, maxSessionsBytes, maxSessionBytes}`
     * (docs/SOCKETIO.md).
     */
    connectionStateRecovery?: {
      /** How long a session can be resumed, in ms. @default 120000 */
      maxDisconnectionDuration?: number;
      /** A resumed socket skips the `io.use` middlewares. @default true */
      skipMiddlewares?: boolean;
    };
    /** Ignored: the engine speaks Engine.IO v4 only (socket.io-client v3 and v4). */
    allowEIO3?: boolean;
    /** Ignored: upgrades the engine does not claim go to the app's own `upgrade` listeners. */
    destroyUpgrade?: boolean;
    /** Ignored. */
    destroyUpgradeTimeout?: number;
    /** Ignored: `/socket.io` and `/socket.io/` are both served. */
    addTrailingSlash?: boolean;
    /**
     * Palaver: the engine's configuration (camelCase or snake_case keys, as for
     * `require('palaver')`; docs/PROTOCOL.md, "Configuration"): `transport`, `limits`
     * (`requestsPerSecond`/`requestBurst` also bound the events of a socket,
     * `maxConnectionsPerIp`), `cluster` (nodes share rooms and broadcasts over Redis),
     * `hostAckTimeoutMs` (how long a connection middleware may take),
     * `stopTimeoutMs`, `workerThreads`, `host` (with a port). The built-in chat is off
     * here, so its settings (`identity`, `history`, `roomList`) have no effect. The
     * socket.io options above take precedence over the same settings here.
     */
    palaver?: EngineConfig;
  }

  /** The details of the request a socket connected with. */
  export interface Handshake {
    /** The request headers. */
    headers: IncomingHttpHeaders;
    /** When the connection was made, as `Date#toString()` gives it. */
    time: string;
    /** The client's IP address (`""` when unknown). */
    address: string;
    /** Whether the request had an `Origin` header. */
    xdomain: boolean;
    /** Always `false` (socket.io: `true` over TLS, as on an https.Server). */
    secure: boolean;
    /** When the connection was made, in milliseconds since the epoch. */
    issued: number;
    /** The request URL. */
    url: string;
    /** The query parameters of the request URL. */
    query: ParsedUrlQuery;
    /** What the client sent as `auth` (`io(url, {auth})`); `{}` when nothing. */
    auth: { [key: string]: any };
  }

  /**
   * `socket.request`: socket.io gives the `http.IncomingMessage` of the first request;
   * the engine keeps no request object, so this carries what it read of it.
   */
  export interface HandshakeRequest {
    /** The request headers. */
    readonly headers: IncomingHttpHeaders;
    /** The request URL. */
    readonly url: string;
    /** Always `GET`. */
    readonly method: 'GET';
    /** The client's address. */
    readonly connection: { readonly remoteAddress: string };
    /** The client's address. */
    readonly socket: { readonly remoteAddress: string };
  }

  /**
   * `socket.conn`: what the engine tells of the underlying Engine.IO connection. It
   * emits no events (no `upgrade`, `packet`, `close`).
   */
  export interface Connection {
    /** The transport the connection was made with (not updated when it upgrades). */
    readonly transport: { readonly name: 'websocket' | 'polling' };
    /** The client's IP address. */
    readonly remoteAddress: string;
    /** The Engine.IO protocol revision: 4. */
    readonly protocol: number;
  }

  /** `socket.client`: the connection under the socket. */
  export interface Client {
    /** Same as `socket.conn`. */
    readonly conn: Connection;
    /** Same as `socket.request`. */
    readonly request: HandshakeRequest;
  }

  /**
   * `io.engine`: socket.io gives the Engine.IO server; the engine runs in Rust, so this
   * has only its count. It emits no events (no `connection_error`, `headers`,
   * `initial_headers`) and takes no middleware (`io.engine.use`).
   */
  export interface EngineView {
    /**
     * The connections now: the engine's `stats().connections`, which counts a client
     * once per namespace it is connected to (socket.io counts it once).
     */
    readonly clientsCount: number;
  }

  /**
   * The rooms of a namespace, as socket.io's in-memory adapter keeps them, for this
   * node's sockets (in cluster mode, other nodes' sockets are not listed). Read-only
   * for apps: change rooms with `join`/`leave`/`socketsJoin`/`socketsLeave`.
   */
  export interface Adapter {
    /** The namespace. */
    readonly nsp: Namespace;
    /** Each room's socket ids. */
    readonly rooms: Map<Room, Set<SocketId>>;
    /** Each socket's rooms. */
    readonly sids: Map<SocketId, Set<Room>>;
  }

  /** Engine counters (as `require('palaver')`'s `stats()`). */
  export type Stats = EngineStats;

  /** An error with a stable `code`, thrown (or rejected with) by palaver/socket.io. */
  export class PalaverError extends Error {
    constructor(code: string, message: string, options?: { cause?: unknown });
    /**
     * Among others: ERR_PALAVER_UNSUPPORTED (an option or a call socket.io has and
     * Palaver does not: another `path`, `adapter`, `parser`,
     * `allowRequest`, a `cors.origin` function,
     * `adapter(x)`, `serverSideEmit`),
     * ERR_PALAVER_INVALID_OPTIONS (options not a plain object, a bad port),
     * ERR_PALAVER_INVALID_ARG (a dynamic namespace), ERR_PALAVER_NOT_HTTP_SERVER
     * (attach to something that is not an http(s).Server), ERR_PALAVER_LISTEN (the
     * port is taken),
     * ERR_PALAVER_START, ERR_PALAVER_ALREADY_STARTED (attach or listen twice),
     * ERR_PALAVER_CLOSED (not running), ERR_PALAVER_UNSUPPORTED_RUNTIME,
     * ERR_PALAVER_NOT_BUILT.
     */
    code: string;
  }

  /**
   * The Socket.IO server: `new Server(httpServer, opts)` shares an http(s).Server
   * (requests under `/socket.io/` go to the engine, everything else to the app),
   * `new Server(port, opts)` listens on a port of its own, `new Server(opts)` waits
   * for `attach`/`listen`. Connections, encoding and fan-out run in the engine; the
   * app's handlers run here.
   *
   * The type parameters are socket.io's: the events the server listens to
   * (client to server), the events it emits (server to client), server-side events
   * (accepted for compatibility, unused: there is no `serverSideEmit`) and the type
   * of `socket.data`.
   */
  export class Server<
    ListenEvents extends EventsMap = DefaultEventsMap,
    EmitEvents extends EventsMap = ListenEvents,
    ServerSideEvents extends EventsMap = DefaultEventsMap,
    SocketData = any,
  > extends StrictEventEmitter<
    {},
    RemoveAcknowledgements<EmitEvents>,
    ServerReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  > {
    /**
     * Waits for `attach` or `listen`. Throws ERR_PALAVER_UNSUPPORTED for options
     * Palaver does not support, ERR_PALAVER_INVALID_OPTIONS when `opts` is not a
     * plain object.
     */
    constructor(opts?: ServerOptions);
    /**
     * Attaches to an http(s).Server, or listens on a port; see `attach`.
     */
    constructor(srv?: HttpServer | HttpsServer | number, opts?: ServerOptions);

    /** The main namespace (`io.of("/")`). */
    readonly sockets: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
    /** What can be read of the engine; see {@link EngineView}. */
    readonly engine: EngineView;
    /** Palaver: the port the engine listens on when given a port; null when attached or not started. */
    readonly port: number | null;

    /**
     * Serves on an http.Server or https.Server (Express's `app.listen()`,
     * `http.createServer(app)`, Koa's `http.createServer(app.callback())`), or listens
     * on a port of its own (0: any free port, see `port`) on the engine's host,
     * `palaver.host`, 127.0.0.1 by default (socket.io listens on every interface).
     * `opts` are merged into the constructor's. The app's own routes and `upgrade` listeners keep working.
     * WebSocket connections are handed over to the engine; on an https.Server they
     * cannot be (TLS), so clients stay on long-polling there. Throws
     * ERR_PALAVER_ALREADY_STARTED when already attached or listening.
     */
    attach(srv: HttpServer | HttpsServer | number, opts?: ServerOptions): this;
    /** Same as `attach`. */
    listen(srv: HttpServer | HttpsServer | number, opts?: ServerOptions): this;

    /**
     * The namespace of that name, created on first use (`"admin"` is `"/admin"`);
     * `fn` is added as its `connection` listener. Only names: dynamic namespaces
     * (a regular expression or a function) throw ERR_PALAVER_INVALID_ARG.
     */
    of(
      name: string,
      fn?: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void,
    ): Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;

    /** Connection middleware of the main namespace; see {@link Namespace.use}. */
    use(
      fn: (
        socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>,
        next: (err?: ExtendedError) => void,
      ) => void | Promise<void>,
    ): this;

    /** Targets a room (or rooms) of the main namespace when emitting. */
    to(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** Same as `to`. */
    in(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** Excludes a room (or rooms) when emitting. */
    except(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;

    /** Sends a `message` event to every socket of the main namespace. Returns the server. */
    send(...args: EventParams<EmitEvents, 'message'>): this;
    /** Same as `send`. */
    write(...args: EventParams<EmitEvents, 'message'>): this;

    /**
     * The ids of the main namespace's sockets (every node's in cluster mode).
     * @deprecated as in socket.io: use `fetchSockets()`.
     */
    allSockets(): Promise<Set<SocketId>>;

    /** Accepted and ignored: the engine does not compress. */
    compress(compress: boolean): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** The next emit may be dropped for clients that are not ready to receive it. */
    get volatile(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** The next emit reaches this node's sockets only (cluster mode). */
    get local(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /**
     * A timeout for the acknowledgements of the next emit: `io.timeout(1000).emit(ev,
     * ..., (err, responses) => ...)`, `await io.timeout(1000).emitWithAck(ev, ...)`.
     */
    timeout(
      timeout: number,
    ): BroadcastOperator<DecorateAcknowledgements<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>>, SocketData>;

    /**
     * The sockets of the main namespace, every node's in cluster mode. This node's
     * come as their `Socket`; another node's as a `RemoteSocket` with the rooms and id
     * only (see {@link RemoteSocket}).
     */
    fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]>;
    /** Makes every socket join the room(s). */
    socketsJoin(room: Room | Room[]): void;
    /** Makes every socket leave the room(s). */
    socketsLeave(room: Room | Room[]): void;
    /** Disconnects every socket (`close`: their whole connection). */
    disconnectSockets(close?: boolean): void;

    /** The Socket.IO path: always `/socket.io`. */
    path(): '/socket.io';
    /** Accepts `/socket.io` only (any other path throws ERR_PALAVER_UNSUPPORTED). */
    path(v: '/socket.io' | '/socket.io/'): this;
    /** Always `true`: the engine serves the client script. */
    serveClient(): boolean;
    /** Accepted and ignored: the engine always serves the client script. */
    serveClient(v: boolean): this;
    /**
     * Always `undefined`. Custom adapters are not supported: `adapter(x)` throws
     * ERR_PALAVER_UNSUPPORTED (for several nodes use the engine's cluster mode,
     * `palaver: {cluster: {redisUrl}}`).
     */
    adapter(): undefined;

    /**
     * Palaver: the engine's counters (connections, events_dropped, ...). Throws
     * ERR_PALAVER_CLOSED when not running.
     */
    stats(): Stats;

    /**
     * Closes every connection and stops the engine; resolves (and calls `fn`, with the
     * error if it failed) once it is gone. Every socket gets its `disconnect` first
     * (reason `server shutting down`). The http.Server it was attached to keeps
     * running with the app's own listeners (socket.io closes it).
     */
    close(fn?: (err?: Error) => void): Promise<void>;
  }

  /**
   * A namespace (`io.of("/admin")`, `io.sockets`). Broadcasts reach every node's
   * sockets in cluster mode.
   */
  export class Namespace<
    ListenEvents extends EventsMap = DefaultEventsMap,
    EmitEvents extends EventsMap = ListenEvents,
    ServerSideEvents extends EventsMap = DefaultEventsMap,
    SocketData = any,
  > extends StrictEventEmitter<
    {},
    RemoveAcknowledgements<EmitEvents>,
    NamespaceReservedEventsMap<ListenEvents, EmitEvents, ServerSideEvents, SocketData>
  > {
    private constructor();
    /** The name (`/`, `/admin`). */
    readonly name: string;
    /** This node's connected sockets of the namespace, by id. */
    readonly sockets: Map<SocketId, Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>;
    /** The rooms of this node's sockets; see {@link Adapter}. */
    readonly adapter: Adapter;
    /** The server. */
    readonly server: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;

    /**
     * Connection middleware: `fn(socket, next)` runs for each connecting socket;
     * `next()` lets it in, `next(err)` refuses it with `err.message` (the client's
     * `connect_error`; `err.data` is not sent). A thrown error or a rejected promise
     * refuses too. The middlewares must decide within the engine's
     * `hostAckTimeoutMs` (10 s), or the client is refused.
     */
    use(
      fn: (
        socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>,
        next: (err?: ExtendedError) => void,
      ) => void | Promise<void>,
    ): this;

    /** Targets a room (or rooms) when emitting. */
    to(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** Same as `to`. */
    in(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** Excludes a room (or rooms) when emitting. */
    except(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;

    /**
     * Emits to every socket of the namespace. Events with an acknowledgement need
     * `timeout(ms)` first. Throws for the names socket.io reserves (`connect`,
     * `connect_error`, `disconnect`, `disconnecting`, `newListener`, `removeListener`).
     */
    emit<Ev extends EventNamesWithoutAck<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
    /** Sends a `message` event to every socket. Returns the namespace. */
    send(...args: EventParams<EmitEvents, 'message'>): this;
    /** Same as `send`. */
    write(...args: EventParams<EmitEvents, 'message'>): this;

    /**
     * The ids of the namespace's sockets (every node's in cluster mode).
     * @deprecated as in socket.io: use `fetchSockets()`.
     */
    allSockets(): Promise<Set<SocketId>>;
    /** Accepted and ignored: the engine does not compress. */
    compress(compress: boolean): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** The next emit may be dropped for clients that are not ready to receive it. */
    get volatile(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** The next emit reaches this node's sockets only (cluster mode). */
    get local(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** A timeout for the acknowledgements of the next emit. */
    timeout(
      timeout: number,
    ): BroadcastOperator<DecorateAcknowledgements<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>>, SocketData>;
    /** The sockets of the namespace; see {@link Server.fetchSockets}. */
    fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]>;
    /** Makes every socket join the room(s). */
    socketsJoin(room: Room | Room[]): void;
    /** Makes every socket leave the room(s). */
    socketsLeave(room: Room | Room[]): void;
    /** Disconnects every socket (`close`: their whole connection). */
    disconnectSockets(close?: boolean): void;
  }

  /**
   * A set of target sockets (`io.to(room).except(id)`): immutable, each modifier gives
   * a new one.
   */
  export class BroadcastOperator<EmitEvents extends EventsMap, SocketData> {
    private constructor();
    /** Adds a room (or rooms) to the targets. */
    to(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
    /** Same as `to`. */
    in(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
    /** Excludes a room (or rooms). */
    except(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
    /** Accepted and ignored: the engine does not compress. */
    compress(compress: boolean): BroadcastOperator<EmitEvents, SocketData>;
    /** The emit may be dropped for clients that are not ready to receive it. */
    get volatile(): BroadcastOperator<EmitEvents, SocketData>;
    /** The emit reaches this node's sockets only (cluster mode). */
    get local(): BroadcastOperator<EmitEvents, SocketData>;
    /** A timeout for the acknowledgements of the emit. */
    timeout(timeout: number): BroadcastOperator<DecorateAcknowledgements<EmitEvents>, SocketData>;
    /**
     * Emits to the targets. A callback as last argument gets `(err, responses)`, one
     * response per socket, once all answered or the timeout passed (`err` then, with
     * the responses so far); it needs `timeout(ms)` first, or `emit` throws. Throws for
     * the names socket.io reserves.
     */
    emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
    /**
     * Emits and resolves with every socket's answer; rejects when one did not answer
     * within the timeout, which must be set (`timeout(ms)`) or the promise rejects.
     */
    emitWithAck<Ev extends EventNamesWithError<EmitEvents>>(
      ev: Ev,
      ...args: AllButLast<EventParams<EmitEvents, Ev>>
    ): Promise<FirstNonErrorArg<Last<EventParams<EmitEvents, Ev>>>>;
    /**
     * The ids of the target sockets.
     * @deprecated as in socket.io: use `fetchSockets()`.
     */
    allSockets(): Promise<Set<SocketId>>;
    /** The target sockets; see {@link Server.fetchSockets}. */
    fetchSockets(): Promise<RemoteSocket<EmitEvents, SocketData>[]>;
    /** Makes the target sockets join the room(s). */
    socketsJoin(room: Room | Room[]): void;
    /** Makes the target sockets leave the room(s). */
    socketsLeave(room: Room | Room[]): void;
    /** Disconnects the target sockets (`close`: their whole connection). */
    disconnectSockets(close?: boolean): void;
  }

  /**
   * A socket as `fetchSockets()` gives it. This node's sockets are their `Socket`
   * (everything below holds). Another node's (cluster mode) carry their `id` and
   * `rooms` only: their `handshake` is undefined and their `data` an empty object,
   * whatever the type says, and they have no `timeout()`.
   */
  export class RemoteSocket<EmitEvents extends EventsMap, SocketData> {
    private constructor();
    /** The socket id. */
    readonly id: SocketId;
    /** The handshake (undefined for another node's socket). */
    readonly handshake: Handshake;
    /** The rooms it is in, its own id included. */
    readonly rooms: Set<Room>;
    /** Its `socket.data` (an empty object for another node's socket). */
    readonly data: SocketData;
    /**
     * Emits to this socket. An acknowledgement callback is refused (it would need a
     * timeout; use `io.to(id).timeout(ms).emit(...)`).
     */
    emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
    /** Joins the room(s). */
    join(room: Room | Room[]): void;
    /** Leaves the room(s). */
    leave(room: Room | Room[]): void;
    /** Disconnects it (`close`: its whole connection). */
    disconnect(close?: boolean): this;
  }

  /**
   * A connection to a namespace, as `connection` listeners get it. Its events are
   * the client's events, plus `disconnect`, `disconnecting` and `error`. Only events
   * with a listener (or, with `onAny` or `use`, all) are forwarded by the engine;
   * events over the engine's `limits.requestsPerSecond` are refused with
   * `rate_limited`.
   *
   * Keep per-socket state in `data` (typed by `SocketData`): as with socket.io's
   * typings, other properties (`socket.user = ...`) are not declared.
   */
  export class Socket<
    ListenEvents extends EventsMap = DefaultEventsMap,
    EmitEvents extends EventsMap = ListenEvents,
    ServerSideEvents extends EventsMap = DefaultEventsMap,
    SocketData = any,
  > extends StrictEventEmitter<ListenEvents, EmitEvents, SocketReservedEventsMap> {
    private constructor();
    /** The namespace. */
    readonly nsp: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
    /** The connection under it; see {@link Client}. */
    readonly client: Client;
    /** The socket id (also a room it is in). */
    readonly id: SocketId;
    /**
     * Whether this socket resumed a session (connection state recovery): same id,
     * rooms and `data`, the broadcasts it missed replayed. Also set while the
     * middlewares run for it (`skipMiddlewares: false`).
     */
    readonly recovered: boolean;
    /** The request the socket connected with. */
    readonly handshake: Handshake;
    /** The app's own data on the socket, `{}` at first. */
    data: SocketData;
    /** Whether the socket is connected. */
    connected: boolean;
    /** Whether the socket is disconnected. */
    get disconnected(): boolean;
    /** What the engine read of the first request; see {@link HandshakeRequest}. */
    get request(): HandshakeRequest;
    /** The underlying connection; see {@link Connection}. */
    get conn(): Connection;
    /** The rooms the socket is in, its own id included (a copy). */
    get rooms(): Set<Room>;

    /**
     * Emits to this client. A function as last argument receives its acknowledgement
     * (without `timeout()` it waits as long as the connection lives, as socket.io's).
     * Does nothing once disconnected. Throws for the names socket.io reserves.
     */
    emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
    /**
     * Emits and resolves with the client's acknowledgement (its first argument);
     * after `timeout(ms)`, rejects when it did not come in time.
     */
    emitWithAck<Ev extends EventNamesWithAck<EmitEvents>>(
      ev: Ev,
      ...args: AllButLast<EventParams<EmitEvents, Ev>>
    ): Promise<FirstNonErrorArg<Last<EventParams<EmitEvents, Ev>>>>;
    /** Targets a room (or rooms), without this socket, when emitting. */
    to(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** Same as `to`. */
    in(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** Excludes a room (or rooms), and this socket, when emitting. */
    except(room: Room | Room[]): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** Sends a `message` event to this client. Returns the socket. */
    send(...args: EventParams<EmitEvents, 'message'>): this;
    /** Same as `send`. */
    write(...args: EventParams<EmitEvents, 'message'>): this;
    /**
     * Joins the room(s); `socket.rooms` has them at once. Does nothing once
     * disconnected.
     */
    join(rooms: Room | Room[]): void;
    /** Leaves the room(s). */
    leave(room: Room | Room[]): void;
    /**
     * Disconnects the socket from its namespace (`close`: the whole connection, every
     * namespace). Its `disconnect` listeners run at once with `server namespace
     * disconnect`.
     */
    disconnect(close?: boolean): this;
    /** Accepted and ignored: the engine does not compress. */
    compress(compress: boolean): this;
    /** The next emit may be dropped if the client is not ready to receive it. */
    get volatile(): this;
    /** Targets every other socket of the namespace when emitting. */
    get broadcast(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /** Targets every other socket of this node when emitting. */
    get local(): BroadcastOperator<DecorateAcknowledgementsWithMultipleResponses<EmitEvents>, SocketData>;
    /**
     * A timeout for the acknowledgement of the next emit: the callback gets an
     * `Error` first (`operation has timed out`) when the client did not answer in time.
     */
    timeout(timeout: number): Socket<ListenEvents, DecorateAcknowledgements<EmitEvents>, ServerSideEvents, SocketData>;
    /**
     * Incoming-packet middleware: `fn([event, ...args], next)` runs before the
     * listeners; `next(err)` drops the event and emits `error` on the socket.
     */
    use(fn: (event: Event, next: (err?: Error) => void) => void): this;
    /** A listener of every incoming event: `(event, ...args)`. */
    onAny(listener: (...args: any[]) => void): this;
    /** Same as `onAny`, in front of the others. */
    prependAny(listener: (...args: any[]) => void): this;
    /** Removes a catch-all listener (all of them without an argument). */
    offAny(listener?: (...args: any[]) => void): this;
    /** The catch-all listeners. */
    listenersAny(): ((...args: any[]) => void)[];
    /** A listener of every outgoing event of `socket.emit`: `(event, ...args)`. */
    onAnyOutgoing(listener: (...args: any[]) => void): this;
    /** Same as `onAnyOutgoing`, in front of the others. */
    prependAnyOutgoing(listener: (...args: any[]) => void): this;
    /** Removes an outgoing catch-all listener (all of them without an argument). */
    offAnyOutgoing(listener?: (...args: any[]) => void): this;
    /** The outgoing catch-all listeners. */
    listenersAnyOutgoing(): ((...args: any[]) => void)[];
  }
}

export = createServer;
