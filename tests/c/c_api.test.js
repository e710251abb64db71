'use strict';
// The C API with real clients: tests/c/driver.c hosts an engine through
// include/palaver.h while socket.io-client users chat with it. Also runs the
// standalone C checks (misuse, lifecycle_loop, the statically linked program).
//
//   cd tests && node --test c/c_api.test.js

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { connect, nextEvent, record, sleep } = require('../support/server.js');
const { httpRequest } = require('../support/e2e.js');
const { bin, buildCPrograms, run, tail, Driver } = require('./harness.js');

let driver;
const clients = {};
const inbox = {};
const sids = {}; // socket.io-client forgets socket.id once disconnected
const ident = (name) => ({ id: name, name });

before(() => buildCPrograms(), { timeout: 600000 });
after(() => {
  for (const socket of Object.values(clients)) socket.close();
  driver?.kill();
});

/** Connects a client and records what it receives. */
async function join(key, options) {
  const socket = await connect(driver.url, options);
  clients[key] = socket;
  inbox[key] = record(socket);
  sids[key] = socket.id;
  return socket;
}

/** Resolves with `reason` when the socket disconnects. */
const disconnected = (socket) => new Promise((resolve) => socket.once('disconnect', resolve));

test('the driver starts and reports its port', { timeout: 30000 }, async () => {
  driver = await Driver.start({ config: { port: 0, history: { storage: 'memory' }, room_list: { interval_ms: 50 } } });
  assert.ok(driver.lines[0].ready);
  assert.equal(driver.lines[0].version, '0.1.0');
});

test('DNS rebinding: the C engine refuses a request sent to a host name it was not given', { timeout: 20000 }, async () => {
  // The client script is served after the same checks as the transport, and opens no session.
  const script = `${driver.url}/socket.io/socket.io.js`;
  const port = new URL(driver.url).port;
  const rebound = await httpRequest(script, {
    headers: { Host: `attacker.example:${port}`, Origin: `http://attacker.example:${port}` },
  });
  assert.equal(rebound.status, 403);
  assert.equal(JSON.parse(rebound.body.toString('utf8')).code, 'host_not_allowed');
  const local = await httpRequest(script, { headers: { Host: `localhost:${port}`, Origin: `http://localhost:${port}` } });
  assert.equal(local.status, 200);
});

test('connected: the struct fields match the JSON and the client', { timeout: 20000 }, async () => {
  const ada = await join('ada', { auth: { name: 'Ada' } });
  const bob = await join('bob', { auth: { name: 'Bob' }, transports: ['websocket'] });
  const carol = await join('carol', { auth: { name: 'Carol' }, transports: ['polling'] });
  const anon = await join('anon', {}); // no identity: user fields NULL

  for (const [socket, name, transport] of [
    [ada, 'Ada', null],
    [bob, 'Bob', 'websocket'],
    [carol, 'Carol', 'polling'],
    [anon, null, null],
  ]) {
    const event = await driver.event((e) => e.kind === 'connected' && e.sid === socket.id, `connected ${name}`);
    assert.equal(event.user_id, name);
    assert.equal(event.user_name, name);
    assert.deepEqual(event.parsed.user, name ? ident(name) : null);
    assert.equal(event.parsed.address, '127.0.0.1');
    if (transport) assert.equal(event.parsed.transport, transport);
  }
  const thread = await driver.waitFor((l) => l.type === 'callback_thread', 'callback thread name');
  assert.equal(thread.name, 'palaver-events', 'the documented name of the callback thread');
  driver.assertClean();
});

