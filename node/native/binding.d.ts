
/**
 * Which binding artifact the generated loader actually loaded: `'native'` for
 * a native addon, otherwise the `platformArchABI` of the WASI flavor. Every
 * flavor napi-rs can build is listed, because `NAPI_RS_NATIVE_LIBRARY_PATH`
 * can point the loader at a WASI artifact this package does not build itself.
 */
export declare const __napiBindingTarget: 'native' | 'wasm32-wasi' | 'wasm32-wasip1'

/** A running engine, as the JS wrapper holds it. */
export declare class NativeEngine {
  /**
   * Starts an engine from a configuration JSON; `on_event` receives each event
   * as JSON text, with the binary attachments of a Socket.IO event or plain
   * WebSocket message as a second argument. Only the event kinds named in
   * `kinds` are built and sent, from the start; `listen_to` changes them.
   */
  static start(configJson: string, kinds: Array<string>, onEvent: (arg0: string, arg1?: Array<Buffer> | undefined | null) => void): NativeEngine
  /**
   * Which event kinds JS listens to (`connected`, `message`, ...): the engine
   * builds and forwards only those (unknown names are ignored). Starts empty.
   */
  listenTo(kinds: Array<string>): void
  /** The bound port when the engine listens itself. */
  get port(): number | null
  /**
   * Takes over an upgraded connection: duplicates `fd` (the caller then closes
   * its own descriptor) and feeds `head` (the request bytes already read) first.
   */
  adopt(fd: number, head: Buffer): void
  /** Serves one HTTP request under `/socket.io/` in-process. */
  serveRequest(method: string, url: string, headers: Array<string>, body: Buffer, remoteAddress?: string | undefined | null, remotePort?: number | undefined | null): Promise<NativeResponse>
  emitToAll(event: string, dataJson: string): Promise<void>
  emitToRoom(room: string, event: string, dataJson: string): Promise<void>
  emitToUser(userId: string, event: string, dataJson: string): Promise<void>
  /** Disconnects every connection of a user; resolves with their number. */
  disconnectUser(userId: string, reason: string): Promise<number>
  /** The rooms with their members, most populated first. */
  rooms(): Promise<Array<RoomInfo>>
  /** The counters. */
  stats(): Stats
  /**
   * Refuses a custom event with `unknown_event` (its JS listener went away
   * while it was on its way); false when it is no longer pending.
   */
  refuseUnheard(ackId: number, event: string): boolean
  /** Answers a custom event's acknowledgement; false when it is no longer pending. */
  ack(ackId: number, answerJson: string): boolean
  /**
   * Applies Socket.IO host commands, in order after those given before: a JSON
   * array of `{"<op>": {...}}` objects (core's `SocketCommand` JSON form) and
   * the binary attachments they take, in order.
   */
  run(commandsJson: string, attachments?: Array<Buffer> | undefined | null): void
  /**
   * Answers a Socket.IO query (core's `SocketQuery` JSON form) once the
   * commands given before it are applied; resolves with the answer as JSON and
   * the binary attachments of acknowledgements (each reply's `bin` of them, in
   * order).
   */
  query(queryJson: string, attachments?: Array<Buffer> | undefined | null): Promise<QueryResult>
  /**
   * Stops gracefully within `timeout_ms`; resolves once everything is closed and
   * no event will follow (also when another call stopped it). Then sends the
   * end-of-events marker (an empty string) through the event function, behind
   * every event still on its way to JS, and resolves with whether it could (JS
   * waits for the marker when true).
   */
  close(timeoutMs: number): Promise<boolean>
}

/** The cluster part of `Stats` (cluster mode only). */
export interface ClusterStats {
  node_id: string
  redis_connected: boolean
  redis_outages: number
  journal_pending: number
  nodes_alive: number
  pubsub_dropped: number
}

/**
 * The kinds of host event, named as their JSON `type`: the engine's own list,
 * so that the wrapper keeps no copy of it.
 */
export declare function eventKinds(): Array<string>

/** One user in a room's member list. */
export interface Member {
  id: string
  name: string
}

/** A complete HTTP response from the engine (long-polling and client script). */
export interface NativeResponse {
  status: number
  /** Header names and values, alternating. */
  headers: Array<string>
  body: Buffer
}

/** A query's answer: its JSON and the binary attachments it names. */
export interface QueryResult {
  json: string
  buffers: Array<Buffer>
}

/** A room with its members (`rooms()`). */
export interface RoomInfo {
  room: string
  /** Number of distinct users in the room. */
  count: number
  /** The members, in join order. */
  members: Array<Member>
}

/** The engine's counters (`stats()`), with the engine's snake_case names. */
export interface Stats {
  connections: number
  connections_total: number
  connections_refused: number
  users_online: number
  rooms: number
  messages: number
  private_messages: number
  requests_rejected: number
  packets_dropped: number
  events_dropped: number
  events_queued: number
  events_queued_bytes: number
  commands_queued_bytes: number
  pending_host_acks: number
  pending_gates: number
  uptime_ms: number
  /** Engine.IO sessions open now, from their handshake on. */
  sessions: number
  /** TCP connections open now that the engine serves (handed over ones). */
  sockets: number
  /** TCP connections closed at hand-over for the per-address or total cap. */
  sockets_refused: number
  /** Cluster mode only (null otherwise). */
  cluster: ClusterStats | null
}
