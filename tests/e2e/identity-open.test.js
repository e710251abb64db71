'use strict';
// Open identity mode: names from the handshake, the first join, or login;
// uniqueness, validation, logout, and the server deciding who sent a message.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer } = require('../support/server.js');
const {
  pool,
  bothTransports,
  assertRefused,
  assertNone,
  assertChat,
  assertNotice,
} = require('../support/e2e.js');

let server;
before(async () => {
  server = await startServer({
    config: { room_list: { interval_ms: 100 }, limits: { max_connections_per_ip: 500 } },
  });
});
after(() => server.stop());

const session = (user) => ({ user, mode: 'open' });
const ident = (name) => ({ id: name, name });

bothTransports('a name in the handshake auth logs in; session says so', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const name = `Ada ${tn}`;
  const a = await clients.connect({ ...transport, auth: { name } });
  assert.deepEqual(await a.wait('session'), session(ident(name)));
  assert.equal(a.of('session').length, 1);
  const reply = await a.request('join', { room: `hs-${tn}` });
  assert.equal(reply.ok, true);
  assert.deepEqual(reply.user, ident(name));
});

bothTransports('without a name the session event says user null', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const a = await clients.connect(transport);
  assert.deepEqual(await a.wait('session'), session(null));
});

bothTransports('the name of the first join logs in', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const name = `Joiner_${tn}`;
  const room = `jn-${tn}`;
  const a = await clients.connect(transport);
  await a.wait('session');
  const from = a.mark();
  const reply = await a.request('join', { room, name });
  assert.deepEqual(reply, {
    ok: true,
    room,
    user: ident(name),
    count: 1,
    members: [ident(name)],
    history: [],
    has_more: false,
    epoch: null,
    offset: 0,
  });
  assert.deepEqual(await a.wait('session', () => true, { from }), session(ident(name)));
  // With an identity, the name of a later join is ignored.
  const again = await a.request('join', { room: `${room}-2`, name: 'Someone Else' });
  assert.equal(again.ok, true);
  assert.deepEqual(again.user, ident(name));
  assert.deepEqual(again.members, [ident(name)]);
});

bothTransports('login {name} logs in; session follows the ack', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const name = `Login ${tn}`;
  const a = await clients.connect(transport);
  await a.wait('session');
  const from = a.mark();
  const reply = await a.request('login', { name });
  assert.deepEqual(reply, { ok: true, user: ident(name) });
  assert.deepEqual(await a.wait('session', () => true, { from }), session(ident(name)));
});

test('names are trimmed and runs of spaces collapsed', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect();
  assert.deepEqual(await a.request('login', { name: '   Grace    Hopper  ' }), {
    ok: true,
    user: ident('Grace Hopper'),
  });
  const b = await clients.connect({ auth: { name: "  O'Brien_x-y.z@w  " } });
  assert.deepEqual(await b.wait('session'), session(ident("O'Brien_x-y.z@w")));
});

test('a name exactly 32 characters long is accepted, 33 is not', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect();
  const name32 = 'N'.repeat(31) + '1';
  assertRefused(await a.request('login', { name: 'M'.repeat(33) }), 'invalid_name');
  assert.deepEqual(await a.request('login', { name: name32 }), { ok: true, user: ident(name32) });
  // Non-ASCII letters count as characters, not bytes.
  const b = await clients.connect();
  const accents = 'é'.repeat(32);
  assert.deepEqual(await b.request('login', { name: accents }), { ok: true, user: ident(accents) });
});

test('a taken name gets the next free -2, -3 suffix, case-insensitively', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ auth: { name: 'Taken' } });
  assert.deepEqual(await a.wait('session'), session(ident('Taken')));
  const b = await clients.connect({ auth: { name: 'taken' } });
  assert.deepEqual(await b.wait('session'), session(ident('taken-2')));
  const c = await clients.connect();
  assert.deepEqual(await c.request('login', { name: 'TAKEN' }), { ok: true, user: ident('TAKEN-3') });
  const d = await clients.connect();
  await d.wait('session');
  const fromD = d.mark();
  const joined = await d.request('join', { room: 'taken-room', name: 'tAkEn' });
  assert.equal(joined.ok, true);
  assert.deepEqual(joined.user, ident('tAkEn-4'));
  assert.deepEqual(await d.wait('session', () => true, { from: fromD }), session(ident('tAkEn-4')));
  // A suffixed name is a name like any other: taken case-insensitively too.
  const e = await clients.connect({ auth: { name: 'TAKEN-2' } });
  assert.deepEqual(await e.wait('session'), session(ident('TAKEN-2-2')));
});

