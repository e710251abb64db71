'use strict';
// Cluster mode when Redis goes away: each node keeps serving its own clients
// (messages to local members, acknowledged from a local journal with ids "j…";
// history requests refused with `unavailable`), the admin /stats says so, and when Redis
// is back the journals are written to Redis and cross-node delivery resumes; then
// every acknowledged message, from before, during and after the outage, is in the
// history read from any node. Redis runs with AOF (fsync always), so what it had
// stored survives its restart.
//
// Every test here stops its own Redis.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { startServer, sleep, tempDir } = require('../support/server.js');
const { startCluster, nodeConfig, eventually, memberNames, counts } = require('../support/cluster.js');
const { TRANSPORTS, pool, assertRefused, assertIncreasing, assertNotice, compareIds, withoutOk } = require('../support/e2e.js');

const STREAM_ID = /^\d+-\d+$/;
/** `j` and the message key: `j<node>-<n>`. */
const JOURNAL_ID = /^j[0-9a-f]+-\d+$/;

/** Waits until the admin /stats of every node says `redis_connected: up`; resolves with the stats. */
async function redisSeen(c, up, timeout = 5000) {
  const { value, elapsed } = await eventually(
    async () => {
      const all = await Promise.all(c.nodes.map((_, i) => c.health(i)));
      for (const stats of all) assert.equal(stats.cluster.redis_connected, up, JSON.stringify(stats.cluster));
      return all;
    },
    { timeout, what: `redis_connected ${up} on every node` },
  );
  return { stats: value, elapsed };
}

/** Sends a message and asserts its acknowledgement. */
async function say(client, room, text) {
  const reply = await client.request('message', { room, text });
  assert.equal(reply.ok, true, `${text}: ${JSON.stringify(reply)}`);
  return withoutOk(reply);
}

