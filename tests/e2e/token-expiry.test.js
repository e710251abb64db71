'use strict';
// Token mode: a connection lives only as long as its token. token_expiring comes
// identity.token_expiry_notice_secs before the end, then kicked {reason:
// "auth_expired"} and a disconnect; `login {token}` with a fresh token of the same
// user renews the connection.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer, sign } = require('../support/server.js');
const { pool, bothTransports, assertRefused, assertNone } = require('../support/e2e.js');

const SECRET = 'e2e-expiry-secret-0123456789';
// Generous: the expiry itself is seconds away, and the machine may be busy.
const SLOW = { timeout: 20000 };

const now = () => Math.floor(Date.now() / 1000);
const token = (sub, exp, secret = SECRET) => sign({ sub, exp }, secret);

let plain; // default notice time (60 s): every short token is noticed at once
let noticed; // token_expiry_notice_secs: 2
before(async () => {
  plain = await startServer({
    config: {
      identity: { mode: 'token', token_secret: SECRET, token_leeway_secs: 0 },
      limits: { max_connections_per_ip: 500 },
    },
  });
});
after(() => plain?.stop());

async function noticedServer() {
  noticed ??= startServer({
    config: {
      identity: { mode: 'token', token_secret: SECRET, token_leeway_secs: 0, token_expiry_notice_secs: 2 },
      limits: { max_connections_per_ip: 500 },
    },
  });
  return noticed;
}
after(async () => (await noticed?.catch(() => null))?.stop());

/** Resolves with the recorded entry of the first `event` (with its arrival time). */
async function entry(client, event) {
  await client.wait(event, () => true, SLOW);
  return client.events.find((e) => e.event === event);
}

bothTransports('a connection ends when its token expires: token_expiring, kicked auth_expired, disconnect', async (t, transport) => {
  const clients = pool(t, plain.url);
  const watcher = await clients.connect({ ...transport, auth: { token: token(`watch-${transport.transports[0]}`, now() + 300) } });
  const room = `expiry-${transport.transports[0]}`;
  assert.equal((await watcher.request('join', { room })).ok, true);
  const exp = now() + 3;
  const a = await clients.connect({ ...transport, auth: { token: token(`ends-${transport.transports[0]}`, exp) } });
  assert.equal((await a.request('join', { room })).ok, true);

  const notice = await entry(a, 'token_expiring');
  assert.deepEqual(notice.payload, { expires_at: exp * 1000 });
  const kicked = await entry(a, 'kicked');
  assert.deepEqual(kicked.payload, { reason: 'auth_expired' });
  assert.ok(kicked.at >= exp * 1000, `kicked ${exp * 1000 - kicked.at} ms before the token's exp`);
  assert.equal(await a.disconnected(SLOW.timeout), 'io server disconnect');
  const events = a.events.map((e) => e.event);
  assert.ok(events.indexOf('token_expiring') < events.indexOf('kicked'), a.describe());
  assert.ok(events.indexOf('kicked') < events.indexOf('disconnect'), a.describe());

  const left = await watcher.wait('presence', (p) => p.action === 'leave' && p.room === room, SLOW);
  assert.equal(left.user.id, `ends-${transport.transports[0]}`);
  assert.equal(watcher.connected, true);
});

test('identity.token_expiry_notice_secs sets when token_expiring comes', async (t) => {
  const clients = pool(t, (await noticedServer()).url);
  const exp = now() + 5;
  const a = await clients.connect({ auth: { token: token('noticed-late', exp) } });
  const connectedAt = Date.now();
  const notice = await entry(a, 'token_expiring');
  assert.deepEqual(notice.payload, { expires_at: exp * 1000 });
  assert.ok(notice.at >= exp * 1000 - 2000, `notice ${exp * 1000 - notice.at} ms before the end`);
  assert.ok(notice.at > connectedAt, 'the notice came with the connection');
  assert.deepEqual((await entry(a, 'kicked')).payload, { reason: 'auth_expired' });
});