test('joined and left', { timeout: 20000 }, async () => {
  const { ada, bob, carol } = clients;
  assert.equal((await ada.emitWithAck('join', { room: 'lobby' })).ok, true);
  assert.equal((await bob.emitWithAck('join', { room: 'lobby' })).ok, true);
  assert.equal((await carol.emitWithAck('join', { room: 'side' })).ok, true);
  assert.equal((await carol.emitWithAck('join', { room: 'extra' })).ok, true);
  assert.equal((await carol.emitWithAck('leave', { room: 'extra' })).ok, true);

  for (const [socket, name, room] of [
    [ada, 'Ada', 'lobby'],
    [bob, 'Bob', 'lobby'],
    [carol, 'Carol', 'side'],
    [carol, 'Carol', 'extra'],
  ]) {
    const event = await driver.event((e) => e.kind === 'joined' && e.sid === socket.id && e.room === room, `joined ${name} ${room}`);
    assert.deepEqual([event.user_id, event.user_name], [name, name]);
  }
  const left = await driver.event((e) => e.kind === 'left', 'left');
  assert.deepEqual([left.sid, left.room, left.user_id, left.user_name], [carol.id, 'extra', 'Carol', 'Carol']);
  driver.assertClean();
});

test('message and private: what the clients sent and were acknowledged', { timeout: 20000 }, async () => {
  const { ada, bob } = clients;
  const text = 'héllo "C" \\ ✓\nsecond line\ttab';
  const sent = await ada.emitWithAck('message', { room: 'lobby', text, user: 'Mallory' });
  assert.equal(sent.ok, true);
  const message = await driver.event((e) => e.kind === 'message', 'message');
  assert.deepEqual(
    [message.sid, message.room, message.user_id, message.user_name, message.text, message.message_id, message.ts],
    [ada.id, 'lobby', 'Ada', 'Ada', text, sent.id, sent.ts],
  );

  const whispered = await bob.emitWithAck('private', { to: 'Ada', text: 'psst' });
  assert.equal(whispered.ok, true);
  const secret = await driver.event((e) => e.kind === 'private', 'private');
  assert.deepEqual(
    [secret.sid, secret.user_id, secret.user_name, secret.to_user_id, secret.text, secret.message_id, secret.ts],
    [bob.id, 'Bob', 'Bob', 'Ada', 'psst', whispered.id, whispered.ts],
  );
  assert.equal(secret.room, null);
  driver.assertClean();
});

test('custom events: ping answered inside the callback, later from the main thread', { timeout: 20000 }, async () => {
  const { ada, bob, carol, anon } = clients;

  const data = { n: 1, s: 'x', list: [1, 2], nested: { ok: true } };
  assert.deepEqual(await ada.timeout(5000).emitWithAck('ping', data), { pong: data });
  const ping = await driver.event((e) => e.kind === 'custom' && e.event_name === 'ping', 'custom ping');
  assert.equal(ping.sid, ada.id);
  assert.deepEqual(JSON.parse(ping.data_json), data);
  assert.ok(ping.ack_id > 0, 'a custom event with an ack callback has an ack_id');
  const pingAck = await driver.waitFor((l) => l.type === 'ping_ack', 'ping_ack');
  assert.deepEqual([pingAck.ack_id, pingAck.name], [ping.ack_id, 'PALAVER_OK']);

  // `later` waits for the main thread.
  let answered = false;
  const pending = carol.timeout(8000).emitWithAck('later', { k: 2 });
  pending.then(() => (answered = true), () => {});
  const later = await driver.waitFor((l) => l.type === 'later', 'later line');
  const laterEvent = await driver.event((e) => e.event_name === 'later', 'custom later');
  assert.equal(laterEvent.ack_id, later.ack_id);
  assert.equal(laterEvent.sid, carol.id);
  await sleep(300);
  assert.equal(answered, false, 'later was answered before the driver was told to');
  const stats = await driver.command('stats');
  assert.equal(stats.stats.pending_host_acks, 1);
  const ack = await driver.command('ack_later {"later": true, "k": 2}');
  assert.deepEqual([ack.name, ack.ack_id], ['PALAVER_OK', later.ack_id]);
  assert.deepEqual(await pending, { later: true, k: 2 });
  const again = await driver.command(`ack ${later.ack_id} {}`);
  assert.equal(again.name, 'PALAVER_UNKNOWN_ACK');
  assert.ok(again.error.length > 0);

  // Without an ack callback: ack_id 0; without data: null; without identity: NULL user.
  anon.emit('hello', [1, 'two']);
  const hello = await driver.event((e) => e.event_name === 'hello', 'custom hello');
  assert.deepEqual([hello.sid, hello.user_id, hello.user_name, hello.ack_id], [anon.id, null, null, 0]);
  assert.equal(hello.data_json, '[1,"two"]');
  assert.equal(hello.parsed.ack, null);
  bob.emit('nodata');
  const nodata = await driver.event((e) => e.event_name === 'nodata', 'custom nodata');
  assert.equal(nodata.data_json, 'null');
  assert.equal(nodata.args_json, '[]');

  // Every argument in args_json (data_json is the first); a NUL in a text arrives
  // whole, with its length (sio_host.test.js checks a NUL in an event name).
  ada.emit('multi', 'a\u0000b', 2, { c: [3] });
  const multi = await driver.event((e) => e.event_name === 'multi', 'custom multi');
  assert.deepEqual(JSON.parse(multi.args_json), ['a\u0000b', 2, { c: [3] }]);
  assert.equal(JSON.parse(multi.data_json), 'a\u0000b');
  driver.assertClean();
});

