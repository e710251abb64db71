'use strict';
// Rooms larger than limits.notice_max_members get no join or leave notices and no
// presence events (each would go to every member: N² frames for a room filling up),
// while their counts stay exact; smaller rooms keep them.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { startServer } = require('../support/server.js');
const { pool, assertNone } = require('../support/e2e.js');

test('a room over limits.notice_max_members is quiet; at or under it, notices come', async (t) => {
  const server = await startServer({ config: { limits: { notice_max_members: 2 } } });
  t.after(() => server.stop());
  const clients = pool(t, server.url);
  const room = 'crowd';
  const isNotice = (m) => m.room === room && m.kind !== 'chat';
  const inRoom = (p) => p.room === room;

  const ada = await clients.member('Ada Quiet', [room]);
  let from = ada.mark();
  const bob = await clients.member('Bob Quiet', [room]);
  // Two members: Ada hears of Bob.
  await ada.wait('message', (m) => isNotice(m) && m.kind === 'join' && m.text === 'Bob Quiet joined', { from });
  await ada.wait('presence', (p) => inRoom(p) && p.action === 'join' && p.count === 2, { from });

  from = ada.mark();
  const bobFrom = bob.mark();
  const cat = await clients.member('Cat Quiet', [room]);
  const joined = await cat.request('members', { room });
  assert.equal(joined.count, 3, JSON.stringify(joined));
  // Three members: over the limit, nobody hears of Cat, coming or going.
  assert.equal((await cat.request('leave', { room })).ok, true);
  await assertNone(ada, 'message', isNotice, { from });
  await assertNone(ada, 'presence', inRoom, { from, ms: 0 });
  await assertNone(bob, 'message', isNotice, { from: bobFrom, ms: 0 });

  // Back to two: Bob's leave is heard again.
  from = ada.mark();
  assert.equal((await bob.request('leave', { room })).ok, true);
  await ada.wait('message', (m) => isNotice(m) && m.kind === 'leave' && m.text === 'Bob Quiet left', { from });
  await ada.wait('presence', (p) => inRoom(p) && p.action === 'leave' && p.count === 1, { from });
  assert.deepEqual(
    ada.of('message', from).filter(isNotice).map((m) => m.text),
    ['Bob Quiet left'],
  );
});
