'use strict';
// Private messages: to every connection of both users (the sender's other
// connections too) and to no one else; stored per conversation, with offsets.
// Recovery and offline delivery are in recovery.test.js.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer, sign } = require('../support/server.js');
const { pool, bothTransports, assertRefused, withoutOk } = require('../support/e2e.js');

const SECRET = 'private-e2e-secret';
let open;
let tokens;
let refusing;
before(async () => {
  [open, refusing, tokens] = await Promise.all([
    startServer({ config: { room_list: { interval_ms: 100 }, limits: { max_connections_per_ip: 500 } } }),
    startServer({ config: { history: { private_offline: 'refuse' }, limits: { max_connections_per_ip: 500 } } }),
    startServer({
      config: {
        identity: { mode: 'token', token_secret: SECRET },
        room_list: { interval_ms: 100 },
        limits: { max_connections_per_ip: 500 },
      },
    }),
  ]);
});
after(() => Promise.all([open.stop(), tokens.stop(), refusing.stop()]));

const token = (sub, name) => sign({ sub, name, exp: Math.floor(Date.now() / 1000) + 300 }, SECRET);

/** Asserts the private ack's exact shape. */
function assertPrivateAck(reply, { from, to, text }) {
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual(Object.keys(reply).sort(), ['epoch', 'from', 'id', 'offset', 'ok', 'text', 'to', 'ts']);
  assert.ok(Number.isInteger(reply.offset) && reply.offset >= 1, `offset ${reply.offset}`);
  assert.equal(typeof reply.epoch, 'string');
  assert.equal(typeof reply.id, 'string');
  assert.ok(reply.id.length > 0);
  assert.deepEqual(reply.from, from);
  assert.deepEqual(reply.to, to);
  assert.equal(reply.text, text);
  assert.ok(Number.isInteger(reply.ts));
  assert.ok(Math.abs(reply.ts - Date.now()) < 60000);
}

bothTransports('open mode: delivered to the recipient with the ack\'s content', async (t, transport, tn) => {
  const clients = pool(t, open.url);
  const ada = await clients.member(`PAda ${tn}`, [], transport);
  const bob = await clients.member(`PBob ${tn}`, [], transport);
  const reply = await bob.request('private', { to: `PAda ${tn}`, text: 'psst <i>hi</i> 👋' });
  assertPrivateAck(reply, {
    from: { id: `PBob ${tn}`, name: `PBob ${tn}` },
    to: { id: `PAda ${tn}`, name: `PAda ${tn}` },
    text: 'psst <i>hi</i> 👋',
  });
  assert.deepEqual(await ada.wait('private'), withoutOk(reply));
  // Two private messages get different ids.
  const second = await bob.request('private', { to: `PAda ${tn}`, text: 'again' });
  assert.notEqual(second.id, reply.id);
  assert.equal(second.offset, reply.offset + 1, 'offsets follow each other in the conversation');
  assert.equal(second.epoch, reply.epoch);
  assert.deepEqual(await ada.wait('private', (p) => p.text === 'again'), withoutOk(second));
  assert.deepEqual(bob.of('private'), [], 'the sending connection gets the ack, not a copy');
});

test('token mode: every connection of the recipient gets it, and no one else', async (t) => {
  const clients = pool(t, tokens.url);
  const to1 = await clients.connect({ auth: { token: token('rcpt', 'Recipient') } });
  const to2 = await clients.connect({ transports: ['polling'], auth: { token: token('rcpt', 'Recipient') } });
  const from1 = await clients.connect({ auth: { token: token('sndr', 'Sender') } });
  const from2 = await clients.connect({ auth: { token: token('sndr', 'Sender') } });
  const third = await clients.connect({ auth: { token: token('third', 'Third') } });
  // Everyone in one room, so that room delivery would not explain anything.
  for (const c of [to1, to2, from1, from2, third]) assert.equal((await c.request('join', { room: 'pm-room' })).ok, true);
  const marks = [to1, to2, from1, from2, third].map((c) => c.mark());
  const reply = await from1.request('private', { to: 'rcpt', text: 'for the recipient only' });
  assertPrivateAck(reply, {
    from: { id: 'sndr', name: 'Sender' },
    to: { id: 'rcpt', name: 'Recipient' },
    text: 'for the recipient only',
  });
  assert.deepEqual(await to1.wait('private', () => true, { from: marks[0] }), withoutOk(reply));
  assert.deepEqual(await to2.wait('private', () => true, { from: marks[1] }), withoutOk(reply));
  // Later private messages to the others prove that nothing else was on its way to them.
  const proofThird = await to1.request('private', { to: 'third', text: 'proof for third' });
  assert.equal(proofThird.ok, true);
  const proofSender = await third.request('private', { to: 'sndr', text: 'proof for sender' });
  assert.equal(proofSender.ok, true);
  // The sender's other connection gets a copy too (its tab shows the conversation).
  assert.deepEqual(await from2.wait('private', (p) => p.id === reply.id, { from: marks[3] }), withoutOk(reply));
  assert.deepEqual(await third.wait('private', () => true, { from: marks[4] }), withoutOk(proofThird));
  assert.deepEqual(await from1.wait('private', () => true, { from: marks[2] }), withoutOk(proofSender));
  assert.deepEqual(await from2.wait('private', (p) => p.id === proofSender.id, { from: marks[3] }), withoutOk(proofSender));
  // to1 sent proofThird: its other connection to2 gets the copy.
  assert.deepEqual(await to2.wait('private', (p) => p.id === proofThird.id, { from: marks[1] }), withoutOk(proofThird));
  assert.deepEqual(third.of('private', marks[4]), [withoutOk(proofThird)]);
  assert.deepEqual(from1.of('private', marks[2]), [withoutOk(proofSender)]);
  assert.deepEqual(from2.of('private', marks[3]), [withoutOk(reply), withoutOk(proofSender)]);
  assert.deepEqual(to1.of('private', marks[0]), [withoutOk(reply)]);
  assert.deepEqual(to2.of('private', marks[1]), [withoutOk(reply), withoutOk(proofThird)]);
  // Private messages are not room messages: nobody got a `message` with that text.
  for (const c of [to1, to2, from1, from2, third]) {
    assert.deepEqual(c.of('message').filter((m) => m.text === 'for the recipient only'), []);
  }
  // Not in the room's history: in the conversation's, which both may read.
  const history = await third.request('history', { room: 'pm-room' });
  assert.deepEqual(history.messages, []);
  for (const [client, other] of [[from2, 'rcpt'], [to2, 'sndr']]) {
    const conversation = await client.request('history', { with: other });
    assert.deepEqual(conversation.messages, [withoutOk(reply)], `history with ${other}`);
    assert.equal(conversation.with, other);
  }
  // A third user reads only their own conversations.
  assert.deepEqual((await third.request('history', { with: 'rcpt' })).messages, [withoutOk(proofThird)]);
});