test('emit_all, emit_room and emit_user reach exactly the right clients', { timeout: 20000 }, async () => {
  const { ada, bob, carol, anon } = clients;
  const everyone = { ada, bob, carol, anon };

  let waits = Object.values(everyone).map((s) => nextEvent(s, 'news'));
  assert.equal((await driver.command('emit_all news {"n": 1, "text": "to all"}')).name, 'PALAVER_OK');
  for (const payload of await Promise.all(waits)) assert.deepEqual(payload, { n: 1, text: 'to all' });

  waits = [ada, bob].map((s) => nextEvent(s, 'roomnews'));
  assert.equal((await driver.command('emit_room lobby roomnews {"room": "lobby"}')).name, 'PALAVER_OK');
  for (const payload of await Promise.all(waits)) assert.deepEqual(payload, { room: 'lobby' });

  const dm = nextEvent(carol, 'dm');
  assert.equal((await driver.command('emit_user Carol dm {"to": "Carol"}')).name, 'PALAVER_OK');
  assert.deepEqual(await dm, { to: 'Carol' });

  // NULL data_json is JSON null.
  const nothing = nextEvent(ada, 'nothing');
  assert.equal((await driver.command('emit_user Ada nothing')).name, 'PALAVER_OK');
  assert.equal(await nothing, null);

  await sleep(300);
  const got = (key, event) => inbox[key].of(event).length;
  assert.deepEqual(
    Object.fromEntries(Object.keys(everyone).map((k) => [k, [got(k, 'news'), got(k, 'roomnews'), got(k, 'dm'), got(k, 'nothing')]])),
    { ada: [1, 1, 0, 1], bob: [1, 1, 0, 0], carol: [1, 0, 1, 0], anon: [1, 0, 0, 0] },
    '[news, roomnews, dm, nothing] per client',
  );

  assert.equal((await driver.command('emit_user Nobody dm {}')).name, 'PALAVER_USER_OFFLINE');
  assert.equal((await driver.command('emit_all connect {}')).name, 'PALAVER_INVALID_ARG');
  assert.equal((await driver.command('emit_all bad {not json')).name, 'PALAVER_INVALID_ARG');
  assert.equal((await driver.command('emit_room bad/room x {}')).name, 'PALAVER_INVALID_ARG');
  assert.equal((await driver.command('emit_room empty-room x {}')).name, 'PALAVER_OK');
  driver.assertClean();
});

