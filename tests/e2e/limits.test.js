'use strict';
// Limits: text, names, rooms, rates, connections per IP, Engine.IO payload size.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer, sleep } = require('../support/server.js');
const { pool, bothTransports, assertRefused, assertChat, withoutOk, httpRequest, TRANSPORTS } = require('../support/e2e.js');

const MAX_TEXT = 10;
const MAX_ROOM = 8;
const MAX_NAME = 12;
const MAX_PAYLOAD = 2000;
let small; // small text, name, room and payload limits
before(async () => {
  small = await startServer({
    config: {
      room_list: { interval_ms: 100 },
      limits: {
        max_text_chars: MAX_TEXT,
        max_room_chars: MAX_ROOM,
        max_name_chars: MAX_NAME,
        max_rooms_per_connection: 2,
        max_payload_bytes: MAX_PAYLOAD,
        max_connections_per_ip: 500,
        messages_per_second: 1000,
        message_burst: 1000,
        requests_per_second: 1000,
        request_burst: 1000,
      },
    },
  });
});
after(() => small.stop());

test('text over max_text_chars is text_too_long; exactly at the limit passes', async (t) => {
  const clients = pool(t, small.url);
  const ada = await clients.member('Ada', ['texts']);
  const bob = await clients.member('Bob', ['texts']);
  const from = bob.mark();
  for (const text of ['x'.repeat(MAX_TEXT + 1), 'é'.repeat(MAX_TEXT + 1), '👍'.repeat(MAX_TEXT + 1), 'x'.repeat(1000)]) {
    assertRefused(await ada.request('message', { room: 'texts', text }), 'text_too_long', `${text.length}`);
    assertRefused(await ada.request('private', { to: 'Bob', text }), 'text_too_long', `private ${text.length}`);
  }
  // Characters, not bytes nor UTF-16 units.
  const atLimit = ['x'.repeat(MAX_TEXT), 'é'.repeat(MAX_TEXT), '👍'.repeat(MAX_TEXT)];
  for (const text of atLimit) {
    const reply = await ada.request('message', { room: 'texts', text });
    assert.equal(reply.ok, true, `${JSON.stringify(text)}: ${JSON.stringify(reply)}`);
    assert.equal(reply.text, text);
  }
  const privateReply = await ada.request('private', { to: 'Bob', text: 'y'.repeat(MAX_TEXT) });
  assert.equal(privateReply.ok, true);
  const got = await bob.waitCount('message', atLimit.length, (m) => m.kind === 'chat', { from });
  assert.deepEqual(got.map((m) => m.text), atLimit, 'only the accepted messages were delivered');
  assert.deepEqual(await bob.wait('private', () => true, { from }), withoutOk(privateReply));
  assert.equal(bob.of('private', from).length, 1);
});

test('empty or whitespace-only text is empty_text', async (t) => {
  const clients = pool(t, small.url);
  const ada = await clients.member('Empty', ['empties']);
  for (const text of ['', ' ', '   \n\t  ']) {
    assertRefused(await ada.request('message', { room: 'empties', text }), 'empty_text', JSON.stringify(text));
  }
  assert.deepEqual((await ada.request('history', { room: 'empties' })).messages, []);
});

test('room names: too long or bad characters are invalid_room; exactly at the limit passes', async (t) => {
  const clients = pool(t, small.url);
  const ada = await clients.member('Roomy');
  const bad = [
    'r'.repeat(MAX_ROOM + 1),
    'a/b',
    'a<b>',
    'tab\tx',
    'quote"',
    '!!!',
    '#-:+',
    '',
    '   ',
  ];
  for (const room of bad) {
    assertRefused(await ada.request('join', { room }), 'invalid_room', `join ${JSON.stringify(room)}`);
  }
  // Every request that names a room checks it before membership.
  for (const [event, payload] of [
    ['leave', {}],
    ['message', { text: 'hi' }],
    ['typing', {}],
    ['history', {}],
    ['members', {}],
  ]) {
    assertRefused(await ada.request(event, { room: 'a/b', ...payload }), 'invalid_room', event);
    assertRefused(await ada.request(event, { room: 'r'.repeat(MAX_ROOM + 1), ...payload }), 'invalid_room', event);
  }
  for (const room of ['r'.repeat(MAX_ROOM), 'a_-.#:+1']) {
    const reply = await ada.request('join', { room });
    assert.equal(reply.ok, true, `${room}: ${JSON.stringify(reply)}`);
    assert.equal(reply.room, room);
    assert.deepEqual(await ada.request('leave', { room }), { ok: true, room });
  }
  // Letters beyond ASCII are letters; the limit counts characters.
  const unicode = 'é'.repeat(MAX_ROOM);
  const reply = await ada.request('join', { room: unicode });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.equal(reply.room, unicode);
});