test('Redis outage: local chat goes on from the journal, history is unavailable, then everything is in Redis', async (t) => {
  // Node 0 journals into SQLite, node 1 into memory: both journals are covered.
  const c = await startCluster(t, { nodes: 0, name: 'outage' });
  await c.addNode({ history: { storage: 'sqlite', path: path.join(tempDir(), 'history.db') } });
  await c.addNode({ history: { storage: 'memory' } });
  const [n0, n1] = c.clients;
  const a1 = await n0.member('a1', ['ops'], TRANSPORTS.websocket);
  const a2 = await n0.member('a2', ['ops'], TRANSPORTS.polling);
  const a3 = await n0.member('a3', ['ops']);
  const b1 = await n1.member('b1', ['ops'], TRANSPORTS.websocket);
  const b2 = await n1.member('b2', ['ops'], TRANSPORTS.polling);
  // Open-mode names are reserved in Redis only: a4 takes its name before the outage.
  const a4 = await n0.member('a4', []);
  const acked = [];

  // Before: cross-node as usual.
  const fromB2 = b2.mark();
  acked.push(await say(a1, 'ops', 'before from a1'));
  acked.push(await say(b1, 'ops', 'before from b1'));
  assert.deepEqual(await b2.wait('message', (m) => m.text === 'before from a1', { from: fromB2 }), acked[0]);
  assert.deepEqual(await a2.wait('message', (m) => m.text === 'before from b1'), acked[1]);
  for (const message of acked) assert.match(message.id, STREAM_ID);
  for (const { cluster } of (await redisSeen(c, true)).stats) assert.equal(cluster.redis_outages, 0);

  // Redis goes away (its AOF keeps what it stored).
  await c.redis.stop();
  const down = await redisSeen(c, false, 3000);
  for (const { cluster } of down.stats) assert.equal(cluster.redis_outages, 1);

  // Local members still chat; acks come from the journal.
  const fromA2 = a2.mark();
  const fromB1 = b1.mark();
  for (let i = 0; i < 3; i++) {
    const message = await say(a1, 'ops', `during from a1 #${i}`);
    assert.match(message.id, JOURNAL_ID);
    acked.push(message);
    assert.deepEqual(await a2.wait('message', (m) => m.text === message.text, { from: fromA2 }), message);
  }
  for (let i = 0; i < 2; i++) {
    const message = await say(b2, 'ops', `during from b2 #${i}`);
    assert.match(message.id, JOURNAL_ID);
    acked.push(message);
    assert.deepEqual(await b1.wait('message', (m) => m.text === message.text, { from: fromB1 }), message);
  }
  // History needs Redis.
  for (const client of [a2, b1]) {
    assertRefused(await client.request('history', { room: 'ops' }), 'unavailable');
  }
  const pending = (await Promise.all([c.health(0), c.health(1)])).map((s) => s.cluster.journal_pending);
  assert.deepEqual(pending, [3, 2], 'journal_pending counts the messages kept for Redis');
  // Local presence goes on too: a3 leaves, a4 arrives, with notices to local members.
  const fromA1 = a1.mark();
  await a3.request('leave', { room: 'ops' });
  assertNotice(await a1.wait('message', (m) => m.kind === 'leave', { from: fromA1 }), { room: 'ops', kind: 'leave' });
  assert.equal((await a4.request('join', { room: 'ops' })).ok, true);
  assertNotice(await a1.wait('message', (m) => m.kind === 'join', { from: fromA1 }), { room: 'ops', kind: 'join' });
  // A new name cannot be reserved cluster-wide now: refused, never claimed on one node.
  const late = await n0.connect({ auth: { name: 'a5' } });
  const refusal = await late.wait('error');
  assert.deepEqual([refusal.code, refusal.event], ['unavailable', 'connect'], JSON.stringify(refusal));
  assert.deepEqual(await late.wait('session'), { user: null, mode: 'open' });
  assertRefused(await late.request('login', { name: 'a5' }), 'unavailable');
  const privately = await a1.request('private', { to: 'a4', text: 'local private' });
  assert.equal(privately.ok, true, JSON.stringify(privately));
  assert.equal((await a4.wait('private')).text, 'local private');

  // Redis comes back on the same port with the same data.
  const restarted = Date.now();
  await c.redis.restart();
  await redisSeen(c, true);
  await eventually(async () => {
    const stats = await Promise.all([c.health(0), c.health(1)]);
    assert.deepEqual(stats.map((s) => s.cluster.journal_pending), [0, 0]);
    for (const s of stats) assert.equal(s.cluster.redis_outages, 1);
  });

  // Cross-node delivery resumes within a few seconds.
  const fromB1After = b1.mark();
  await eventually(
    async () => {
      acked.push(await say(a1, 'ops', `after from a1 @${Date.now() - restarted}ms`));
      await sleep(100);
      assert.ok(b1.of('message', fromB1After).some((m) => m.text.startsWith('after from a1')), 'not delivered yet');
    },
    { timeout: 5000, interval: 0, what: 'cross-node delivery node 0 -> node 1' },
  );
  const resumedAfter = Date.now() - restarted;
  const fromA2After = a2.mark();
  const last = await say(b2, 'ops', 'after from b2');
  acked.push(last);
  assert.deepEqual(await a2.wait('message', (m) => m.text === 'after from b2', { from: fromA2After }), last);
  t.diagnostic(`cross-node delivery resumed ${resumedAfter} ms after Redis restarted`);

  // Every acknowledged message is in the history read from either node, once.
  const texts = acked.map((m) => m.text).sort();
  for (const client of [a2, b1, a4]) {
    const page = await client.request('history', { room: 'ops', limit: 200 });
    assert.equal(page.ok, true, JSON.stringify(page));
    assert.deepEqual(page.messages.map((m) => m.text).sort(), texts);
    assertIncreasing(page.messages.map((m) => m.id), 'history ids');
    for (const m of page.messages) assert.match(m.id, STREAM_ID);
    // Messages acknowledged with Redis ids keep them; journaled ones keep their content.
    for (const ack of acked) {
      const stored = page.messages.find((m) => m.text === ack.text);
      if (STREAM_ID.test(ack.id)) assert.deepEqual(stored, ack);
      else {
        // Journaled: delivered without an offset, given one when written to Redis.
        const { offset, epoch, ...content } = stored;
        assert.ok(Number.isInteger(offset) && typeof epoch === 'string', JSON.stringify(stored));
        assert.equal(ack.offset, undefined);
        assert.deepEqual({ ...content, id: ack.id }, ack);
      }
    }
    // Each sender's messages are in the order they were sent.
    for (const sender of ['a1', 'b2']) {
      const mine = page.messages.filter((m) => m.user === sender).map((m) => m.text);
      assert.deepEqual(mine, acked.filter((m) => m.user === sender).map((m) => m.text));
    }
  }

  // Presence changed during the outage is shared again: node 1 sees a3 gone and a4 there.
  await eventually(async () => {
    const reply = await b1.request('members', { room: 'ops' });
    assert.equal(reply.count, 5);
    assert.deepEqual(memberNames(reply).sort(), ['a1', 'a2', 'a4', 'b1', 'b2']);
  });
  assert.deepEqual(counts((await b2.request('rooms')).rooms), { ops: 5 });
});

