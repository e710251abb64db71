'use strict';
// A client that stays connected but stops reading (its TCP window shut) while its
// room keeps talking: once its session times out (no pong), the session is over
// for the server too. The write that cannot finish is abandoned, the connection
// closed and the session's slot given back, instead of being held for as long as
// the client keeps its socket open.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const WebSocket = require('ws');
const { startServer } = require('../support/server.js');
const { pool } = require('../support/e2e.js');

const FAST = {
  messages_per_second: 10000,
  message_burst: 10000,
  requests_per_second: 10000,
  request_burst: 10000,
  max_text_chars: 50000,
};

async function statsUntil(server, predicate, what, ms) {
  const deadline = Date.now() + ms;
  let stats;
  while (Date.now() < deadline) {
    stats = await server.stats();
    if (predicate(stats)) return stats;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`${what}: not within ${ms} ms (last: sessions ${stats.sessions}, connections ${stats.connections})`);
}

test('a client that stops reading and stays connected does not keep its session', async (t) => {
  const server = await startServer({
    admin: true,
    config: { limits: FAST, transport: { ping_interval_ms: 500, ping_timeout_ms: 500 } },
  });
  t.after(() => server.stop());
  const clients = pool(t, server.url);
  const room = 'talkative';
  const bob = await clients.member('Bob Talks', [room]);

  const url = `${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
  const reader = new WebSocket(url);
  t.after(() => reader.terminate());
  const joined = new Promise((resolve, reject) => {
    reader.on('error', reject);
    reader.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('0{')) reader.send('40{"name":"Zed Stops"}');
      else if (text.startsWith('40{')) reader.send(`421["join",{"room":"${room}"}]`);
      else if (text.startsWith('431[')) resolve();
      else if (text === '2') reader.send('3');
    });
  });
  await joined;
  await statsUntil(server, (s) => s.sessions === 2 && s.connections === 2, 'both connected', 5000);
  // Zed's client stops reading from the kernel: its receive window fills, then the
  // server's send buffer, and the server's write to it cannot finish.
  reader._socket.pause();
  const text = 'z'.repeat(50000);
  for (let i = 0; i < 300; i += 20) {
    const acks = await Promise.all(Array.from({ length: 20 }, () => bob.request('message', { room, text })));
    for (const ack of acks) assert.equal(ack.ok, true, JSON.stringify(ack).slice(0, 200));
  }
  // Zed never answers a ping: the session times out about a second later. The
  // server gives its session up within a few seconds more, although Zed's socket
  // is still open.
  await statsUntil(server, (s) => s.sessions === 1 && s.connections === 1, 'the stalled session given up', 20000);
  assert.equal(reader.readyState, WebSocket.OPEN, 'the test keeps its side open');
});
