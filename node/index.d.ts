// Public TypeScript declarations of the palaver package (hand-written; the
// generated declarations of the private binding are native/binding.d.ts).
//
// Written as `export =` because index.js assigns `module.exports = palaver`: so
// `import palaver from 'palaver'` is callable from ESM (module node16/nodenext)
// and from CommonJS alike, and `import { Server } from 'palaver'` works in both.
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';

/** `require('palaver')(server)`: attaches to an http.Server, or listens on a port. */
declare function palaver(server: HttpServer | HttpsServer, options?: palaver.ServerOptions): palaver.Server;
declare function palaver(port: number, options?: palaver.ServerOptions): palaver.Server;
declare function palaver(options?: palaver.ServerOptions): palaver.Server;

declare namespace palaver {
  export { palaver as default };

  /** Engine configuration (docs/PROTOCOL.md, "Configuration"); camelCase or snake_case keys. */
  export interface ServerOptions {
    host?: string;
    port?: number;
    identity?: {
      mode?: 'open' | 'token';
      tokenSecret?: string | null;
      tokenLeewaySecs?: number;
      tokenSecrets?: string[];
      tokenIssuer?: string | null;
      tokenAudience?: string | null;
      tokenExpiryNoticeSecs?: number;
    };
    history?: {
      storage?: 'sqlite' | 'memory';
      path?: string;
      synchronous?: 'normal' | 'full';
      memoryMaxPerRoom?: number;
      /** Rooms memory history keeps; past it the least recently active is forgotten. Default 10000. */
      memoryMaxRooms?: number;
      /** Bytes memory history keeps across rooms (at least 1048576). Default 67108864. */
      memoryMaxBytes?: number;
      /** Seconds after which a room nobody is in and nobody wrote to is forgotten. Default 3600. */
      memoryIdleSecs?: number;
      /** Seconds SQLite history keeps a message; null keeps every message. Default null. */
      sqliteMaxAgeSecs?: number | null;
      onJoin?: number;
      pageMax?: number;
      /** Most messages a recovery (join with since, history with after) may return; more missing is recovered: false. Default 1000. */
      recoveryMax?: number;
      /** A private message to a user with no connection: stored and delivered at their next connect, or refused with user_offline. Default 'store'. */
      privateOffline?: 'store' | 'refuse';
    };
    corsOrigins?: string[];
    /** Host names the chat answers to besides IP addresses and localhost names
     * ("chat.example.com", "*.example.com", or "*" for any); requests sent to
     * other names are refused with 403 host_not_allowed (DNS rebinding). Default []. */
    allowedHosts?: string[];
    limits?: {
      maxTextChars?: number;
      maxNameChars?: number;
      maxRoomChars?: number;
      maxRoomsPerConnection?: number;
      messagesPerSecond?: number;
      messageBurst?: number;
      requestsPerSecond?: number;
      requestBurst?: number;
      maxPendingRequests?: number;
      maxPayloadBytes?: number;
      maxConnectionsPerIp?: number;
      typingIntervalMs?: number;
      maxSessionsPerIp?: number;
      maxSocketsPerIp?: number;
      maxSockets?: number;
      ipv6PrefixLen?: number;
    };
    roomList?: {
      intervalMs?: number;
      maxRooms?: number;
      maxMembersPerRoom?: number;
      groupList?: boolean;
    };
    transport?: {
      pingIntervalMs?: number;
      pingTimeoutMs?: number;
      connectTimeoutMs?: number;
      maxBufferSize?: number;
      websocketReadBufferBytes?: number;
      websocket?: boolean;
      polling?: boolean;
      headerTimeoutMs?: number;
    };
    /**
     * Connection state recovery of host namespaces (palaver/socket.io's
     * `connectionStateRecovery`, docs/SOCKETIO.md); on when set. Not with cluster mode.
     */
    connectionStateRecovery?: {
      /** Default 120000. */
      maxDisconnectionMs?: number;
      /** Default true. */
      skipMiddlewares?: boolean;
      /** Bytes of broadcasts kept for replay. Default 16777216 (16 MiB). */
      maxBufferBytes?: number;
      /** Sessions kept at once. Default 10000. */
      maxSessions?: number;
      /** Bytes of all sessions kept. Default 16777216 (16 MiB). */
      maxSessionsBytes?: number;
      /** Bytes of room names one session keeps. Default 65536. */
      maxSessionBytes?: number;
    } | null;
    /** Cluster mode over Redis (docs/CLUSTER.md); on when `redisUrl` is set. */
    cluster?: {
      redisUrl?: string | null;
      keyPrefix?: string;
      heartbeatMs?: number;
      nodeTimeoutMs?: number;
      redisTimeoutMs?: number;
      historyMaxPerRoom?: number;
      /** Seconds a room's Redis stream is kept after its last message. Default 2592000 (30 days). */
      historyIdleSecs?: number;
      /** Milliseconds within which a message written again is not stored twice. Default 600000. */
      dedupWindowMs?: number;
      /** This node's outage journal file (with history storage "sqlite"); one per node. */
      journalPath?: string;
      journalMaxMessages?: number;
      journalMaxBytes?: number;
    };
    workerThreads?: number;
    eventQueueCapacity?: number;
    hostAckTimeoutMs?: number;
    /** Also the deadline of close(). */
    stopTimeoutMs?: number;
    [snakeCaseKey: string]: unknown;
  }

