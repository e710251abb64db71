// Type-checked (never run) by types.test.js: `tsc --noEmit --strict` over the declared
// API of socket.io.d.ts, as a CommonJS TypeScript module importing 'palaver/socket.io'
// by name, the way apps written for `socket.io` use it (the tutorial apps of
// examples/socketio-apps/ among them). The @ts-expect-error lines must stay errors:
// they are what socket.io's own typings refuse too, or what palaver/socket.io refuses
// at runtime.
import http from 'node:http';
import https from 'node:https';
import createServer, {
  BroadcastOperator,
  Namespace,
  PalaverError,
  RemoteSocket,
  Server,
  Socket,
} from 'palaver/socket.io';
import type {
  Adapter,
  DefaultEventsMap,
  DisconnectReason,
  Event,
  ExtendedError,
  Handshake,
  ServerOptions,
  Stats,
} from 'palaver/socket.io';

// ---- the tutorial apps, as written for socket.io -----------------------------------

// Room chat (tutorials 000/002): `new Server(server, {cors: true})`.
function roomChat(): void {
  const server = http.createServer();
  const io = new Server(server, { cors: true });
  interface Member {
    name: string;
    room: string;
    id: string;
  }
  const groupList: Record<string, Member[]> = {};
  io.on('connection', (socket) => {
    socket.on('join', ({ name, room }) => {
      socket.join(room);
      (groupList[room] ??= []).push({ name, room, id: socket.id });
      socket.emit('message', { user: '管理员', text: `${name}进入了房间` });
      socket.emit('groupList', groupList);
      socket.broadcast.emit('groupList', groupList);
    });
    socket.on('message', ({ text, room, user }) => {
      socket.broadcast.to(room).emit('message', { text, user });
    });
    socket.on('disconnect', () => {
      for (const key of Object.keys(groupList)) {
        const leaving = groupList[key]?.find((item) => item.id === socket.id);
        if (leaving) socket.broadcast.to(leaving.room).emit('message', { user: '管理员', text: `${leaving.name}离开了房间` });
        groupList[key] = (groupList[key] ?? []).filter((item) => item.id !== socket.id);
      }
      socket.broadcast.emit('groupList', groupList);
    });
  });
  server.listen(3000);
}

// Login chat (tutorial 001): `require("socket.io")(server)`, `io.on("connect")`.
function loginChat(): void {
  const server = http.createServer();
  const io = createServer(server);
  let users: { username: string }[] = [];
  io.on('connect', (socket) => {
    socket.on('login', (username: string) => {
      users.push({ username });
      // @ts-expect-error as with socket.io's typings, a Socket takes no property of the app's own: use socket.data
      socket.username = username;
      socket.data.username = username;
      socket.emit('loginSuccess');
      io.emit('notify', username);
      io.emit('updateUserList', users);
    });
    socket.on('message', ({ username, message }) => {
      io.emit('recevied', username, message);
    });
    socket.on('loginOut', () => {
      io.emit('loginOut', socket.data.username);
      users = users.filter((item) => item.username !== socket.data.username);
    });
  });
}

// Hello chat (tutorial 003): `const {Server} = require('socket.io'); new Server(server)`.
function helloChat(): void {
  const io = new Server(http.createServer());
  io.on('connection', (socket) => {
    socket.on('chat message', (msg) => {
      io.emit('chat message', msg);
    });
    socket.on('disconnect', () => {});
  });
}