test('name length is limits.max_name_chars', async (t) => {
  const clients = pool(t, small.url);
  const a = await clients.connect();
  assertRefused(await a.request('login', { name: 'n'.repeat(MAX_NAME + 1) }), 'invalid_name');
  assert.equal(await clients.refused({ auth: { name: 'h'.repeat(MAX_NAME + 1) } }), 'invalid_name');
  const name = 'n'.repeat(MAX_NAME);
  assert.deepEqual(await a.request('login', { name }), { ok: true, user: { id: name, name } });
});

test('too_many_rooms past max_rooms_per_connection', async (t) => {
  const clients = pool(t, small.url);
  const ada = await clients.member('Joiner', ['one', 'two']);
  assertRefused(await ada.request('join', { room: 'three' }), 'too_many_rooms');
  // Rejoining a room it is in is not a new room.
  assert.equal((await ada.request('join', { room: 'one' })).ok, true);
  // The refused join changed nothing.
  const rooms = await ada.request('rooms');
  assert.equal(rooms.rooms.some((r) => r.room === 'three'), false);
  assertRefused(await ada.request('members', { room: 'three' }), 'not_member');
  // Leaving frees a place.
  await ada.request('leave', { room: 'one' });
  assert.equal((await ada.request('join', { room: 'three' })).ok, true);
  // The limit is per connection.
  const bob = await clients.member('Joiner Two', ['one', 'two']);
  assertRefused(await bob.request('join', { room: 'four' }), 'too_many_rooms');
});

