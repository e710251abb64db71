'use strict';
// A standalone SQLite history and cluster mode (docs/CLUSTER.md, "Moving a
// standalone history into Redis"): starting a node with --redis leaves the file as
// it is (and says how to move it); `palaver-server --migrate-history-to-redis`
// copies it into Redis, verified, room by room, reports counts, and a second run
// copies nothing twice.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { test } = require('node:test');
const { SERVER_BIN, startServer, tempDir } = require('../support/server.js');
const { startCluster, nodeConfig, eventually } = require('../support/cluster.js');
const { pool } = require('../support/e2e.js');

/** Runs the server binary with `args`; resolves with its exit code and output. */
function runServer(args) {
  return new Promise((resolve) => {
    execFile(SERVER_BIN, args, { env: { ...process.env, RUST_LOG: 'warn' }, timeout: 60000 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr });
    });
  });
}

/** The texts of a room's history, read by a fresh client of `url`. */
async function texts(t, url, room) {
  const clients = pool(t, url);
  const reader = await clients.member(`reader${Math.floor(Math.random() * 1e6)}`, [room]);
  // A node that just started, on a loaded machine, may take a moment to call Redis up.
  const { value: page } = await eventually(async () => {
    const answer = await reader.request('history', { room, limit: 200 });
    return answer.code === 'unavailable' ? false : answer;
  }, { what: 'history readable' });
  reader.close();
  assert.equal(page.ok, true, JSON.stringify(page));
  return page.messages.map((m) => m.text);
}

test('cluster mode leaves a standalone history alone; the migration copies it into Redis, verified', async (t) => {
  const dir = tempDir();
  const history = { storage: 'sqlite', path: path.join(dir, 'history.db') };

  // A standalone server with some history.
  const standalone = await startServer({ dir, config: { history } });
  const clients = pool(t, standalone.url);
  const ada = await clients.member('ada', ['old', 'other']);
  const sent = { old: [], other: [] };
  for (let i = 0; i < 5; i++) sent.old.push(`old #${i}`);
  for (let i = 0; i < 2; i++) sent.other.push(`other #${i}`);
  const acks = { old: [], other: [] };
  for (const [room, list] of Object.entries(sent)) {
    for (const text of list) {
      const ack = await ada.request('message', { room, text });
      assert.equal(ack.ok, true);
      acks[room].push(ack);
    }
  }
  clients.closeAll();
  await standalone.stop('SIGTERM');

  // A cluster node on the same file: starts, serves an empty history, warns.
  const c = await startCluster(t, { nodes: 0, name: 'migrate', config: { cluster: { history_max_per_room: 4 } } });
  const node = await c.addNode({ history });
  assert.deepEqual(await texts(t, node.url, 'old'), []);
  assert.match(node.output(), /holds 7 messages of a standalone history.*--migrate-history-to-redis/s);
  await node.stop('SIGTERM');
  c.nodes.pop();
  c.clients.pop().closeAll();
  // The file still has everything.
  const again = await startServer({ dir, config: { history } });
  assert.deepEqual(await texts(t, again.url, 'old'), sent.old);
  await again.stop('SIGTERM');

  // The migration: the newest history_max_per_room (4) of each room, verified.
  const configPath = path.join(dir, 'cluster.json');
  fs.writeFileSync(configPath, JSON.stringify(nodeConfig(c.redis, c.prefix, { history, cluster: { history_max_per_room: 4, journal_path: path.join(dir, 'journal.db') } })));
  const run = await runServer(['--config', configPath, '--migrate-history-to-redis']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /copied 6 messages of 2 rooms .* \(verified\)/);
  assert.match(run.stdout, /not copied: 1 older messages of rooms above cluster.history_max_per_room \(4\)/);
  assert.match(run.stdout, /is left as it was/);

  const migrated = await c.addNode({ history });
  assert.deepEqual(await texts(t, migrated.url, 'old'), sent.old.slice(1));
  assert.deepEqual(await texts(t, migrated.url, 'other'), sent.other);
  // The rooms keep their epochs and offsets: a client of the standalone server
  // recovers from its position on the cluster, and new messages go on from there.
  const rejoin = await pool(t, migrated.url).member('back', []);
  const since = { offset: acks.old[2].offset, epoch: acks.old[2].epoch };
  const { value: recovered } = await eventually(async () => {
    const answer = await rejoin.request('join', { room: 'old', since });
    return answer.reason === 'unavailable' ? false : answer;
  }, { what: 'history readable' });
  assert.equal(recovered.recovered, true, JSON.stringify(recovered).slice(0, 300));
  assert.deepEqual(recovered.history.map((m) => [m.text, m.offset, m.epoch]), acks.old.slice(3).map((m) => [m.text, m.offset, m.epoch]));
  assert.equal((await rejoin.request('join', { room: 'other' })).epoch, acks.other[0].epoch);
  const next = await rejoin.request('message', { room: 'other', text: 'on the cluster' });
  assert.deepEqual([next.offset, next.epoch], [3, acks.other[0].epoch]);

  // A second run copies nothing twice.
  const second = await runServer(['--config', configPath, '--migrate-history-to-redis']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /copied 0 messages of 0 rooms/);
  assert.match(second.stdout, /room "old" \(5 messages\) already has history in Redis/);
  assert.equal(await c.redis.command('XLEN', c.key('history', 'old')), 4);

  // Without Redis configured the migration refuses, naming what it needs.
  const alone = path.join(dir, 'alone.json');
  fs.writeFileSync(alone, JSON.stringify({ history }));
  const refused = await runServer(['--config', alone, '--migrate-history-to-redis']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /needs cluster.redis_url/);
});
