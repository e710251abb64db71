'use strict';
// Rooms: join/leave acks and notices, presence, members, rooms, and the pushed
// room lists (`rooms`, `groupList`) with their coalescing and bounds.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer, sleep } = require('../support/server.js');
const {
  pool,
  bothTransports,
  assertRefused,
  assertNone,
  assertNotice,
  assertChat,
} = require('../support/e2e.js');

const INTERVAL = 100;
let server;
before(async () => {
  server = await startServer({
    config: { room_list: { interval_ms: INTERVAL }, limits: { max_connections_per_ip: 500 } },
  });
});
after(() => server.stop());

const ident = (name) => ({ id: name, name });

bothTransports('join: ack shape, notice and presence to the others, not to the joiner', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `join-${tn}`;
  const ada = await clients.connect({ ...transport, auth: { name: `Ada-${tn}` } });
  const bob = await clients.connect({ ...transport, auth: { name: `Bob-${tn}` } });
  assert.deepEqual(await ada.request('join', { room }), {
    ok: true,
    room,
    user: ident(`Ada-${tn}`),
    count: 1,
    members: [ident(`Ada-${tn}`)],
    history: [],
    has_more: false,
    epoch: null,
    offset: 0,
  });
  const fromAda = ada.mark();
  const fromBob = bob.mark();
  assert.deepEqual(await bob.request('join', { room }), {
    ok: true,
    room,
    user: ident(`Bob-${tn}`),
    count: 2,
    members: [ident(`Ada-${tn}`), ident(`Bob-${tn}`)],
    history: [],
    has_more: false,
    epoch: null,
    offset: 0,
  });
  const notice = await ada.wait('message', () => true, { from: fromAda });
  assertNotice(notice, { room, kind: 'join' });
  assert.ok(notice.text.includes(`Bob-${tn}`), `the notice names the joiner: ${notice.text}`);
  const presence = await ada.wait('presence', () => true, { from: fromAda });
  assert.deepEqual(presence, { room, action: 'join', user: ident(`Bob-${tn}`), count: 2 });
  // A message sent by Ada after Bob's join reaches Bob after anything about the join would.
  await ada.request('message', { room, text: 'welcome' });
  const welcome = await bob.wait('message', (m) => m.text === 'welcome', { from: fromBob });
  assertChat(welcome, { room, user: `Ada-${tn}`, text: 'welcome' });
  assert.deepEqual(bob.of('message', fromBob).filter((m) => m.kind !== 'chat'), [], 'no notice of its own join');
  assert.deepEqual(bob.of('presence', fromBob), [], 'no presence of its own join');
});

test('joining a room twice succeeds and changes nothing', async (t) => {
  const clients = pool(t, server.url);
  const room = 'twice';
  const ada = await clients.member('Twice Ada', [room]);
  const bob = await clients.member('Twice Bob', [room]);
  await ada.wait('presence', (p) => p.user.id === 'Twice Bob');
  const from = ada.mark();
  assert.deepEqual(await bob.request('join', { room }), {
    ok: true,
    room,
    user: ident('Twice Bob'),
    count: 2,
    members: [ident('Twice Ada'), ident('Twice Bob')],
    history: [],
    has_more: false,
    epoch: null,
    offset: 0,
  });
  await bob.request('message', { room, text: 'after the second join' });
  await ada.wait('message', (m) => m.text === 'after the second join', { from });
  assert.deepEqual(ada.of('message', from).filter((m) => m.kind === 'join'), [], 'no second join notice');
  assert.deepEqual(ada.of('presence', from), [], 'no second presence');
  assert.equal((await ada.request('members', { room })).count, 2);
});

