'use strict';
// Typing notices: relayed to the room's other connections, throttled per connection.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer, sleep } = require('../support/server.js');
const { pool, bothTransports, assertRefused } = require('../support/e2e.js');

const TYPING_INTERVAL = 800;
let server;
before(async () => {
  server = await startServer({
    config: {
      room_list: { interval_ms: 100 },
      limits: { max_connections_per_ip: 500, typing_interval_ms: TYPING_INTERVAL },
    },
  });
});
after(() => server.stop());

bothTransports('typing is relayed to the others in the room only', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `typing-${tn}`;
  const ada = await clients.member(`TAda ${tn}`, [room], transport);
  const bob = await clients.member(`TBob ${tn}`, [room], transport);
  const elsewhere = await clients.member(`TElse ${tn}`, [`other-${room}`], transport);
  const marks = [ada, bob, elsewhere].map((c) => c.mark());
  assert.deepEqual(await ada.request('typing', { room, active: true }), { ok: true, relayed: true });
  assert.deepEqual(await bob.wait('typing', () => true, { from: marks[1] }), {
    room,
    user: `TAda ${tn}`,
    user_id: `TAda ${tn}`,
    active: true,
  });
  // Later events prove that nothing else was on its way.
  await ada.request('message', { room, text: 'proof' });
  await bob.wait('message', (m) => m.text === 'proof', { from: marks[1] });
  const elseFriend = await clients.member(`TElse2 ${tn}`, [`other-${room}`]);
  await elseFriend.request('message', { room: `other-${room}`, text: 'proof elsewhere' });
  await elsewhere.wait('message', (m) => m.text === 'proof elsewhere', { from: marks[2] });
  await bob.request('private', { to: `TAda ${tn}`, text: 'proof for ada' });
  await ada.wait('private', (p) => p.text === 'proof for ada', { from: marks[0] });
  assert.deepEqual(ada.of('typing', marks[0]), [], 'not to the sender');
  assert.deepEqual(elsewhere.of('typing', marks[2]), [], 'not to other rooms');
  assert.equal(bob.of('typing', marks[1]).length, 1);
});

test('active defaults to true; one active:false is relayed after a relayed start', async (t) => {
  const clients = pool(t, server.url);
  const room = 'typing-default';
  const ada = await clients.member('Default Ada', [room]);
  const bob = await clients.member('Default Bob', [room]);
  const from = bob.mark();
  assert.deepEqual(await ada.request('typing', { room }), { ok: true, relayed: true });
  assert.deepEqual(await bob.wait('typing', () => true, { from }), {
    room,
    user: 'Default Ada',
    user_id: 'Default Ada',
    active: true,
  });
  assert.deepEqual(await ada.request('typing', { room, active: false }), { ok: true, relayed: true }, 'first stop');
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await ada.request('typing', { room, active: false }), { ok: true, relayed: false }, `stop ${i}`);
  }
  await ada.request('message', { room, text: 'proof' });
  await bob.wait('message', (m) => m.text === 'proof', { from });
  assert.deepEqual(bob.of('typing', from).filter((e) => e.active === false), [
    { room, user: 'Default Ada', user_id: 'Default Ada', active: false },
  ]);
});

test('active:true is throttled per connection: the rest are not relayed', async (t) => {
  const clients = pool(t, server.url);
  const room = 'typing-throttle';
  const ada = await clients.member('Throttle Ada', [room]);
  const bob = await clients.member('Throttle Bob', [room]);
  const cy = await clients.member('Throttle Cy', [room]);
  const from = bob.mark();
  const started = Date.now();
  assert.deepEqual(await ada.request('typing', { room, active: true }), { ok: true, relayed: true });
  assert.deepEqual(await ada.request('typing', { room, active: true }), { ok: true, relayed: false });
  assert.deepEqual(await ada.request('typing', { room }), { ok: true, relayed: false });
  assert.ok(Date.now() - started < TYPING_INTERVAL, 'the test ran within one interval');
  // Another connection has its own allowance.
  assert.deepEqual(await cy.request('typing', { room, active: true }), { ok: true, relayed: true });
  await ada.request('message', { room, text: 'proof' });
  await bob.wait('message', (m) => m.text === 'proof', { from });
  assert.deepEqual(
    bob.of('typing', from).map((e) => [e.user, e.active]),
    [
      ['Throttle Ada', true],
      ['Throttle Cy', true],
    ],
  );
  // After the interval, the next one is relayed again.
  await sleep(TYPING_INTERVAL + 100);
  const later = bob.mark();
  assert.deepEqual(await ada.request('typing', { room, active: true }), { ok: true, relayed: true });
  assert.deepEqual(await bob.wait('typing', () => true, { from: later }), {
    room,
    user: 'Throttle Ada',
    user_id: 'Throttle Ada',
    active: true,
  });
});

test('typing in a room you are not in is refused with not_member', async (t) => {
  const clients = pool(t, server.url);
  await clients.member('NM Owner', ['typing-private']);
  const ada = await clients.member('NM Ada', ['typing-mine']);
  assertRefused(await ada.request('typing', { room: 'typing-private', active: true }), 'not_member');
  assertRefused(await ada.request('typing', { room: 'typing-nowhere' }), 'not_member');
  // The refusal did not use up the allowance.
  assert.deepEqual(await ada.request('typing', { room: 'typing-mine' }), { ok: true, relayed: true });
});