test('rooms: the too-small buffer reports the size needed, then the rooms and members', { timeout: 20000 }, async () => {
  const expected = [
    { room: 'lobby', count: 2, members: [ident('Ada'), ident('Bob')] },
    { room: 'side', count: 1, members: [ident('Carol')] },
  ];
  const needed = Buffer.byteLength(JSON.stringify(expected)) + 1;

  const small = await driver.command('rooms 10');
  assert.deepEqual(
    [small.first.name, small.first.needed, small.first.untouched],
    ['PALAVER_BUFFER_TOO_SMALL', needed, true],
  );
  assert.match(small.first.error, new RegExp(`need ${needed} bytes`));
  assert.deepEqual([small.name, small.needed, small.rooms], ['PALAVER_OK', needed, expected]);

  const asked = await driver.command('rooms 0'); // NULL buffer, length 0: asks for the size
  assert.deepEqual([asked.first.name, asked.first.needed, asked.rooms], ['PALAVER_BUFFER_TOO_SMALL', needed, expected]);

  const short = await driver.command(`rooms ${needed - 1}`); // the NUL counts
  assert.deepEqual([short.first.name, short.first.untouched], ['PALAVER_BUFFER_TOO_SMALL', true]);

  const exact = await driver.command(`rooms ${needed}`);
  assert.deepEqual([exact.first.name, exact.first.needed, exact.rooms], ['PALAVER_OK', needed, expected]);
});

test('stats', { timeout: 20000 }, async () => {
  const { stats, name } = await driver.command('stats');
  assert.equal(name, 'PALAVER_OK');
  const { uptime_ms: uptime, ...counters } = stats;
  assert.deepEqual(counters, {
    connections: 4,
    connections_total: 4,
    connections_refused: 0,
    users_online: 3, // anon has no identity
    rooms: 2,
    messages: 1,
    private_messages: 1,
    requests_rejected: 0,
    packets_dropped: 0,
    events_dropped: 0,
    pending_host_acks: 0,
    // Not in cluster mode: the cluster fields are all zero.
    cluster_mode: false,
    redis_connected: false,
    redis_outages: 0,
    journal_pending: 0,
    nodes_alive: 0,
    pubsub_dropped: 0,
    // Every event delivered, no Socket.IO command or gate waiting.
    events_queued: 0,
    events_queued_bytes: 0,
    commands_queued_bytes: 0,
    pending_gates: 0,
  });
  assert.ok(uptime > 0 && uptime < 600000, `uptime_ms ${uptime}`);
});

test('disconnect kicks exactly that user', { timeout: 20000 }, async () => {
  const { ada, bob, carol, anon } = clients;
  const order = [];
  bob.once('kicked', (payload) => order.push(['kicked', payload]));
  const bobGone = disconnected(bob).then((reason) => order.push(['disconnect', reason]));

  const result = await driver.command('disconnect Bob see you later');
  assert.deepEqual([result.name, result.count], ['PALAVER_OK', 1]);
  await bobGone;
  assert.deepEqual(order, [
    ['kicked', { reason: 'see you later' }],
    ['disconnect', 'io server disconnect'],
  ]);

  const left = await driver.event((e) => e.kind === 'left' && e.sid === sids.bob, 'left of Bob');
  assert.deepEqual([left.room, left.user_id], ['lobby', 'Bob']);
  const gone = await driver.event((e) => e.kind === 'disconnected' && e.sid === sids.bob, 'disconnected of Bob');
  assert.deepEqual([gone.user_id, gone.user_name], ['Bob', 'Bob']);
  assert.ok(gone.reason.length > 0);

  await sleep(300);
  assert.deepEqual([ada.connected, carol.connected, anon.connected], [true, true, true]);
  for (const key of ['ada', 'carol', 'anon']) assert.equal(inbox[key].of('kicked').length, 0, `${key} was kicked`);
  assert.equal((await driver.command('stats')).stats.connections, 3);
  assert.equal((await driver.command('disconnect Bob again')).name, 'PALAVER_USER_OFFLINE');
  driver.assertClean();
});