bothTransports('leave: ack, notice and presence; then the room is closed to the leaver', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `leave-${tn}`;
  const ada = await clients.member(`LAda-${tn}`, [room], transport);
  const bob = await clients.member(`LBob-${tn}`, [room], transport);
  await ada.wait('presence', (p) => p.user.id === `LBob-${tn}`);
  const fromAda = ada.mark();
  assert.deepEqual(await bob.request('leave', { room }), { ok: true, room });
  const notice = await ada.wait('message', (m) => m.kind === 'leave', { from: fromAda });
  assertNotice(notice, { room, kind: 'leave' });
  assert.ok(notice.text.includes(`LBob-${tn}`), notice.text);
  assert.deepEqual(await ada.wait('presence', () => true, { from: fromAda }), {
    room,
    action: 'leave',
    user: ident(`LBob-${tn}`),
    count: 1,
  });
  assertRefused(await bob.request('leave', { room }), 'not_member');
  assertRefused(await bob.request('message', { room, text: 'still here?' }), 'not_member');
  const fromBob = bob.mark();
  await ada.request('message', { room, text: 'bob is gone' });
  // Bob proves delivery order with a private message from Ada sent afterwards.
  await ada.request('private', { to: `LBob-${tn}`, text: 'proof' });
  await bob.wait('private', (p) => p.text === 'proof', { from: fromBob });
  assert.deepEqual(bob.of('message', fromBob), [], 'no room messages after leaving');
  assert.deepEqual(await ada.request('members', { room }), { ok: true, room, count: 1, members: [ident(`LAda-${tn}`)] });
});

test('a disconnect leaves every room, with notices to the others', async (t) => {
  const clients = pool(t, server.url);
  const one = await clients.member('Disc One', ['disc-a']);
  const two = await clients.member('Disc Two', ['disc-b']);
  const gone = await clients.member('Disc Gone', ['disc-a', 'disc-b']);
  await one.wait('presence', (p) => p.user.id === 'Disc Gone');
  await two.wait('presence', (p) => p.user.id === 'Disc Gone');
  const fromOne = one.mark();
  const fromTwo = two.mark();
  gone.close();
  const [n1, n2] = await Promise.all([
    one.wait('message', (m) => m.kind === 'leave', { from: fromOne }),
    two.wait('message', (m) => m.kind === 'leave', { from: fromTwo }),
  ]);
  assertNotice(n1, { room: 'disc-a', kind: 'leave' });
  assertNotice(n2, { room: 'disc-b', kind: 'leave' });
  assert.deepEqual(await one.wait('presence', (p) => p.action === 'leave', { from: fromOne }), {
    room: 'disc-a',
    action: 'leave',
    user: ident('Disc Gone'),
    count: 1,
  });
  assert.deepEqual(await two.wait('presence', (p) => p.action === 'leave', { from: fromTwo }), {
    room: 'disc-b',
    action: 'leave',
    user: ident('Disc Gone'),
    count: 1,
  });
  assert.deepEqual(await one.request('members', { room: 'disc-a' }), {
    ok: true,
    room: 'disc-a',
    count: 1,
    members: [ident('Disc One')],
  });
});

test('members: count and members in join order; members only', async (t) => {
  const clients = pool(t, server.url);
  const room = 'members-room';
  const names = ['Mem C', 'Mem A', 'Mem B'];
  const members = [];
  for (const name of names) members.push(await clients.member(name, [room]));
  assert.deepEqual(await members[1].request('members', { room }), {
    ok: true,
    room,
    count: 3,
    members: names.map(ident),
  });
  const outsider = await clients.member('Mem Outsider');
  assertRefused(await outsider.request('members', { room }), 'not_member');
  assertRefused(await outsider.request('members', { room: 'no-such-room' }), 'not_member');
});

