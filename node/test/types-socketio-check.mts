// Type-checked (never run) by types.test.js: 'palaver/socket.io' from an ES module
// (module nodenext), as `import { Server } from "socket.io"` apps use it; the default
// import is module.exports itself (socket.io's CommonJS `require("socket.io")(srv)`).
import { createServer } from 'node:http';
import createIo, { Server, Namespace, Socket, BroadcastOperator, RemoteSocket, PalaverError } from 'palaver/socket.io';
import type { DefaultEventsMap, DisconnectReason, ServerOptions } from 'palaver/socket.io';

interface ClientToServerEvents {
  join: (payload: { name: string; room: string }) => void;
  message: (payload: { text: string; room: string; user: string }) => void;
}
interface ServerToClientEvents {
  message: (payload: { user: string; text: string }) => void;
  groupList: (list: Record<string, { name: string; room: string; id: string }[]>) => void;
  ping: (sent: number, ack: (received: number) => void) => void;
}
interface SocketData {
  name?: string;
}

const options: ServerOptions = { cors: true, transports: ['websocket', 'polling'] };
const server = createServer();
const io = new Server<ClientToServerEvents, ServerToClientEvents, DefaultEventsMap, SocketData>(server, options);
const groupList: Record<string, { name: string; room: string; id: string }[]> = {};

io.on('connection', (socket) => {
  socket.on('join', ({ name, room }) => {
    socket.join(room);
    socket.data.name = name;
    (groupList[room] ??= []).push({ name, room, id: socket.id });
    socket.emit('message', { user: 'admin', text: `${name} joined` });
    socket.broadcast.emit('groupList', groupList);
  });
  socket.on('message', ({ text, room, user }) => {
    socket.broadcast.to(room).emit('message', { text, user });
    // @ts-expect-error `message` carries {user, text}
    socket.broadcast.to(room).emit('message', text);
  });
  socket.on('disconnect', (reason: DisconnectReason) => void reason);
});

const latencies: number[] = await io.timeout(1000).emitWithAck('ping', Date.now());
const all = await io.fetchSockets();
const names = all.map((socket) => socket.data.name);
const plain = createIo(3001);
const classes = [Namespace, Socket, BroadcastOperator, RemoteSocket] as const;
try {
  new Server(server, { path: '/socket.io' });
} catch (error) {
  if (error instanceof PalaverError) void error.code;
}
await Promise.all([io.close(), plain.close()]);
void [latencies, names, classes];
