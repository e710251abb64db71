'use strict';
// Transport: WebSocket, long-polling, upgrade; the served client script; origins.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test, before, after } = require('node:test');
const WebSocket = require('ws');
const { startServer } = require('../support/server.js');
const { pool, bothTransports, httpRequest, assertChat, withoutOk } = require('../support/e2e.js');

const GOOD_ORIGIN = 'http://good.example';
const DIST = path.join(__dirname, '..', 'node_modules', 'socket.io-client', 'dist');

let server;
before(async () => {
  server = await startServer({
    config: { cors_origins: [GOOD_ORIGIN], room_list: { interval_ms: 100 } },
  });
});
after(() => server.stop());

/** Two clients chat in a fresh room; returns the stored message. */
async function roundTrip(a, b, room) {
  assert.equal((await a.request('join', { room })).ok, true);
  assert.equal((await b.request('join', { room })).ok, true);
  const from = b.mark();
  const reply = await a.request('message', { room, text: `over ${room}` });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  const got = await b.wait('message', (m) => m.kind === 'chat', { from });
  assertChat(got, { room, user: a.name, text: `over ${room}` });
  assert.deepEqual(got, withoutOk(reply));
}

test('connects over WebSocket only and chats', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ transports: ['websocket'], auth: { name: 'ws-a' } });
  a.name = 'ws-a';
  const b = await clients.connect({ transports: ['websocket'], auth: { name: 'ws-b' } });
  assert.equal(a.socket.io.engine.transport.name, 'websocket');
  await roundTrip(a, b, 'ws-room');
  assert.equal(a.socket.io.engine.transport.name, 'websocket');
});

test('connects with long-polling only, gets the whole protocol, never upgrades', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ transports: ['polling'], auth: { name: 'poll-a' } });
  a.name = 'poll-a';
  const b = await clients.connect({ transports: ['polling'], auth: { name: 'poll-b' } });
  let upgraded = false;
  a.socket.io.engine.on('upgrade', () => (upgraded = true));
  assert.equal(a.socket.io.engine.transport.name, 'polling');
  const session = await a.wait('session');
  assert.deepEqual(session, { user: { id: 'poll-a', name: 'poll-a' }, mode: 'open' });
  await a.wait('rooms');
  await roundTrip(a, b, 'poll-room');
  // Private messages and typing go over polling too.
  const from = b.mark();
  const reply = await a.request('private', { to: 'poll-b', text: 'psst' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual(await b.wait('private', () => true, { from }), withoutOk(reply));
  assert.equal(upgraded, false);
  assert.equal(a.socket.io.engine.transport.name, 'polling');
});

test('starts with polling and upgrades to WebSocket', async (t) => {
  const clients = pool(t, server.url);
  const a = await clients.connect({ auth: { name: 'up-a' } });
  a.name = 'up-a';
  const b = await clients.connect({ auth: { name: 'up-b' } });
  const engine = a.socket.io.engine;
  if (engine.transport.name !== 'websocket') {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no upgrade within 5 s')), 5000);
      engine.once('upgrade', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  assert.equal(engine.transport.name, 'websocket');
  await roundTrip(a, b, 'upgrade-room');
});

test('serves the socket.io-client 4.8.4 browser bundle with an ETag', async () => {
  const banner = '/*!\n * Socket.IO v4.8.4\n';
  const official = {
    '/socket.io/socket.io.min.js': [fs.readFileSync(path.join(DIST, 'socket.io.min.js'))],
    '/socket.io/socket.io.esm.min.js': [fs.readFileSync(path.join(DIST, 'socket.io.esm.min.js'))],
    // The classic name may be the full or the minified bundle; either is the npm file.
    '/socket.io/socket.io.js': [
      fs.readFileSync(path.join(DIST, 'socket.io.js')),
      fs.readFileSync(path.join(DIST, 'socket.io.min.js')),
    ],
  };
  for (const [file, candidates] of Object.entries(official)) {
    const res = await httpRequest(server.url + file);
    assert.equal(res.status, 200, file);
    assert.match(res.headers['content-type'], /^(application|text)\/javascript\b/, file);
    assert.ok(res.body.toString('utf8').startsWith(banner), `${file} starts with the banner`);
    assert.ok(
      candidates.some((c) => c.equals(res.body)),
      `${file} is byte for byte the npm socket.io-client 4.8.4 dist file`,
    );
    const etag = res.headers.etag;
    assert.equal(typeof etag, 'string', `${file} has an ETag`);
    assert.ok(etag.length > 2);
    const again = await httpRequest(server.url + file, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304, `${file} If-None-Match`);
    assert.equal(again.body.length, 0);
    const stale = await httpRequest(server.url + file, { headers: { 'If-None-Match': '"stale"' } });
    assert.equal(stale.status, 200, `${file} with a stale ETag`);
    assert.ok(stale.body.equals(res.body));
  }
});

const HANDSHAKE = '/socket.io/?EIO=4&transport=polling';

test('a foreign Origin is refused with 403 origin_not_allowed', async () => {
  for (const origin of ['http://evil.example', 'null', server.url.replace(/:(\d+)$/, (_, p) => `:${Number(p) + 1}`)]) {
    const res = await httpRequest(server.url + HANDSHAKE, { headers: { Origin: origin } });
    assert.equal(res.status, 403, `Origin ${origin}`);
    const body = JSON.parse(res.body.toString('utf8'));
    assert.equal(body.code, 'origin_not_allowed', `Origin ${origin}`);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  }
});

test('a foreign Origin is refused on WebSocket upgrades too', async () => {
  const wsUrl = server.url.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket';
  const status = await new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { origin: 'http://evil.example' });
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on('open', () => {
      ws.close();
      reject(new Error('the WebSocket upgrade from a foreign origin was accepted'));
    });
    ws.on('error', () => {});
  });
  assert.equal(status, 403);
  // The same upgrade from the page's own origin works.
  const opened = await new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, { origin: server.url });
    ws.on('message', (data) => {
      ws.close();
      resolve(data.toString());
    });
    ws.on('unexpected-response', (req, res) => resolve(`HTTP ${res.statusCode}`));
    ws.on('error', (err) => resolve(`error ${err.message}`));
  });
  assert.match(opened, /^0\{"sid":/);
});