test('room names are trimmed and runs of spaces collapsed', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.member('Spacey');
  const reply = await a.request('join', { room: '   my    spaced room  ' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.equal(reply.room, 'my spaced room');
  assert.deepEqual(await a.request('members', { room: 'my spaced room' }), {
    ok: true,
    room: 'my spaced room',
    count: 1,
    members: [ident('Spacey')],
  });
  // The same room, however it is spelled.
  assert.equal((await a.request('members', { room: ' my spaced   room' })).room, 'my spaced room');
  assert.deepEqual(await a.request('leave', { room: 'my  spaced room ' }), { ok: true, room: 'my spaced room' });
});

test(
  'the room name limit applies to the normalized name (runs of spaces collapsed first)',
  async (t) => {
    const clients = pool(t, server.url);
    const a = await clients.member('Long Spaces');
    // 70 spaces between two letters: 72 characters as sent, "a b" once normalized.
    const reply = await a.request('join', { room: `a${' '.repeat(70)}b` });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.equal(reply.room, 'a b');
  },
);

test('room lists: exact shapes, pushed once on connect and on every membership change', async (t) => {
  const own = await startServer({ config: { room_list: { interval_ms: INTERVAL } } });
  t.after(() => own.stop());
  const clients = pool(t, own.url);
  const watcher = await clients.connect();
  assert.deepEqual(await watcher.wait('rooms'), []);
  assert.deepEqual(await watcher.wait('groupList'), {});
  assert.deepEqual(await watcher.request('rooms'), { ok: true, rooms: [] });
  await sleep(3 * INTERVAL);
  assert.equal(watcher.of('rooms').length, 1, 'rooms once after connecting');
  assert.equal(watcher.of('groupList').length, 1, 'groupList once after connecting');

  const ada = await clients.member('Ada', ['alpha']);
  assert.deepEqual(await watcher.wait('rooms', (r) => r.length === 1), [{ room: 'alpha', count: 1 }]);
  assert.deepEqual(await watcher.wait('groupList', (g) => 'alpha' in g), {
    alpha: [{ name: 'Ada', room: 'alpha', id: 'Ada' }],
  });
  const bob = await clients.member('Bob', ['beta', 'alpha']);
  const finalRooms = [
    { room: 'alpha', count: 2 },
    { room: 'beta', count: 1 },
  ];
  const finalGroups = {
    alpha: [
      { name: 'Ada', room: 'alpha', id: 'Ada' },
      { name: 'Bob', room: 'alpha', id: 'Bob' },
    ],
    beta: [{ name: 'Bob', room: 'beta', id: 'Bob' }],
  };
  for (const client of [watcher, ada, bob]) {
    const rooms = await client.wait('rooms', (r) => JSON.stringify(r) === JSON.stringify(finalRooms));
    assert.deepEqual(rooms, finalRooms);
    const groups = await client.wait('groupList', (g) => g.alpha?.length === 2 && g.beta?.length === 1);
    assert.deepEqual(groups, finalGroups);
    for (const list of Object.values(groups)) {
      for (const entry of list) assert.deepEqual(Object.keys(entry).sort(), ['id', 'name', 'room']);
    }
  }
  assert.deepEqual(await watcher.request('rooms'), { ok: true, rooms: finalRooms });

  // A room exists while it has members.
  const fromLeave = watcher.mark();
  assert.deepEqual(await bob.request('leave', { room: 'beta' }), { ok: true, room: 'beta' });
  assert.deepEqual(await watcher.wait('rooms', (r) => r.length === 1, { from: fromLeave }), [{ room: 'alpha', count: 2 }]);
  assert.deepEqual(await watcher.wait('groupList', (g) => !('beta' in g), { from: fromLeave }), { alpha: finalGroups.alpha });
  assert.deepEqual(await watcher.request('rooms'), { ok: true, rooms: [{ room: 'alpha', count: 2 }] });
  const from = watcher.mark();
  ada.close();
  bob.close();
  assert.deepEqual(await watcher.wait('rooms', (r) => r.length === 0, { from }), []);
  assert.deepEqual(await watcher.wait('groupList', (g) => Object.keys(g).length === 0, { from }), {});
});

test('room lists: sorted by member count, then by name', async (t) => {
  const own = await startServer({ config: { room_list: { interval_ms: INTERVAL } } });
  t.after(() => own.stop());
  const clients = pool(t, own.url);
  await clients.member('S1', ['zeta', 'beta']);
  await clients.member('S2', ['zeta', 'gamma']);
  await clients.member('S3', ['alpha']);
  const expected = [
    { room: 'zeta', count: 2 },
    { room: 'alpha', count: 1 },
    { room: 'beta', count: 1 },
    { room: 'gamma', count: 1 },
  ];
  const watcher = await clients.connect();
  assert.deepEqual(await watcher.wait('rooms'), expected);
  assert.deepEqual(await watcher.request('rooms'), { ok: true, rooms: expected });
  assert.deepEqual(Object.keys(await watcher.wait('groupList')).sort(), ['alpha', 'beta', 'gamma', 'zeta']);
});

test('room lists are coalesced: a join storm costs each client a few pushes, not one per join', async (t) => {
  const interval = 250;
  const own = await startServer({
    config: { room_list: { interval_ms: interval, max_members_per_room: 50 }, limits: { max_connections_per_ip: 200 } },
  });
  t.after(() => own.stop());
  const clients = pool(t, own.url);
  const N = 30;
  const observers = await Promise.all([clients.ready(), clients.ready({ transports: ['polling'] })]);
  const joiners = await Promise.all(
    Array.from({ length: N }, (_, i) => clients.ready({ auth: { name: `storm${i}` } })),
  );
  // Let the pushes caused by the connections themselves (if any) pass.
  await sleep(2 * interval);
  const everyone = [...observers, ...joiners];
  const marks = everyone.map((c) => c.mark());
  const started = Date.now();
  const acks = await Promise.all(joiners.map((c) => c.request('join', { room: 'storm' })));
  for (const ack of acks) assert.equal(ack.ok, true);
  const members = (await joiners[0].request('members', { room: 'storm' })).members;
  assert.equal(members.length, N);
  const expected = members.map((m) => ({ name: m.name, room: 'storm', id: m.id }));
  await Promise.all(
    everyone.map(async (client, i) => {
      const finalList = await client.wait('groupList', (g) => g.storm?.length === N, { from: marks[i] });
      const elapsed = Date.now() - started;
      assert.deepEqual(finalList, { storm: expected }, 'the final groupList lists everyone, in join order');
      const pushes = client.of('groupList', marks[i]).length;
      const bound = Math.ceil(elapsed / interval) + 1;
      assert.ok(pushes <= bound, `${pushes} groupList pushes in ${elapsed} ms (interval ${interval}, bound ${bound})`);
      assert.ok(pushes < N / 3, `${pushes} groupList pushes for ${N} joins`);
      const rooms = client.of('rooms', marks[i]);
      assert.ok(rooms.length <= bound, `${rooms.length} rooms pushes in ${elapsed} ms`);
      assert.deepEqual(await client.wait('rooms', (r) => r[0]?.count === N, { from: marks[i] }), [{ room: 'storm', count: N }]);
    }),
  );
});

test('room lists are bounded: max_rooms rooms, max_members_per_room names, exact counts', async (t) => {
  const own = await startServer({
    config: { room_list: { interval_ms: INTERVAL, max_rooms: 2, max_members_per_room: 3 } },
  });
  t.after(() => own.stop());
  const clients = pool(t, own.url);
  // "big" has 4 members; "bb" and "cc" 2 each (a tie, broken by name); "dd" 1.
  const m1 = await clients.member('m1', ['big', 'cc']);
  await clients.member('m2', ['big', 'cc', 'dd']);
  await clients.member('m3', ['big', 'bb']);
  await clients.member('m4', ['big', 'bb']);
  const watcher = await clients.connect();
  const expectedRooms = [
    { room: 'big', count: 4 },
    { room: 'bb', count: 2 },
  ];
  assert.deepEqual(await watcher.wait('rooms'), expectedRooms);
  assert.deepEqual(await watcher.request('rooms'), { ok: true, rooms: expectedRooms });
  assert.deepEqual(await watcher.wait('groupList'), {
    big: ['m1', 'm2', 'm3'].map((n) => ({ name: n, room: 'big', id: n })),
    bb: ['m3', 'm4'].map((n) => ({ name: n, room: 'bb', id: n })),
  });
  // members is bounded by 1000, not by the room list settings.
  assert.deepEqual(await m1.request('members', { room: 'big' }), {
    ok: true,
    room: 'big',
    count: 4,
    members: ['m1', 'm2', 'm3', 'm4'].map(ident),
  });
  // The pushes after a change are bounded the same way.
  const from = watcher.mark();
  await clients.member('m5', ['big']);
  assert.deepEqual(await watcher.wait('rooms', (r) => r[0]?.count === 5, { from }), [
    { room: 'big', count: 5 },
    { room: 'bb', count: 2 },
  ]);
  assert.deepEqual(await watcher.wait('groupList', () => true, { from }), {
    big: ['m1', 'm2', 'm3'].map((n) => ({ name: n, room: 'big', id: n })),
    bb: ['m3', 'm4'].map((n) => ({ name: n, room: 'bb', id: n })),
  });
});

test('room_list.group_list = false turns groupList off (rooms stays)', async (t) => {
  const own = await startServer({ config: { room_list: { interval_ms: INTERVAL, group_list: false } } });
  t.after(() => own.stop());
  const clients = pool(t, own.url);
  const watcher = await clients.connect();
  assert.deepEqual(await watcher.wait('rooms'), []);
  await clients.member('Solo', ['solo']);
  assert.deepEqual(await watcher.wait('rooms', (r) => r.length === 1), [{ room: 'solo', count: 1 }]);
  await assertNone(watcher, 'groupList', () => true, { ms: 2 * INTERVAL });
});
