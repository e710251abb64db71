'use strict';
// One connection's requests in arrival order, also where a message is stored
// after the request that follows it was read: a `leave`, a disconnect or a
// `history` sent right after messages (without waiting for their acks) never
// overtakes them, for the room's observers and for the history.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test, before, after } = require('node:test');
const { startServer, tempDir } = require('../support/server.js');
const { pool, bothTransports } = require('../support/e2e.js');

/** Messages sent back to back; with the request that follows, under `max_pending_requests` (64). */
const BURST = 40;

let server;
before(async () => {
  const dir = tempDir();
  server = await startServer({
    dir,
    config: {
      // A real SQLite file with full durability: storing takes long enough for
      // a following request to be read meanwhile.
      history: { storage: 'sqlite', path: path.join(dir, 'order.db'), on_join: 200 },
      limits: {
        messages_per_second: 1000,
        message_burst: 1000,
        requests_per_second: 1000,
        request_burst: 1000,
      },
    },
  });
});
after(() => server.stop());

/** The chat texts and notices Bob saw since `from`, as `text` or `<kind>`. */
function seen(observer, room, from) {
  return observer
    .of('message', from)
    .filter((m) => m.room === room)
    .map((m) => (m.kind === 'chat' ? m.text : `<${m.kind}>`));
}

/** Keeps a failed assertion from leaving these acks' rejections unhandled. */
function settleLater(promises) {
  for (const promise of promises) promise.catch(() => {});
  return promises;
}

function texts(prefix) {
  return Array.from({ length: BURST }, (_, i) => `${prefix} ${i}`);
}

bothTransports('messages then leave, acks not awaited: every message reaches the room and the history before the leave notice', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `last-words-${tn}`;
  const ada = await clients.member(`Ada ${tn}`, [room], transport);
  const bob = await clients.member(`Bob ${tn}`, [room], { transports: ['websocket'] });
  const from = bob.mark();
  const sent = texts(`leave ${tn}`);
  const acks = settleLater(sent.map((text) => ada.request('message', { room, text })));
  const [left] = settleLater([ada.request('leave', { room })]);
  await bob.wait('message', (m) => m.room === room && m.kind === 'leave', { from, timeout: 30000 });
  assert.deepEqual(seen(bob, room, from), [...sent, '<leave>'], 'the leave notice comes after every message');
  for (const reply of await Promise.all(acks)) assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.equal((await left).ok, true);
  const history = await bob.request('history', { room, limit: 200 });
  assert.deepEqual(history.messages.map((m) => m.text), sent);
});

bothTransports('messages then disconnect: the room and the history get every message, then the leave notice', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `goodbye-${tn}`;
  const ada = await clients.member(`Ada Bye ${tn}`, [room], transport);
  const bob = await clients.member(`Bob Bye ${tn}`, [room], { transports: ['websocket'] });
  const from = bob.mark();
  const sent = texts(`bye ${tn}`);
  for (const text of sent) ada.send('message', { room, text });
  ada.socket.disconnect();
  await bob.wait('message', (m) => m.room === room && m.kind === 'leave', { from, timeout: 30000 });
  assert.deepEqual(seen(bob, room, from), [...sent, '<leave>'], 'no message is lost, none after the notice');
  const history = await bob.request('history', { room, limit: 200 });
  assert.deepEqual(history.messages.map((m) => m.text), sent);
});

test('a history request, or a join of the room, right after messages shows them', async (t) => {
  const clients = pool(t, server.url);
  const room = 'read-my-writes';
  const ada = await clients.member('Ada Reads', [room]);
  const sent = texts('read');
  const acks = settleLater(sent.map((text) => ada.request('message', { room, text })));
  const history = await ada.request('history', { room, limit: 200 });
  assert.deepEqual(history.messages.map((m) => m.text), sent);
  const more = texts('join');
  const moreAcks = settleLater(more.map((text) => ada.request('message', { room, text })));
  const joined = await ada.request('join', { room });
  assert.deepEqual(joined.history.map((m) => m.text), [...sent, ...more].slice(-200));
  for (const reply of await Promise.all([...acks, ...moreAcks])) assert.equal(reply.ok, true);
});