test('private_offline refuse: user_offline for an unknown or gone recipient', async (t) => {
  const clients = pool(t, refusing.url);
  const watcher = await clients.member('Off Watcher', ['offline-room']);
  const ada = await clients.member('Off Ada');
  assertRefused(await ada.request('private', { to: 'Nobody Here', text: 'hello?' }), 'user_offline');
  const gone = await clients.member('Soon Gone', ['offline-room']);
  assert.equal((await ada.request('private', { to: 'Soon Gone', text: 'still here' })).ok, true);
  const from = watcher.mark();
  gone.close();
  await watcher.wait('message', (m) => m.kind === 'leave', { from });
  assertRefused(await ada.request('private', { to: 'Soon Gone', text: 'and now?' }), 'user_offline');
  // Ids are compared exactly: in open mode the id is the name as given.
  const bob = await clients.member('Case Bob');
  assert.equal((await ada.request('private', { to: 'Case Bob', text: 'exact' })).ok, true);
  await bob.wait('private', (p) => p.text === 'exact');
});

test('invalid_recipient for a private message to yourself', async (t) => {
  const clients = pool(t, open.url);
  const ada = await clients.member('Self Ada');
  assertRefused(await ada.request('private', { to: 'Self Ada', text: 'me?' }), 'invalid_recipient');
  // Token mode: to your own id, even from another connection of yours.
  const tc = pool(t, tokens.url);
  const one = await tc.connect({ auth: { token: token('selfie', 'Selfie') } });
  await tc.connect({ auth: { token: token('selfie', 'Selfie') } });
  assertRefused(await one.request('private', { to: 'selfie', text: 'me?' }), 'invalid_recipient');
});

test('empty and whitespace-only private texts are refused with empty_text', async (t) => {
  const clients = pool(t, open.url);
  const ada = await clients.member('Empty Ada');
  const bob = await clients.member('Empty Bob');
  assertRefused(await ada.request('private', { to: 'Empty Bob', text: '' }), 'empty_text');
  assertRefused(await ada.request('private', { to: 'Empty Bob', text: ' \n\t ' }), 'empty_text');
  const ok = await ada.request('private', { to: 'Empty Bob', text: 'not empty' });
  assert.equal(ok.ok, true);
  assert.deepEqual(await bob.wait('private'), withoutOk(ok));
  assert.equal(bob.of('private').length, 1);
});

test('probing who is online costs a message token: rate_limited before the lookup', async (t) => {
  const clients = pool(t, refusing.url);
  const prober = await clients.member('Prober');
  const target = await clients.member('Probed Target');
  // limits.message_burst (20): every probe takes a token, offline or not.
  const codes = [];
  for (let i = 0; i < 25; i++) {
    const reply = await prober.request('private', { to: `nobody-${i}`, text: 'are you there' });
    codes.push(reply.code);
    if (reply.code === 'rate_limited') assertRefused(reply, 'rate_limited', `probe ${i}`);
  }
  assert.deepEqual(codes.slice(0, 20), Array(20).fill('user_offline'));
  assert.ok(codes.slice(20).every((c) => c === 'rate_limited'), JSON.stringify(codes.slice(20)));
  // Over the budget an online user looks the same as an offline one, and gets nothing.
  const from = target.mark();
  assertRefused(await prober.request('private', { to: 'Probed Target', text: 'hi' }), 'rate_limited');
  await clients.member('Probe Marker').then((m) => m.request('private', { to: 'Probed Target', text: 'marker' }));
  await target.wait('private', (p) => p.text === 'marker', { from });
  assert.deepEqual(target.of('private', from).map((p) => p.text), ['marker']);
});
