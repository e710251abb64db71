'use strict';
// Each connection's outgoing queue is bounded in bytes as well as in packets
// (transport.max_buffer_bytes): a client that stops reading while large packets
// are sent to it makes the server hold at most that many bytes (plus one packet),
// and the rest is dropped and counted, never queued without bound.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { startServer } = require('../support/server.js');
const { pool } = require('../support/e2e.js');

const FAST = { messages_per_second: 10000, message_burst: 10000, requests_per_second: 10000, request_burst: 10000 };

test('a connection that stops reading holds at most transport.max_buffer_bytes of packets', async (t) => {
  const server = await startServer({
    admin: true,
    config: { limits: FAST, transport: { max_buffer_size: 1024, max_buffer_bytes: 65536 } },
  });
  t.after(() => server.stop());
  const clients = pool(t, server.url);
  const room = 'big-packets';
  const bob = await clients.member('Bob Big', [room]);
  const ada = await clients.member('Ada Paused', [room], { transports: ['polling'] });
  // Ada's long-polling transport pauses once its pending poll returns.
  const transport = ada.socket.io.engine.transport;
  const paused = new Promise((resolve) => transport.pause(resolve));
  await bob.request('message', { room, text: 'ends the pending poll' });
  await paused;
  const before = (await server.stats()).packets_dropped;
  // 100 messages of 2000 characters: about 200 KB, 100 packets. The packet bound
  // (1024) would take them all; the byte bound (64 KiB) takes about 32.
  const text = 'x'.repeat(2000);
  for (let i = 0; i < 100; i += 10) {
    const acks = await Promise.all(Array.from({ length: 10 }, () => bob.request('message', { room, text })));
    for (const ack of acks) assert.equal(ack.ok, true, JSON.stringify(ack).slice(0, 200));
  }
  const dropped = (await server.stats()).packets_dropped - before;
  assert.ok(dropped >= 55 && dropped <= 75, `dropped ${dropped} of 100 packets of 2 KB with a 64 KiB bound`);
  // Reading again, she gets what was kept, whole, and later traffic.
  const from = ada.mark();
  transport.readyState = 'open';
  transport._poll();
  await ada.waitCount('message', 100 - dropped, (m) => m.text === text, { from, timeout: 10000 });
  assert.equal(ada.of('message', from).filter((m) => m.text === text).length, 100 - dropped);
});