test('look-alikes of system are reserved; display names are NFKC; a look-alike of an online name gets a suffix', async (t) => {
  const clients = pool(t, server.url);
  const lookAlikes = [
    ['\u0455ystem', 'Cyrillic dze for s'],
    ['\uFF53\uFF59\uFF53\uFF54\uFF45\uFF4D', 'fullwidth letters'],
    ['SY\u0405TEM', 'Cyrillic capital dze'],
    ['sys\u200Btem', 'a zero-width space inside'],
  ];
  for (const [name, why] of lookAlikes) {
    assert.equal(await clients.refused({ auth: { name } }), 'invalid_name', `handshake: ${why}`);
  }
  const a = await clients.connect();
  await a.wait('session');
  for (const [name, why] of lookAlikes) {
    assertRefused(await a.request('login', { name }), 'invalid_name', `login: ${why}`);
  }
  // Fullwidth letters are shown as the letters they stand for.
  assert.deepEqual(await a.request('login', { name: '\uFF2C\uFF4F\uFF4F\uFF4B Alike' }), {
    ok: true,
    user: ident('Look Alike'),
  });
  // Cyrillic o's look like the online Look Alike: the newcomer gets a suffix.
  const cyrillic = 'L\u043E\u043Ek Alike';
  const b = await clients.connect({ auth: { name: cyrillic } });
  assert.deepEqual(await b.wait('session'), session(ident(`${cyrillic}-2`)));
  const c = await clients.connect({ auth: { name: 'LOOK ALIKE' } });
  assert.deepEqual(await c.wait('session'), session(ident('LOOK ALIKE-3')));
});

test('a name is free again after its connection disconnects', async (t) => {
  const clients = pool(t, server.url);
  const watcher = await clients.member('Freed Watcher', ['freed']);
  const a = await clients.member('Freed', ['freed']);
  const from = watcher.mark();
  a.close();
  await watcher.wait('message', (m) => m.kind === 'leave', { from });
  const b = await clients.connect();
  assert.deepEqual(await b.request('login', { name: 'freed' }), { ok: true, user: ident('freed') });
});

test('logout frees the name, leaves rooms, and the connection may log in again', async (t) => {
  const clients = pool(t, server.url);
  const watcher = await clients.member('Logout Watcher', ['logout-room']);
  const a = await clients.member('Leaver', ['logout-room']);
  const fromA = a.mark();
  const fromW = watcher.mark();
  assert.deepEqual(await a.request('logout'), { ok: true });
  assert.deepEqual(await a.wait('session', () => true, { from: fromA }), session(null));
  const notice = await watcher.wait('message', (m) => m.kind === 'leave', { from: fromW });
  assertNotice(notice, { room: 'logout-room', kind: 'leave' });
  const presence = await watcher.wait('presence', (p) => p.action === 'leave', { from: fromW });
  assert.deepEqual(presence, { room: 'logout-room', action: 'leave', user: ident('Leaver'), count: 1 });
  // The name is free at once.
  const b = await clients.connect();
  assert.deepEqual(await b.request('login', { name: 'Leaver' }), { ok: true, user: ident('Leaver') });
  // Logged out, the connection needs an identity again.
  assertRefused(await a.request('message', { room: 'logout-room', text: 'hi' }), 'not_logged_in');
  assertRefused(await a.request('logout'), 'not_logged_in');
  // And may log in again, with login or with a named join.
  assert.deepEqual(await a.request('login', { name: 'Leaver Again' }), { ok: true, user: ident('Leaver Again') });
  assert.deepEqual(await a.request('logout'), { ok: true });
  const rejoined = await a.request('join', { room: 'logout-room', name: 'Leaver Third' });
  assert.equal(rejoined.ok, true);
  assert.deepEqual(rejoined.user, ident('Leaver Third'));
});

const INVALID_NAMES = [
  ['has a <tag>', 'a character outside the allowed set'],
  ['!!!', 'no letter or digit'],
  ['- . @', 'only punctuation'],
  ['X'.repeat(33), 'too long'],
  ['system', 'reserved'],
  ['bell\u0007name', 'a control character'],
];

test('an invalid handshake name refuses the connection with invalid_name', async (t) => {
  const clients = pool(t, server.url);
  for (const [name, why] of INVALID_NAMES) {
    assert.equal(await clients.refused({ auth: { name } }), 'invalid_name', why);
  }
  // The server still accepts good connections.
  const ok = await clients.connect({ auth: { name: 'After Refusals' } });
  assert.deepEqual(await ok.wait('session'), session(ident('After Refusals')));
});