bothTransports('a socket.io-client sending a foreign Origin cannot connect', async (t, transport) => {
  const clients = pool(t, server.url);
  const err = await clients.connect({ ...transport, extraHeaders: { Origin: 'http://evil.example' } }).then(
    () => assert.fail('connected from a foreign origin'),
    (e) => e,
  );
  const status = err.context?.status ?? /\b(\d{3})\b/.exec(err.description?.message || '')?.[1];
  assert.equal(Number(status), 403, `${err.message}: ${err.description?.message}`);
  // The same client with the page's own origin connects.
  const ok = await clients.connect({ ...transport, extraHeaders: { Origin: server.url } });
  assert.equal(ok.connected, true);
});

test('the same origin is accepted', async () => {
  const res = await httpRequest(server.url + HANDSHAKE, { headers: { Origin: server.url } });
  assert.equal(res.status, 200);
  assert.match(res.body.toString('utf8'), /^0\{"sid":"[^"]+"/);
});

test('an origin in cors_origins is accepted with CORS headers', async () => {
  const res = await httpRequest(server.url + HANDSHAKE, { headers: { Origin: GOOD_ORIGIN } });
  assert.equal(res.status, 200);
  assert.match(res.body.toString('utf8'), /^0\{"sid":"[^"]+"/);
  assert.equal(res.headers['access-control-allow-origin'], GOOD_ORIGIN);
});

test('requests without an Origin (non-browser clients) are not affected', async () => {
  const res = await httpRequest(server.url + HANDSHAKE);
  assert.equal(res.status, 200);
  const open = JSON.parse(res.body.toString('utf8').slice(1));
  assert.equal(typeof open.sid, 'string');
  assert.deepEqual(open.upgrades, ['websocket']);
});

test('DNS rebinding: a Host name that is not allowed is refused with 403 host_not_allowed', async (t) => {
  const port = new URL(server.url).port;
  const hostNotAllowed = async (url, headers, why) => {
    const res = await httpRequest(url + HANDSHAKE, { headers });
    assert.equal(res.status, 403, why);
    assert.equal(JSON.parse(res.body.toString('utf8')).code, 'host_not_allowed', why);
  };
  const accepted = async (url, headers, why) => {
    const res = await httpRequest(url + HANDSHAKE, { headers });
    assert.equal(res.status, 200, `${why}: ${res.body}`);
    assert.match(res.body.toString('utf8'), /^0\{"sid":"[^"]+"/, why);
  };
  // A page at attacker.example whose name now resolves to this server: its Origin
  // names the Host it was sent to, and same-origin requests carry no Origin at all.
  const rebound = `attacker.example:${port}`;
  await hostNotAllowed(server.url, { Host: rebound, Origin: `http://${rebound}` }, 'rebound, with Origin');
  await hostNotAllowed(server.url, { Host: rebound }, 'rebound, without Origin');
  const wsStatus = await new Promise((resolve) => {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, {
      headers: { Host: rebound },
      origin: `http://${rebound}`,
    });
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('error', () => {});
  });
  assert.equal(wsStatus, 403, 'rebound WebSocket upgrade');
  // Allowed by default: IP addresses, localhost and names under .localhost.
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `app.localhost:${port}`, `[::1]:${port}`, 'LOCALHOST']) {
    await accepted(server.url, { Host: host, Origin: `http://${host}` }, host);
  }
  // allowed_hosts adds names (a leading "*." for subdomains); "*" allows every host.
  const named = await startServer({ config: { allowed_hosts: ['chat.example', '*.corp.example'] } });
  t.after(() => named.stop());
  const namedPort = new URL(named.url).port;
  for (const host of ['chat.example', 'Chat.Example', 'a.corp.example', 'b.a.corp.example']) {
    const withPort = `${host}:${namedPort}`;
    await accepted(named.url, { Host: withPort, Origin: `http://${withPort}` }, host);
  }
  for (const host of ['corp.example', 'chat.example.evil', 'attacker.example']) {
    await hostNotAllowed(named.url, { Host: `${host}:${namedPort}` }, host);
  }
  const any = await startServer({ config: { allowed_hosts: ['*'] } });
  t.after(() => any.stop());
  await accepted(any.url, { Host: 'attacker.example', Origin: 'http://attacker.example' }, 'allowed_hosts ["*"]');
});

test('allowed_hosts entries must be host names, "*." names or "*"', async () => {
  for (const bad of ['http://chat.example', 'chat.example:3000', 'chat.example/path', '', '*.']) {
    await assert.rejects(startServer({ config: { allowed_hosts: [bad] } }), /allowed_hosts entry/, JSON.stringify(bad));
  }
});

test('cors_origins ["*"] allows every origin', async (t) => {
  const open = await startServer({ config: { cors_origins: ['*'] } });
  t.after(() => open.stop());
  const res = await httpRequest(open.url + HANDSHAKE, { headers: { Origin: 'http://evil.example' } });
  assert.equal(res.status, 200);
  assert.match(res.body.toString('utf8'), /^0\{"sid":"[^"]+"/);
  assert.ok(['*', 'http://evil.example'].includes(res.headers['access-control-allow-origin']));
});
