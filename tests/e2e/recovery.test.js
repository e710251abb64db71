'use strict';
// Missed messages: a client that was cut off rejoins with `since` (the offset and
// epoch of the last message it has) and gets exactly what it missed, in order,
// none twice; private messages sent meanwhile reach it at its next connect; when
// the history cannot say exactly what was missed, the answer says so
// (`recovered: false`, with a reason) instead of replaying part of it.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { io } = require('socket.io-client');
const { startServer, tempDir } = require('../support/server.js');
const { pool, bothTransports } = require('../support/e2e.js');

const FAST = { messages_per_second: 10000, message_burst: 10000, requests_per_second: 10000, request_burst: 10000 };
const MISSED = 500;

let server;
before(async () => {
  server = await startServer({
    config: { limits: { ...FAST, max_connections_per_ip: 500 }, history: { storage: 'memory', on_join: 20 } },
  });
});
after(() => server.stop());

/** The position a client keeps: the offset and epoch of the last message it has in a room. */
const positionOf = (message) => ({ offset: message.offset, epoch: message.epoch });

/** Sends `count` messages from `senders` in turn, `window` at a time; resolves with the acks in offset order. */
async function sendMany(senders, room, count, prefix, window = 50) {
  const acks = [];
  for (let start = 0; start < count; start += window) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + window); i++) {
      batch.push(senders[i % senders.length].request('message', { room, text: `${prefix} ${i}` }));
    }
    for (const ack of await Promise.all(batch)) {
      assert.equal(ack.ok, true, JSON.stringify(ack));
      acks.push(ack);
    }
  }
  return acks.sort((a, b) => a.offset - b.offset);
}

/** Asserts that `messages` are exactly `acks` (the stored messages), in order. */
function assertExactly(messages, acks, context) {
  assert.equal(messages.length, acks.length, `${context}: ${messages.length} messages instead of ${acks.length}`);
  const strip = ({ ok, ...message }) => message;
  assert.deepEqual(messages, acks.map(strip), `${context}: not the stored messages in order`);
}