test('the admin /stats report the outage: redis_connected false while Redis is down, true after', async (t) => {
  const c = await startCluster(t, { nodes: 2, name: 'health' });
  const before = await c.health(0);
  assert.equal(typeof before.cluster.node_id, 'string');
  assert.notEqual(before.cluster.node_id, (await c.health(1)).cluster.node_id);
  await eventually(async () => assert.equal((await c.health(0)).cluster.nodes_alive, 2));
  assert.deepEqual(
    { ...before.cluster, node_id: null, nodes_alive: null },
    { node_id: null, redis_connected: true, redis_outages: 0, journal_pending: 0, nodes_alive: null, pubsub_dropped: 0 },
  );

  const stopped = Date.now();
  await c.redis.stop('SIGKILL');
  const down = await redisSeen(c, false, 3000);
  t.diagnostic(`outage seen on /stats ${Date.now() - stopped} ms after Redis was killed`);
  // It stays down (and the node stays up) while Redis is away.
  await sleep(500);
  for (let i = 0; i < 2; i++) {
    const stats = await c.health(i);
    assert.equal(stats.cluster.redis_connected, false);
    assert.equal(stats.cluster.redis_outages, 1);
  }
  assert.equal(down.stats.length, 2);

  const restarted = Date.now();
  await c.redis.restart();
  await redisSeen(c, true, 5000);
  t.diagnostic(`recovery seen on /stats ${Date.now() - restarted} ms after Redis restarted`);
  for (let i = 0; i < 2; i++) {
    const stats = await c.health(i);
    assert.equal(stats.cluster.redis_connected, true);
    assert.equal(stats.cluster.redis_outages, 1);
  }
});

test('a node killed (SIGKILL) during an outage loses nothing it acknowledged: its journal file goes to Redis when it starts again', async (t) => {
  const dir = tempDir('palaver-node-');
  const durable = {
    history: { storage: 'sqlite', path: path.join(dir, 'history.db') },
    cluster: { journal_path: path.join(dir, 'journal.db') },
  };
  const c = await startCluster(t, { nodes: 1, name: 'crash' });
  const first = await startServer({ dir, admin: true, config: nodeConfig(c.redis, c.prefix, durable) });
  t.after(() => first.stop('SIGKILL'));
  c.nodes.push(first);
  c.clients.push(pool(null, first.url));
  const ada = await c.clients[1].member('ada', ['crash']);
  const bob = await c.clients[0].member('bob', ['crash']);
  const acked = [await say(ada, 'crash', 'before the outage')];
  await c.redis.stop();
  await redisSeen(c, false, 3000);
  for (let i = 0; i < 5; i++) acked.push(await say(ada, 'crash', `journaled #${i}`));
  for (const message of acked.slice(1)) assert.match(message.id, JOURNAL_ID);
  assert.equal((await c.health(1)).cluster.journal_pending, 5);
  first.process.kill('SIGKILL');
  await first.exited;
  c.nodes.pop();
  c.clients.pop().closeAll();
  await c.redis.restart();
  await redisSeen(c, true);
  // The same node (same journal file) starts again.
  const again = await startServer({ dir, admin: true, config: nodeConfig(c.redis, c.prefix, durable) });
  t.after(() => again.stop('SIGKILL'));
  await eventually(async () => {
    const page = await bob.request('history', { room: 'crash' });
    assert.equal(page.ok, true, JSON.stringify(page));
    assert.deepEqual(page.messages.map((m) => m.text), acked.map((m) => m.text));
  });
  // The ids acknowledged from the journal of the killed run are cursors now.
  const older = await bob.request('history', { room: 'crash', before: acked[4].id, limit: 2 });
  assert.equal(older.ok, true, JSON.stringify(older));
  assert.deepEqual(older.messages.map((m) => m.text), ['journaled #1', 'journaled #2']);
  assert.equal(older.has_more, true);
});

