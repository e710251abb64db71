// ESM entry of `palaver/ws`: the same API as the CommonJS one, shaped like
// `import { WebSocketServer } from "ws"`.
import WebSocket from './ws.js';

export const { WebSocketServer, Server, PalaverError } = WebSocket;
export { WebSocket };
export default WebSocket;
