'use strict';
// Token identity mode: HS256 JWTs in the handshake auth or the query string,
// connect_error codes, one user across connections, logout and login {token}.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer, sign } = require('../support/server.js');
const { pool, bothTransports, assertRefused, assertNone, assertNotice, withoutOk } = require('../support/e2e.js');

const SECRET = 'e2e-token-secret-0123456789';
let server;
before(async () => {
  server = await startServer({
    config: {
      identity: { mode: 'token', token_secret: SECRET },
      room_list: { interval_ms: 100 },
      limits: { max_connections_per_ip: 500 },
    },
  });
});
after(() => server.stop());

const now = () => Math.floor(Date.now() / 1000);
const token = (claims, secret = SECRET, options = {}) => sign({ exp: now() + 300, ...claims }, secret, options);
const session = (user) => ({ user, mode: 'token' });

bothTransports('a token in the handshake auth logs in', async (t, transport) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ ...transport, auth: { token: token({ sub: 'u-auth', name: 'Alice' }) } });
  assert.deepEqual(await a.wait('session'), session({ id: 'u-auth', name: 'Alice' }));
  const joined = await a.request('join', { room: 'tok-auth', name: 'Ignored Name' });
  assert.equal(joined.ok, true);
  assert.deepEqual(joined.user, { id: 'u-auth', name: 'Alice' });
});

bothTransports('a token in the query string logs in', async (t, transport) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ ...transport, query: { token: token({ sub: 'u-query', name: 'Quentin' }) } });
  assert.deepEqual(await a.wait('session'), session({ id: 'u-query', name: 'Quentin' }));
});

test('without a name claim the name is the sub', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ auth: { token: token({ sub: 'just-sub' }) } });
  assert.deepEqual(await a.wait('session'), session({ id: 'just-sub', name: 'just-sub' }));
});

test('a sub that looks like system needs a name claim; name claims are NFKC and not look-alikes of system', async (t) => {
  const clients = pool(t, server.url);
  const refusedSubs = [
    ['system', 'the reserved name itself'],
    ['System', 'another case'],
    ['\u0455ystem', 'Cyrillic dze for s'],
    ['\uFF53\uFF59\uFF53\uFF54\uFF45\uFF4D', 'fullwidth letters'],
    ['u\u202E1', 'a right-to-left override'],
  ];
  for (const [sub, why] of refusedSubs) {
    assert.equal(await clients.refused({ auth: { token: token({ sub }) } }), 'auth_invalid', `sub: ${why}`);
  }
  for (const name of ['\u0455ystem', '\uFF53\uFF59\uFF53\uFF54\uFF45\uFF4D']) {
    assert.equal(await clients.refused({ auth: { token: token({ sub: 'u-look', name }) } }), 'auth_invalid', name);
  }
  // With a name claim to show, the issuer's "system" is an ordinary user id.
  const admin = await clients.connect({ auth: { token: token({ sub: 'system', name: 'Sys Admin' }) } });
  assert.deepEqual(await admin.wait('session'), session({ id: 'system', name: 'Sys Admin' }));
  const wide = await clients.connect({ auth: { token: token({ sub: 'u-wide', name: '\uFF37\uFF49\uFF44\uFF45' }) } });
  assert.deepEqual(await wide.wait('session'), session({ id: 'u-wide', name: 'Wide' }));
  const wideSub = await clients.connect({ auth: { token: token({ sub: '\uFF57\uFF53\uFF55\uFF42' }) } });
  assert.deepEqual(await wideSub.wait('session'), session({ id: '\uFF57\uFF53\uFF55\uFF42', name: 'wsub' }));
});

test('a missing token is refused with auth_required', async (t) => {
  const clients = pool(t, server.url);
  assert.equal(await clients.refused(), 'auth_required');
  assert.equal(await clients.refused({ transports: ['polling'] }), 'auth_required');
  assert.equal(await clients.refused({ auth: { name: 'Open Mode Name' } }), 'auth_required');
});