test('a client that leaves: disconnected with its reason', { timeout: 20000 }, async () => {
  clients.anon.disconnect();
  const event = await driver.event((e) => e.kind === 'disconnected' && e.sid === sids.anon, 'disconnected of anon');
  assert.equal(event.user_id, null);
  // The stable code of docs/PROTOCOL.md for Socket.IO's "client namespace disconnect".
  assert.equal(event.reason, 'client_disconnect');
});

test('stop: clients get shutdown and a disconnect; no event after stop returned', { timeout: 30000 }, async () => {
  const { ada, carol } = clients;
  const farewells = [ada, carol].map((socket) =>
    Promise.all([nextEvent(socket, 'shutdown', () => true, 10000), disconnected(socket)]),
  );
  const stop = await driver.command('stop', 20000);
  assert.equal(stop.name, 'PALAVER_OK');
  for (const [shutdown, reason] of await Promise.all(farewells)) {
    assert.deepEqual(shutdown, { reason: 'server_stopping' });
    assert.equal(reason, 'io server disconnect');
  }
  // The last callbacks ran before stop returned...
  for (const key of ['ada', 'carol']) {
    const gone = driver.events().find((e) => e.kind === 'disconnected' && e.sid === sids[key]);
    assert.ok(gone && gone.index < stop.index, `the disconnected event of ${key} came before the stop result`);
  }
  // ...and none after.
  await sleep(500);
  const late = driver.events().filter((e) => e.index > stop.index);
  assert.deepEqual(late.map((e) => e.line), [], 'events after the stop result');

  for (const command of ['stats', 'emit_all x {}', 'rooms 100', 'disconnect Ada', 'ack 1 {}', 'stop']) {
    assert.equal((await driver.command(command)).name, 'PALAVER_NOT_RUNNING', command);
  }
  driver.assertClean();
});

test('quit frees the engine and exits 0', { timeout: 20000 }, async () => {
  const exit = await driver.quit();
  assert.deepEqual(exit, { code: 0, signal: null }, driver.output());
  assert.equal(driver.lines.at(-1).type, 'bye');
  driver.assertClean();
});

test('misuse: every documented failure result', { timeout: 60000 }, async () => {
  const result = await run(bin('misuse'), [], { timeoutMs: 50000 });
  assert.equal(result.code, 0, `misuse failed:\n${tail(result.stdout, 10)}\n${result.stderr}`);
  assert.match(result.stdout, /misuse: all \d+ checks passed/);
});

test('lifecycle_loop: 20 cycles of new/start/stop/free', { timeout: 60000 }, async () => {
  const result = await run(bin('lifecycle_loop'), ['20'], { timeoutMs: 50000 });
  assert.equal(result.code, 0, `lifecycle_loop failed:\n${tail(result.stdout, 10)}\n${result.stderr}`);
  assert.match(result.stdout, /20 cycles passed/);
});

test('the static library: lifecycle_loop linked with libpalaver.a', { timeout: 60000 }, async () => {
  const dynamic = await run('readelf', ['-d', bin('lifecycle_loop_static')]);
  assert.equal(dynamic.code, 0, dynamic.stderr);
  assert.doesNotMatch(dynamic.stdout, /libpalaver/, 'the static program needs libpalaver.so');
  const result = await run(bin('lifecycle_loop_static'), ['4'], { timeoutMs: 50000 });
  assert.equal(result.code, 0, `lifecycle_loop_static failed:\n${tail(result.stdout, 10)}\n${result.stderr}`);
  assert.match(result.stdout, /4 cycles passed/);
});

test(
  'lifecycle_loop --abandon: an open long-polling session at stop frees everything',
  {
    timeout: 60000,
  },
  async () => {
    const result = await run(bin('lifecycle_loop'), ['4', '--abandon'], { timeoutMs: 50000 });
    assert.equal(result.code, 0, `lifecycle_loop --abandon failed:\n${tail(result.stdout, 10)}\n${result.stderr}`);
  },
);
