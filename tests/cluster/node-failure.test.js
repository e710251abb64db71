'use strict';
// Cluster mode when a node goes away. Killed (SIGKILL): another node sweeps it once
// its heartbeat is older than node_timeout_ms, so its users leave the member lists
// and counts everywhere, with leave notices and presence events to the survivors.
// Stopped gracefully (SIGTERM): its users leave at once, well before node_timeout_ms.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { isDeepStrictEqual } = require('node:util');
const { sleep, sign } = require('../support/server.js');
const { startRedis } = require('../support/redis.js');
const { startCluster, eventually, memberNames, TIMINGS } = require('../support/cluster.js');
const { assertNotice, assertRefused } = require('../support/e2e.js');

/** Slack on top of node_timeout_ms + heartbeat_ms for a loaded test machine. */
const SLACK_MS = 1500;

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis && redis.stop('SIGKILL'));

/** Sets up survivors on nodes 0 and 1 and victims on node 2; see the tests. */
async function threeNodes(t, config, name) {
  const c = await startCluster(t, { redis, nodes: 3, config, name });
  const s0 = await c.clients[0].member('s0', ['main', 'side']);
  const s1 = await c.clients[1].member('s1', ['main'], { transports: ['polling'] });
  const v1 = await c.clients[2].member('v1', ['main', 'side']);
  const v2 = await c.clients[2].member('v2', ['main', 'solo']);
  const observer = await c.clients[1].ready();
  const expected = [
    { room: 'main', count: 4 },
    { room: 'side', count: 2 },
    { room: 'solo', count: 1 },
  ];
  await observer.wait('rooms', (rooms) => isDeepStrictEqual(rooms, expected));
  assert.deepEqual(memberNames(await s0.request('members', { room: 'main' })), ['s0', 's1', 'v1', 'v2']);
  return { c, s0, s1, v1, v2, observer };
}

/**
 * What the survivors see once node 2's users are gone; returns when everything was
 * seen. A sweep removes the users at once, so every presence event has the final
 * count; at a graceful stop they leave one by one (`oneByOne`), so v1 and v2
 * leaving `main` may report 3 then 2, in either order of arrival.
 */
async function departuresSeen({ s0, s1, observer }, from, timeout, { oneByOne = false } = {}) {
  const leaves = [];
  // Leave notices and presence events, per room, reach the survivors on both nodes.
  for (const [client, rooms] of [
    [s0, { main: 2, side: 1 }],
    [s1, { main: 2 }],
  ]) {
    for (const [room, count] of Object.entries(rooms)) {
      for (const user of room === 'main' ? ['v1', 'v2'] : ['v1']) {
        const notice = await client.wait('message', (m) => m.kind === 'leave' && m.room === room && m.text.includes(user), {
          from: from.get(client),
          timeout,
        });
        assertNotice(notice, { room, kind: 'leave' });
        const presence = await client.wait('presence', (p) => p.room === room && p.user.id === user, {
          from: from.get(client),
          timeout,
        });
        const { count: reported, ...rest } = presence;
        assert.deepEqual(rest, { room, action: 'leave', user: { id: user, name: user } });
        const victims = room === 'main' ? 2 : 1;
        if (oneByOne) assert.ok(reported >= count && reported < count + victims, JSON.stringify(presence));
        else assert.equal(reported, count, JSON.stringify(presence));
        leaves.push({ client, room, reported });
      }
      if (oneByOne) {
        const reported = leaves.filter((l) => l.client === client && l.room === room).map((l) => l.reported);
        assert.equal(Math.min(...reported), count, `the last to leave ${room} reports ${count}: ${reported}`);
      }
    }
  }
  // Member lists, counts and the pushed room lists, on both surviving nodes; a
  // room that only had users of the gone node is gone too.
  for (const client of [s0, s1]) {
    const reply = await client.request('members', { room: 'main' });
    assert.deepEqual(memberNames(reply), ['s0', 's1']);
    assert.equal(reply.count, 2);
  }
  assert.deepEqual(memberNames(await s0.request('members', { room: 'side' })), ['s0']);
  const expected = [
    { room: 'main', count: 2 },
    { room: 'side', count: 1 },
  ];
  await observer.wait('rooms', (rooms) => isDeepStrictEqual(rooms, expected), {
    from: from.get(observer),
    timeout,
  });
  // (Pushes taken while the sweep is under way may show part of it; the last one is whole.)
  const expectedGroups = {
    main: [
      { name: 's0', room: 'main', id: 's0' },
      { name: 's1', room: 'main', id: 's1' },
    ],
    side: [{ name: 's0', room: 'side', id: 's0' }],
  };
  await observer.wait('groupList', (g) => isDeepStrictEqual(g, expectedGroups), { from: from.get(observer), timeout });
  return leaves;
}

