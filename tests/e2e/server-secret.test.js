'use strict';
// The standalone server takes its token secret from a file or the environment,
// never from its command line (which every user of the machine can read).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { startServer, sign, tempDir } = require('../support/server.js');
const { pool } = require('../support/e2e.js');

const now = () => Math.floor(Date.now() / 1000);
const token = (sub, secret) => sign({ sub, exp: now() + 300 }, secret);

test('--token-secret on the command line is refused with a pointer to the safe ways', async () => {
  await assert.rejects(
    startServer({ args: ['--token-secret', 'visible-in-ps'] }),
    (err) => {
      assert.match(err.message, /server exited \(1\)/);
      assert.match(err.message, /--token-secret-file/);
      assert.match(err.message, /PALAVER_TOKEN_SECRET/);
      assert.doesNotMatch(err.message, /Palaver chat on/);
      return true;
    },
  );
});

test('--token-secret-file: every line is an accepted secret, and none is on the command line', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'secrets');
  fs.writeFileSync(file, 'file-secret-current\nfile-secret-previous\n', { mode: 0o600 });
  const server = await startServer({ args: ['--token-secret-file', file], dir });
  t.after(() => server.stop());
  const cmdline = fs.readFileSync(`/proc/${server.process.pid}/cmdline`, 'utf8');
  assert.doesNotMatch(cmdline, /file-secret/);
  const clients = pool(t, server.url);
  assert.equal(await clients.refused(), 'auth_required');
  const a = await clients.connect({ auth: { token: token('by-current', 'file-secret-current') } });
  assert.deepEqual(await a.wait('session'), { user: { id: 'by-current', name: 'by-current' }, mode: 'token' });
  const b = await clients.connect({ auth: { token: token('by-previous', 'file-secret-previous') } });
  assert.equal((await b.wait('session')).user.id, 'by-previous');
  assert.equal(await clients.refused({ auth: { token: token('u', 'other') } }), 'auth_invalid');
});

test('PALAVER_TOKEN_SECRET in the environment turns token mode on', async (t) => {
  const server = await startServer({ env: { PALAVER_TOKEN_SECRET: 'env-secret-0123' } });
  t.after(() => server.stop());
  const clients = pool(t, server.url);
  const a = await clients.connect({ auth: { token: token('from-env', 'env-secret-0123') } });
  assert.equal((await a.wait('session')).user.id, 'from-env');
});

test('an empty or missing secret file stops the server with a clear message', async () => {
  const dir = tempDir();
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '\n\n');
  await assert.rejects(startServer({ args: ['--token-secret-file', empty], dir }), /has no secret/);
  await assert.rejects(
    startServer({ args: ['--token-secret-file', path.join(dir, 'absent')], dir }),
    /cannot read the token secret file/,
  );
});

test('a secret both in a file and in the environment is ambiguous and refused', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'secret');
  fs.writeFileSync(file, 'one\n');
  await assert.rejects(
    startServer({ args: ['--token-secret-file', file], env: { PALAVER_TOKEN_SECRET: 'two' }, dir }),
    /either/,
  );
});
