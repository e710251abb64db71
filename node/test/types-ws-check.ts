// Type-checked (never run) by types.test.js: `tsc --noEmit --strict` over the declared
// API of ws.d.ts, as a CommonJS TypeScript module importing 'palaver/ws' by name, the
// way apps written for `ws` use it (the echo server of tutorial 003, ws's README
// examples). The @ts-expect-error lines must stay errors: they are what @types/ws
// refuses too, or what palaver/ws refuses at runtime.
import http from 'node:http';
import https from 'node:https';
import WebSocket = require('palaver/ws');
import type { IncomingMessage } from 'node:http';

// The echo server of tutorial 003: `const WebSocket = require('ws'); new WebSocket.Server({port: 3000})`.
function echo(): void {
  const wss = new WebSocket.Server({ port: 3000 });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      ws.send(data + '举头望明月，低头思故乡,');
    });
    ws.on('close', () => {});
  });
}

// ws's README: broadcast to every other client, binary or text as received.
function broadcast(server: http.Server): void {
  const wss = new WebSocket.WebSocketServer({ server, path: '/chat', clientTracking: true });
  wss.on('connection', function connection(ws, request) {
    ws.on('error', console.error);
    ws.on('message', function message(data, isBinary) {
      wss.clients.forEach(function each(client) {
        if (client !== ws && client.readyState === WebSocket.OPEN) {
          client.send(data, { binary: isBinary });
        }
      });
    });
    const ip: string | undefined = request.socket.remoteAddress;
    const forwarded = request.headers['x-forwarded-for'];
    const url = new URL(request.url, 'http://localhost');
    ws.send(`hello ${ip ?? forwarded ?? ''} ${url.searchParams.get('name') ?? ''}`);
  });
}

// ws's README: detect and close broken connections.
function heartbeat(): void {
  const wss = new WebSocket.Server({ port: 8080 });
  const alive = new WeakSet<WebSocket>();
  wss.on('connection', (ws) => {
    alive.add(ws);
    ws.on('pong', function onPong(data: Buffer) {
      alive.add(this);
      void data;
    });
    // @ts-expect-error as with @types/ws, a WebSocket takes no property of the app's own
    ws.isAlive = true;
  });
  const interval = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, 30_000);
  wss.on('close', () => clearInterval(interval));
}