// Token chat (tutorial 004): the JWT from the query, the identity on the socket, the
// user list from io.sockets.sockets, numeric event names.
function tokenChat(verify: (token: string) => { username: string } | null): void {
  const io = createServer(http.createServer());
  const WebSocketType = { Error: 0, GroupList: 1, GroupChat: 2, SingleChat: 3 } as const;
  const message = (user: string | null, data: unknown) => ({ user, data });
  const sendAll = () => {
    const userList = Array.from(io.sockets.sockets).map((item) => item[1].data.user);
    io.sockets.emit(String(WebSocketType.GroupList), message(null, userList));
  };
  io.on('connection', (socket) => {
    const token = socket.handshake.query.token;
    // @ts-expect-error the query is string | string[] | undefined, as with socket.io
    verify(token);
    const payload = typeof token === 'string' ? verify(token) : null;
    if (payload) {
      // @ts-expect-error as with socket.io's typings, the identity goes in socket.data
      socket.user = payload;
      socket.data.user = payload;
      socket.emit(String(WebSocketType.GroupChat), message(null, 'welcome'));
      sendAll();
    } else {
      socket.emit(String(WebSocketType.Error), message(null, 'token过期'));
    }
    socket.on('disconnect', sendAll);
    // @ts-expect-error as with socket.io's typings, event names are strings
    socket.on(WebSocketType.GroupList, sendAll);
    socket.on(String(WebSocketType.GroupChat), (msg: { data: string }) => {
      io.sockets.emit(String(WebSocketType.GroupChat), message(socket.data.user.username, msg.data));
    });
    socket.on(String(WebSocketType.SingleChat), (msg: { data: string; to: string }) => {
      for (const [, other] of io.sockets.sockets) {
        if (other.data.user?.username === msg.to) {
          other.emit(String(WebSocketType.SingleChat), message(socket.data.user.username, msg.data));
        }
      }
    });
  });
}

// ---- typed events -------------------------------------------------------------------

interface ClientToServerEvents {
  hello: (name: string) => void;
  join: (room: string, ack: (ok: boolean) => void) => void;
  upload: (file: Buffer, meta: { name: string }) => void;
}
interface ServerToClientEvents {
  noArg: () => void;
  basicEmit: (a: number, b: string, c: Buffer) => void;
  withAck: (d: string, callback: (e: number) => void) => void;
  message: (text: string) => void;
}
interface InterServerEvents {
  ping: () => void;
}
interface SocketData {
  name: string;
  age: number;
}
type TypedServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
type TypedSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

async function typedEvents(io: TypedServer): Promise<void> {
  io.on('connection', (socket: TypedSocket) => {
    socket.data.name = 'john';
    socket.data.age = 42;
    // @ts-expect-error socket.data is typed by SocketData
    socket.data.age = 'old';

    socket.on('hello', (name) => {
      const text: string = name;
      void text;
    });
    socket.on('join', (room, ack) => {
      socket.join(room);
      ack(true);
      // @ts-expect-error the ack takes a boolean
      ack('yes');
    });
    socket.on('upload', (file, meta) => void [file.byteLength, meta.name]);
    // @ts-expect-error no such client event
    socket.on('goodbye', () => {});
    // @ts-expect-error `hello` gives a string
    socket.on('hello', (name: number) => void name);
    socket.on('disconnect', (reason) => {
      const why: DisconnectReason = reason;
      void why;
    });

    socket.emit('noArg');
    socket.emit('basicEmit', 1, '2', Buffer.from([3]));
    socket.emit('withAck', '4', (e) => {
      const n: number = e;
      void n;
    });
    // @ts-expect-error wrong argument types
    socket.emit('basicEmit', '1', 2);
    // @ts-expect-error no such server event
    socket.emit('nonsense');
    socket.send('hello');
    socket.timeout(1000).emit('withAck', '4', (err, e) => {
      if (err) return;
      const n: number = e;
      void n;
    });
    socket.to('room').emit('basicEmit', 1, '2', Buffer.alloc(0));
    socket.broadcast.timeout(500).emit('withAck', '4', (err, answers) => {
      const all: number[] = answers;
      void [err, all];
    });
  });

  io.emit('noArg');
  io.emit('basicEmit', 1, '2', Buffer.alloc(0));
  // @ts-expect-error a broadcast with an acknowledgement needs timeout() first
  io.emit('withAck', '4', () => {});
  io.to('room1').to(['room2', 'room3']).except('room4').emit('message', 'hi');
  io.timeout(1000).emit('withAck', '4', (err, responses) => {
    const all: number[] = responses;
    void [err, all];
  });
  const responses: number[] = await io.timeout(1000).emitWithAck('withAck', '4');
  const inRoom: number[] = await io.to('room').timeout(1000).emitWithAck('withAck', '4');
  // @ts-expect-error emitWithAck on a broadcast needs timeout() first
  await io.to('room').emitWithAck('withAck', '4');

  const sockets = await io.fetchSockets();
  for (const remote of sockets) {
    const name: string = remote.data.name;
    remote.emit('basicEmit', 1, '2', Buffer.alloc(0));
    void name;
  }
  const socket = io.sockets.sockets.get('id');
  if (socket) {
    const answer: number = await socket.emitWithAck('withAck', '4');
    const timed: number = await socket.timeout(1000).emitWithAck('withAck', '4');
    void [answer, timed];
  }
  const admin: Namespace<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData> = io.of('/admin');
  admin.emit('message', 'to admins');
  void [responses, inRoom];
}