bothTransports('a client cut off while others send 500 room messages and private messages gets every one back, in order, none twice', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `recover-${tn}`;
  const name = `Cut ${tn}`;
  const bob = await clients.member(`Bob ${tn}`, [room], transport);
  const cy = await clients.member(`Cy ${tn}`, [room], transport);
  // The victim reconnects by hand (reconnection off), so that the test knows the
  // server has seen it go before anyone sends.
  const socket = io(server.url, { ...transport, forceNew: true, reconnection: false, auth: { name } });
  t.after(() => socket.close());
  const live = [];
  const privates = [];
  socket.on('message', (m) => m.kind === 'chat' && live.push(m));
  socket.on('private', (p) => privates.push(p));
  await new Promise((resolve) => socket.once('connect', resolve));
  const joined = await socket.timeout(5000).emitWithAck('join', { room });
  assert.equal(joined.ok, true);
  assert.equal(joined.offset, 0, 'a new room starts at offset 0');
  const before = await sendMany([bob, cy], room, 5, 'before');
  const firstPrivate = await bob.request('private', { to: name, text: 'while you are here' });
  await waitUntil(() => live.length === 5 && privates.length === 1, () => `live ${live.length}, private ${privates.length}`);
  assert.deepEqual(live.map((m) => m.offset), [1, 2, 3, 4, 5]);
  assert.deepEqual(live, before.map(({ ok, ...m }) => m));
  const since = positionOf(live[live.length - 1]);
  const privateSince = positionOf(privates[0]);
  assert.equal(privates[0].id, firstPrivate.id);

  // Cut: the client closes its Engine.IO transport; the others see it leave.
  const fromBob = bob.mark();
  socket.io.engine.close();
  await bob.wait('message', (m) => m.kind === 'leave' && m.text.includes(name), { from: fromBob });

  const missed = await sendMany([bob, cy], room, MISSED, 'missed');
  const missedPrivate = [];
  for (let i = 0; i < 20; i++) {
    const ack = await (i % 2 ? cy : bob).request('private', { to: name, text: `private ${i}` });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    missedPrivate.push(ack);
  }

  // Back: the private messages sent meanwhile come first, then the rejoin
  // answers with exactly the room messages missed.
  live.length = 0;
  privates.length = 0;
  socket.connect();
  await new Promise((resolve) => socket.once('connect', resolve));
  const rejoined = await socket.timeout(10000).emitWithAck('join', { room, since });
  assert.equal(rejoined.ok, true, JSON.stringify(rejoined).slice(0, 300));
  assert.equal(rejoined.recovered, true, `recovered: ${rejoined.reason}`);
  assert.equal(rejoined.has_more, false);
  assert.equal(rejoined.epoch, since.epoch);
  assert.equal(rejoined.offset, 5 + MISSED);
  assertExactly(rejoined.history, missed, 'the rejoin');
  assert.deepEqual(rejoined.history.map((m) => m.offset), missed.map((_, i) => since.offset + 1 + i), 'offsets are contiguous');

  await waitUntil(() => privates.length >= 20, () => `private ${privates.length}`);
  // Both directions of the two conversations, in each one's order.
  const byConversation = (list) => [bob, cy].map((c) => list.filter((p) => p.from.id === c.socket.auth.name));
  const received = byConversation(privates);
  const sent = byConversation(missedPrivate.map(({ ok, ...p }) => ({ ...p, to: { id: name, name } })));
  assert.deepEqual(received, sent, 'every private message sent while away, once, in order');
  assert.equal(privates.length, 20, 'none twice');
  // The conversation with Bob recovers the same way from the last private message the client had.
  const fromBobHistory = await socket.timeout(5000).emitWithAck('history', { with: `Bob ${tn}`, after: privateSince });
  assert.equal(fromBobHistory.recovered, true);
  assert.deepEqual(fromBobHistory.messages, received[0]);

  // Nothing arrives twice live either: a message after the rejoin is the next offset.
  const next = await bob.request('message', { room, text: 'after the rejoin' });
  assert.equal(next.offset, 5 + MISSED + 1);
  await waitUntil(() => live.length === 1, () => `live ${live.length}`);
  assert.deepEqual(live.map((m) => m.offset), [next.offset]);
});

test('history {after} pages through what was missed; a gap seen live is filled exactly', async (t) => {
  const clients = pool(t, server.url);
  const room = 'recover-pages';
  const ada = await clients.member('Pages Ada', [room]);
  const bob = await clients.member('Pages Bob', [room]);
  const acks = await sendMany([ada], room, 120, 'page');
  const seen = [];
  let after = { offset: 10, epoch: acks[0].epoch };
  for (;;) {
    const page = await bob.request('history', { room, after, limit: 50 });
    assert.equal(page.ok, true, JSON.stringify(page));
    assert.equal(page.recovered, true);
    seen.push(...page.messages);
    if (!page.has_more) break;
    after = positionOf(page.messages[page.messages.length - 1]);
  }
  assertExactly(seen, acks.slice(10), 'paging after offset 10');
  // Nothing after the newest: recovered, empty.
  const none = await bob.request('history', { room, after: positionOf(acks[acks.length - 1]) });
  assert.deepEqual([none.recovered, none.messages, none.has_more], [true, [], false]);
  // A client ahead of the room, or with another epoch, is told so.
  const ahead = await bob.request('history', { room, after: { offset: 500, epoch: acks[0].epoch } });
  assert.deepEqual([ahead.recovered, ahead.reason], [false, 'epoch']);
  const other = await bob.request('history', { room, after: { offset: 3, epoch: 'not-this-one' } });
  assert.deepEqual([other.recovered, other.reason], [false, 'epoch']);
  assert.equal(other.epoch, acks[0].epoch);
  assert.equal(other.offset, 120);
  // Bad positions are invalid_payload, before and after together too.
  for (const bad of [{ room, after: { offset: -1 } }, { room, after: 'x' }, { room, after: { offset: 1 }, before: '1' }]) {
    assert.equal((await bob.request('history', bad)).code, 'invalid_payload', JSON.stringify(bad));
  }
});

