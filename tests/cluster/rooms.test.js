'use strict';
// Cluster mode: the room lists. A `rooms` request and a new connection read the
// most populated rooms from a sorted set of counts kept by the join and leave
// scripts, not every room of the cluster, so their cost in Redis commands does not
// grow with the number of rooms; the counts stay exact across nodes through
// joins, leaves, disconnects and the death of a node.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { isDeepStrictEqual } = require('node:util');
const { startRedis } = require('../support/redis.js');
const { startCluster, eventually, counts, TIMINGS } = require('../support/cluster.js');

/** Slack on top of node_timeout_ms + heartbeat_ms for a loaded test machine. */
const SLACK_MS = 3000;

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis && redis.stop('SIGKILL'));

/** Commands of the test itself and the nodes' health checks, whatever the load. */
const NOT_COUNTED = new Set(['info', 'config', 'ping']);

/**
 * Redis commands run since the last `CONFIG RESETSTAT`, scripts' own calls
 * included; the heartbeats (a few per node and second) are in it.
 */
async function commandsRun(server) {
  const info = (await server.command('INFO', 'commandstats')).toString();
  let total = 0;
  for (const found of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!NOT_COUNTED.has(found[1])) total += Number(found[2]);
  }
  return total;
}

/** `{room: count}` of the whole cluster, read from the Redis hashes themselves. */
async function countsInRedis(c) {
  const listed = await redis.command('KEYS', `${c.prefix}:room:*`);
  const out = {};
  for (const key of listed.map(String)) {
    const fields = (await redis.command('HKEYS', key)).map(String);
    const users = new Set(fields.map((f) => f.slice(f.indexOf('|') + 1)));
    if (users.size > 0) out[key.slice(`${c.prefix}:room:`.length)] = users.size;
  }
  return out;
}

/** The first `max` of `{room: count}` as the `rooms` list orders them. */
function listed(all, max) {
  return Object.entries(all)
    .map(([room, count]) => ({ room, count }))
    .sort((a, b) => b.count - a.count || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0))
    .slice(0, max);
}

test('a rooms request and a new connection cost a few Redis commands, not one per room', async (t) => {
  const own = await startRedis();
  t.after(() => own.stop('SIGKILL'));
  const c = await startCluster(t, {
    redis: own,
    nodes: 2,
    name: 'cost',
    config: {
      limits: { max_rooms_per_connection: 100, room_changes_per_second: 1000, room_change_burst: 1000 },
      // Fewer heartbeats, so that a slow run does not count many of them per request.
      cluster: { heartbeat_ms: 1000, node_timeout_ms: 5000 },
    },
  });
  // 500 rooms over both nodes; room-0 … room-9 get a second member on the other
  // node, so the list has an order to keep.
  const members = [];
  for (let i = 0; i < 5; i += 1) {
    const rooms = Array.from({ length: 100 }, (_, j) => `room-${i * 100 + j}`);
    members.push(await c.clients[i % 2].member(`m${i}`, rooms));
  }
  await c.clients[1].member('extra', Array.from({ length: 10 }, (_, j) => `room-${j}`));
  const expected = listed(
    Object.fromEntries(Array.from({ length: 500 }, (_, j) => [`room-${j}`, j < 10 ? 2 : 1])),
    20,
  );
  const asker = await c.clients[0].ready();
  await eventually(async () => assert.deepEqual((await asker.request('rooms')).rooms, expected));

  await own.command('CONFIG', 'RESETSTAT');
  const requests = 50;
  for (let i = 0; i < requests; i += 1) {
    const reply = await asker.request('rooms');
    assert.deepEqual(reply.rooms, expected);
  }
  const perRequest = (await commandsRun(own)) / requests;
  // Heartbeats add a few commands per second; a read of every room would be
  // over 500 per request.
  assert.ok(perRequest < 20, `${perRequest} Redis commands per rooms request`);

  await own.command('CONFIG', 'RESETSTAT');
  const connections = 20;
  for (let i = 0; i < connections; i += 1) {
    const client = await c.clients[i % 2].connect();
    assert.deepEqual(await client.wait('rooms'), expected);
    client.close();
  }
  const perConnection = (await commandsRun(own)) / connections;
  assert.ok(perConnection < 60, `${perConnection} Redis commands per new connection`);
});

test('room counts stay exact across nodes through joins, leaves, disconnects and a dead node', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, name: 'counts' });
  const ada = await c.clients[0].member('ada', ['a', 'b', 'c']);
  const bob = await c.clients[1].member('bob', ['a', 'b']);
  await c.clients[2].member('cyd', ['a', 'd']);
  await c.clients[2].member('dee', ['a', 'b']);
  const eve = await c.clients[0].member('eve', ['c']);
  const askers = [await c.clients[0].ready(), await c.clients[1].ready()];

  /** Every surviving node answers `expected`, and the Redis hashes agree. */
  async function agree(expected, what, timeout = 5000) {
    for (const asker of askers) {
      await eventually(async () => assert.deepEqual(counts((await asker.request('rooms')).rooms), expected), {
        timeout,
        what,
      });
      await asker.wait('rooms', (rooms) => isDeepStrictEqual(counts(rooms), expected), { timeout });
    }
    assert.deepEqual(await countsInRedis(c), expected, what);
    assert.deepEqual((await askers[0].request('rooms')).rooms, listed(expected, 20), `${what}: order`);
  }

  await agree({ a: 4, b: 3, c: 2, d: 1 }, 'after the joins');
  await bob.request('leave', { room: 'a' });
  await agree({ a: 3, b: 3, c: 2, d: 1 }, 'after a leave');
  eve.close();
  await agree({ a: 3, b: 3, c: 1, d: 1 }, 'after a disconnect');
  ada.close();
  await agree({ a: 2, b: 2, d: 1 }, 'after a disconnect emptying a room');

  // Node 2 dies with cyd and dee: another node sweeps it.
  await c.nodes[2].stop('SIGKILL');
  await agree({ b: 1 }, 'after node 2 died', TIMINGS.node_timeout_ms + TIMINGS.heartbeat_ms + SLACK_MS);
  await bob.request('leave', { room: 'b' });
  await agree({}, 'after the last leave');
});