test('forged, malformed and incomplete tokens are refused with auth_invalid', async (t) => {
  const clients = pool(t, server.url);
  const cases = [
    ['signed with another secret', token({ sub: 'u1' }, 'wrong-secret')],
    ['garbage', 'not.a.jwt'],
    ['not even dotted', 'garbage'],
    ['no sub', token({ name: 'Nobody' })],
    ['empty sub', token({ sub: '' })],
    ['sub over 128 bytes', token({ sub: 'x'.repeat(129) })],
    ['no exp', sign({ sub: 'u1' }, SECRET)],
    ['a control character in sub', token({ sub: 'u\n1' })],
    ['sub not a string', token({ sub: 5 })],
    ['signed with HS512, not HS256', token({ sub: 'u1' }, SECRET, { algorithm: 'HS512' })],
    ['alg none', sign({ sub: 'u1', exp: now() + 300 }, '', { algorithm: 'none' })],
    ['tampered payload', (() => {
      const [h, , s] = token({ sub: 'u1' }).split('.');
      const p = Buffer.from(JSON.stringify({ sub: 'admin', exp: now() + 300 })).toString('base64url');
      return `${h}.${p}.${s}`;
    })()],
  ];
  for (const [why, bad] of cases) {
    assert.equal(await clients.refused({ auth: { token: bad } }), 'auth_invalid', `auth: ${why}`);
  }
  assert.equal(
    await clients.refused({ query: { token: token({ sub: 'u1' }, 'wrong-secret') } }),
    'auth_invalid',
    'query: forged',
  );
  assert.equal(await clients.refused({ auth: { token: 12345 } }), 'auth_invalid', 'auth.token not a string');
  // The sub limit is 128 bytes (UTF-8), not characters.
  assert.equal(await clients.refused({ auth: { token: token({ sub: 'é'.repeat(65), name: 'Accents' }) } }), 'auth_invalid');
  for (const sub of ['x'.repeat(128), 'é'.repeat(64)]) {
    const ok = await clients.connect({ auth: { token: token({ sub, name: 'Long Sub' }) } });
    assert.deepEqual(await ok.wait('session'), session({ id: sub, name: 'Long Sub' }));
  }
});

test('an expired token is refused with auth_expired; 30 s of skew are tolerated', async (t) => {
  const clients = pool(t, server.url);
  assert.equal(await clients.refused({ auth: { token: token({ sub: 'late', exp: now() - 120 }) } }), 'auth_expired');
  assert.equal(await clients.refused({ query: { token: token({ sub: 'late', exp: now() - 3600 }) } }), 'auth_expired');
  const skewed = await clients.connect({ auth: { token: token({ sub: 'skewed', exp: now() - 5 }) } });
  assert.deepEqual(await skewed.wait('session'), session({ id: 'skewed', name: 'skewed' }));
});

test('two connections with the same sub are one user', async (t) => {
  const clients = pool(t, server.url);
  const room = 'same-sub';
  const watcher = await clients.connect({ auth: { token: token({ sub: 'watcher' }) } });
  assert.equal((await watcher.request('join', { room })).ok, true);
  const one = await clients.connect({ auth: { token: token({ sub: 'twin', name: 'Twin' }) } });
  const two = await clients.connect({ transports: ['polling'], auth: { token: token({ sub: 'twin', name: 'Twin' }) } });
  const from = watcher.mark();
  const first = await one.request('join', { room });
  assert.equal(first.count, 2);
  const second = await two.request('join', { room });
  assert.equal(second.ok, true);
  assert.equal(second.count, 2, 'one member entry');
  assert.deepEqual(second.members, [{ id: 'watcher', name: 'watcher' }, { id: 'twin', name: 'Twin' }]);
  const members = await watcher.request('members', { room });
  assert.deepEqual(members, {
    ok: true,
    room,
    count: 2,
    members: [{ id: 'watcher', name: 'watcher' }, { id: 'twin', name: 'Twin' }],
  });
  // A later message from the twin proves every notice was delivered before it.
  const fromOne = one.mark();
  await two.request('message', { room, text: 'proof 1' });
  await watcher.wait('message', (m) => m.text === 'proof 1', { from });
  // The user's other connection is one of the room's other connections: it gets it too.
  const echoed = await one.wait('message', (m) => m.text === 'proof 1', { from: fromOne });
  assert.equal(echoed.user_id, 'twin');
  assert.equal(watcher.of('message', from).filter((m) => m.kind === 'join').length, 1, 'one join notice');
  assert.equal(watcher.of('presence', from).length, 1, 'one presence event');
  // Leaving from one connection keeps the user in the room: no notice.
  const fromLeave = watcher.mark();
  assert.deepEqual(await one.request('leave', { room }), { ok: true, room });
  await two.request('message', { room, text: 'proof 2' });
  await watcher.wait('message', (m) => m.text === 'proof 2', { from: fromLeave });
  assert.deepEqual(watcher.of('message', fromLeave).filter((m) => m.kind === 'leave'), []);
  assert.equal((await watcher.request('members', { room })).count, 2);
  // The last connection leaving makes the leave notice.
  const fromLast = watcher.mark();
  two.close();
  const notice = await watcher.wait('message', (m) => m.kind === 'leave', { from: fromLast });
  assertNotice(notice, { room, kind: 'leave' });
  const presence = await watcher.wait('presence', (p) => p.action === 'leave', { from: fromLast });
  assert.deepEqual(presence, { room, action: 'leave', user: { id: 'twin', name: 'Twin' }, count: 1 });
});

