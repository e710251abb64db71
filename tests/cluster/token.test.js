'use strict';
// Cluster mode with token identities: the connections of one `sub` on several
// nodes are one user — one member entry, one join notice, one leave notice when
// the last one leaves — and all of them receive that user's private messages.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { sign, sleep } = require('../support/server.js');
const { startRedis } = require('../support/redis.js');
const { startCluster, eventually, memberNames } = require('../support/cluster.js');
const { TRANSPORTS, assertNone, assertNotice, assertRefused, withoutOk } = require('../support/e2e.js');

const SECRET = 'cluster-token-secret';
const TOKEN_MODE = { identity: { mode: 'token', token_secret: SECRET } };
const token = (sub, name) => sign(name ? { sub, name } : { sub }, SECRET, { expiresIn: '1h' });
const auth = (sub, name) => ({ auth: { token: token(sub, name) } });

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis && redis.stop('SIGKILL'));

test('one sub connected on two nodes is one member with one join and one leave notice', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, config: TOKEN_MODE, name: 'token' });
  const obs = await c.clients[0].connect(auth('obs', 'Olga'));
  assert.equal((await obs.request('join', { room: 'den' })).ok, true);
  const fromObs = obs.mark();

  // First connection of x, on node 1: announced.
  const x1 = await c.clients[1].connect(auth('x', 'Xena'));
  assert.deepEqual(await x1.wait('session'), { user: { id: 'x', name: 'Xena' }, mode: 'token' });
  assert.equal((await x1.request('join', { room: 'den' })).count, 2);
  assertNotice(await obs.wait('message', (m) => m.kind === 'join', { from: fromObs }), { room: 'den', kind: 'join' });
  assert.deepEqual(await obs.wait('presence', () => true, { from: fromObs }), {
    room: 'den',
    action: 'join',
    user: { id: 'x', name: 'Xena' },
    count: 2,
  });

  // Second connection of x, on node 2 (long-polling): the same user, not announced.
  const fromObs2 = obs.mark();
  const fromX1 = x1.mark();
  const x2 = await c.clients[2].connect({ ...TRANSPORTS.polling, ...auth('x', 'Xena') });
  const joined = await x2.request('join', { room: 'den' });
  assert.equal(joined.ok, true);
  assert.equal(joined.count, 2);
  assert.deepEqual(joined.members, [
    { id: 'obs', name: 'Olga' },
    { id: 'x', name: 'Xena' },
  ]);
  for (const client of [obs, x1, x2]) {
    const reply = await client.request('members', { room: 'den' });
    assert.equal(reply.count, 2);
    assert.deepEqual(memberNames(reply), ['Olga', 'Xena']);
    assert.deepEqual((await client.request('rooms')).rooms, [{ room: 'den', count: 2 }]);
  }
  await assertNone(obs, 'message', (m) => m.kind !== 'chat', { from: fromObs2, ms: 300 });
  assert.deepEqual(obs.of('presence', fromObs2), []);
  assert.deepEqual(x1.of('presence', fromX1), [], 'no notice to the user about its own second connection');

  // Private messages reach every connection of x, on both nodes.
  const reply = await obs.request('private', { to: 'x', text: 'for both of you' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual(reply.to, { id: 'x', name: 'Xena' });
  assert.deepEqual(await x1.wait('private'), withoutOk(reply));
  assert.deepEqual(await x2.wait('private'), withoutOk(reply));

  // Room messages reach the user's other connection too (only the sending one is left out).
  const fromX2 = x2.mark();
  const sent = await x1.request('message', { room: 'den', text: 'from x1' });
  assert.equal(sent.ok, true);
  assert.deepEqual(await x2.wait('message', (m) => m.kind === 'chat', { from: fromX2 }), withoutOk(sent));
  assert.deepEqual(await obs.wait('message', (m) => m.kind === 'chat'), withoutOk(sent));
  await sleep(100);
  assert.deepEqual(x1.of('message', fromX1).filter((m) => m.kind === 'chat'), [], 'not echoed to the sender');

  // One connection goes: x stays, silently.
  const fromObs3 = obs.mark();
  x1.close();
  await assertNone(obs, 'message', (m) => m.kind === 'leave', { from: fromObs3, ms: 400 });
  assert.deepEqual(obs.of('presence', fromObs3), []);
  assert.deepEqual(memberNames(await obs.request('members', { room: 'den' })), ['Olga', 'Xena']);
  const again = await obs.request('private', { to: 'x', text: 'still there' });
  assert.equal(again.ok, true, JSON.stringify(again));
  assert.deepEqual(await x2.wait('private', (p) => p.text === 'still there'), withoutOk(again));

  // The last one leaves the room: one leave notice.
  await x2.request('leave', { room: 'den' });
  assertNotice(await obs.wait('message', (m) => m.kind === 'leave', { from: fromObs3 }), { room: 'den', kind: 'leave' });
  assert.deepEqual(await obs.wait('presence', () => true, { from: fromObs3 }), {
    room: 'den',
    action: 'leave',
    user: { id: 'x', name: 'Xena' },
    count: 1,
  });
  await sleep(200);
  assert.equal(obs.of('message', fromObs3).filter((m) => m.kind === 'leave').length, 1);

  // And once no connection of x is left anywhere, x is offline.
  x2.close();
  await eventually(async () => {
    assertRefused(await obs.request('private', { to: 'x', text: 'gone?' }), 'user_offline');
  });
});

