'use strict';
// The standalone server takes a Redis URL with a password from a file
// (--redis-file) or the environment (PALAVER_REDIS), never from its command line
// (which every user of the machine can read); a password-free --redis URL is
// still accepted there. The Redis here requires a password, so a node that shows
// `redis_connected` really logged in with it.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test, before, after } = require('node:test');
const { startServer, tempDir } = require('../support/server.js');
const { startRedis } = require('../support/redis.js');
const { eventually } = require('../support/cluster.js');

const PASSWORD = 'redis-pass-0123456789';
let redis;
let withPassword;
before(async () => {
  redis = await startRedis();
  assert.equal(await redis.command('CONFIG', 'SET', 'requirepass', PASSWORD), 'OK');
  withPassword = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
});
// SIGKILL: a SHUTDOWN from the fixture would need the password.
after(() => redis && redis.stop('SIGKILL'));

/** A node on the password-protected Redis, its URL given by `args`/`env`. */
function node(name, { args = [], env = {}, dir = tempDir() } = {}) {
  return startServer({ admin: true, dir, args, env, config: { cluster: { key_prefix: `secret-${name}-${process.pid}` } } });
}

/** Waits until the node says Redis answers. */
async function connected(server) {
  await eventually(async () => (await server.stats()).cluster?.redis_connected === true, { timeout: 20000, what: 'redis_connected' });
}

test('--redis with a password on the command line is refused with a pointer to the safe ways', async () => {
  await assert.rejects(node('cmdline', { args: ['--redis', withPassword] }), (err) => {
    assert.match(err.message, /server exited \(1\)/);
    assert.match(err.message, /--redis-file/);
    assert.match(err.message, /PALAVER_REDIS/);
    assert.doesNotMatch(err.message, /Palaver chat on/);
    assert.doesNotMatch(err.message, new RegExp(PASSWORD), 'the message does not repeat the password');
    return true;
  });
});

test('--redis-file: the URL with its password comes from the file, not the command line', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'redis-url');
  fs.writeFileSync(file, `${withPassword}\n`, { mode: 0o600 });
  const server = await node('file', { args: ['--redis-file', file], dir });
  t.after(() => server.stop());
  await connected(server);
  assert.doesNotMatch(fs.readFileSync(`/proc/${server.process.pid}/cmdline`, 'utf8'), new RegExp(PASSWORD));
});

test('PALAVER_REDIS: the URL from the environment', async (t) => {
  const server = await node('env', { env: { PALAVER_REDIS: withPassword } });
  t.after(() => server.stop());
  await connected(server);
});

test('a URL both in a file and in the environment, or on the command line too, is ambiguous and refused', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'redis-url');
  fs.writeFileSync(file, `${withPassword}\n`);
  await assert.rejects(node('both', { args: ['--redis-file', file], env: { PALAVER_REDIS: withPassword }, dir }), /either/);
  await assert.rejects(
    node('both2', { args: ['--redis', `redis://127.0.0.1:${redis.port}`], env: { PALAVER_REDIS: withPassword } }),
    /either/,
  );
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '\n');
  await assert.rejects(node('empty', { args: ['--redis-file', empty], dir }), /Redis URL file .* has no secret/);
});