bothTransports('an Engine.IO payload over max_payload_bytes closes only that connection', async (t, transport, tn) => {
  const clients = pool(t, small.url);
  const room = `big-${tn.slice(0, 3)}`;
  const ada = await clients.member(`Big ${tn.slice(0, 3)}`, [room], transport);
  const bob = await clients.member(`Bob ${tn.slice(0, 3)}`, [room], transport);
  const cy = await clients.member(`Cy ${tn.slice(0, 3)}`, [room], { transports: ['websocket'] });
  const fromBob = bob.mark();
  const fromCy = cy.mark();
  ada.send('message', { room, text: 'z'.repeat(MAX_PAYLOAD * 2) });
  const reason = await ada.disconnected();
  assert.ok(
    ['transport close', 'transport error', 'parse error', 'ping timeout'].includes(reason),
    `the oversized sender was disconnected: ${reason}`,
  );
  // The others notice that Ada left, and keep chatting.
  const notice = await bob.wait('message', (m) => m.kind === 'leave', { from: fromBob });
  assert.equal(notice.room, room);
  const reply = await bob.request('message', { room, text: 'still fine' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assertChat(await cy.wait('message', (m) => m.kind === 'chat', { from: fromCy }), {
    room,
    user: `Bob ${tn.slice(0, 3)}`,
    text: 'still fine',
  });
  // The oversized message reached nobody.
  assert.deepEqual(cy.of('message', fromCy).filter((m) => m.kind === 'chat').map((m) => m.text), ['still fine']);
  assert.deepEqual(bob.of('message', fromBob).filter((m) => m.kind === 'chat'), []);
  // A payload just under the limit is fine (its text is refused by the text limit, not the transport).
  const refusal = await bob.request('message', { room, text: 'w'.repeat(MAX_PAYLOAD - 200) });
  assertRefused(refusal, 'text_too_long');
  assert.equal(bob.connected, true);
});

test('message rate: rate_limited with retry_after_ms; other connections unaffected', async (t) => {
  const server = await startServer({
    config: {
      room_list: { interval_ms: 100 },
      limits: { messages_per_second: 1, message_burst: 3, requests_per_second: 1000, request_burst: 1000 },
    },
  });
  t.after(() => server.stop());
  const clients = pool(t, server.url);
  const ada = await clients.member('Fast Ada', ['rate']);
  const bob = await clients.member('Calm Bob', ['rate']);
  const fromBob = bob.mark();
  for (let i = 0; i < 3; i++) {
    assert.equal((await ada.request('message', { room: 'rate', text: `burst ${i}` })).ok, true, `burst ${i}`);
  }
  const limited = await ada.request('message', { room: 'rate', text: 'too fast' });
  assertRefused(limited, 'rate_limited');
  assert.equal(typeof limited.retry_after_ms, 'number');
  assert.ok(Number.isInteger(limited.retry_after_ms), `retry_after_ms ${limited.retry_after_ms}`);
  assert.ok(limited.retry_after_ms > 0 && limited.retry_after_ms <= 1000, `retry_after_ms ${limited.retry_after_ms}`);
  // Without an ack callback the refusal is an error event, with retry_after_ms too.
  const fromAda = ada.mark();
  ada.send('message', { room: 'rate', text: 'too fast, no ack' });
  const error = await ada.wait('error', () => true, { from: fromAda });
  assert.deepEqual(Object.keys(error).sort(), ['code', 'event', 'message', 'ok', 'retry_after_ms']);
  assert.equal(error.ok, false);
  assert.equal(error.code, 'rate_limited');
  assert.equal(error.event, 'message');
  assert.ok(Number.isInteger(error.retry_after_ms) && error.retry_after_ms > 0 && error.retry_after_ms <= 1000);
  // Private messages share the bucket.
  assertRefused(await ada.request('private', { to: 'Calm Bob', text: 'too fast' }), 'rate_limited');
  // Other requests of the same connection are not message-limited.
  assert.equal((await ada.request('members', { room: 'rate' })).ok, true);
  // Another connection is unaffected meanwhile.
  for (let i = 0; i < 3; i++) {
    assert.equal((await bob.request('message', { room: 'rate', text: `bob ${i}` })).ok, true, `bob ${i}`);
  }
  // After the advertised wait, Ada may send again.
  await sleep(limited.retry_after_ms + 50);
  const again = await ada.request('message', { room: 'rate', text: 'after waiting' });
  assert.equal(again.ok, true, JSON.stringify(again));
  await bob.wait('message', (m) => m.text === 'after waiting', { from: fromBob });
  assert.deepEqual(
    bob.of('message', fromBob).filter((m) => m.kind === 'chat').map((m) => m.text),
    ['burst 0', 'burst 1', 'burst 2', 'after waiting'],
    'refused messages were not delivered',
  );
  assert.equal(bob.of('private', fromBob).length, 0);
});

test('request rate: every request counts; rate_limited with retry_after_ms', async (t) => {
  const server = await startServer({
    config: {
      room_list: { interval_ms: 100 },
      limits: { requests_per_second: 1, request_burst: 5, messages_per_second: 1000, message_burst: 1000 },
    },
  });
  t.after(() => server.stop());
  const clients = pool(t, server.url);
  const ada = await clients.connect();
  const bob = await clients.connect();
  for (let i = 0; i < 5; i++) {
    assert.equal((await ada.request('rooms')).ok, true, `request ${i}`);
  }
  const limited = await ada.request('rooms');
  assertRefused(limited, 'rate_limited');
  assert.ok(Number.isInteger(limited.retry_after_ms), `retry_after_ms ${limited.retry_after_ms}`);
  assert.ok(limited.retry_after_ms > 0 && limited.retry_after_ms <= 1000, `retry_after_ms ${limited.retry_after_ms}`);
  assertRefused(await ada.request('login', { name: 'Too Quick' }), 'rate_limited');
  // Bob is unaffected.
  for (let i = 0; i < 5; i++) assert.equal((await bob.request('rooms')).ok, true, `bob ${i}`);
  await sleep(limited.retry_after_ms + 50);
  // The refused login changed nothing: the name is free and Ada has none.
  assert.deepEqual(await ada.request('login', { name: 'Too Quick' }), { ok: true, user: { id: 'Too Quick', name: 'Too Quick' } });
});

test('too_many_connections per IP; a slot frees after a disconnect', async (t) => {
  const server = await startServer({
    config: { room_list: { interval_ms: 100 }, limits: { max_connections_per_ip: 3 } },
  });
  t.after(() => server.stop());
  const clients = pool(t, server.url);
  const a = await clients.member('Slot A', ['slots'], TRANSPORTS.websocket);
  const b = await clients.member('Slot B', ['slots'], TRANSPORTS.polling);
  await clients.connect(TRANSPORTS.websocket);
  assert.equal(await clients.refused(TRANSPORTS.websocket), 'too_many_connections');
  assert.equal(await clients.refused(TRANSPORTS.polling), 'too_many_connections');
  assert.equal(await clients.refused(), 'too_many_connections');
  // The connected ones are unaffected.
  assert.equal((await b.request('message', { room: 'slots', text: 'we are fine' })).ok, true);
  await a.wait('message', (m) => m.text === 'we are fine');
  // A disconnect frees a slot (the leave notice shows the server saw it).
  const from = b.mark();
  a.close();
  await b.wait('message', (m) => m.kind === 'leave', { from });
  const d = await clients.connect(TRANSPORTS.polling);
  assert.equal(d.connected, true);
  assert.equal(await clients.refused(TRANSPORTS.websocket), 'too_many_connections');
});

test('requests in progress beyond max_pending_requests are refused with busy', async (t) => {
  const server = await startServer({
    config: {
      room_list: { interval_ms: 100 },
      limits: {
        max_pending_requests: 2,
        requests_per_second: 10000,
        request_burst: 10000,
        messages_per_second: 10000,
        message_burst: 10000,
      },
    },
  });
  t.after(() => server.stop());
  const clients = pool(t, server.url);
  const ada = await clients.member('Busy Ada', ['busy']);
  const bob = await clients.member('Calm Bob', ['busy']);
  await ada.request('message', { room: 'busy', text: 'something to read' });
  const flood = Array.from({ length: 100 }, () => ada.request('history', { room: 'busy', limit: 200 }));
  const calm = await bob.request('members', { room: 'busy' });
  const replies = await Promise.all(flood);
  const busy = replies.filter((r) => !r.ok);
  assert.ok(busy.length > 0, 'a burst of 100 requests exceeds 2 in progress');
  for (const r of busy) assertRefused(r, 'busy');
  for (const r of replies.filter((r) => r.ok)) assert.deepEqual(r.messages.map((m) => m.text), ['something to read']);
  // The other connection was unaffected, and Ada works again once answered.
  assert.equal(calm.ok, true);
  assert.equal(calm.count, 2);
  assert.equal((await ada.request('members', { room: 'busy' })).ok, true);
});

test('the handshake advertises maxPayload; a polling client batching many small packets stays connected', async (t) => {
  const res = await httpRequest(`${small.url}/socket.io/?EIO=4&transport=polling`);
  const open = JSON.parse(res.body.toString().slice(1));
  assert.equal(open.maxPayload, MAX_PAYLOAD);
  const clients = pool(t, small.url);
  const ada = await clients.member('Batcher', ['batch'], TRANSPORTS.polling);
  const bob = await clients.member('Batch Bob', ['batch']);
  const from = bob.mark();
  // 80 packets of ~50 bytes (twice maxPayload in all), emitted in one go: the client
  // packs them into POST bodies of at most maxPayload bytes, none over the limit.
  const replies = await Promise.all(
    Array.from({ length: 80 }, (_, i) => ada.request('message', { room: 'batch', text: `${i}`.padStart(MAX_TEXT, '.') })),
  );
  for (const r of replies) assert.equal(r.ok, true, JSON.stringify(r));
  await bob.waitCount('message', 80, (m) => m.kind === 'chat', { from });
  assert.equal(ada.connected, true);
  assert.equal(ada.disconnectReason, null);
});
