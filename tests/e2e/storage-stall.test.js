'use strict';
// A history store that is stuck: another process holds a write transaction on
// the real SQLite file (the sqlite3 command-line shell). The affected messages
// are refused with `storage_failed` in bounded time and leave no trace; the
// connection's other requests keep being answered meanwhile; a `leave` of the
// room waits for the connection's messages to it; a full queue refuses at once
// with `storage_busy`; once the lock is gone everything works again.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { test, before, after } = require('node:test');
const { startServer, tempDir } = require('../support/server.js');
const { pool, assertRefused } = require('../support/e2e.js');

/** SQLite's busy timeout in the server is 5 s; a message waits for at most two attempts. */
const FAIL_WITHIN_MS = 30000;

const LIMITS = {
  messages_per_second: 1000,
  message_burst: 1000,
  requests_per_second: 1000,
  request_burst: 1000,
  room_change_burst: 100,
};

let server;
let smallQueue;
before(async () => {
  const dir = tempDir();
  const dbPath = path.join(dir, 'stall.db');
  server = await startServer({
    dir,
    config: { history: { storage: 'sqlite', path: dbPath, on_join: 0 }, limits: LIMITS },
  });
  server.dbPath = dbPath;
  const smallDir = tempDir();
  const smallPath = path.join(smallDir, 'small.db');
  smallQueue = await startServer({
    dir: smallDir,
    config: {
      history: { storage: 'sqlite', path: smallPath, on_join: 0, queue_max_bytes: 65536 },
      limits: LIMITS,
    },
  });
  smallQueue.dbPath = smallPath;
});
after(() => Promise.all([server.stop(), smallQueue.stop()]));

/**
 * Holds a write transaction on the SQLite file from another process until
 * `release()`; resolves once the lock is held.
 */
async function holdWriteLock(t, dbPath) {
  const shell = spawn('sqlite3', [dbPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => shell.on('exit', resolve));
  const spawned = new Promise((resolve, reject) => {
    shell.on('error', (e) => reject(new Error(`the sqlite3 shell is needed (make setup-test): ${e.message}`)));
    shell.on('spawn', resolve);
  });
  await spawned;
  const locked = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no lock within 20 s: ${output}`)), 20000);
    const onData = (chunk) => {
      output += chunk;
      if (output.includes('locked')) {
        clearTimeout(timer);
        resolve();
      }
    };
    shell.stdout.on('data', onData);
    shell.stderr.on('data', onData);
  });
  shell.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n");
  await locked;
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    shell.stdin.end('ROLLBACK;\n.quit\n');
    await exited;
  };
  t.after(release);
  return release;
}

/** Emits with an ack and a deadline longer than the store's; resolves with the ack and when it came. */
function timedRequest(client, event, data, timeout = FAIL_WITHIN_MS) {
  return client.socket
    .timeout(timeout)
    .emitWithAck(event, data)
    .then((reply) => ({ reply, at: Date.now() }));
}

test('a locked store: other requests go on, the message fails in bounded time and leaves no trace, leave waits for it', async (t) => {
  const clients = pool(t, server.url);
  const ada = await clients.member('Ada Stuck', ['stuck', 'other']);
  const bob = await clients.member('Bob Stuck', ['stuck', 'other']);
  const bobFrom = bob.mark();
  const release = await holdWriteLock(t, server.dbPath);

  const sentAt = Date.now();
  const stuck = timedRequest(ada, 'message', { room: 'stuck', text: 'lost words' });
  // The connection's other requests are answered while its message waits for the store.
  const others = [
    await timedRequest(ada, 'rooms', {}),
    await timedRequest(ada, 'typing', { room: 'other', active: true }),
    await timedRequest(ada, 'join', { room: 'elsewhere' }),
    await timedRequest(ada, 'members', { room: 'other' }),
  ];
  for (const { reply } of others) assert.equal(reply.ok, true, JSON.stringify(reply));
  await bob.wait('typing', (e) => e.room === 'other');
  // Another connection's requests too, a read of the locked file's history included.
  const bobHistory = await timedRequest(bob, 'history', { room: 'other' });
  assert.equal(bobHistory.reply.ok, true, JSON.stringify(bobHistory.reply));
  // Leaving the room depends on the message: it waits for it (and holds the
  // connection's turn meanwhile, bounded by the store's timeout).
  const left = timedRequest(ada, 'leave', { room: 'stuck' });

  const failed = await stuck;
  assertRefused(failed.reply, 'storage_failed');
  for (const [i, { at }] of [...others, bobHistory].entries()) {
    assert.ok(at < failed.at, `answered while the message was still waiting for the store (#${i}: ${at - failed.at} ms after)`);
  }
  assert.ok(failed.at - sentAt < FAIL_WITHIN_MS, `refused after ${failed.at - sentAt} ms`);
  // The leave was applied after the message was settled: its notice is the only thing Bob saw.
  const leave = await left;
  assert.equal(leave.reply.ok, true, JSON.stringify(leave.reply));
  assert.ok(leave.at >= failed.at, 'the leave waited for the message before it');
  await bob.wait('message', (m) => m.room === 'stuck' && m.kind === 'leave', { from: bobFrom });
  assert.deepEqual(
    bob.of('message', bobFrom).filter((m) => m.room === 'stuck').map((m) => m.kind),
    ['leave'],
    'the failed message was delivered to nobody',
  );

  await release();
  assert.equal((await ada.request('join', { room: 'stuck' })).ok, true);
  const after = await ada.request('message', { room: 'stuck', text: 'back again' });
  assert.equal(after.ok, true, JSON.stringify(after));
  await bob.wait('message', (m) => m.text === 'back again', { from: bobFrom });
  const history = await bob.request('history', { room: 'stuck' });
  assert.deepEqual(history.messages.map((m) => m.text), ['back again'], 'the failed message is not in the history');
});

