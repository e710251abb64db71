// Type-checked (never run) by types.test.js: 'palaver/ws' from an ES module (module
// nodenext), as `import { WebSocketServer } from "ws"` apps use it; the default import
// is module.exports itself (the WebSocket class with the server beside it).
import { createServer } from 'node:http';
import WebSocket, { WebSocketServer, Server, PalaverError, WebSocket as Connection } from 'palaver/ws';
import type { RawData, ServerOptions, UpgradeRequest } from 'palaver/ws';

const options: ServerOptions = { server: createServer(), path: '/ws', maxPayload: 65536 };
const wss = new WebSocketServer(options);
const other: Server = new WebSocket.Server({ port: 0 }, () => void other.address()?.port);

wss.on('connection', (ws: Connection, request: UpgradeRequest) => {
  ws.on('error', console.error);
  ws.on('message', (data: RawData, isBinary: boolean) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
  ws.send(`welcome ${request.socket.remoteAddress ?? ''}`);
  ws.on('close', (code, reason) => void [code, reason.toString('utf8')]);
});

try {
  new WebSocketServer({ port: 80 });
} catch (error) {
  if (error instanceof PalaverError) void error.code;
}
// @ts-expect-error palaver/ws is a server: open client connections with the npm `ws` package
new Connection('ws://localhost:8080');
await Promise.all([wss.close(), other.close()]);
