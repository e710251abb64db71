'use strict';
// History: on join, paging, errors, members only; SQLite persistence across a
// graceful stop and across SIGKILL.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test, before, after } = require('node:test');
const { startServer, sleep, tempDir } = require('../support/server.js');
const { pool, assertRefused, assertChat, assertIncreasing, withoutOk } = require('../support/e2e.js');

const ON_JOIN = 3;
const PAGE_MAX = 60;
let server;
before(async () => {
  server = await startServer({
    config: {
      room_list: { interval_ms: 100 },
      history: { storage: 'memory', on_join: ON_JOIN, page_max: PAGE_MAX },
      limits: { max_connections_per_ip: 500, messages_per_second: 1000, message_burst: 1000 },
    },
  });
});
after(() => server.stop());

/** Sends `n` messages; resolves with the stored messages (acks without ok). */
async function fill(client, room, n, prefix = 'm') {
  const stored = [];
  for (let i = 0; i < n; i++) {
    const reply = await client.request('message', { room, text: `${prefix}${i}` });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    stored.push(withoutOk(reply));
  }
  return stored;
}

/** A history answer's head: the room's epoch and newest offset, as its newest stored message has them. */
const headOf = (stored) => ({ epoch: stored[stored.length - 1].epoch, offset: stored[stored.length - 1].offset });

test('join brings the last on_join messages, oldest first, with has_more', async (t) => {
  const clients = pool(t, server.url);
  const room = 'hist-join';
  const writer = await clients.member('Writer', [room]);
  const stored = await fill(writer, room, 5);
  const reader = await clients.member('Reader');
  const joined = await reader.request('join', { room });
  assert.equal(joined.ok, true);
  assert.deepEqual(joined.history, stored.slice(-ON_JOIN));
  assert.equal(joined.has_more, true);
  // Join/leave notices are not stored.
  for (const m of joined.history) assertChat(m, { room, user: 'Writer', text: m.text });
  // A room with fewer messages than on_join: everything, has_more false.
  const small = 'hist-small';
  await writer.request('join', { room: small });
  const two = await fill(writer, small, 2, 's');
  const smallJoin = await reader.request('join', { room: small });
  assert.deepEqual(smallJoin.history, two);
  assert.equal(smallJoin.has_more, false);
  // Exactly on_join messages: nothing older exists.
  const exact = 'hist-exact';
  await writer.request('join', { room: exact });
  const three = await fill(writer, exact, ON_JOIN, 'e');
  const exactJoin = await reader.request('join', { room: exact });
  assert.deepEqual(exactJoin.history, three);
  assert.equal(exactJoin.has_more, false);
});

test('paging with before and limit; has_more', async (t) => {
  const clients = pool(t, server.url);
  const room = 'hist-paging';
  const writer = await clients.member('Pager', [room]);
  const stored = await fill(writer, room, 7);
  assertIncreasing(stored.map((m) => m.id));
  const ids = stored.map((m) => m.id);
  // Newest page.
  assert.deepEqual(await writer.request('history', { room, limit: 3 }), {
    ok: true,
    room,
    messages: stored.slice(4),
    has_more: true,
    ...headOf(stored),
  });
  // Walk back page by page.
  assert.deepEqual(await writer.request('history', { room, before: ids[4], limit: 3 }), {
    ok: true,
    room,
    messages: stored.slice(1, 4),
    has_more: true,
    ...headOf(stored),
  });
  assert.deepEqual(await writer.request('history', { room, before: ids[1], limit: 3 }), {
    ok: true,
    room,
    messages: stored.slice(0, 1),
    has_more: false,
    ...headOf(stored),
  });
  assert.deepEqual(await writer.request('history', { room, before: ids[0] }), {
    ok: true,
    room,
    messages: [],
    has_more: false,
    ...headOf(stored),
  });
  // A page that ends exactly at the oldest message has nothing more.
  assert.deepEqual(await writer.request('history', { room, before: ids[3], limit: 3 }), {
    ok: true,
    room,
    messages: stored.slice(0, 3),
    has_more: false,
    ...headOf(stored),
  });
  const all = await writer.request('history', { room });
  assert.deepEqual(all, { ok: true, room, messages: stored, has_more: false, ...headOf(stored) });
  assert.deepEqual(await writer.request('history', { room, limit: 1 }), {
    ok: true,
    room,
    messages: stored.slice(6),
    has_more: true,
    ...headOf(stored),
  });
});

test('the default limit is 50; limit may go up to page_max', async (t) => {
  const clients = pool(t, server.url);
  const room = 'hist-default';
  const writer = await clients.member('Bulk', [room]);
  const stored = await fill(writer, room, 55);
  assert.deepEqual(await writer.request('history', { room }), {
    ok: true,
    room,
    messages: stored.slice(5),
    has_more: true,
    ...headOf(stored),
  });
  assert.deepEqual(await writer.request('history', { room, limit: PAGE_MAX }), {
    ok: true,
    room,
    messages: stored,
    has_more: false,
    ...headOf(stored),
  });
});