test('a killed node is swept: its users leave every member list, with notices to the survivors', async (t) => {
  const setup = await threeNodes(t, {}, 'kill');
  const { c, s0, s1, observer } = setup;
  // Sweeping starts once a node has heard Redis for node_timeout_ms; be past that.
  await sleep(TIMINGS.node_timeout_ms);

  const from = new Map([s0, s1, observer].map((client) => [client, client.mark()]));
  const killed = Date.now();
  c.nodes[2].process.kill('SIGKILL');
  const budget = TIMINGS.node_timeout_ms + TIMINGS.heartbeat_ms + SLACK_MS;
  // Polling `members` shows when the lists changed.
  const { elapsed } = await eventually(
    async () => assert.deepEqual(memberNames(await s1.request('members', { room: 'main' })), ['s0', 's1']),
    { timeout: budget, interval: 25, what: 'the killed node\'s users leaving the member list' },
  );
  t.diagnostic(`member list updated ${Date.now() - killed} ms after SIGKILL (polled ${elapsed} ms)`);
  assert.ok(Date.now() - killed <= budget, `swept after ${Date.now() - killed} ms`);
  assert.ok(Date.now() - killed >= TIMINGS.node_timeout_ms - TIMINGS.heartbeat_ms, 'not before the node timed out');
  await departuresSeen(setup, from, 2000);

  // Exactly one sweep: one notice per user and room, though two nodes could sweep.
  await sleep(TIMINGS.heartbeat_ms * 3);
  const notices = s0.of('message', from.get(s0)).filter((m) => m.kind === 'leave').map((m) => `${m.room}:${m.text}`);
  assert.equal(notices.length, 3, JSON.stringify(notices));
  assert.equal(s1.of('message', from.get(s1)).filter((m) => m.kind === 'leave').length, 2);

  // Its users are offline, and their open names free again, cluster-wide.
  assertRefused(await s0.request('private', { to: 'v1', text: 'are you there?' }), 'user_offline');
  const newcomer = await c.clients[0].connect({ auth: { name: 'v1' } });
  assert.equal((await newcomer.wait('session')).user.name, 'v1');
  const alive = await c.health(0);
  assert.equal(alive.cluster.nodes_alive, 2);
});

test('a gracefully stopped node removes its users at once, long before node_timeout_ms', async (t) => {
  // A long node timeout, so that a sweep cannot be what removes them.
  const nodeTimeout = 20000;
  const setup = await threeNodes(t, { cluster: { node_timeout_ms: nodeTimeout } }, 'term');
  const { c, v1, v2 } = setup;
  const from = new Map([setup.s0, setup.s1, setup.observer].map((client) => [client, client.mark()]));
  const stopped = Date.now();
  const exited = c.nodes[2].stop('SIGTERM');
  await departuresSeen(setup, from, 3000, { oneByOne: true });
  const elapsed = Date.now() - stopped;
  t.diagnostic(`users of the stopped node gone ${elapsed} ms after SIGTERM`);
  assert.ok(elapsed < 3000, `took ${elapsed} ms`);
  assert.deepEqual(await exited, { code: 0, signal: null });
  for (const victim of [v1, v2]) {
    assert.equal(await victim.disconnected(), 'io server disconnect');
    assert.deepEqual(victim.of('shutdown'), [{ reason: 'server_stopping' }]);
  }
  // The node left the cluster: not counted as alive, nothing of it left in Redis.
  await eventually(async () => assert.equal((await c.health(0)).cluster.nodes_alive, 2));
  const nodeKeys = await redis.command('KEYS', `${c.prefix}:node:*`);
  const ids = new Set(nodeKeys.map((key) => key.split(':')[2]));
  const remaining = await Promise.all([c.health(0), c.health(1)]);
  for (const id of ids) {
    assert.ok(remaining.some((s) => s.cluster.node_id === id), `keys of a stopped node remain: ${nodeKeys}`);
  }
});