test('an invalid name in login or join is refused with invalid_name', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect();
  await a.wait('session');
  for (const [name, why] of INVALID_NAMES) {
    assertRefused(await a.request('login', { name }), 'invalid_name', `login: ${why}`);
    assertRefused(await a.request('join', { room: 'bad-names', name }), 'invalid_name', `join: ${why}`);
  }
  assertRefused(await a.request('login', { name: '   ' }), 'invalid_name', 'blank');
  // Nothing changed: still anonymous, in no room.
  assertRefused(await a.request('members', { room: 'bad-names' }), 'not_logged_in');
  assert.deepEqual(a.of('session'), [session(null)]);
  const rooms = await a.request('rooms');
  assert.equal(rooms.rooms.some((r) => r.room === 'bad-names'), false);
});

test('login with an identity is refused with already_logged_in', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ auth: { name: 'Already' } });
  assertRefused(await a.request('login', { name: 'Other Name' }), 'already_logged_in');
  const b = await clients.connect();
  assert.deepEqual(await b.request('login', { name: 'Already Too' }), { ok: true, user: ident('Already Too') });
  assertRefused(await b.request('login', { name: 'Already Too' }), 'already_logged_in');
  // Still who it was.
  const joined = await b.request('join', { room: 'already' });
  assert.deepEqual(joined.user, ident('Already Too'));
});

test('requests that need an identity are refused with not_logged_in before login', async (t) => {
  const clients = pool(t, server.url);
  await clients.member('Host Of Room', ['anon-room']);
  const a = await clients.connect();
  const refusals = [
    ['join', { room: 'anon-room' }],
    ['leave', { room: 'anon-room' }],
    ['message', { room: 'anon-room', text: 'hello' }],
    ['private', { to: 'Host Of Room', text: 'hello' }],
    ['typing', { room: 'anon-room', active: true }],
    ['history', { room: 'anon-room' }],
    ['members', { room: 'anon-room' }],
    ['logout', {}],
  ];
  for (const [event, payload] of refusals) {
    assertRefused(await a.request(event, payload), 'not_logged_in', event);
  }
  // Room lists are public: `rooms` works without an identity.
  const rooms = await a.request('rooms');
  assert.equal(rooms.ok, true);
  assert.deepEqual(rooms.rooms.find((r) => r.room === 'anon-room'), { room: 'anon-room', count: 1 });
});

bothTransports('a user field in a message is ignored: the sender is the connection', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `spoof-${tn}`;
  const victim = await clients.member(`Victim ${tn}`, [room], transport);
  const mallory = await clients.member(`Mallory ${tn}`, [room], transport);
  const from = victim.mark();
  const reply = await mallory.request('message', { room, text: 'I am the victim', user: `Victim ${tn}`, user_id: `Victim ${tn}` });
  assert.equal(reply.ok, true);
  assert.equal(reply.user, `Mallory ${tn}`);
  const got = await victim.wait('message', (m) => m.kind === 'chat', { from });
  assertChat(got, { room, user: `Mallory ${tn}`, text: 'I am the victim' });
  // Nor can a join name change an existing identity.
  await assertNone(victim, 'message', (m) => m.user === `Victim ${tn}`, { from, ms: 0 });
});

test(
  'the length limit applies to the normalized name (runs of spaces collapsed first)',
  async (t) => {
    const clients = pool(t, server.url);
    // 3 + 40 + 8 characters as sent; "Ada Lovelace" (12) once normalized.
    const spaced = `Ada${' '.repeat(40)}Lovelace`;
    const a = await clients.connect();
    assert.deepEqual(await a.request('login', { name: spaced }), { ok: true, user: ident('Ada Lovelace') });
    const b = await clients.connect({ auth: { name: `Grace${' '.repeat(40)}Hopper` } });
    assert.deepEqual(await b.wait('session'), session(ident('Grace Hopper')));
  },
);

test(
  'an empty or blank handshake name is an invalid name',
  async (t) => {
    const clients = pool(t, server.url);
    assert.equal(await clients.refused({ auth: { name: '' } }), 'invalid_name', 'empty name');
    assert.equal(await clients.refused({ auth: { name: '   ' } }), 'invalid_name', 'blank name');
  },
);

test('a handshake name that is not a string is invalid_name', async (t) => {
  const clients = pool(t, server.url);
  assert.equal(await clients.refused({ auth: { name: 42 } }), 'invalid_name');
  assert.equal(await clients.refused({ auth: { name: ['Ada'] } }), 'invalid_name');
});

test('with an identity, the name of a join is ignored even when it is invalid', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.member('Has Identity');
  const reply = await a.request('join', { room: 'ignore-name', name: 'bad<>name' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual(reply.user, ident('Has Identity'));
});
