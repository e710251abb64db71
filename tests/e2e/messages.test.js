'use strict';
// Room messages: delivery to the other members, the ack, members-only access,
// one order for everybody, and text kept exactly.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer } = require('../support/server.js');
const {
  pool,
  bothTransports,
  assertRefused,
  assertChat,
  assertIncreasing,
  compareIds,
  withoutOk,
} = require('../support/e2e.js');

let server;
before(async () => {
  server = await startServer({
    config: {
      room_list: { interval_ms: 100 },
      limits: {
        max_connections_per_ip: 500,
        messages_per_second: 1000,
        message_burst: 1000,
        requests_per_second: 1000,
        request_burst: 1000,
      },
    },
  });
});
after(() => server.stop());

bothTransports('a message reaches the other members, not the sender; the ack is the stored message', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `msg-${tn}`;
  const ada = await clients.member(`Ada ${tn}`, [room], transport);
  const bob = await clients.member(`Bob ${tn}`, [room], transport);
  const cy = await clients.member(`Cy ${tn}`, [room], { transports: ['websocket'] });
  const marks = [ada, bob, cy].map((c) => c.mark());
  const before = Date.now();
  const reply = await ada.request('message', { room, text: 'hello room' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assertChat(withoutOk(reply), { room, user: `Ada ${tn}`, text: 'hello room' });
  assert.ok(reply.ts >= before - 5000 && reply.ts <= Date.now() + 5000, 'ts is the server clock in ms');
  const atBob = await bob.wait('message', (m) => m.kind === 'chat', { from: marks[1] });
  const atCy = await cy.wait('message', (m) => m.kind === 'chat', { from: marks[2] });
  assert.deepEqual(atBob, withoutOk(reply));
  assert.deepEqual(atCy, withoutOk(reply));
  // The stored message is in the history, identical.
  const history = await bob.request('history', { room });
  assert.deepEqual(history.messages, [withoutOk(reply)]);
  // The sender never gets its own message back: Bob's reply arrives at Ada after it would have.
  const bobReply = await bob.request('message', { room, text: 'hello ada' });
  await ada.wait('message', (m) => m.id === bobReply.id, { from: marks[0] });
  assert.deepEqual(
    ada.of('message', marks[0]).filter((m) => m.kind === 'chat').map((m) => m.text),
    ['hello ada'],
    'Ada gets Bob\'s message and not her own',
  );
});

test('non-members neither receive, send, nor read', async (t) => {
  const clients = pool(t, server.url);
  const room = 'members-only';
  const member = await clients.member('Inside', [room]);
  const other = await clients.member('Inside Too', [room]);
  const outsider = await clients.member('Outsider', ['elsewhere']);
  const from = outsider.mark();
  const reply = await member.request('message', { room, text: 'secret' });
  assert.equal(reply.ok, true);
  await other.wait('message', (m) => m.text === 'secret');
  assertRefused(await outsider.request('message', { room, text: 'let me in' }), 'not_member');
  assertRefused(await outsider.request('history', { room }), 'not_member');
  assertRefused(await outsider.request('members', { room }), 'not_member');
  assertRefused(await outsider.request('message', { room: 'nobody-here', text: 'hello?' }), 'not_member');
  // A message to the outsider's own room proves that delivery to it is up to date.
  await clients.member('Elsewhere Friend', ['elsewhere']).then((c) => c.request('message', { room: 'elsewhere', text: 'proof' }));
  await outsider.wait('message', (m) => m.text === 'proof', { from });
  assert.deepEqual(outsider.of('message', from).filter((m) => m.room === room), []);
  // The refused message changed nothing: the history holds the member's message only.
  const history = await member.request('history', { room });
  assert.deepEqual(history.messages.map((m) => m.text), ['secret']);
});

bothTransports('concurrent senders: every member sees one order, the order of the ids', async (t, transport) => {
  const clients = pool(t, server.url);
  const room = `order-${transport.transports[0]}`;
  const PER_SENDER = 25;
  const senders = [];
  for (let i = 0; i < 3; i++) senders.push(await clients.member(`sender${i}-${room}`, [room], transport));
  const observers = [];
  for (let i = 0; i < 2; i++) observers.push(await clients.member(`observer${i}-${room}`, [room], i ? transport : {}));
  const everyone = [...senders, ...observers];
  const marks = everyone.map((c) => c.mark());
  const acks = await Promise.all(
    senders.flatMap((s, i) =>
      Array.from({ length: PER_SENDER }, (_, n) => s.request('message', { room, text: `s${i}-${n}` })),
    ),
  );
  for (const ack of acks) assert.equal(ack.ok, true, JSON.stringify(ack));
  const total = 3 * PER_SENDER;
  const ackedIds = acks.map((a) => a.id).sort(compareIds);
  assert.equal(new Set(ackedIds).size, total, 'ids are unique');
  // Each sender's own messages got increasing ids, in the order it sent them.
  for (let i = 0; i < 3; i++) {
    assertIncreasing(acks.slice(i * PER_SENDER, (i + 1) * PER_SENDER).map((a) => a.id), `sender ${i}`);
  }
  const seen = await Promise.all(
    everyone.map(async (client, i) => {
      const expected = senders.includes(client) ? total - PER_SENDER : total;
      const got = await client.waitCount('message', expected, (m) => m.kind === 'chat', { from: marks[i], timeout: 10000 });
      return got;
    }),
  );
  const observerIds = seen[3].map((m) => m.id);
  assert.deepEqual(observerIds, ackedIds, 'observers get every message, in id order');
  assert.deepEqual(seen[4].map((m) => m.id), ackedIds, 'both observers see the same order');
  for (let i = 0; i < 3; i++) {
    const mine = new Set(acks.slice(i * PER_SENDER, (i + 1) * PER_SENDER).map((a) => a.id));
    assert.deepEqual(
      seen[i].map((m) => m.id),
      ackedIds.filter((id) => !mine.has(id)),
      `sender ${i} gets the others' messages in the common order and not its own`,
    );
  }
  // Per-sender order is kept inside the common order.
  for (let i = 0; i < 3; i++) {
    const texts = seen[3].filter((m) => m.user === `sender${i}-${room}`).map((m) => m.text);
    assert.deepEqual(texts, Array.from({ length: PER_SENDER }, (_, n) => `s${i}-${n}`));
  }
  // The history has the same order.
  const history = await observers[0].request('history', { room, limit: 200 });
  assert.deepEqual(history.messages.map((m) => m.id), ackedIds);
  assert.deepEqual(history.messages, seen[3]);
});

bothTransports('text is kept exactly', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `exact-${tn}`;
  const ada = await clients.member(`Exact Ada ${tn}`, [room], transport);
  const bob = await clients.member(`Exact Bob ${tn}`, [room], transport);
  const texts = [
    '<b>bold</b> <script>alert(1)</script> & &amp; "quotes" \'single\'',
    'unicode: héllo wörld — 漢字 — emoji 👩‍💻🎉 — RTL עברית — combining é',
    'two  spaces, a\ttab and\nnew lines\r\n',
    'backslash \\ and json {"a":[1,2]} and null \u0000 byte?'.replace('\u0000', ''),
    '  leading and trailing spaces  ',
    '42["message",{"room":"x"}]',
  ];
  const from = bob.mark();
  for (const text of texts) {
    const reply = await ada.request('message', { room, text });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.equal(reply.text, text);
  }
  const got = await bob.waitCount('message', texts.length, (m) => m.kind === 'chat', { from });
  assert.deepEqual(got.map((m) => m.text), texts);
  const history = await bob.request('history', { room });
  assert.deepEqual(history.messages.map((m) => m.text), texts);
});