test('limit 0 or over page_max is invalid_payload; a bad before is invalid_cursor', async (t) => {
  const clients = pool(t, server.url);
  const room = 'hist-errors';
  const writer = await clients.member('Errant', [room]);
  await fill(writer, room, 2);
  assertRefused(await writer.request('history', { room, limit: 0 }), 'invalid_payload');
  assertRefused(await writer.request('history', { room, limit: PAGE_MAX + 1 }), 'invalid_payload');
  assertRefused(await writer.request('history', { room, limit: -1 }), 'invalid_payload');
  assertRefused(await writer.request('history', { room, limit: 2.5 }), 'invalid_payload');
  assertRefused(await writer.request('history', { room, limit: '5' }), 'invalid_payload');
  assertRefused(await writer.request('history', { room, before: 'not-an-id' }), 'invalid_cursor');
  assertRefused(await writer.request('history', { room, before: '' }), 'invalid_cursor');
  assertRefused(await writer.request('history', { room, before: 7 }), 'invalid_payload');
  // Still works afterwards.
  const ok = await writer.request('history', { room, limit: 2 });
  assert.equal(ok.ok, true);
  assert.equal(ok.messages.length, 2);
});

test('history is for members only', async (t) => {
  const clients = pool(t, server.url);
  const room = 'hist-members';
  const writer = await clients.member('Keeper', [room]);
  const stored = await fill(writer, room, 2);
  const outsider = await clients.member('Peeker');
  assertRefused(await outsider.request('history', { room }), 'not_member');
  assertRefused(await outsider.request('history', { room, before: stored[1].id }), 'not_member');
  // After leaving, no more reading.
  const leaver = await clients.member('Leaver', [room]);
  assert.deepEqual((await leaver.request('history', { room })).messages, stored);
  await leaver.request('leave', { room });
  assertRefused(await leaver.request('history', { room }), 'not_member');
});

/** Starts a server on the SQLite file `db` (in `dir`). */
function sqliteServer(dir, db) {
  return startServer({
    dir,
    config: {
      history: { storage: 'sqlite', path: db, on_join: 50 },
      room_list: { interval_ms: 100 },
      limits: { messages_per_second: 1000, message_burst: 1000 },
    },
  });
}

test('SQLite: messages survive a graceful stop (SIGTERM) and restart', async (t) => {
  const dir = tempDir();
  const db = path.join(dir, 'h.db');
  const first = await sqliteServer(dir, db);
  t.after(() => first.stop('SIGKILL'));
  const c1 = pool(t, first.url);
  const ada = await c1.member('Persist Ada', ['kept', 'kept-2']);
  const stored = await fill(ada, 'kept', 5, 'before stop ');
  const other = await fill(ada, 'kept-2', 2, 'other room ');
  const { code } = await first.stop('SIGTERM');
  assert.equal(code, 0, first.output());

  const second = await sqliteServer(dir, db);
  t.after(() => second.stop('SIGKILL'));
  const c2 = pool(t, second.url);
  const bob = await c2.member('Persist Bob');
  const joined = await bob.request('join', { room: 'kept' });
  assert.deepEqual(joined.history, stored);
  assert.equal(joined.has_more, false);
  assert.deepEqual((await bob.request('join', { room: 'kept-2' })).history, other);
  // New messages continue after the old ones, with increasing ids.
  const more = await fill(bob, 'kept', 2, 'after restart ');
  const page = await bob.request('history', { room: 'kept' });
  assert.deepEqual(page.messages, [...stored, ...more]);
  assertIncreasing(page.messages.map((m) => m.id));
  assert.deepEqual((await bob.request('history', { room: 'kept', before: more[0].id, limit: 2 })).messages, stored.slice(3));
});