// The defaults: every event name, any arguments, `data: any`.
function defaults(io: Server, socket: Socket): void {
  const same: Server<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, any> = io;
  socket.emit('anything', 1, { two: 2 }, [3], (answer: unknown) => void answer);
  socket.on('anything', (...args) => void args);
  socket.data.whatever = { free: true };
  io.emit('anything', 'at all');
  void same;
}

// ---- options ------------------------------------------------------------------------

const options: ServerOptions = {
  path: '/socket.io',
  serveClient: true,
  connectTimeout: 10_000,
  cleanupEmptyChildNamespaces: false,
  pingTimeout: 20_000,
  pingInterval: 25_000,
  upgradeTimeout: 10_000,
  maxHttpBufferSize: 1e6,
  transports: ['polling', 'websocket'],
  allowUpgrades: true,
  perMessageDeflate: false,
  httpCompression: true,
  cookie: false,
  cors: { origin: ['https://example.com', 'https://example.org/'], credentials: true, methods: ['GET', 'POST'] },
  allowEIO3: false,
  destroyUpgrade: true,
  destroyUpgradeTimeout: 1000,
  addTrailingSlash: false,
  palaver: {
    limits: { requestsPerSecond: 50, maxConnectionsPerIp: 100 },
    cluster: { redisUrl: 'redis://127.0.0.1:6379' },
    hostAckTimeoutMs: 5000,
    stopTimeoutMs: 1000,
  },
};
const partial: Partial<ServerOptions> = { cors: { origin: '*' } };
// every origin (the first three), or the page's own only (`false`, as without the option)
const corsForms: ServerOptions[] = [{ cors: true }, { cors: { origin: true } }, { cors: {} }, { cors: false }];
// connection state recovery: socket.io's two settings, the engine's bounds in `palaver`
const recoveryForms: ServerOptions[] = [
  { connectionStateRecovery: {} },
  { connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: false } },
  { connectionStateRecovery: {}, palaver: { connectionStateRecovery: { maxBufferBytes: 1 << 20, maxSessions: 100 } } },
];
void [partial, corsForms, recoveryForms];

function refusedOptions(server: http.Server): void {
  // @ts-expect-error custom adapters throw ERR_PALAVER_UNSUPPORTED (use palaver: {cluster})
  new Server(server, { adapter: () => ({}) });
  // @ts-expect-error allowRequest throws ERR_PALAVER_UNSUPPORTED (use io.use())
  new Server(server, { allowRequest: (_req: unknown, fn: (err: null, ok: boolean) => void) => fn(null, true) });
  // @ts-expect-error the Socket.IO path is /socket.io
  new Server(server, { path: '/chat' });
  // @ts-expect-error cors.origin functions throw ERR_PALAVER_UNSUPPORTED
  new Server(server, { cors: { origin: (_origin: string, cb: (err: null, ok: boolean) => void) => cb(null, true) } });
  // @ts-expect-error cors.origin regular expressions throw ERR_PALAVER_UNSUPPORTED
  new Server(server, { cors: { origin: /example\.com$/ } });
  // @ts-expect-error custom parsers throw ERR_PALAVER_UNSUPPORTED
  new Server(server, { parser: {} });
  // @ts-expect-error options are socket.io's
  new Server(server, { nonsense: true });
}