test('a killed node: a token user still connected to a surviving node stays, without a leave notice', async (t) => {
  const secret = 'cluster-failure-secret';
  const auth = (sub) => ({ auth: { token: sign({ sub }, secret, { expiresIn: '1h' }) } });
  const c = await startCluster(t, { redis, nodes: 2, config: { identity: { mode: 'token', token_secret: secret } }, name: 'stay' });
  const obs = await c.clients[0].connect(auth('obs'));
  await obs.request('join', { room: 'r' });
  const xHere = await c.clients[0].connect(auth('x'));
  const xThere = await c.clients[1].connect(auth('x'));
  const y = await c.clients[1].connect(auth('y'));
  for (const client of [xHere, xThere, y]) assert.equal((await client.request('join', { room: 'r' })).ok, true);
  assert.deepEqual(memberNames(await obs.request('members', { room: 'r' })), ['obs', 'x', 'y']);
  await sleep(TIMINGS.node_timeout_ms);

  const from = obs.mark();
  c.nodes[1].process.kill('SIGKILL');
  const budget = TIMINGS.node_timeout_ms + TIMINGS.heartbeat_ms + SLACK_MS;
  const leave = await obs.wait('message', (m) => m.kind === 'leave', { from, timeout: budget });
  assertNotice(leave, { room: 'r', kind: 'leave' });
  assert.ok(leave.text.includes('y'), leave.text);
  assert.deepEqual(await obs.wait('presence', () => true, { from }), {
    room: 'r',
    action: 'leave',
    user: { id: 'y', name: 'y' },
    count: 2,
  });
  assert.deepEqual(memberNames(await obs.request('members', { room: 'r' })), ['obs', 'x']);
  await sleep(TIMINGS.heartbeat_ms * 3);
  assert.equal(obs.of('message', from).length, 1, `only y left: ${obs.describe(from)}`);
  assert.equal(obs.of('presence', from).length, 1);
  // x is still online (on node 0) and y is not.
  assert.equal((await obs.request('private', { to: 'x', text: 'still here?' })).ok, true);
  assert.equal((await xHere.wait('private')).text, 'still here?');
  assertRefused(await obs.request('private', { to: 'y', text: 'gone?' }), 'user_offline');
});

test(
  'a node taken for dead that comes back does not share its users\' names with newcomers',
  async (t) => {
    const c = await startCluster(t, { redis, nodes: 2, name: 'pause' });
    const s = await c.clients[0].member('s', ['r']);
    const v = await c.clients[1].member('v', ['r']);
    await sleep(TIMINGS.node_timeout_ms);
    const from = s.mark();
    c.nodes[1].process.kill('SIGSTOP');
    t.after(() => c.nodes[1].process.kill('SIGCONT'));
    await eventually(async () => assert.deepEqual(memberNames(await s.request('members', { room: 'r' })), ['s']), {
      timeout: TIMINGS.node_timeout_ms + TIMINGS.heartbeat_ms + SLACK_MS,
    });
    const newcomer = await c.clients[0].connect({ auth: { name: 'v' } });
    const newName = (await newcomer.wait('session')).user.name;
    c.nodes[1].process.kill('SIGCONT');
    await eventually(async () => assert.equal((await c.health(0)).cluster.nodes_alive, 2));
    await sleep(TIMINGS.heartbeat_ms * 3);
    const problems = [];
    if (v.connected && v.of('session').at(-1).user.name === newName) {
      problems.push(`two online connections are both "${newName}"`);
    }
    const names = memberNames(await s.request('members', { room: 'r' }));
    if (names.includes('v') && !s.of('message', from).some((m) => m.kind === 'join')) {
      problems.push(`v is back in the member list (${names}) without a join notice`);
    }
    assert.deepEqual(problems, []);
  },
);
