'use strict';
// Recovery across the cluster: a client cut off on one node rejoins on another
// with `since` and gets exactly what it missed (room messages from every node,
// private messages sent to it meanwhile), in order, none twice; also when Redis
// went away and came back while it was gone (what the nodes journaled meanwhile
// is in Redis with its offsets by then).

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { io } = require('socket.io-client');
const { startCluster, eventually } = require('../support/cluster.js');
const { TRANSPORTS } = require('../support/e2e.js');

const MISSED = 500;
/** Offline recipients get their private messages at their next connect. */
const STORE_PRIVATE = { history: { private_offline: 'store' } };

/** Sends `count` messages from `senders` in turn, 50 at a time; resolves with the acks in offset order. */
async function sendMany(senders, room, count, prefix) {
  const acks = [];
  for (let start = 0; start < count; start += 50) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + 50); i++) {
      batch.push(senders[i % senders.length].request('message', { room, text: `${prefix} ${i}` }));
    }
    for (const ack of await Promise.all(batch)) {
      assert.equal(ack.ok, true, JSON.stringify(ack));
      acks.push(ack);
    }
  }
  return acks;
}

const strip = ({ ok, ...message }) => message;

/** A socket.io-client socket that the test reconnects by hand, recording room and private messages. */
async function victim(t, url, name, transport) {
  const socket = io(url, { ...transport, forceNew: true, reconnection: false, auth: { name } });
  t.after(() => socket.close());
  const seen = { live: [], privates: [] };
  socket.on('message', (m) => m.kind === 'chat' && seen.live.push(m));
  socket.on('private', (p) => seen.privates.push(p));
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return { socket, seen };
}

async function waitUntil(done, describe, timeout = 10000) {
  const deadline = Date.now() + timeout;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const [transportName, transport] of Object.entries(TRANSPORTS)) {
  test(`cut off on one node, back on the other: every missed room and private message, in order, none twice [${transportName}]`, async (t) => {
    const c = await startCluster(t, { nodes: 2, config: STORE_PRIVATE, name: `recover${transportName}` });
    const [n0, n1] = c.clients;
    const room = 'recover';
    const name = `cut-${transportName}`;
    const bob = await n1.member('bob', [room], transport);
    const cyd = await n0.member('cyd', [room], transport);
    const first = await victim(t, c.nodes[0].url, name, transport);
    assert.equal((await first.socket.timeout(5000).emitWithAck('join', { room })).ok, true);
    const before = await sendMany([bob, cyd], room, 5, 'before');
    await waitUntil(() => first.seen.live.length === 5, () => `live ${first.seen.live.length}`);
    const last = first.seen.live.reduce((a, b) => (a.offset > b.offset ? a : b));
    assert.equal(last.offset, 5);
    const since = { offset: last.offset, epoch: last.epoch };
    assert.deepEqual(before.map((m) => m.epoch), Array(5).fill(since.epoch), 'one epoch across nodes');

    const fromBob = bob.mark();
    first.socket.io.engine.close();
    await bob.wait('message', (m) => m.kind === 'leave' && m.text.includes(name), { from: fromBob, timeout: 10000 });
    const missed = await sendMany([bob, cyd], room, MISSED, 'missed');
    const privates = [];
    for (let i = 0; i < 10; i++) {
      const ack = await (i % 2 ? cyd : bob).request('private', { to: name, text: `private ${i}` });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      privates.push(strip(ack));
    }

    // Back on the other node.
    const second = await victim(t, c.nodes[1].url, name, transport);
    const rejoined = await second.socket.timeout(10000).emitWithAck('join', { room, since });
    assert.equal(rejoined.recovered, true, `recovered: ${rejoined.reason}`);
    assert.equal(rejoined.offset, 5 + MISSED);
    const expected = missed.map(strip).sort((a, b) => a.offset - b.offset);
    assert.deepEqual(rejoined.history, expected, 'exactly the missed messages, in offset order');
    assert.deepEqual(
      rejoined.history.map((m) => m.offset),
      expected.map((_, i) => 6 + i),
    );
    await waitUntil(() => second.seen.privates.length >= 10, () => `private ${second.seen.privates.length}`);
    const byFrom = (list, from) => list.filter((p) => p.from.id === from);
    for (const from of ['bob', 'cyd']) {
      assert.deepEqual(byFrom(second.seen.privates, from), byFrom(privates, from), `private from ${from}`);
    }
    assert.equal(second.seen.privates.length, 10, 'none twice');
  });
}

