'use strict';
// Engine.IO sessions per address when the chat is attached to the host's own
// http.Server: long-polling handshakes are forwarded to the engine and WebSocket
// upgrades handed over, and both count against limits.maxSessionsPerIp.

const assert = require('node:assert/strict');
const http = require('node:http');
const { test } = require('node:test');
const WebSocket = require('ws');
const palaver = require('..');
const { TEST_OPTIONS, closeServer, listen, request } = require('./helpers');

/** A WebSocket handshake's HTTP status: 101 when it opens. */
function websocketStatus(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    ws.on('open', () => {
      resolve({ status: 101, ws });
    });
    ws.on('unexpected-response', (_req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    ws.on('error', reject);
  });
}

test('handshakes past limits.maxSessionsPerIp are refused with 429 on the attached server', { timeout: 60_000 }, async (t) => {
  const server = http.createServer((req, res) => res.end('app'));
  const chat = palaver(server, { ...TEST_OPTIONS, limits: { maxSessionsPerIp: 2 }, transport: { connectTimeoutMs: 60000 } });
  const port = await listen(server);
  const open = [];
  t.after(async () => {
    for (const ws of open) ws.terminate();
    await chat.close();
    await closeServer(server);
  });
  const polling = await request(port, 'GET', '/socket.io/?EIO=4&transport=polling');
  assert.equal(polling.status, 200, polling.body);
  const upgraded = await websocketStatus(port);
  assert.equal(upgraded.status, 101);
  open.push(upgraded.ws);

  const refusedPolling = await request(port, 'GET', '/socket.io/?EIO=4&transport=polling');
  assert.equal(refusedPolling.status, 429);
  assert.equal(JSON.parse(refusedPolling.body).code, 'too_many_connections');
  const refusedUpgrade = await websocketStatus(port);
  assert.equal(refusedUpgrade.status, 429);
  assert.equal(JSON.parse(refusedUpgrade.body).code, 'too_many_connections');
  const stats = chat.stats();
  assert.ok(stats.connections_refused >= 2, JSON.stringify(stats));
  assert.equal(stats.sessions, 2, JSON.stringify(stats));
  // The host's own routes are not affected.
  assert.equal((await request(port, 'GET', '/')).body, 'app');
});