test('SQLite: every acknowledged message survives SIGKILL right after its ack', async (t) => {
  const dir = tempDir();
  const db = path.join(dir, 'h.db');
  const first = await sqliteServer(dir, db);
  t.after(() => first.stop('SIGKILL'));
  const c1 = pool(t, first.url);
  const senders = await Promise.all([0, 1, 2].map((i) => c1.member(`Crash ${i}`, ['crash'])));
  // Many messages in flight from three connections; kill the server as soon as
  // 30 acks are in, whatever else is still under way.
  const acked = [];
  let killed;
  const killedPromise = new Promise((resolve) => (killed = resolve));
  const sends = senders.flatMap((s, i) =>
    Array.from({ length: 40 }, (_, n) =>
      s.request('message', { room: 'crash', text: `crash ${i}-${n}` }).then(
        (reply) => {
          if (reply.ok) {
            acked.push(withoutOk(reply));
            if (acked.length === 30) {
              first.process.kill('SIGKILL');
              killed([...acked]);
            }
          }
        },
        () => {},
      ),
    ),
  );
  const ackedAtKill = await killedPromise;
  await Promise.all(sends);
  const { signal } = await first.exited;
  assert.equal(signal, 'SIGKILL');
  // Acks that reached us are all we know of; those that arrived after the kill
  // signal was sent were sent before the process died, so they count too.
  const second = await sqliteServer(dir, db);
  t.after(() => second.stop('SIGKILL'));
  const c2 = pool(t, second.url);
  const reader = await c2.member('Crash Reader');
  const joined = await reader.request('join', { room: 'crash' });
  assert.equal(joined.ok, true);
  const page = await reader.request('history', { room: 'crash', limit: 200 });
  const byId = new Map(page.messages.map((m) => [m.id, m]));
  assert.ok(ackedAtKill.length >= 30);
  for (const message of acked) {
    assert.deepEqual(byId.get(message.id), message, `acknowledged message ${message.id} is in the history`);
  }
  assertIncreasing(page.messages.map((m) => m.id));
});

/** Waits until `check()` is true, polling until a generous deadline. */
async function until(check, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await sleep(50);
  }
}

test('memory history keeps at most memory_max_rooms rooms, forgetting the least recently active', async (t) => {
  const bounded = await startServer({
    config: {
      history: { storage: 'memory', memory_max_rooms: 3 },
      limits: { messages_per_second: 1000, message_burst: 1000 },
    },
  });
  t.after(() => bounded.stop());
  const clients = pool(t, bounded.url);
  const rooms = ['lru-0', 'lru-1', 'lru-2', 'lru-3', 'lru-4'];
  const writer = await clients.member('Writer', rooms);
  const stored = {};
  for (const room of rooms) stored[room] = await fill(writer, room, 2, `${room} `);
  // lru-2 is written to again: lru-0, lru-1 and then lru-3 are the least recently active.
  stored['lru-2'].push(...(await fill(writer, 'lru-2', 1, 'again ')));
  assert.equal((await writer.request('join', { room: 'lru-5' })).ok, true);
  stored['lru-5'] = await fill(writer, 'lru-5', 1, 'new ');
  const reader = await clients.member('Reader');
  for (const room of [...rooms, 'lru-5']) {
    const joined = await reader.request('join', { room });
    const kept = ['lru-2', 'lru-4', 'lru-5'].includes(room);
    assert.deepEqual(joined.history, kept ? stored[room] : [], room);
  }
});

test('memory history forgets a room nobody is in and nobody wrote to for memory_idle_secs', async (t) => {
  const idle = await startServer({
    config: {
      history: { storage: 'memory', memory_idle_secs: 1 },
      limits: { messages_per_second: 1000, message_burst: 1000 },
    },
    // The sweep says what it forgot at debug level: the test waits for that.
    env: { RUST_LOG: 'warn,palaver_core::history=debug' },
  });
  t.after(() => idle.stop());
  const clients = pool(t, idle.url);
  const keeper = await clients.member('Keeper', ['idle-kept']);
  const kept = await fill(keeper, 'idle-kept', 2, 'kept ');
  const leaver = await clients.member('Leaver', ['idle-gone']);
  await fill(leaver, 'idle-gone', 3, 'gone ');
  // idle-kept is quiet longer than idle-gone, but Keeper stays in it.
  await leaver.request('leave', { room: 'idle-gone' });
  await until(() => /forgot the history of idle rooms/.test(idle.output()), 'the idle sweep');
  const reader = await clients.member('Reader');
  const gone = await reader.request('join', { room: 'idle-gone' });
  assert.deepEqual(gone.history, [], 'the vacated room is forgotten');
  assert.equal(gone.has_more, false);
  const still = await reader.request('join', { room: 'idle-kept' });
  assert.deepEqual(still.history, kept, 'a room with a member keeps its history, however quiet');
});

test('SQLite: messages older than sqlite_max_age_secs are deleted, newer ones kept', async (t) => {
  const dir = tempDir();
  const aged = await startServer({
    dir,
    config: {
      history: { storage: 'sqlite', path: path.join(dir, 'h.db'), sqlite_max_age_secs: 3 },
      limits: { messages_per_second: 1000, message_burst: 1000 },
    },
    env: { RUST_LOG: 'warn,palaver_core::history=debug' },
  });
  t.after(() => aged.stop());
  const clients = pool(t, aged.url);
  const writer = await clients.member('Ager', ['aged']);
  await fill(writer, 'aged', 3, 'old ');
  await until(() => /deleted messages past history.sqlite_max_age_secs/.test(aged.output()), 'the age sweep');
  const fresh = await fill(writer, 'aged', 1, 'fresh ');
  // Read at once: the fresh message is seconds within its age.
  const page = await writer.request('history', { room: 'aged' });
  assert.deepEqual(page.messages, fresh);
  assert.equal(page.has_more, false);
});