bothTransports('text with NUL, control or bidi override characters is refused with invalid_text and reaches no one', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `hidden-${tn}`;
  const ada = await clients.member(`Hidden Ada ${tn}`, [room], transport);
  const bob = await clients.member(`Hidden Bob ${tn}`, [room], transport);
  const from = bob.mark();
  const bad = [
    ['a NUL', 'filtered\u0000hidden'],
    ['a bell', 'ding\u0007'],
    ['escape (terminal sequences)', '\u001b[31mred'],
    ['DEL', 'x\u007f'],
    ['a C1 control', 'next\u0085line'],
    ['right-to-left override', 'invoice_\u202Etxt.exe'],
    ['left-to-right embedding', '\u202Aa'],
    ['pop directional formatting', 'a\u202C'],
    ['first strong isolate', 'a\u2068b\u2069'],
  ];
  for (const [why, text] of bad) {
    assertRefused(await ada.request('message', { room, text }), 'invalid_text', why);
    assertRefused(await ada.request('private', { to: `Hidden Bob ${tn}`, text }), 'invalid_text', `private: ${why}`);
  }
  // Tab, line breaks and the right-to-left mark are text; they pass.
  const fine = 'line one\r\nline\ttwo \u200F\u05E2\u05D1\u05E8\u05D9\u05EA';
  const reply = await ada.request('message', { room, text: fine });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  const got = await bob.wait('message', (m) => m.kind === 'chat', { from });
  assert.equal(got.text, fine);
  assert.deepEqual(bob.of('private', from), [], 'no refused private message arrived');
  assert.deepEqual(
    bob.of('message', from).filter((m) => m.kind === 'chat').map((m) => m.text),
    [fine],
    'only the accepted text reached Bob',
  );
  const history = await bob.request('history', { room });
  assert.deepEqual(history.messages.map((m) => m.text), [fine]);
});

test('a connection\'s requests apply in order: join then message without waiting', async (t) => {
  const clients = pool(t, server.url);
  const room = 'pipelined';
  const bob = await clients.member('Pipe Bob', [room]);
  const ada = await clients.connect({ transports: ['polling'] });
  const [login, join, message, leave, late] = await Promise.all([
    ada.request('login', { name: 'Pipe Ada' }),
    ada.request('join', { room }),
    ada.request('message', { room, text: 'right after joining' }),
    ada.request('leave', { room }),
    ada.request('message', { room, text: 'after leaving' }),
  ]);
  assert.equal(login.ok, true);
  assert.equal(join.ok, true, JSON.stringify(join));
  assert.equal(message.ok, true, JSON.stringify(message));
  assert.deepEqual(leave, { ok: true, room });
  assertRefused(late, 'not_member');
  const got = await bob.wait('message', (m) => m.kind === 'chat');
  assertChat(got, { room, user: 'Pipe Ada', text: 'right after joining' });
});
