// Type-checked (never run) by types.test.js: `tsc --noEmit --strict` over the
// declared API of index.d.ts, as a CommonJS TypeScript module importing the package
// by name. The @ts-expect-error lines must stay errors: they keep the types honest.
import http from 'node:http';
import https from 'node:https';
import palaver, { PalaverError, Server } from 'palaver';
import type {
  ChatMessage,
  ConnectedEvent,
  CustomEvent,
  RoomInfo,
  ServerOptions,
  Stats,
  User,
} from 'palaver';

const options: ServerOptions = {
  host: '127.0.0.1',
  identity: {
    mode: 'token',
    tokenSecret: 'secret',
    tokenLeewaySecs: 30,
    tokenSecrets: ['previous'],
    tokenIssuer: 'https://auth.example.com/',
    tokenAudience: 'chat',
    tokenExpiryNoticeSecs: 60,
  },
  history: { storage: 'memory', memoryMaxPerRoom: 100, onJoin: 20, pageMax: 50 },
  corsOrigins: ['https://example.com'],
  allowedHosts: ['chat.example.com', '*.example.org'],
  limits: { maxTextChars: 500, messagesPerSecond: 5, maxConnectionsPerIp: 10 },
  roomList: { intervalMs: 100, groupList: false },
  transport: { pingIntervalMs: 10_000, websocket: true, polling: true },
  cluster: { redisUrl: null, keyPrefix: 'app' },
  hostAckTimeoutMs: 2000,
  stopTimeoutMs: 1000,
  // snake_case keys are accepted as they are
  event_queue_capacity: 1024,
};

// @ts-expect-error identity.mode is 'open' or 'token'
const badMode: ServerOptions = { identity: { mode: 'jwt' } };
// @ts-expect-error limits are numbers
const badLimit: ServerOptions = { limits: { maxTextChars: '10' } };
void badMode;
void badLimit;

async function attached(): Promise<void> {
  const server = http.createServer((_req, res) => res.end('app'));
  const chat: Server = palaver(server, options);
  const same: Server = palaver(server);
  const secure: Server = new Server().attach(https.createServer());
  const onItsOwn: Server = palaver(3001, { history: { storage: 'memory' } });
  const unstarted: Server = palaver({ limits: { maxTextChars: 100 } });
  const port: number | null = onItsOwn.port;
  void [same, secure, unstarted, port];

  chat
    .on('connected', (event: ConnectedEvent) => {
      const transport: 'websocket' | 'polling' = event.transport;
      const address: string | null = event.address;
      const user: User | null = event.user;
      void [transport, address, user];
    })
    .on('disconnected', (event) => {
      const reason: string = event.reason;
      void reason;
    })
    .on('joined', (event) => {
      const room: string = event.room;
      const name: string = event.user.name;
      void [room, name];
    })
    .on('left', (event) => void event.room)
    .on('message', (event) => {
      const message: ChatMessage = event.message;
      const kind: 'chat' | 'join' | 'leave' = message.kind;
      const id: string | null = message.id;
      void [kind, id, message.ts];
    })
    .on('private', (event) => {
      const from: string = event.message.from.id;
      const to: string = event.message.to.name;
      void [from, to];
    })
    .on('custom', (event: CustomEvent) => {
      const name: string = event.event;
      if (event.ack) {
        const answered: boolean = event.ack({ ok: true, name });
        void answered;
      }
      // @ts-expect-error ack may be null
      event.ack({ ok: true });
    })
    .on('error', (error) => {
      const message: string = error.message;
      void message;
    });
  const once = (event: { sid: string }) => void event.sid;
  chat.once('joined', once).off('joined', once);

  // @ts-expect-error no such event
  chat.on('nonsense', () => {});
  // @ts-expect-error the listener gets a message event, which has no `room`
  chat.on('message', (event) => void event.room);

  await chat.emit('announcement', { text: 'hello' });
  await chat.emit('ping');
  await chat.to('lobby').emit('news', [1, 2, 3]);
  await chat.in('lobby').emit('news', null);
  await chat.toUser('ada').emit('direct', { private: true });
  const kicked: number = await chat.disconnectUser('ada');
  const kickedWithReason: number = await chat.disconnectUser('bob', 'spam');
  const rooms: RoomInfo[] = await chat.rooms();
  const members: User[] = rooms[0]?.members ?? [];
  const stats: Stats = chat.stats();
  const counts: number = stats.connections + stats.users_online + stats.messages + stats.events_dropped;
  void [kicked, kickedWithReason, members, counts, stats.cluster?.node_id];

  // @ts-expect-error to() takes a room name
  chat.to(42);
  // @ts-expect-error stats() is synchronous
  await chat.stats().then(() => {});

  const closing: Promise<void> = chat.close();
  await closing;
}

function errors(): void {
  try {
    new Server().attach(http.createServer());
  } catch (error) {
    if (error instanceof PalaverError) {
      const code: string = error.code;
      const message: string = error.message;
      void [code, message];
    }
  }
  const made = new PalaverError('ERR_PALAVER_CLOSED', 'closed');
  const asError: Error = made;
  void asError;
  // @ts-expect-error attach() needs an http(s) server
  new Server().attach({});
  // @ts-expect-error options are an object
  new Server('options');
}

// The default export is also a property, as in index.js.
const viaDefault: typeof palaver = palaver.default;
const viaProperty: typeof Server = palaver.Server;
void [attached, errors, viaDefault, viaProperty];