test('login with a fresh token of the same user renews the connection', async (t) => {
  const clients = pool(t, (await noticedServer()).url);
  const exp = now() + 3;
  const a = await clients.connect({ auth: { token: token('renewer', exp) } });
  assert.equal((await a.request('join', { room: 'renewed' })).ok, true);
  await a.wait('token_expiring', () => true, SLOW);
  const fresh = now() + 120;
  const from = a.mark();
  const reply = await a.request('login', { token: sign({ sub: 'renewer', name: 'Other Name', exp: fresh }, SECRET) });
  assert.deepEqual(reply, { ok: true, user: { id: 'renewer', name: 'renewer' }, expires_at: fresh * 1000 });
  // Past the old token's end: still connected, still a member, nothing announced.
  await assertNone(a, 'kicked', () => true, { from, ms: Math.max(0, exp * 1000 - Date.now()) + 1500 });
  assert.equal(a.connected, true);
  const members = await a.request('members', { room: 'renewed' });
  assert.deepEqual(members.members, [{ id: 'renewer', name: 'renewer' }]);
  assert.deepEqual(a.of('session', from), [], 'a renewal is not a new session');
});

test('a renewal with another user, an expired or a forged token is refused and changes nothing', async (t) => {
  const clients = pool(t, plain.url);
  const exp = now() + 3;
  const a = await clients.connect({ auth: { token: token('not-renewed', exp) } });
  await a.wait('session');
  assertRefused(await a.request('login', { token: token('someone-else', now() + 300) }), 'already_logged_in');
  assertRefused(await a.request('login', { token: token('not-renewed', now() - 10) }), 'auth_expired');
  assertRefused(await a.request('login', { token: token('not-renewed', now() + 300, 'forged') }), 'auth_invalid');
  assertRefused(await a.request('login', { token: sign({ sub: 'not-renewed', exp: now() + 300, nbf: now() + 100 }, SECRET) }), 'auth_not_yet_valid');
  assert.deepEqual((await entry(a, 'kicked')).payload, { reason: 'auth_expired' });
  assert.equal(await a.disconnected(SLOW.timeout), 'io server disconnect');
});

test('a connection that logged out is not ended by its old token', async (t) => {
  const clients = pool(t, plain.url);
  const exp = now() + 2;
  const a = await clients.connect({ auth: { token: token('quitter', exp) } });
  await a.wait('session');
  assert.deepEqual(await a.request('logout'), { ok: true });
  await assertNone(a, 'kicked', () => true, { ms: Math.max(0, exp * 1000 - Date.now()) + 1500 });
  assert.equal(a.connected, true);
  const again = await a.request('login', { token: token('quitter', now() + 300) });
  assert.deepEqual(again.user, { id: 'quitter', name: 'quitter' });
});

test("one connection's expiry leaves the user's other connections in place", async (t) => {
  const clients = pool(t, plain.url);
  const short = await clients.connect({ auth: { token: token('two-devices', now() + 3) } });
  const long = await clients.connect({ auth: { token: token('two-devices', now() + 300) } });
  const watcher = await clients.connect({ auth: { token: token('onlooker', now() + 300) } });
  for (const c of [short, long, watcher]) assert.equal((await c.request('join', { room: 'devices' })).ok, true);
  const from = watcher.mark();
  assert.deepEqual((await entry(short, 'kicked')).payload, { reason: 'auth_expired' });
  await short.disconnected(SLOW.timeout);
  assert.equal(long.connected, true);
  const members = await watcher.request('members', { room: 'devices' });
  assert.deepEqual(members.members.map((m) => m.id).sort(), ['onlooker', 'two-devices']);
  assert.deepEqual(watcher.of('presence', from), [], 'the user did not leave');
  assert.deepEqual(long.of('token_expiring'), []);
});
