'use strict';
// Host commands across the cluster. The standalone server has no host API, so one
// node is the Node addon running in this process (node/, `require('../../node')`)
// and the others are standalone servers: a host on one node disconnects a user
// connected to other nodes, and its emits reach clients on every node.
//
// Skipped, saying why, when the addon is not built (cd node && npm run build) or
// was built before cluster mode.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { sign, sleep } = require('../support/server.js');
const { startRedis } = require('../support/redis.js');
const { startCluster, nodeConfig, merge, eventually, memberNames } = require('../support/cluster.js');
const { pool, assertNone, assertNotice } = require('../support/e2e.js');

const SECRET = 'cluster-host-secret';
const TOKEN_MODE = { identity: { mode: 'token', token_secret: SECRET } };
const auth = (sub, name) => ({ auth: { token: sign({ sub, name }, SECRET, { expiresIn: '1h' }) } });

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis && redis.stop('SIGKILL'));

/**
 * Starts the addon as one more node of cluster `c`; resolves with
 * `{chat, clients}`, or with `{skip: reason}` when the addon cannot run a node.
 */
async function hostNode(t, c, extra = {}) {
  let palaver;
  try {
    palaver = require('../../node');
  } catch (error) {
    return { skip: `the Node package cannot be loaded (${error.message})` };
  }
  const config = merge(nodeConfig(redis, c.prefix, extra), { stop_timeout_ms: 2000 });
  let chat;
  try {
    chat = new palaver.Server(config).listen(0);
  } catch (error) {
    if (error.code === 'ERR_PALAVER_NOT_BUILT') {
      return { skip: 'the Node addon is not built (node/native/*.node); build it with `cd node && npm run build`' };
    }
    if (error.code === 'ERR_PALAVER_INVALID_OPTIONS' && /cluster/.test(error.message)) {
      return {
        skip: `the Node addon in node/native was built before cluster mode (${error.message}); rebuild it with \`cd node && npm run build\``,
      };
    }
    throw error;
  }
  t.after(() => chat.close());
  const clients = pool(t, `http://127.0.0.1:${chat.port}`);
  return { chat, clients };
}

test('host-side disconnect of a user connected to other nodes', async (t) => {
  const c = await startCluster(t, { redis, nodes: 2, config: TOKEN_MODE, name: 'kick' });
  const host = await hostNode(t, c, TOKEN_MODE);
  if (host.skip) {
    t.skip(host.skip);
    return;
  }
  const { chat, clients } = host;
  // x has a connection on each standalone node; observers on the host node and node 0.
  const watcher = await clients.connect(auth('w', 'Wanda'));
  await watcher.request('join', { room: 'den' });
  const peer = await c.clients[0].connect(auth('p', 'Pia'));
  await peer.request('join', { room: 'den' });
  const x1 = await c.clients[0].connect(auth('x', 'Xena'));
  const x2 = await c.clients[1].connect(auth('x', 'Xena'));
  await x1.request('join', { room: 'den' });
  await x2.request('join', { room: 'den' });
  assert.deepEqual(memberNames(await watcher.request('members', { room: 'den' })), ['Wanda', 'Pia', 'Xena']);
  const [fromWatcher, fromPeer] = [watcher.mark(), peer.mark()];

  const closed = await chat.disconnectUser('x', 'misbehaving');
  assert.equal(closed, 2, 'both connections, on both other nodes, were counted');
  for (const x of [x1, x2]) {
    assert.equal(await x.disconnected(), 'io server disconnect');
    const events = x.events.map((e) => e.event);
    assert.ok(events.indexOf('kicked') >= 0 && events.indexOf('kicked') < events.indexOf('disconnect'), x.describe());
    assert.deepEqual(x.of('kicked'), [{ reason: 'misbehaving' }]);
  }
  // One leave notice for x, on every node; x is gone from every member list.
  for (const [client, from] of [
    [watcher, fromWatcher],
    [peer, fromPeer],
  ]) {
    assertNotice(await client.wait('message', (m) => m.kind === 'leave', { from }), { room: 'den', kind: 'leave' });
    assert.deepEqual(await client.wait('presence', () => true, { from }), {
      room: 'den',
      action: 'leave',
      user: { id: 'x', name: 'Xena' },
      count: 2,
    });
    await eventually(async () => {
      assert.deepEqual(memberNames(await client.request('members', { room: 'den' })), ['Wanda', 'Pia']);
    });
  }
  // Exactly one leave notice is the contract, but both nodes drop x at the same
  // moment and each announces it (a core bug, see the todo test in token.test.js),
  // so only "at least one" is checked here.
  await sleep(200);
  assert.equal(watcher.of('message', fromWatcher).filter((m) => m.kind === 'leave').length, 1);
  assert.equal(peer.connected, true, 'nobody else was disconnected');
  await assert.rejects(chat.disconnectUser('x'), { code: 'ERR_PALAVER_USER_OFFLINE' });
});

test('host emits reach clients on every node: everyone, a room, a user', async (t) => {
  const c = await startCluster(t, { redis, nodes: 2, config: TOKEN_MODE, name: 'emit' });
  const host = await hostNode(t, c, TOKEN_MODE);
  if (host.skip) {
    t.skip(host.skip);
    return;
  }
  const { chat, clients } = host;
  const local = await clients.connect(auth('h', 'Hal'));
  const a = await c.clients[0].connect(auth('a', 'Ann'));
  const b = await c.clients[1].connect({ transports: ['polling'], ...auth('b', 'Ben') });
  const b2 = await c.clients[0].connect(auth('b', 'Ben'));
  await a.request('join', { room: 'news' });
  await b.request('join', { room: 'news' });
  const everyone = [local, a, b, b2];

  await chat.emit('announcement', { text: 'to all' });
  for (const client of everyone) assert.deepEqual(await client.wait('announcement'), { text: 'to all' });

  await chat.to('news').emit('bulletin', { text: 'to the room' });
  assert.deepEqual(await a.wait('bulletin'), { text: 'to the room' });
  assert.deepEqual(await b.wait('bulletin'), { text: 'to the room' });
  await chat.toUser('b').emit('note', { text: 'to Ben' });
  assert.deepEqual(await b.wait('note'), { text: 'to Ben' });
  assert.deepEqual(await b2.wait('note'), { text: 'to Ben' });
  await assertNone(local, 'bulletin', () => true, { ms: 200 });
  await assertNone(b2, 'bulletin', () => true, { ms: 0 });
  for (const client of [local, a]) await assertNone(client, 'note', () => true, { ms: 0 });
  await assert.rejects(chat.toUser('nobody').emit('note', {}), { code: 'ERR_PALAVER_USER_OFFLINE' });

  // The host's room list covers the whole cluster too.
  const rooms = await chat.rooms();
  assert.equal(rooms.length, 1);
  assert.equal(rooms[0].room, 'news');
  assert.equal(rooms[0].count, 2);
  assert.deepEqual(rooms[0].members.map((m) => m.id).sort(), ['a', 'b']);
});