// ---- the server ---------------------------------------------------------------------

async function server(): Promise<void> {
  const httpServer = http.createServer((_req, res) => res.end('app'));
  const io: Server = new Server(httpServer, options);
  const secure = new Server(https.createServer(), { cors: { origin: 'https://example.com' } });
  const onItsOwn = new Server(3001);
  const later = new Server({ pingInterval: 10_000 }).attach(3002, { pingTimeout: 5000 });
  const later2 = new Server().listen(http.createServer());
  const called: Server = createServer();
  const port: number | null = onItsOwn.port;
  const viaDefault: Server = createServer.default(3003, { transports: ['websocket'] });
  void [secure, later, later2, called, port, viaDefault];

  const main: Namespace = io.sockets;
  const admin: Namespace = io.of('/admin', (socket) => void socket.id);
  const same: Namespace = io.of('admin');
  // @ts-expect-error dynamic namespaces throw ERR_PALAVER_INVALID_ARG
  io.of(/^\/dynamic-\d+$/);
  // @ts-expect-error dynamic namespaces throw ERR_PALAVER_INVALID_ARG
  io.of((_name: string, _auth: object, next: (err: Error | null, ok: boolean) => void) => next(null, true));

  io.use((socket, next) => {
    if (socket.handshake.auth.token === 'secret') return next();
    const error: ExtendedError = new Error('not authorized');
    error.data = { content: 'retry later' };
    next(error);
  });
  admin.use(async (socket, next) => {
    socket.data.checked = true;
    next();
  });
  // @ts-expect-error the middleware's `next` takes an Error
  io.use((_socket, next) => next('refused'));

  io.on('connection', (socket) => void socket.id);
  io.once('connect', (socket) => void socket.id);
  io.on('error', (error) => {
    const message: string = error.message;
    void message;
  });
  // @ts-expect-error new_namespace is not emitted (namespaces come from of() only)
  io.on('new_namespace', () => {});
  // @ts-expect-error server-side events are not supported
  io.on('ping', () => {});

  const emitted: boolean = io.emit('news', { text: 'hi' });
  io.send('hello').emit('news', { text: 'after' });
  io.write('hello');
  io.to('room').emit('news', 1);
  io.in(['a', 'b']).emit('news', 2);
  io.except('room').emit('news', 3);
  io.volatile.emit('tick', Date.now());
  io.local.emit('news', 4);
  io.compress(false).emit('news', 5);
  io.timeout(1000).emit('question', (err: Error | null, answers: unknown[]) => void [err, answers]);
  const answers: unknown[] = await io.timeout(1000).emitWithAck('question');
  const ids: Set<string> = await io.allSockets();
  const inRoom: Set<string> = await io.in('room').allSockets();
  io.socketsJoin('everyone');
  io.in('room1').socketsJoin(['room2', 'room3']);
  io.socketsLeave('everyone');
  io.except('vip').disconnectSockets(true);
  io.disconnectSockets();
  // @ts-expect-error serverSideEmit throws ERR_PALAVER_UNSUPPORTED (nodes share rooms through Redis)
  io.serverSideEmit('hello', 'world');
  // @ts-expect-error serverSideEmitWithAck rejects with ERR_PALAVER_UNSUPPORTED
  await io.serverSideEmitWithAck('ping');
  // @ts-expect-error emitWithAck on the server needs timeout() first (as in socket.io's typings)
  await io.emitWithAck('question');

  const path: '/socket.io' = io.path();
  const setPath: Server = io.path('/socket.io');
  // @ts-expect-error the Socket.IO path is /socket.io
  io.path('/chat');
  const serving: boolean = io.serveClient();
  const servingSet: Server = io.serveClient(false);
  const adapter: undefined = io.adapter();
  // @ts-expect-error custom adapters throw ERR_PALAVER_UNSUPPORTED
  io.adapter(() => ({}));
  const clients: number = io.engine.clientsCount;
  // @ts-expect-error io.engine emits no events
  io.engine.on('connection_error', () => {});
  // @ts-expect-error there is no io.httpServer
  void io.httpServer;

  const stats: Stats = io.stats();
  const counts: number = stats.connections + stats.events_dropped;

  const sockets = await io.fetchSockets();
  for (const remote of sockets) {
    const id: string = remote.id;
    const rooms: Set<string> = remote.rooms;
    const handshake: Handshake = remote.handshake;
    remote.emit('hello', 'world');
    remote.join('room');
    remote.join(['room1', 'room2']);
    remote.leave('room');
    const self: RemoteSocket<DefaultEventsMap, any> = remote.disconnect(true);
    // @ts-expect-error a RemoteSocket has no timeout() here
    remote.timeout(1000);
    void [id, rooms, handshake, self];
  }
  const inRoomSockets = await io.in('room').fetchSockets();
  const operator: BroadcastOperator<DefaultEventsMap, any> = io.to('room').except('other');
  const fromNamespace = await main.to('room').fetchSockets();
  void [inRoomSockets, operator, fromNamespace];

  const closing: Promise<void> = io.close();
  io.close((err) => void err?.message);
  await closing;
  void [same, emitted, answers, ids, inRoom, path, setPath, serving, servingSet, adapter, clients, counts];
}