test('a Redis outage while the client is away: after it, the rejoin still gets everything, journaled messages with their offsets', async (t) => {
  const c = await startCluster(t, { nodes: 2, config: STORE_PRIVATE, name: 'recoveroutage' });
  const [n0, n1] = c.clients;
  const room = 'through-outage';
  const bob = await n1.member('bob', [room]);
  const cyd = await n0.member('cyd', [room]);
  const first = await victim(t, c.nodes[0].url, 'away', {});
  assert.equal((await first.socket.timeout(5000).emitWithAck('join', { room })).ok, true);
  const before = await sendMany([bob], room, 3, 'before');
  await waitUntil(() => first.seen.live.length === 3, () => `live ${first.seen.live.length}`);
  const since = { offset: 3, epoch: before[0].epoch };
  const fromBob = bob.mark();
  first.socket.io.engine.close();
  await bob.wait('message', (m) => m.kind === 'leave' && m.text.includes('away'), { from: fromBob, timeout: 10000 });

  await sendMany([bob, cyd], room, 20, 'ahead of the outage');
  await c.redis.stop();
  await eventually(async () => {
    for (let i = 0; i < 2; i++) assert.equal((await c.health(i)).cluster.redis_connected, false);
  }, { what: 'every node sees the outage' });
  // Journaled on each node, delivered there without an offset.
  const during = await sendMany([bob, cyd], room, 30, 'during');
  for (const ack of during) assert.equal(ack.offset, undefined, 'no offset while journaled');
  await c.redis.restart();
  await eventually(async () => {
    for (let i = 0; i < 2; i++) {
      const { cluster } = await c.health(i);
      assert.equal(cluster.redis_connected, true);
      assert.equal(cluster.journal_pending, 0);
    }
  }, { timeout: 15000, what: 'both journals written to Redis' });
  await sendMany([bob, cyd], room, 20, 'after');

  const second = await victim(t, c.nodes[1].url, 'away', {});
  const rejoined = await second.socket.timeout(10000).emitWithAck('join', { room, since });
  assert.equal(rejoined.recovered, true, `recovered: ${rejoined.reason}`);
  assert.equal(rejoined.offset, 3 + 70);
  assert.deepEqual(rejoined.history.map((m) => m.offset), Array.from({ length: 70 }, (_, i) => 4 + i), 'contiguous');
  // Every message once; each sender's messages in the order they were sent.
  const texts = rejoined.history.map((m) => m.text);
  assert.equal(new Set(texts).size, 70, 'none twice');
  for (const sender of ['bob', 'cyd']) {
    const own = rejoined.history.filter((m) => m.user_id === sender).map((m) => m.text);
    const order = (text) => ['ahead of the outage', 'during', 'after'].findIndex((p) => text.startsWith(p)) * 1000 + Number(text.split(' ').pop());
    assert.deepEqual(own, [...own].sort((a, b) => order(a) - order(b)), `${sender}'s messages in their order`);
  }
  for (const ack of during) {
    const stored = rejoined.history.find((m) => m.text === ack.text);
    assert.ok(stored, `${ack.text} is in the recovery`);
    assert.deepEqual([stored.user_id, stored.ts], [ack.user_id, ack.ts], 'a journaled message keeps its sender and time');
  }
});