test(
  'a name released during an outage is free again after it',
  async (t) => {
    const c = await startCluster(t, { nodes: 2, name: 'names' });
    const zoe = await c.clients[0].connect({ auth: { name: 'zoe' } });
    assert.equal((await zoe.wait('session')).user.name, 'zoe');
    await c.redis.stop();
    await redisSeen(c, false, 3000);
    zoe.close();
    await sleep(200);
    await c.redis.restart();
    await redisSeen(c, true);
    await sleep(500);
    for (const i of [1, 0]) {
      const again = await c.clients[i].connect({ auth: { name: 'zoe' } });
      const { user } = await again.wait('session');
      again.close();
      assert.equal(user.name, 'zoe', `on node ${i}`);
      await sleep(100);
    }
  },
);

test(
  'a memory journal keeps every message acknowledged during an outage',
  async (t) => {
    const c = await startCluster(t, { nodes: 1, name: 'bounded', config: { history: { memory_max_per_room: 3 } } });
    const ada = await c.clients[0].member('ada', ['r']);
    await c.redis.stop();
    await redisSeen(c, false, 3000);
    const acked = [];
    for (let i = 0; i < 5; i++) acked.push(await say(ada, 'r', `m${i}`));
    await c.redis.restart();
    await redisSeen(c, true);
    await sleep(300);
    assert.equal((await c.health(0)).cluster.journal_pending, 0);
    const page = await ada.request('history', { room: 'r' });
    assert.deepEqual(page.messages.map((m) => m.text), acked.map((m) => m.text));
  },
);

test(
  'member lists keep join order across an outage',
  async (t) => {
    const c = await startCluster(t, { nodes: 2, name: 'order' });
    // Equal join times are ordered by name: these names make sure that whatever
    // millisecond each node resyncs in, rewritten join times never give join order.
    const zed = await c.clients[0].member('zed', ['r']);
    await c.clients[1].member('mia', ['r']);
    await c.clients[0].member('ada', ['r']);
    await c.clients[1].member('bo', ['r']);
    const joinOrder = ['zed', 'mia', 'ada', 'bo'];
    assert.deepEqual(memberNames(await zed.request('members', { room: 'r' })), joinOrder);
    await c.redis.stop();
    await redisSeen(c, false, 3000);
    await c.redis.restart();
    await redisSeen(c, true);
    await sleep(300);
    assert.deepEqual(memberNames(await zed.request('members', { room: 'r' })), joinOrder);
  },
);

test(
  'a write that timed out on a stalled Redis is not stored twice',
  async (t) => {
    const c = await startCluster(t, { nodes: 1, name: 'stall' });
    const ada = await c.clients[0].member('ada', ['r']);
    const acked = [await say(ada, 'r', 'before')];
    c.redis.process.kill('SIGSTOP');
    t.after(() => c.redis.process.kill('SIGCONT'));
    for (let i = 0; i < 2; i++) acked.push(await say(ada, 'r', `stalled #${i}`));
    assert.match(acked[1].id, JOURNAL_ID);
    await sleep(300);
    c.redis.process.kill('SIGCONT');
    await redisSeen(c, true);
    await eventually(async () => assert.equal((await c.health(0)).cluster.journal_pending, 0));
    await sleep(300);
    const page = await ada.request('history', { room: 'r' });
    assert.deepEqual(page.messages.map((m) => m.text), acked.map((m) => m.text));
  },
);