// ---- namespaces ---------------------------------------------------------------------

async function namespaces(io: Server): Promise<void> {
  const nsp = io.of('/chat');
  const name: string = nsp.name;
  const sockets: Map<string, Socket> = nsp.sockets;
  const adapter: Adapter = nsp.adapter;
  const members: Set<string> | undefined = nsp.adapter.rooms.get('room');
  const roomsOf: Set<string> | undefined = nsp.adapter.sids.get('id');
  const server: Server = nsp.server;
  nsp.on('connection', (socket) => socket.join('lobby'));
  nsp.once('connect', (socket) => void socket.id);
  // @ts-expect-error server-side events are not supported
  nsp.on('ping', () => {});
  nsp.use((socket, next) => (socket.handshake.query.room ? next() : next(new Error('no room'))));
  nsp.emit('news', 1);
  nsp.send('hi').emit('news', 0);
  nsp.write('hi');
  nsp.to('a').in('b').except('c').emit('news', 2);
  nsp.volatile.emit('tick');
  nsp.local.emit('news', 3);
  nsp.compress(true).emit('news', 4);
  nsp.timeout(500).emit('question', (err: Error | null, answers: unknown[]) => void [err, answers]);
  const answers: unknown[] = await nsp.timeout(500).emitWithAck('question');
  const ids: Set<string> = await nsp.allSockets();
  const found = await nsp.fetchSockets();
  nsp.socketsJoin('all');
  nsp.socketsLeave('all');
  nsp.disconnectSockets(false);
  // @ts-expect-error serverSideEmit throws ERR_PALAVER_UNSUPPORTED
  nsp.serverSideEmit('hello');
  void [name, sockets, adapter, members, roomsOf, server, answers, ids, found];
}

// ---- sockets ------------------------------------------------------------------------

