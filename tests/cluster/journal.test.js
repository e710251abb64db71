'use strict';
// The outage journal of a cluster node (docs/CLUSTER.md, "When Redis goes away"):
// bounded in bytes as well as in messages (refusal `unavailable`), its `j…` ids
// are `history` cursors once Redis is back (on any node), and a journal file is
// one node's alone.
//
// Every test here stops its own Redis.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { startServer, tempDir } = require('../support/server.js');
const { startCluster, nodeConfig, eventually } = require('../support/cluster.js');
const { assertRefused, withoutOk } = require('../support/e2e.js');

/** Waits until /healthz of every node says `redis_connected: up`. */
async function redisSeen(c, up) {
  await eventually(
    async () => {
      for (let i = 0; i < c.nodes.length; i++) assert.equal((await c.health(i)).cluster.redis_connected, up);
    },
    { timeout: 10000, what: `redis_connected ${up} on every node` },
  );
}

/** Waits until every node has written its journal to Redis. */
async function journalsWritten(c) {
  await eventually(
    async () => {
      for (let i = 0; i < c.nodes.length; i++) assert.equal((await c.health(i)).cluster.journal_pending, 0);
    },
    { timeout: 10000, what: 'journals written to Redis' },
  );
}

for (const storage of ['sqlite', 'memory']) {
  test(`a ${storage} journal is bounded in bytes: past cluster.journal_max_bytes messages are refused with unavailable`, async (t) => {
    const dir = tempDir();
    // Room "r", a name of 3, a 1000-byte text and a key of about 20 bytes count
    // about 1120 bytes each: three fit in 4000 bytes, a fourth does not.
    const c = await startCluster(t, {
      nodes: 1,
      name: `bytes${storage}`,
      config: {
        history: { storage, path: path.join(dir, 'history.db') },
        cluster: { journal_max_bytes: 4000 },
      },
    });
    const ada = await c.clients[0].member('ada', ['r']);
    await c.redis.stop();
    await redisSeen(c, false);
    const acked = [];
    let refusal;
    for (let i = 0; i < 10 && !refusal; i++) {
      const reply = await ada.request('message', { room: 'r', text: `${i}`.padEnd(1000, '.') });
      if (reply.ok) acked.push(withoutOk(reply));
      else refusal = reply;
    }
    assert.ok(refusal, `${acked.length} messages of 1000 bytes were journaled in 4000 bytes`);
    assertRefused(refusal, 'unavailable');
    assert.equal(acked.length, 3);
    assert.equal((await c.health(0)).cluster.journal_pending, 3);
    // Short messages still fit where a long one did not.
    const short = await ada.request('message', { room: 'r', text: 'short' });
    assert.equal(short.ok, true, JSON.stringify(short));
    acked.push(withoutOk(short));

    await c.redis.restart();
    await redisSeen(c, true);
    await journalsWritten(c);
    const page = await ada.request('history', { room: 'r' });
    assert.deepEqual(page.messages.map((m) => m.text), acked.map((m) => m.text));
  });
}

test('journal ids are history cursors once Redis is back, on every node', async (t) => {
  const c = await startCluster(t, { nodes: 2, name: 'jcursor' });
  const ada = await c.clients[0].member('ada', ['r']);
  const bob = await c.clients[1].member('bob', ['r']);
  const before = await ada.request('message', { room: 'r', text: 'before' });
  assert.equal(before.ok, true);
  await c.redis.stop();
  await redisSeen(c, false);
  const journaled = [];
  for (let i = 0; i < 5; i++) {
    const reply = await ada.request('message', { room: 'r', text: `j${i}` });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    journaled.push(reply.id);
  }
  // During the outage no history at all, with or without a journal id.
  assertRefused(await ada.request('history', { room: 'r', before: journaled[3] }), 'unavailable');
  await c.redis.restart();
  await redisSeen(c, true);
  await journalsWritten(c);

  for (const client of [ada, bob]) {
    const page = await client.request('history', { room: 'r', before: journaled[3], limit: 2 });
    assert.equal(page.ok, true, JSON.stringify(page));
    assert.deepEqual(page.messages.map((m) => m.text), ['j1', 'j2']);
    assert.equal(page.has_more, true);
    // Paging on from the stream ids of that page reaches the start.
    const rest = await client.request('history', { room: 'r', before: page.messages[0].id, limit: 50 });
    assert.deepEqual(rest.messages.map((m) => m.text), ['before', 'j0']);
    assert.equal(rest.has_more, false);
    const first = await client.request('history', { room: 'r', before: journaled[0] });
    assert.deepEqual(first.messages.map((m) => m.text), ['before']);
  }
  // Not a journal id of any node: invalid, as other malformed cursors.
  assertRefused(await ada.request('history', { room: 'r', before: 'jzz' }), 'invalid_cursor');
  assertRefused(await ada.request('history', { room: 'r', before: 'j00ff00ff00ff00ff-7' }), 'invalid_cursor');
});

test('two nodes cannot share one journal file: the second one does not start', async (t) => {
  const c = await startCluster(t, { nodes: 0, name: 'shared' });
  const dir = tempDir();
  const config = nodeConfig(c.redis, c.prefix, {
    history: { storage: 'sqlite', path: path.join(dir, 'history.db') },
    cluster: { journal_path: path.join(dir, 'journal.db') },
  });
  const first = await startServer({ dir, config });
  t.after(() => first.stop('SIGKILL'));
  await assert.rejects(startServer({ dir, config }), /journal is in use by another process.*journal_path/s);
  // The journal path must not be the history file either.
  await assert.rejects(
    startServer({ dir, config: nodeConfig(c.redis, c.prefix, { history: { storage: 'sqlite', path: path.join(dir, 'same.db') }, cluster: { journal_path: path.join(dir, 'same.db') } }) }),
    /cluster.journal_path must not be history.path/,
  );
});
