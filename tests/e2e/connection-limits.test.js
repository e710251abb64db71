'use strict';
// Connection limits below Socket.IO: Engine.IO sessions per IP address from the
// handshake on, TCP connections per IP address and in all, the header timeout,
// and configuration values out of range. Clients from a second address use
// 127.0.0.2 (the whole 127.0.0.0/8 is loopback on Linux).

const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { test } = require('node:test');
const WebSocket = require('ws');
const { startServer, connect } = require('../support/server.js');

const OTHER_ADDRESS = '127.0.0.2';

/** A raw HTTP request; `localAddress` picks the client's address. */
function request(url, { path = '/', localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, url), { agent: false, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(20000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.end();
  });
}

/** An Engine.IO polling handshake (a session that never joins a namespace). */
const handshake = (url, localAddress) => request(url, { path: '/socket.io/?EIO=4&transport=polling', localAddress });

/** The server's counters (admin listener, so the request is no chat socket). */
const stats = (server) => server.stats();

/** Polls the counters until `predicate(stats)` holds (the server's own state, no fixed sleep). */
async function statsUntil(server, predicate, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await stats(server);
    if (predicate(current)) return current;
    if (Date.now() > deadline) throw new Error(`stats never showed ${what}: ${JSON.stringify(current)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A WebSocket handshake's HTTP status when it is refused, or 101. */
function websocketStatus(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('unexpected-response', (_req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    ws.on('error', (e) => reject(e));
  });
}

/** A raw TCP connection; `serverClosed` resolves when the server closes it. */
function openSocket(url, localAddress) {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port), localAddress });
  socket.on('error', () => {});
  socket.serverClosed = new Promise((resolve) => socket.on('close', resolve));
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

test('Engine.IO sessions that never connect count against max_sessions_per_ip and show in stats', async (t) => {
  const server = await startServer({
    admin: true,
    config: { limits: { max_sessions_per_ip: 4 }, transport: { connect_timeout_ms: 60000 } },
  });
  t.after(() => server.stop());
  for (let i = 0; i < 4; i++) {
    const { status, body } = await handshake(server.url);
    assert.equal(status, 200, body);
    assert.match(body, /^0\{"sid"/);
  }
  assert.equal((await stats(server)).sessions, 4);

  const refused = await handshake(server.url);
  assert.equal(refused.status, 429);
  assert.equal(JSON.parse(refused.body).code, 'too_many_connections');
  const ws = await websocketStatus(server.url);
  assert.equal(ws.status, 429);
  assert.equal(JSON.parse(ws.body).code, 'too_many_connections');
  // A stock client sees a connect_error, like any refused handshake.
  await assert.rejects(connect(server.url, { transports: ['polling'] }));

  const after = await stats(server);
  assert.equal(after.sessions, 4, 'refused handshakes hold no session');
  assert.equal(after.connections, 0);
  assert.ok(after.connections_refused >= 3, JSON.stringify(after));
  assert.equal(after.refusals.too_many_connections, after.connections_refused, 'counted by code too');
  // Another address is not affected.
  assert.equal((await handshake(server.url, OTHER_ADDRESS)).status, 200);
});

test('a session that never connects ends after connect_timeout_ms and frees its slot', async (t) => {
  const server = await startServer({
    admin: true,
    config: { limits: { max_sessions_per_ip: 2 }, transport: { connect_timeout_ms: 500 } },
  });
  t.after(() => server.stop());
  assert.equal((await handshake(server.url)).status, 200);
  assert.equal((await handshake(server.url)).status, 200);
  await statsUntil(server, (s) => s.sessions === 0, 'both sessions ended');
  assert.equal((await handshake(server.url)).status, 200);
  // A client that does connect holds its session for as long as it is connected.
  const socket = await connect(server.url, { auth: { name: 'Kept' } });
  t.after(() => socket.close());
  assert.equal((await stats(server)).sessions, 2);
  await statsUntil(server, (s) => s.sessions === 1, 'the unconnected session ended');
  assert.equal(socket.connected, true);
  socket.close();
  await statsUntil(server, (s) => s.sessions === 0, 'the closed session ended');
});

test('the default connect_timeout_ms is 5 s', async (t) => {
  const server = await startServer({ admin: true });
  t.after(() => server.stop());
  const started = Date.now();
  assert.equal((await handshake(server.url)).status, 200);
  await statsUntil(server, (s) => s.sessions === 0, 'the session ended', 20000);
  assert.ok(Date.now() - started < 8000, `took ${Date.now() - started} ms`);
});

test('TCP connections per address are capped at accept; other addresses are served', async (t) => {
  const server = await startServer({ admin: true, config: { limits: { max_sockets_per_ip: 3 } } });
  t.after(() => server.stop());
  const idle = [];
  t.after(() => idle.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) idle.push(await openSocket(server.url));
  await statsUntil(server, (s) => s.sockets === 3, 'three idle sockets');
  const extra = await openSocket(server.url);
  await extra.serverClosed; // closed by the server at once
  // Another address is still served.
  assert.equal((await request(server.url, { path: '/healthz', localAddress: OTHER_ADDRESS })).status, 200);
  assert.ok((await stats(server)).sockets_refused >= 1);
  // A closed socket gives its place back.
  idle.shift().destroy();
  await statsUntil(server, (s) => s.sockets === 2, 'the closed socket uncounted');
  assert.equal((await request(server.url, { path: '/healthz' })).status, 200);
});

test('TCP connections of all addresses together are capped by limits.max_sockets', async (t) => {
  const server = await startServer({ admin: true, config: { limits: { max_sockets: 3 } } });
  t.after(() => server.stop());
  // Accepted in the order they connect: the fourth finds the server full.
  const idle = [await openSocket(server.url), await openSocket(server.url, OTHER_ADDRESS), await openSocket(server.url)];
  t.after(() => idle.forEach((s) => s.destroy()));
  const extra = await openSocket(server.url, OTHER_ADDRESS);
  await extra.serverClosed;
  idle.pop().destroy();
  idle.pop().destroy();
  // Room again once the server has seen them close: a request is served.
  const deadline = Date.now() + 30000;
  for (;;) {
    const answer = await request(server.url, { path: '/healthz', localAddress: OTHER_ADDRESS }).catch(() => null);
    if (answer && answer.status === 200) {
      const counted = await stats(server);
      assert.ok(counted.sockets_refused >= 1, JSON.stringify(counted));
      assert.ok(counted.sockets <= 3, JSON.stringify(counted));
      break;
    }
    assert.ok(Date.now() < deadline, 'no request served after sockets closed');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(idle[0].destroyed, false, 'the first connection is still open');
});

test('a connection that sends no request headers is closed after transport.header_timeout_ms', async (t) => {
  const server = await startServer({ config: { transport: { header_timeout_ms: 300 } } });
  t.after(() => server.stop());
  const started = Date.now();
  const idle = await openSocket(server.url);
  t.after(() => idle.destroy());
  await idle.serverClosed;
  assert.ok(Date.now() - started < 15000, `closed after ${Date.now() - started} ms`);
  // A client that does speak is served as before: a long-poll waiting for its
  // answer is not a connection waiting for headers.
  const socket = await connect(server.url, { auth: { name: 'Talker' }, transports: ['polling'] });
  t.after(() => socket.close());
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(socket.connected, true);
});

test('an oversized duration or size in the configuration stops the start with a message', async () => {
  for (const [config, name] of [
    [{ transport: { ping_interval_ms: 1e19 } }, 'transport.ping_interval_ms'],
    [{ cluster: { heartbeat_ms: 1e19 } }, 'cluster.heartbeat_ms'],
    [{ transport: { max_buffer_size: 1e19 } }, 'transport.max_buffer_size'],
    [{ limits: { ipv6_prefix_len: 129 } }, 'limits.ipv6_prefix_len'],
    [{ worker_threads: 1e19 }, 'worker_threads'],
  ]) {
    await assert.rejects(startServer({ config }), (err) => {
      assert.match(err.message, new RegExp(`${name.replace('.', '\\.')} must be at most`), err.message);
      assert.doesNotMatch(err.message, /panicked/);
      return true;
    });
  }
});
