
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
   * as JSON text.
   */
  static start(configJson: string, onEvent: (arg: string) => void): NativeEngine
  /**
   * Which event types JS listens to (`connected`, `message`, ...); only those
   * are forwarded. Starts empty.
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
  /** The rooms with their members, as JSON text. */
  rooms(): Promise<string>
  /** The counters, as JSON text. */
  stats(): string
  /** Answers a custom event's acknowledgement; false when it is no longer pending. */
  ack(ackId: number, answerJson: string): boolean
  /**
   * Stops gracefully within `timeout_ms`; resolves once everything is closed and
   * no event will follow. Then sends the end-of-events marker (an empty string)
   * through the event function, behind every event still on its way to JS, and
   * resolves with whether it could (JS waits for the marker when true).
   */
  close(timeoutMs: number): Promise<boolean>
}

/** A complete HTTP response from the engine (long-polling and client script). */
export interface NativeResponse {
  status: number
  /** Header names and values, alternating. */
  headers: Array<string>
  body: Buffer
}