  export interface User {
    id: string;
    name: string;
  }

  export interface ChatMessage {
    id: string | null;
    room: string;
    user: string;
    user_id: string | null;
    text: string;
    ts: number;
    kind: 'chat' | 'join' | 'leave';
    /** Its place in the room's history (1, 2, 3, ...); absent on notices and on messages journaled during a cluster outage. */
    offset?: number;
    /** The room history's epoch; offsets of different epochs are not comparable. */
    epoch?: string;
  }

  export interface PrivateMessage {
    id: string;
    from: User;
    to: User;
    text: string;
    ts: number;
    /** Its place in the conversation's history (1, 2, 3, ...). */
    offset?: number;
    /** The conversation history's epoch. */
    epoch?: string;
  }

  export interface ConnectedEvent {
    type: 'connected';
    sid: string;
    user: User | null;
    address: string | null;
    transport: 'websocket' | 'polling';
  }
  export interface DisconnectedEvent {
    type: 'disconnected';
    sid: string;
    user: User | null;
    reason: string;
  }
  export interface JoinedEvent {
    type: 'joined';
    sid: string;
    room: string;
    user: User;
  }
  export interface LeftEvent {
    type: 'left';
    sid: string;
    room: string;
    user: User;
  }
  export interface MessageEvent {
    type: 'message';
    sid: string;
    message: ChatMessage;
  }
  export interface PrivateEvent {
    type: 'private';
    sid: string;
    message: PrivateMessage;
  }
  export interface CustomEvent {
    type: 'custom';
    sid: string;
    user: User | null;
    /** The event name the client emitted. */
    event: string;
    /** Its first argument (null when none). */
    data: unknown;
    /**
     * Answers the client's acknowledgement (false if already answered or expired);
     * null when the client asked for none. With no `custom` listener at all, the
     * client is answered `unknown_event` at once.
     */
    ack: ((answer: unknown) => boolean) | null;
  }

  export interface EventMap {
    connected: ConnectedEvent;
    disconnected: DisconnectedEvent;
    joined: JoinedEvent;
    left: LeftEvent;
    message: MessageEvent;
    private: PrivateEvent;
    custom: CustomEvent;
    error: Error;
  }

  export interface RoomInfo {
    room: string;
    count: number;
    members: User[];
  }