test('history trimmed past the position, too many missing, another epoch: recovered false and the newest page, never part of the gap', async (t) => {
  const small = await startServer({
    config: {
      limits: { ...FAST },
      history: { storage: 'memory', memory_max_per_room: 30, recovery_max: 100, on_join: 10 },
    },
  });
  t.after(() => small.stop());
  const clients = pool(t, small.url);
  const ada = await clients.member('Trim Ada', ['trimmed', 'many']);
  const bob = await clients.member('Trim Bob', ['trimmed', 'many']);
  // 50 messages, 30 kept: a client at offset 5 misses 6..20, which are gone.
  const trimmed = await sendMany([ada], 'trimmed', 50, 't');
  const lost = await bob.request('join', { room: 'trimmed', since: positionOf(trimmed[4]) });
  assert.deepEqual([lost.recovered, lost.reason], [false, 'trimmed']);
  assertExactly(lost.history, trimmed.slice(40), 'the newest page (on_join)');
  assert.equal(lost.has_more, true);
  // At offset 25 everything missed is still there.
  const kept = await bob.request('join', { room: 'trimmed', since: positionOf(trimmed[24]) });
  assert.equal(kept.recovered, true);
  assertExactly(kept.history, trimmed.slice(25), 'recovered from offset 25');

  // More than recovery_max (100) missing: too_many.
  await sendMany([ada], 'many', 130, 'm');
  const many = await bob.request('join', { room: 'many', since: { offset: 0 } });
  assert.deepEqual([many.recovered, many.reason, many.history.length], [false, 'too_many', 10]);
});

test('a restart of a memory history is a new epoch: recovered false; an SQLite history recovers across a restart', async (t) => {
  const dir = tempDir();
  const config = { limits: FAST, history: { storage: 'sqlite', path: `${dir}/history.db`, on_join: 5 } };
  for (const storage of ['memory', 'sqlite']) {
    let current = await startServer({ config: { ...config, history: { ...config.history, storage } } });
    let clients = pool(null, current.url);
    const ada = await clients.member(`Restart Ada ${storage}`, ['restart']);
    const first = await sendMany([ada], 'restart', 3, `${storage} before`);
    clients.closeAll();
    await current.stop();
    current = await startServer({ config: { ...config, history: { ...config.history, storage } } });
    t.after(() => current.stop());
    clients = pool(t, current.url);
    const bob = await clients.member(`Restart Bob ${storage}`, ['restart']);
    const next = await sendMany([bob], 'restart', 2, `${storage} after`);
    const back = await bob.request('join', { room: 'restart', since: positionOf(first[0]) });
    if (storage === 'memory') {
      assert.deepEqual([back.recovered, back.reason], [false, 'epoch'], JSON.stringify(back).slice(0, 300));
      assert.notEqual(back.epoch, first[0].epoch);
      assertExactly(back.history, next, 'the newest page of the new epoch');
      assert.deepEqual(next.map((m) => m.offset), [1, 2]);
    } else {
      assert.equal(back.recovered, true, JSON.stringify(back).slice(0, 300));
      assert.equal(back.epoch, first[0].epoch);
      assertExactly(back.history, [...first.slice(1), ...next], 'across the restart');
    }
  }
});

test('an offline recipient gets a private message at its next connect; history {with} reads the conversation', async (t) => {
  const clients = pool(t, server.url);
  const ada = await clients.member('Sender Ada', ['away-room']);
  const sent = [];
  for (let i = 0; i < 3; i++) sent.push(await ada.request('private', { to: 'Away Bob', text: `are you there ${i}` }));
  for (const ack of sent) assert.equal(ack.ok, true, JSON.stringify(ack));
  assert.deepEqual(sent[0].to, { id: 'Away Bob', name: 'Away Bob' }, 'an absent user is named by their id');
  assert.deepEqual(sent.map((m) => m.offset), [1, 2, 3]);
  const bob = await clients.member('Away Bob', ['away-room']);
  await bob.waitCount('private', 3);
  assert.deepEqual(bob.of('private'), sent.map(({ ok, ...m }) => m));
  const conversation = await bob.request('history', { with: 'Sender Ada' });
  assert.deepEqual(conversation.messages, sent.map(({ ok, ...m }) => m));
  // Delivered once: the next connection of the same user gets nothing pending.
  // (Offline means no connection when it is sent: Ada waits until Bob is gone.)
  const from = ada.mark();
  bob.close();
  await ada.wait('message', (m) => m.kind === 'leave' && m.text.includes('Away Bob'), { from });
  await ada.request('private', { to: 'Away Bob', text: 'later' });
  const again = await clients.member('Away Bob');
  await again.wait('private', (p) => p.text === 'later');
  assert.deepEqual(again.of('private').map((p) => p.text), ['later']);
});

