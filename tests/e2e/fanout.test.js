'use strict';
// What one connection can make the server send to others: join/leave notices are
// bounded by a per-connection room-change budget, a typing stop is relayed only
// after a relayed start, and groupList is bounded in bytes.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer } = require('../support/server.js');
const { pool, assertRefused } = require('../support/e2e.js');

// The defaults (limits.room_change_burst, limits.room_changes_per_second,
// room_list.group_list_max_bytes).
const ROOM_CHANGE_BURST = 16;
const ROOM_CHANGES_PER_SECOND = 1;
const GROUP_LIST_MAX_BYTES = 20 * 1024;

let server;
before(async () => {
  server = await startServer({
    config: { room_list: { interval_ms: 100 }, limits: { max_connections_per_ip: 500 } },
  });
});
after(() => server.stop());

test('join/leave toggling is bounded by the room-change budget; a refused change leaves no trace', async (t) => {
  const clients = pool(t, server.url);
  const room = 'toggle-room';
  const watcher = await clients.member('Toggle Watcher', [room]);
  const toggler = await clients.member('Toggler');
  const from = watcher.mark();
  const started = Date.now();
  let member = false;
  let changes = 0;
  let refused = 0;
  for (let i = 0; i < 30; i++) {
    const event = member ? 'leave' : 'join';
    const reply = await toggler.request(event, { room });
    if (reply.ok) {
      changes++;
      member = !member;
      continue;
    }
    assertRefused(reply, 'rate_limited', `${event} ${i}`);
    assert.ok(reply.retry_after_ms <= 1000 / ROOM_CHANGES_PER_SECOND, JSON.stringify(reply));
    refused++;
    // Refused before anything changed.
    const members = await toggler.request('members', { room });
    if (member) assert.equal(members.ok, true, `still a member after a refused leave ${i}`);
    else assertRefused(members, 'not_member', `still not a member after a refused join ${i}`);
  }
  const elapsedSeconds = (Date.now() - started) / 1000;
  const budget = ROOM_CHANGE_BURST + Math.ceil(elapsedSeconds * ROOM_CHANGES_PER_SECOND) + 1;
  assert.ok(changes <= budget, `${changes} room changes in ${elapsedSeconds} s; budget ${budget}`);
  assert.ok(refused > 0, 'some changes were refused');
  // Every change the toggler made reached the watcher as one notice, nothing more.
  const marker = await clients.member('Toggle Marker', [room]);
  await marker.request('message', { room, text: 'marker' });
  await watcher.wait('message', (m) => m.text === 'marker', { from });
  const notices = watcher.of('message', from).filter((m) => m.kind !== 'chat' && m.text.startsWith('Toggler '));
  assert.equal(notices.length, changes, `notices ${notices.length}, changes ${changes}`);
  assert.equal(watcher.of('presence', from).filter((p) => p.user.id === 'Toggler').length, changes);
});

test('rejoining a room the connection is in takes no room-change token', async (t) => {
  const clients = pool(t, server.url);
  const room = 'rejoin-room';
  const ada = await clients.member('Rejoin Ada', [room]);
  for (let i = 0; i < ROOM_CHANGE_BURST + 5; i++) {
    assert.equal((await ada.request('join', { room })).ok, true, `rejoin ${i}`);
  }
});

test('a typing stop is relayed only after a relayed start, once', async (t) => {
  const clients = pool(t, server.url);
  const room = 'typing-stops';
  const watcher = await clients.member('Stops Watcher', [room]);
  const typist = await clients.member('Stops Typist', [room]);
  const from = watcher.mark();
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(await typist.request('typing', { room, active: false }), { ok: true, relayed: false }, `stop ${i}`);
  }
  assert.deepEqual(await typist.request('typing', { room, active: true }), { ok: true, relayed: true });
  assert.deepEqual(await typist.request('typing', { room, active: false }), { ok: true, relayed: true });
  assert.deepEqual(await typist.request('typing', { room, active: false }), { ok: true, relayed: false });
  await typist.request('message', { room, text: 'marker' });
  await watcher.wait('message', (m) => m.text === 'marker', { from });
  assert.deepEqual(
    watcher.of('typing', from).map((e) => e.active),
    [true, false],
  );
});

test('groupList is bounded in bytes: whole entries in order while they fit; rooms stays complete', async (t) => {
  const clients = pool(t, server.url);
  // Names and rooms of the longest allowed length in four-byte characters.
  const wide = '\u{1D400}';
  const roomNames = Array.from({ length: 20 }, (_, r) => `${wide.repeat(62)}${String(r).padStart(2, '0')}`);
  const users = [];
  for (let c = 0; c < 25; c++) {
    const user = await clients.member(`${wide.repeat(30)}${String(c).padStart(2, '0')}`);
    for (let k = 0; k < 16; k++) {
      const reply = await user.request('join', { room: roomNames[(c + k) % 20] });
      assert.equal(reply.ok, true, JSON.stringify(reply).slice(0, 200));
    }
    users.push(user);
  }
  // A new client gets the lists once right after connecting.
  const observer = await clients.connect();
  const rooms = await observer.wait('rooms');
  const groupList = await observer.wait('groupList');
  assert.equal(rooms.length, 20);
  assert.equal(rooms.reduce((n, r) => n + r.count, 0), 25 * 16, 'rooms counts are exact');
  const bytes = Buffer.byteLength(JSON.stringify(groupList));
  assert.ok(bytes <= GROUP_LIST_MAX_BYTES, `groupList is ${bytes} bytes`);
  const listed = Object.keys(groupList);
  assert.ok(listed.length > 0, 'some rooms are listed');
  assert.deepEqual(listed, rooms.slice(0, listed.length).map((r) => r.room), 'rooms in the order of `rooms`');
  for (const [i, name] of listed.entries()) {
    const entries = groupList[name];
    assert.ok(entries.length > 0);
    if (i < listed.length - 1) assert.equal(entries.length, 20, `room ${i} is complete`);
    const r = roomNames.indexOf(name);
    const inRoom = users.find((_, c) => (((r - c) % 20) + 20) % 20 < 16);
    const { members } = await inRoom.request('members', { room: name });
    assert.deepEqual(
      entries,
      members.slice(0, entries.length).map((m) => ({ name: m.name, room: name, id: m.id })),
      'members in join order',
    );
  }
  // Entries of this size (about 520 bytes) fill the bound with whole entries.
  const total = listed.reduce((n, name) => n + groupList[name].length, 0);
  const entry = Buffer.byteLength(JSON.stringify(groupList[listed[0]][0]));
  const roomKey = Buffer.byteLength(JSON.stringify(listed[0])) + 4;
  assert.ok(bytes + entry + roomKey > GROUP_LIST_MAX_BYTES, `${total} entries in ${bytes} bytes: one more would have fitted`);
});