  export interface ClusterStats {
    node_id: string;
    redis_connected: boolean;
    redis_outages: number;
    journal_pending: number;
    nodes_alive: number;
    /** Messages from other nodes dropped because this node read them too slowly. */
    pubsub_dropped: number;
  }

  export interface Stats {
    connections: number;
    connections_total: number;
    connections_refused: number;
    users_online: number;
    rooms: number;
    messages: number;
    private_messages: number;
    requests_rejected: number;
    packets_dropped: number;
    events_dropped: number;
    pending_host_acks: number;
    uptime_ms: number;
    /** Engine.IO sessions open now, from their handshake on (connected or not). */
    sessions: number;
    /** TCP connections open now that the engine serves (those handed over to it). */
    sockets: number;
    /** TCP connections closed at hand-over for `limits.maxSocketsPerIp` or `limits.maxSockets`. */
    sockets_refused: number;
    /** Cluster mode only (null otherwise). */
    cluster?: ClusterStats | null;
  }

  export interface Emitter {
    emit(event: string, data?: unknown): Promise<void>;
  }

  export class PalaverError extends Error {
    constructor(code: string, message: string, options?: { cause?: unknown });
    /**
     * One of: ERR_PALAVER_INVALID_OPTIONS (bad options or port), ERR_PALAVER_NOT_HTTP_SERVER,
     * ERR_PALAVER_LISTEN (the port is taken), ERR_PALAVER_START (the engine could not start,
     * e.g. its history file or Redis), ERR_PALAVER_ALREADY_STARTED, ERR_PALAVER_CLOSED (not
     * running), ERR_PALAVER_USER_OFFLINE, ERR_PALAVER_INVALID_ARG (event, room or data),
     * ERR_PALAVER_DELIVERY (cluster mode: Redis did not carry a command), ERR_PALAVER_ADOPT
     * (a WebSocket connection could not be handed to the engine), ERR_PALAVER_UNSUPPORTED_RUNTIME
     * (attach() without Node's libuv TCP sockets), ERR_PALAVER_CLOSE, ERR_PALAVER_NOT_BUILT,
     * ERR_PALAVER_BUSY (a queue of the engine is full), ERR_PALAVER_UNSUPPORTED (palaver/socket.io
     * and palaver/ws: an option or call socket.io / ws have and Palaver does not), ERR_PALAVER_INTERNAL.
     */
    code: string;
  }

  export class Server {
    constructor(options?: ServerOptions);
    /**
     * Shares an existing HTTP server: /socket.io/ goes to the engine, everything
     * else to the app. (On an https.Server, clients stay on long-polling.)
     *
     * WebSocket connections are handed to the engine by the descriptor of Node's
     * libuv TCP socket (`socket._handle.fd`); tested on Node 20. Where a
     * socket has none (another runtime), clients stay on long-polling and an
     * `error` event (or, without an `error` listener, a process warning)
     * reports ERR_PALAVER_UNSUPPORTED_RUNTIME once.
     */
    attach(server: HttpServer | HttpsServer): this;
    /** Runs on a port of its own (0: any free port, see `port`). */
    listen(port: number, host?: string): this;
    readonly port: number | null;
    on<K extends keyof EventMap>(event: K, listener: (event: EventMap[K]) => void): this;
    once<K extends keyof EventMap>(event: K, listener: (event: EventMap[K]) => void): this;
    off<K extends keyof EventMap>(event: K, listener: (event: EventMap[K]) => void): this;
    /** Emits to every client. */
    emit(event: string, data?: unknown): Promise<void>;
    to(room: string): Emitter;
    in(room: string): Emitter;
    toUser(userId: string): Emitter;
    /** Resolves with the number of connections closed, once this node has handled them (the user is out of its presence and rooms). */
    disconnectUser(userId: string, reason?: string): Promise<number>;
    rooms(): Promise<RoomInfo[]>;
    stats(): Stats;
    /** Resolves once the engine is gone and its last event was delivered; the same promise while closing. */
    close(): Promise<void>;
  }
}

export = palaver;
