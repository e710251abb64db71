// ESM entry of `palaver/socket.io`: the same API as the CommonJS one, shaped like
// `import { Server } from "socket.io"`.
import createServer from './socket.io.js';

export const { Server, Namespace, Socket, BroadcastOperator, RemoteSocket, PalaverError } = createServer;
export default createServer;