test(
  'one sub joining and leaving on two nodes at the same moment: exactly one join and one leave notice',
  async (t) => {
    const c = await startCluster(t, { redis, nodes: 2, config: TOKEN_MODE, name: 'race' });
    const obs = await c.clients[0].connect(auth('obs', 'Olga'));
    await obs.request('join', { room: 'race' });
    const problems = [];
    for (let i = 0; i < 5; i++) {
      const sub = `x${i}`;
      const from = obs.mark();
      const [x1, x2] = await Promise.all([c.clients[0].connect(auth(sub)), c.clients[1].connect(auth(sub))]);
      await Promise.all([x1.request('join', { room: 'race' }), x2.request('join', { room: 'race' })]);
      await sleep(150);
      const joins = obs.of('message', from).filter((m) => m.kind === 'join').length;
      const left = obs.mark();
      x1.close();
      x2.close();
      await sleep(250);
      const leaves = obs.of('message', left).filter((m) => m.kind === 'leave').length;
      if (joins !== 1 || leaves !== 1) problems.push(`${sub}: ${joins} join and ${leaves} leave notices`);
    }
    assert.deepEqual(problems, []);
  },
);

test("a token's expiry ends that connection only; the user stays through another node until their last token ends", async (t) => {
  const config = { identity: { ...TOKEN_MODE.identity, token_leeway_secs: 0 } };
  const c = await startCluster(t, { redis, nodes: 2, config, name: 'expiry' });
  const at = (sub, seconds) => ({ auth: { token: sign({ sub, exp: Math.floor(Date.now() / 1000) + seconds }, SECRET) } });
  const obs = await c.clients[0].connect(auth('obs-exp', 'Olga'));
  assert.equal((await obs.request('join', { room: 'clock' })).ok, true);
  const short = await c.clients[0].connect(at('y', 3));
  const longer = await c.clients[1].connect(at('y', 6));
  for (const y of [short, longer]) assert.equal((await y.request('join', { room: 'clock' })).ok, true);
  const fromObs = obs.mark();

  assert.deepEqual(await short.wait('kicked', () => true, { timeout: 20000 }), { reason: 'auth_expired' });
  assert.equal(await short.disconnected(20000), 'io server disconnect');
  assert.equal(longer.connected, true);
  assert.deepEqual(memberNames(await obs.request('members', { room: 'clock' })), ['Olga', 'y']);
  assert.deepEqual(obs.of('presence', fromObs), [], 'y is still in the room');

  assert.deepEqual(await longer.wait('kicked', () => true, { timeout: 20000 }), { reason: 'auth_expired' });
  const left = await obs.wait('presence', (p) => p.action === 'leave', { from: fromObs, timeout: 20000 });
  assert.deepEqual(left, { room: 'clock', action: 'leave', user: { id: 'y', name: 'y' }, count: 1 });
});