test('private messages reach every connection of the user', async (t) => {
  const clients = pool(t, server.url);
  const one = await clients.connect({ auth: { token: token({ sub: 'multi', name: 'Multi' }) } });
  const two = await clients.connect({ transports: ['polling'], auth: { token: token({ sub: 'multi', name: 'Multi' }) } });
  const sender = await clients.connect({ auth: { token: token({ sub: 'sender', name: 'Sender' }) } });
  const reply = await sender.request('private', { to: 'multi', text: 'to both' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual(reply.from, { id: 'sender', name: 'Sender' });
  assert.deepEqual(reply.to, { id: 'multi', name: 'Multi' });
  assert.deepEqual(await one.wait('private'), withoutOk(reply));
  assert.deepEqual(await two.wait('private'), withoutOk(reply));
});

test('logout, then login {token}', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ auth: { token: token({ sub: 'relog', name: 'Relog' }) } });
  assert.equal((await a.request('join', { room: 'relog-room' })).ok, true);
  const from = a.mark();
  assert.deepEqual(await a.request('logout'), { ok: true });
  assert.deepEqual(await a.wait('session', () => true, { from }), session(null));
  assertRefused(await a.request('join', { room: 'relog-room' }), 'not_logged_in');
  assertRefused(await a.request('login', { token: token({ sub: 'x' }, 'wrong-secret') }), 'auth_invalid');
  assertRefused(await a.request('login', { token: token({ sub: 'x', exp: now() - 600 }) }), 'auth_expired');
  const fromLogin = a.mark();
  const login = await a.request('login', { token: token({ sub: 'relog2', name: 'Relogged' }) });
  assert.deepEqual(login, { ok: true, user: { id: 'relog2', name: 'Relogged' } });
  assert.deepEqual(await a.wait('session', () => true, { from: fromLogin }), session({ id: 'relog2', name: 'Relogged' }));
  assertRefused(await a.request('login', { token: token({ sub: 'relog3' }) }), 'already_logged_in');
  const joined = await a.request('join', { room: 'relog-room' });
  assert.deepEqual(joined.user, { id: 'relog2', name: 'Relogged' });
});

test('in token mode a name cannot stand in for a token', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ auth: { token: token({ sub: 'no-names' }) } });
  assert.deepEqual(await a.request('logout'), { ok: true });
  const from = a.mark();
  // login without a token: the token is what is required.
  assertRefused(await a.request('login', { name: 'Anonymous' }), 'auth_required');
  assertRefused(await a.request('login', {}), 'auth_required');
  const join = await a.request('join', { room: 'names-in-token-mode', name: 'Anonymous' });
  assertRefused(join, 'not_logged_in');
  await assertNone(a, 'session', () => true, { from, ms: 0 });
});

test('identity.token_leeway_secs sets the tolerated clock skew', async (t) => {
  const strict = await startServer({
    config: { identity: { mode: 'token', token_secret: SECRET, token_leeway_secs: 0 } },
  });
  t.after(() => strict.stop());
  const clients = pool(t, strict.url);
  assert.equal(await clients.refused({ auth: { token: token({ sub: 'late', exp: now() - 5 }) } }), 'auth_expired');
  const fresh = await clients.connect({ auth: { token: token({ sub: 'fresh', exp: now() + 60 }) } });
  assert.deepEqual(await fresh.wait('session'), session({ id: 'fresh', name: 'fresh' }));
});

test(
  'a token with a valid sub and no name claim is accepted even if the sub is not a display name',
  async (t) => {
    const clients = pool(t, server.url);
    for (const sub of ['auth0|abc123', 'a'.repeat(64), 'tenant/user:42']) {
      const client = await clients.connect({ auth: { token: token({ sub }) } });
      const { user } = await client.wait('session');
      assert.equal(user.id, sub);
    }
  },
);