test('a locked store and a full queue: storage_busy at once, storage_failed later, nothing stored', async (t) => {
  const clients = pool(t, smallQueue.url);
  // WebSocket only: 120 KB of messages in one long-polling POST would be over
  // the payload limit.
  const ada = await clients.member('Ada Full', ['full'], { transports: ['websocket'] });
  const bob = await clients.member('Bob Full', ['full']);
  const bobFrom = bob.mark();
  const release = await holdWriteLock(t, smallQueue.dbPath);
  // 2000 characters each: about 28 fit in 64 KiB.
  const text = (i) => `${i} `.padEnd(2000, 'x');
  const replies = await Promise.all(
    Array.from({ length: 60 }, (_, i) => timedRequest(ada, 'message', { room: 'full', text: text(i) })),
  );
  const busy = replies.filter(({ reply }) => reply.code === 'storage_busy');
  const failed = replies.filter(({ reply }) => reply.code === 'storage_failed');
  assert.ok(busy.length > 0, 'some messages found the queue full');
  assert.ok(failed.length > 0, 'the queued ones waited for the store');
  assert.equal(busy.length + failed.length, replies.length, JSON.stringify(replies.map(({ reply }) => reply.code)));
  for (const { reply } of replies) assertRefused(reply, reply.code);
  const firstFailure = Math.min(...failed.map(({ at }) => at));
  for (const { at } of busy) assert.ok(at < firstFailure, 'a full queue answers without waiting for the store');
  // The connection was never held: it is answered while the store is still locked.
  assert.equal((await ada.request('rooms')).ok, true);

  await release();
  const after = await ada.request('message', { room: 'full', text: 'room again' });
  assert.equal(after.ok, true, JSON.stringify(after));
  await bob.wait('message', (m) => m.text === 'room again', { from: bobFrom });
  assert.deepEqual(
    bob.of('message', bobFrom).filter((m) => m.kind === 'chat').map((m) => m.text),
    ['room again'],
    'refused messages were delivered to nobody',
  );
  const history = await bob.request('history', { room: 'full' });
  assert.deepEqual(history.messages.map((m) => m.text), ['room again']);
});
