'use strict';
// Engine behaviour the Node package depends on, checked through the package:
// polling clients are told goodbye at close, and addresses do not depend on the
// transport.

const assert = require('node:assert/strict');
const http = require('node:http');
const { once } = require('node:events');
const { test } = require('node:test');
const palaver = require('..');
const { TEST_OPTIONS, HostLog, closeServer, connect, listen, request, sleep, waitFor } = require('./helpers');

test('allowedHosts: a request sent to another host name is refused (DNS rebinding)', { timeout: 15_000 }, async () => {
  const server = http.createServer();
  const chat = palaver(server, { ...TEST_OPTIONS, allowedHosts: ['chat.example.com'] });
  const port = await listen(server);
  // The client script is behind the same checks as the transport and opens no session.
  const script = (host) =>
    request(port, 'GET', '/socket.io/socket.io.js', { headers: { Host: host, Origin: `http://${host}` } });
  try {
    const rebound = await script(`attacker.example:${port}`);
    assert.equal(rebound.status, 403);
    assert.equal(JSON.parse(rebound.body).code, 'host_not_allowed');
    assert.equal((await script(`chat.example.com:${port}`)).status, 200);
    assert.equal((await script(`localhost:${port}`)).status, 200);
    assert.equal((await script(`127.0.0.1:${port}`)).status, 200);
  } finally {
    await chat.close();
    await closeServer(server);
  }
});

test(
  'close(): a polling client is told goodbye like a WebSocket one ("io server disconnect")',
  {
    timeout: 15_000,
  },
  async () => {
    const server = http.createServer();
    const chat = palaver(server, TEST_OPTIONS);
    const port = await listen(server);
    const pat = await connect(port, { transports: ['polling'], auth: { name: 'gap-pat' } });
    try {
      await pat.emitWithAck('join', { room: 'gap' });
      await sleep(100); // idle: a poll is pending
      const gone = waitFor(pat, 'disconnect', { timeout: 10_000 });
      await chat.close();
      assert.equal(await gone, 'io server disconnect');
    } finally {
      pat.close();
      await chat.close();
      await closeServer(server);
    }
  },
);

test(
  'the per-IP limit counts a client once, whatever its transport, on a dual-stack server',
  {
    timeout: 15_000,
  },
  async () => {
    const server = http.createServer();
    const chat = palaver(server, { ...TEST_OPTIONS, limits: { maxConnectionsPerIp: 1 } });
    const host = new HostLog(chat);
    server.listen(0); // all addresses, as app.listen(3000) does
    await once(server, 'listening');
    const { port } = server.address();
    const sockets = [];
    try {
      sockets.push(await connect(port, { transports: ['polling'], auth: { name: 'ip-one' } }));
      const second = connect(port, { transports: ['websocket'], auth: { name: 'ip-two' } });
      second.then((s) => sockets.push(s), () => {});
      const addresses = () => host.of('connected').map((e) => e.address);
      await assert.rejects(second, { message: 'too_many_connections' }, `admitted twice: ${addresses()}`);
    } finally {
      for (const socket of sockets) socket.close();
      await chat.close();
      await closeServer(server);
    }
  },
);