async function api(): Promise<void> {
  const options: WebSocket.ServerOptions = {
    port: 0,
    host: '127.0.0.1',
    path: '/',
    maxPayload: 1 << 20,
    clientTracking: true,
    backlog: 511,
    perMessageDeflate: false,
    skipUTF8Validation: false,
    autoPong: true,
    allowSynchronousEvents: true,
    palaver: { limits: { requestsPerSecond: 100, maxConnectionsPerIp: 10 }, stopTimeoutMs: 1000 },
  };
  const wss: WebSocket.Server = new WebSocket.Server(options, () => {});
  const same: WebSocket.WebSocketServer = wss;
  const attached = new WebSocket.Server({ server: http.createServer() });
  const secure = new WebSocket.Server({ server: https.createServer(), path: '/ws' });
  const untracked = new WebSocket.Server({ port: 0, clientTracking: false });

  const kept: WebSocket.ServerOptions = wss.options;
  const path: string | undefined = wss.path;
  const clients: Set<WebSocket> = wss.clients;
  const address = wss.address();
  const port: number | undefined = address?.port;
  const info: WebSocket.AddressInfo | null = attached.address();
  const handles: boolean = wss.shouldHandle({ headers: { upgrade: 'websocket' }, url: '/' });
  const fromRequest = (req: IncomingMessage): boolean => wss.shouldHandle(req);

  wss
    .on('listening', function onListening() {
      const self: WebSocket.Server = this;
      void self;
    })
    .on('error', (error) => void error.message)
    .on('close', () => {})
    .on('connection', (ws, request) => {
      const method: 'GET' = request.method;
      const url: string = request.url;
      const agent: string | undefined = request.headers['user-agent'];
      const address: string | undefined = request.connection.remoteAddress;
      void [method, url, agent, address];

      ws.binaryType = 'arraybuffer';
      ws.binaryType = 'fragments';
      ws.binaryType = 'nodebuffer';
      const state: 0 | 1 | 2 | 3 = ws.readyState;
      const open: boolean = ws.readyState === ws.OPEN && ws.OPEN === WebSocket.OPEN;
      const constants: number[] = [ws.CONNECTING, ws.CLOSING, ws.CLOSED, WebSocket.CONNECTING, WebSocket.CLOSING, WebSocket.CLOSED];
      const protocol: string = ws.protocol;
      const extensions: string = ws.extensions;
      const buffered: number = ws.bufferedAmount;
      const url2: undefined = ws.url;

      ws.on('message', function onMessage(data, isBinary) {
        const self: WebSocket = this;
        const raw: WebSocket.RawData = data;
        if (isBinary && data instanceof ArrayBuffer) void data.byteLength;
        else if (Array.isArray(data)) void Buffer.concat(data);
        else void data.toString('utf8');
        void [self, raw];
      });
      ws.once('close', (code, reason) => {
        const number: number = code;
        const text: string = reason.toString();
        void [number, text];
      });
      ws.on('error', (error) => void error.message);
      const onPong = (data: Buffer) => void data;
      ws.on('pong', onPong).off('pong', onPong);
      ws.addListener('message', (data) => void data);
      ws.removeListener('close', () => {});

      ws.send('text');
      ws.send(42);
      ws.send(Buffer.from('binary'));
      ws.send(new Uint8Array([1, 2, 3]));
      ws.send(new ArrayBuffer(8));
      ws.send('as bytes', { binary: true });
      ws.send(Buffer.from('as text'), { binary: false, compress: false, mask: false }, (err) => void err?.message);
      ws.send('sent', (err) => {
        if (err) void err.message;
      });
      ws.ping();
      ws.ping('payload');
      ws.ping(Buffer.from('payload'));
      ws.pong();
      ws.pause();
      ws.resume();
      ws.close();
      ws.close(1000);
      ws.close(4000, 'bye');
      ws.close(4001, Buffer.from('bye'));
      ws.terminate();

      // @ts-expect-error send() takes no object (stringify it)
      ws.send({ json: true });
      // @ts-expect-error fragmented sends are not supported
      ws.send('part', { fin: false });
      // @ts-expect-error the engine answers pings: ping() takes no callback
      ws.ping(undefined, undefined, () => {});
      // @ts-expect-error palaver/ws never emits `ping` (the engine answers pings)
      ws.on('ping', () => {});
      // @ts-expect-error palaver/ws never emits `open` (connections are open when handed over)
      ws.on('open', () => {});
      // @ts-expect-error as with @types/ws, `message` gives RawData, not a string
      ws.on('message', (message: string) => void message);
      // @ts-expect-error the on<event> properties are not supported
      ws.onmessage = () => {};
      // @ts-expect-error addEventListener is not supported
      ws.addEventListener('message', () => {});
      // @ts-expect-error readyState is read-only
      ws.readyState = WebSocket.CLOSED;
      void [state, open, constants, protocol, extensions, buffered, url2];
    });
  // @ts-expect-error the request is what the engine read of the upgrade, not an http.IncomingMessage
  wss.on('connection', (_ws: WebSocket, _req: IncomingMessage) => {});
  // @ts-expect-error palaver/ws never emits `headers`
  wss.on('headers', (headers: string[]) => void headers);
  // @ts-expect-error palaver/ws never emits `wsClientError`
  wss.on('wsClientError', () => {});

  const closing: Promise<void> = wss.close();
  attached.close((err) => void err?.message);
  await closing;
  void [same, secure, untracked, kept, path, clients, port, info, handles, fromRequest];
}

function refused(server: http.Server): void {
  // @ts-expect-error one of `port` and `server` is needed (a TypeError otherwise)
  new WebSocket.Server({ path: '/' });
  // @ts-expect-error only one of `port` and `server` (a TypeError otherwise)
  new WebSocket.Server({ port: 3000, server });
  // @ts-expect-error options are needed
  new WebSocket.Server();
  // @ts-expect-error noServer is not supported (a TypeError)
  new WebSocket.Server({ noServer: true });
  // @ts-expect-error verifyClient throws ERR_PALAVER_UNSUPPORTED
  new WebSocket.Server({ port: 3000, verifyClient: () => true });
  // @ts-expect-error handleProtocols throws ERR_PALAVER_UNSUPPORTED
  new WebSocket.Server({ port: 3000, handleProtocols: () => false });
  // @ts-expect-error a custom WebSocket class is not supported
  new WebSocket.Server({ port: 3000, WebSocket });
  const wss = new WebSocket.Server({ server });
  // @ts-expect-error handleUpgrade (noServer mode) throws ERR_PALAVER_UNSUPPORTED
  wss.handleUpgrade();
  // @ts-expect-error palaver/ws is a server: the constructor throws ERR_PALAVER_UNSUPPORTED
  new WebSocket('ws://localhost:3000');
  // @ts-expect-error createWebSocketStream is not provided
  WebSocket.createWebSocketStream;
}

function errors(): void {
  try {
    new WebSocket.Server({ port: 80 });
  } catch (error) {
    if (error instanceof WebSocket.PalaverError) {
      const code: string = error.code;
      void code;
    }
  }
}

// The exports of ws.js: the class with the server beside it, and itself as `default`.
const aliases: [typeof WebSocket.Server, typeof WebSocket, typeof WebSocket] = [
  WebSocket.WebSocketServer,
  WebSocket.WebSocket,
  WebSocket.default,
];
void [echo, broadcast, heartbeat, api, refused, errors, aliases];