/** Polls `done` until it holds (events arrive asynchronously); fails with `describe()` after 10 s. */
async function waitUntil(done, describe, timeout = 10000) {
  const deadline = Date.now() + timeout;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a slow consumer whose queue overflowed sees the gap by offset and fetches exactly what it lost', async (t) => {
  const slow = await startServer({
    admin: true,
    config: { limits: FAST, transport: { max_buffer_size: 32 }, history: { storage: 'memory' } },
  });
  t.after(() => slow.stop());
  const clients = pool(t, slow.url);
  const room = 'slow-consumer';
  const bob = await clients.member('Fast Bob', [room]);
  const ada = await clients.member('Slow Ada', [room], { transports: ['polling'] });
  const first = await bob.request('message', { room, text: 'first' });
  await ada.wait('message', (m) => m.text === 'first');

  // Ada stops reading: her long-polling transport pauses once its pending poll
  // returns (the next message ends it), and the server queues for her, up to
  // transport.max_buffer_size packets, dropping the rest.
  const transport = ada.socket.io.engine.transport;
  const paused = new Promise((resolve) => transport.pause(resolve));
  await bob.request('message', { room, text: 'ends the pending poll' });
  await paused;
  const burst = await sendMany([bob], room, 100, 'burst', 10);
  const dropped = (await slow.stats()).packets_dropped;
  assert.ok(dropped > 0, `the server dropped packets for the slow consumer (packets_dropped ${dropped})`);

  // She reads again, and tracks her position as a client does: a message whose
  // offset is not the next one is a gap, which `history {after}` fills.
  const from = ada.mark();
  transport.readyState = 'open';
  transport._poll();
  await ada.wait('message', () => true, { from, timeout: 10000 });
  // Her queue drains over a few polls; a message sent before it has room is
  // dropped too, so markers go until one arrives.
  const markers = [];
  for (;;) {
    markers.push(await bob.request('message', { room, text: `marker ${markers.length}` }));
    try {
      await ada.wait('message', (m) => m.text.startsWith('marker'), { from, timeout: 1000 });
      break;
    } catch (error) {
      if (markers.length > 10) throw error;
    }
  }
  const marker = markers[markers.length - 1];
  await ada.wait('message', (m) => m.text === marker.text, { from, timeout: 5000 });
  const shown = [first, ...ada.of('message', 0).filter((m) => m.kind === 'chat' && m.offset > first.offset)];
  const complete = [];
  let gaps = 0;
  for (const message of shown) {
    const last = complete[complete.length - 1];
    if (last && message.offset <= last.offset) continue;
    if (last && message.offset !== last.offset + 1) {
      gaps += 1;
      let after = positionOf(last);
      for (;;) {
        const page = await ada.request('history', { room, after, limit: 50 });
        assert.equal(page.recovered, true, JSON.stringify(page).slice(0, 200));
        const missing = page.messages.filter((m) => m.offset < message.offset);
        complete.push(...missing);
        if (!page.has_more || missing.length < page.messages.length) break;
        after = positionOf(page.messages[page.messages.length - 1]);
      }
    }
    complete.push(message);
  }
  assert.ok(gaps >= 1, 'the drop shows as a gap in the offsets');
  // The room's whole history: first, the one that ended the poll, the burst, the markers.
  const stored = (await bob.request('history', { room, limit: 200 })).messages;
  assert.equal(stored.length, 2 + burst.length + markers.length);
  assert.deepEqual(complete.map(({ ok, ...m }) => m), stored, 'every message once, in order');
  assert.equal(complete[complete.length - 1].offset, marker.offset);
});
