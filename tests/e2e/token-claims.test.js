'use strict';
// Token mode's claim checks beyond the signature: nbf, iss, aud, and key rotation
// (several accepted secrets).

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer, sign } = require('../support/server.js');
const { pool } = require('../support/e2e.js');

const CURRENT = 'e2e-claims-current-secret-0123';
const PREVIOUS = 'e2e-claims-previous-secret-456';
const ISSUER = 'https://auth.example.com/';
const AUDIENCE = 'palaver-chat';

const now = () => Math.floor(Date.now() / 1000);
const token = (claims, secret = CURRENT) => sign({ exp: now() + 300, ...claims }, secret);

let plain;
let strict;
before(async () => {
  plain = await startServer({
    config: { identity: { mode: 'token', token_secret: CURRENT, token_leeway_secs: 0 } },
  });
});
after(() => plain?.stop());

/** A server that checks iss and aud and accepts two secrets, started by the tests that need it. */
async function strictServer() {
  strict ??= startServer({
    config: {
      identity: {
        mode: 'token',
        token_secret: CURRENT,
        token_secrets: [PREVIOUS],
        token_issuer: ISSUER,
        token_audience: AUDIENCE,
        token_leeway_secs: 0,
      },
    },
  });
  return strict;
}
after(async () => (await strict?.catch(() => null))?.stop());

test('a token whose nbf is ahead is refused with auth_not_yet_valid', async (t) => {
  const clients = pool(t, plain.url);
  const early = token({ sub: 'early', nbf: now() + 120 });
  assert.equal(await clients.refused({ auth: { token: early } }), 'auth_not_yet_valid');
  const a = await clients.connect({ auth: { token: token({ sub: 'on-time', nbf: now() - 1 }) } });
  assert.equal((await a.wait('session')).user.id, 'on-time');
  const later = await clients.connect({ auth: { token: token({ sub: 'no-names' }) } });
  await later.wait('session');
  await later.request('logout');
  const reply = await later.request('login', { token: early });
  assert.equal(reply.code, 'auth_not_yet_valid');
});

test('without token_audience a token that names an audience is refused', async (t) => {
  const clients = pool(t, plain.url);
  assert.equal(await clients.refused({ auth: { token: token({ sub: 'u1', aud: 'other-service' }) } }), 'auth_invalid');
});

test('token_issuer: iss must be present and equal', async (t) => {
  const clients = pool(t, (await strictServer()).url);
  const good = { aud: AUDIENCE };
  assert.equal(await clients.refused({ auth: { token: token({ sub: 'u1', ...good }) } }), 'auth_invalid');
  assert.equal(
    await clients.refused({ auth: { token: token({ sub: 'u1', iss: 'https://evil.example.com/', ...good }) } }),
    'auth_invalid',
  );
  const a = await clients.connect({ auth: { token: token({ sub: 'iss-ok', iss: ISSUER, ...good }) } });
  assert.equal((await a.wait('session')).user.id, 'iss-ok');
});

test('token_audience: aud must be present and contain it', async (t) => {
  const clients = pool(t, (await strictServer()).url);
  const good = { iss: ISSUER };
  assert.equal(await clients.refused({ auth: { token: token({ sub: 'u1', ...good }) } }), 'auth_invalid');
  assert.equal(await clients.refused({ auth: { token: token({ sub: 'u1', aud: 'other', ...good }) } }), 'auth_invalid');
  const one = await clients.connect({ auth: { token: token({ sub: 'aud-one', aud: AUDIENCE, ...good }) } });
  assert.equal((await one.wait('session')).user.id, 'aud-one');
  const many = await clients.connect({
    auth: { token: token({ sub: 'aud-many', aud: ['other', AUDIENCE], ...good }) },
  });
  assert.equal((await many.wait('session')).user.id, 'aud-many');
});

test('token_secrets: tokens signed with any accepted secret are accepted, others refused', async (t) => {
  const clients = pool(t, (await strictServer()).url);
  const claims = { iss: ISSUER, aud: AUDIENCE };
  const current = await clients.connect({ auth: { token: token({ sub: 'by-current', ...claims }, CURRENT) } });
  assert.equal((await current.wait('session')).user.id, 'by-current');
  const previous = await clients.connect({ auth: { token: token({ sub: 'by-previous', ...claims }, PREVIOUS) } });
  assert.equal((await previous.wait('session')).user.id, 'by-previous');
  assert.equal(
    await clients.refused({ auth: { token: token({ sub: 'u1', ...claims }, 'not-a-secret-of-ours') } }),
    'auth_invalid',
  );
  const expired = token({ sub: 'u1', ...claims, exp: now() - 10 }, PREVIOUS);
  assert.equal(await clients.refused({ auth: { token: expired } }), 'auth_expired');
});