async function sockets(socket: Socket): Promise<void> {
  const id: string = socket.id;
  const nsp: Namespace = socket.nsp;
  const connected: boolean = socket.connected;
  const disconnected: boolean = socket.disconnected;
  const recovered: boolean = socket.recovered;
  const rooms: Set<string> = socket.rooms;
  const handshake: Handshake = socket.handshake;
  const headers: string | undefined = socket.handshake.headers['user-agent'];
  const issued: number = handshake.issued;
  const time: string = handshake.time;
  const address: string = handshake.address;
  const flags: boolean[] = [handshake.xdomain, handshake.secure];
  const url: string = handshake.url;
  const query: string | string[] | undefined = handshake.query.room;
  const auth: unknown = handshake.auth.token;
  const cookie: string | undefined = socket.request.headers.cookie;
  const remoteAddress: string = socket.request.socket.remoteAddress;
  const transport: 'websocket' | 'polling' = socket.conn.transport.name;
  const same: string = socket.client.conn.remoteAddress;
  // @ts-expect-error socket.conn emits no events (no `upgrade`)
  socket.conn.once('upgrade', () => {});

  socket.on('event', (...args: unknown[]) => void args);
  socket.once('event', () => {});
  socket.on('disconnecting', (reason) => {
    const stillIn: Set<string> = socket.rooms;
    void [reason, stillIn];
  });
  socket.on('disconnect', (reason, description) => void [reason, description]);
  socket.on('error', (error) => void error.message);
  socket.off('event', () => {});
  socket.removeAllListeners('event');

  socket.use(([event, ...args]: Event, next) => {
    if (event === 'forbidden') return next(new Error('forbidden'));
    void args;
    next();
  });
  socket.onAny((event: string, ...args: unknown[]) => void [event, args]);
  socket.prependAny(() => {});
  socket.offAny();
  const any: ((...args: any[]) => void)[] = socket.listenersAny();
  socket.onAnyOutgoing((event: string) => void event);
  socket.prependAnyOutgoing(() => {});
  socket.offAnyOutgoing(() => {});
  const anyOut: ((...args: any[]) => void)[] = socket.listenersAnyOutgoing();

  const emitted: boolean = socket.emit('hello', 'world', { binary: Buffer.alloc(4) });
  socket.emit('question', (answer: unknown) => void answer);
  socket.timeout(1000).emit('question', (err: Error | null, answer: unknown) => void [err, answer]);
  const answer: unknown = await socket.emitWithAck('question');
  const timed: unknown = await socket.timeout(1000).emitWithAck('question');
  socket.send('hi').emit('more');
  socket.write('hi');
  socket.volatile.emit('tick');
  socket.compress(false).emit('big', 'data');
  socket.broadcast.emit('joined', socket.id);
  socket.broadcast.to('room').emit('joined', socket.id);
  socket.to('room').except('other').emit('news');
  socket.in(['a', 'b']).emit('news');
  socket.except('room').emit('news');
  socket.local.emit('news');
  socket.join('room');
  socket.join(['room1', 'room2']);
  await socket.join('room3');
  socket.leave('room');
  const self: Socket = socket.disconnect();
  socket.disconnect(true);
  void [id, nsp, connected, disconnected, recovered, rooms, headers, issued, time, address, flags, url, query];
  void [auth, cookie, remoteAddress, transport, same, any, anyOut, emitted, answer, timed, self];
}

// ---- errors and exports -------------------------------------------------------------

function errors(): void {
  try {
    new Server(http.createServer(), { path: '/socket.io' });
  } catch (error) {
    if (error instanceof PalaverError) {
      const code: string = error.code;
      const message: string = error.message;
      void [code, message];
    }
  }
  const made: Error = new PalaverError('ERR_PALAVER_UNSUPPORTED', 'unsupported');
  void made;
  // @ts-expect-error attach() needs an http(s) server or a port
  new Server().attach({});
  // @ts-expect-error the constructor takes an http(s) server, a port or options
  new Server('options');
  // @ts-expect-error namespaces, sockets and broadcast operators come from the server
  new Namespace(new Server(), '/x');
  // @ts-expect-error sockets come from the server
  new Socket();
}

const exported: [typeof Server, typeof Namespace, typeof Socket, typeof PalaverError] = [
  createServer.Server,
  createServer.Namespace,
  createServer.Socket,
  createServer.PalaverError,
];
const others: [typeof BroadcastOperator, typeof RemoteSocket] = [createServer.BroadcastOperator, createServer.RemoteSocket];
void [roomChat, loginChat, helloChat, tokenChat, typedEvents, defaults, refusedOptions, server, namespaces, sockets];
void [errors, exported, others];
