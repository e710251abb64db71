'use strict';
// A Socket.IO app in C: tests/c/sio_host.c runs the engine with the built-in chat
// off and answers real socket.io-client sockets with the Socket.IO primitives of
// include/palaver.h (events with all their arguments and binary attachments,
// acks, emits to a connection, to rooms with exceptions and to everyone, rooms,
// disconnects, a connect gate, listeners, fetch_sockets and emit_with_ack), over
// each transport. Every event line of the host is checked against its JSON.
//
//   cd tests && node --test c/sio_host.test.js

const assert = require('node:assert/strict');
const { test, before, after, describe } = require('node:test');
const { sleep } = require('../support/server.js');
const { buildCPrograms, Clients, Driver } = require('./harness.js');

const WAIT = 10000;
let host;
let clients;

before(async () => {
  buildCPrograms();
  // No "builtin_chat" here: sio_host turns the chat off with palaver_config_set_builtin_chat.
  host = await Driver.start({ program: 'sio_host', config: { port: 0, host_ack_timeout_ms: 5000 } });
  clients = new Clients(host.url, { timeoutMs: WAIT });
}, { timeout: 600000 });

after(() => {
  clients?.closeAll();
  host?.kill();
});

/** Records every event (with all its arguments) a socket receives. */
function record(socket) {
  const events = [];
  socket.onAny((event, ...args) => events.push({ event, args }));
  return { of: (name) => events.filter((e) => e.event === name).map((e) => e.args) };
}

/** The host's socket_event line for `event` of connection `sid`. */
const hostEvent = (sid, event, from = 0) =>
  host.event((e) => e.kind === 'socket_event' && e.sid === sid && e.event_name === event, `${event} of ${sid}`, WAIT, from);

const disconnected = (socket) => new Promise((resolve) => socket.once('disconnect', resolve));

for (const transport of ['websocket', 'polling']) {
  describe(`over ${transport}`, { concurrency: false }, () => {
    test('echo: message comes back as message-back with every argument, binary ones too', { timeout: 20000 }, async () => {
      const socket = await clients.open('/', transport);
      assert.deepEqual(socket.greeting, [socket.id]);
      const connect = await host.event((e) => e.kind === 'socket_connect' && e.sid === socket.id, 'socket_connect');
      const handshake = JSON.parse(connect.handshake_json);
      assert.equal(connect.ns, '/');
      assert.equal(handshake.transport, transport);
      assert.equal(handshake.address, '127.0.0.1');

      const args = ['hi ✓', { a: [1, null], file: Buffer.from([0, 255]) }, Buffer.from([1, 2, 3]), 4];
      const back = clients.next(socket, 'message-back');
      socket.emit('message', ...args);
      assert.deepEqual(await back, args);
      const event = await hostEvent(socket.id, 'message');
      assert.deepEqual(event.attachments, [[0, 255], [1, 2, 3]]);
      assert.deepEqual(JSON.parse(event.args_json), [
        'hi ✓',
        { a: [1, null], file: { _placeholder: true, num: 0 } },
        { _placeholder: true, num: 1 },
        4,
      ]);
      assert.equal(event.ack_id, 0);
      host.assertClean();
      clients.closeAll();
    });

    test('message-with-ack is acknowledged with all its arguments, binary ones too', { timeout: 20000 }, async () => {
      const socket = await clients.open('/', transport);
      const args = [1, '2', { 3: [false] }, Buffer.from([7, 8])];
      assert.deepEqual(await clients.ack(socket, 'message-with-ack', ...args), args);
      assert.deepEqual(await clients.ack(socket, 'message-with-ack'), []);
      const event = await hostEvent(socket.id, 'message-with-ack');
      assert.ok(event.ack_id > 0);
      assert.deepEqual(event.attachments, [[7, 8]]);
      host.assertClean();
      clients.closeAll();
    });

    test('the numeric event 2 goes to everyone', { timeout: 20000 }, async () => {
      const [a, b] = await Promise.all([clients.open('/', transport), clients.open('/', transport)]);
      const other = await clients.open('/any', transport);
      const otherInbox = record(other);
      const got = [a, b].map((s) => clients.next(s, 2));
      a.emit(2, { data: 'x' }, 'y');
      for (const args of await Promise.all(got)) assert.deepEqual(args, [{ data: 'x' }, 'y']);
      const event = await hostEvent(a.id, '2');
      assert.deepEqual(JSON.parse(event.args_json), [{ data: 'x' }, 'y']);
      await sleep(200);
      assert.deepEqual(otherInbox.of('2'), [], 'another namespace got it');
      host.assertClean();
      clients.closeAll();
    });

    test('join, then emit to the room except the sender; fetch_sockets; leave in one batch', { timeout: 20000 }, async () => {
      const room = `room-${transport}`;
      const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => clients.open('/', transport)));
      const inbox = Object.fromEntries(Object.entries({ a, b, c, d }).map(([k, s]) => [k, record(s)]));
      assert.deepEqual(await clients.ack(b, 'join', room), ['joined', room]);
      const bSawC = clients.next(b, 'user-joined');
      assert.deepEqual(await clients.ack(c, 'join', room), ['joined', room]);
      assert.deepEqual(await bSawC, [c.id, room]);
      const told = [b, c].map((s) => clients.next(s, 'user-joined'));
      assert.deepEqual(await clients.ack(a, 'join', room), ['joined', room]);
      for (const args of await Promise.all(told)) assert.deepEqual(args, [a.id, room]);
      await sleep(200);
      assert.deepEqual(inbox.a.of('user-joined'), [], 'the sender got its own user-joined');
      assert.deepEqual(inbox.d.of('user-joined'), [], 'a connection outside the room got user-joined');
      assert.deepEqual(inbox.b.of('user-joined'), [[c.id, room], [a.id, room]]);

      // A blocking query from inside the callback.
      const [found] = await clients.ack(d, 'fetch', room);
      assert.deepEqual(found.map((s) => s.id).sort(), [a.id, b.id, c.id].sort());
      for (const s of found) {
        assert.equal(s.local, true);
        assert.deepEqual(s.rooms.sort(), [room, s.id].sort());
      }

      const left = [a, b].map((s) => clients.next(s, 'user-left'));
      assert.deepEqual(await clients.ack(c, 'leave', room), ['left', room]);
      for (const args of await Promise.all(left)) assert.deepEqual(args, [c.id, room]);
      const [after] = await clients.ack(d, 'fetch', room);
      assert.deepEqual(after.map((s) => s.id).sort(), [a.id, b.id].sort());
      host.assertClean();
      clients.closeAll();
    });

    test('emit_with_ack from the callback: the host asks back and passes the answers on', { timeout: 20000 }, async () => {
      const socket = await clients.open('/', transport);
      socket.on('question', (...args) => args.pop()('because', ...args));
      const [answers] = await clients.ack(socket, 'ask', 'why', 2);
      assert.deepEqual(answers, [{ id: socket.id, args: ['because', 'why', 2], error: null }]);
      host.assertClean();
      clients.closeAll();
    });

    test('listen: after set-up, events outside the list do not reach the host', { timeout: 20000 }, async () => {
      const socket = await clients.open('/', transport);
      const from = host.lines.length;
      socket.emit('ignored', 1);
      const back = clients.next(socket, 'message-back');
      socket.emit('message', 'after');
      assert.deepEqual(await back, ['after']);
      await hostEvent(socket.id, 'message', from);
      const ignored = host.events().filter((e) => e.index >= from && e.event_name === 'ignored');
      assert.deepEqual(ignored, []);
      host.assertClean();
      clients.closeAll();
    });

    test('/admin: the gate refuses a bad auth.token with a message and admits a good one', { timeout: 30000 }, async () => {
      let from = host.lines.length;
      await assert.rejects(clients.open('/admin', transport, { auth: { token: 'bad' } }), { message: 'not authorized' });
      const gate = await host.event((e) => e.kind === 'socket_gate' && e.index >= from, 'socket_gate');
      assert.equal(gate.ns, '/admin');
      assert.ok(gate.gate_id > 0);
      assert.deepEqual(JSON.parse(gate.handshake_json).auth, { token: 'bad' });
      assert.equal(JSON.parse(gate.handshake_json).transport, transport);

      const admin = await clients.open('/admin', transport, { auth: { token: 's3cret' } });
      assert.deepEqual(admin.greeting, ['hello admin']);
      const connect = await host.event((e) => e.kind === 'socket_connect' && e.sid === admin.id, 'admin connect');
      assert.equal(connect.ns, '/admin');
      assert.deepEqual(JSON.parse(connect.handshake_json).auth, { token: 's3cret' });

      // Decided later, from the host's main thread.
      from = host.lines.length;
      const later = clients.open('/admin', transport, { auth: { token: 'later' } });
      const waiting = await host.waitFor((l) => l.type === 'gate_waiting' && l.index >= from, 'gate_waiting', WAIT);
      const { stats } = await host.command('stats');
      assert.equal(stats.pending_gates, 1);
      assert.equal((await host.command(`admit ${waiting.gate_id}`)).name, 'PALAVER_OK');
      await later;
      from = host.lines.length;
      const refused = clients.open('/admin', transport, { auth: { token: 'later' } });
      // The refusal may come before assert.rejects below is listening.
      refused.catch(() => {});
      const second = await host.waitFor((l) => l.type === 'gate_waiting' && l.index >= from, 'gate_waiting', WAIT);
      assert.equal((await host.command(`refuse ${second.gate_id} go away`)).name, 'PALAVER_OK');
      await assert.rejects(refused, { message: 'go away' });
      assert.equal((await host.command('stats')).stats.pending_gates, 0);
      host.assertClean();
      clients.closeAll();
    });

    test('/any listens to every event; a NUL in an event name arrives whole, with its length', { timeout: 20000 }, async () => {
      const any = await clients.open('/any', transport);
      assert.deepEqual(await clients.ack(any, 'a\u0000b', 'x\u0000y'), [3, 1]);
      const event = await hostEvent(any.id, 'a\u0000b');
      assert.equal(event.ns, '/any');
      assert.deepEqual(JSON.parse(event.args_json), ['x\u0000y']);
      assert.deepEqual(await clients.ack(any, 'anything'), [8, 8]);
      host.assertClean();
      clients.closeAll();
    });

    test('bye disconnects one namespace; bye true closes the whole connection', { timeout: 20000 }, async () => {
      let mux = clients.manager(transport);
      let root = await clients.open('/', transport, { manager: mux });
      let any = await clients.open('/any', transport, { manager: mux });
      const sid = root.id;
      const gone = disconnected(root);
      root.emit('bye');
      assert.equal(await gone, 'io server disconnect');
      const event = await host.event((e) => e.kind === 'socket_disconnect' && e.sid === sid, 'socket_disconnect');
      assert.deepEqual([event.ns, event.reason], ['/', 'server_disconnect']);
      assert.deepEqual(await clients.ack(any, 'still'), [5, 5], 'the other namespace of the connection is still there');
      clients.closeAll();

      mux = clients.manager(transport);
      root = await clients.open('/', transport, { manager: mux });
      any = await clients.open('/any', transport, { manager: mux });
      const both = [disconnected(root), disconnected(any)];
      root.emit('bye', true);
      for (const reason of await Promise.all(both)) assert.match(reason, /io server disconnect|transport close/);
      host.assertClean();
      clients.closeAll();
    });
  });
}

test('commands and queries from the main thread: run with attachments, query, fetch', { timeout: 30000 }, async () => {
  const socket = await clients.open('/', 'websocket');
  const id = socket.id;

  const bin = clients.next(socket, 'bin');
  const placeholder = (num) => ({ _placeholder: true, num });
  const batch = [
    { emit_to: { sid: id, event: 'bin', args: [placeholder(0), 'x', { y: placeholder(1) }], bin: 2 } },
  ];
  assert.equal((await host.command(`run_bin ${JSON.stringify(batch)}`)).name, 'PALAVER_OK');
  assert.deepEqual(await bin, [Buffer.from([1, 2, 3]), 'x', { y: Buffer.from([0, 255]) }]);

  // join then emit in one batch: the new member gets it (order is kept).
  const inMain = clients.next(socket, 'in-main');
  const joinEmit = [
    { join: { sid: id, rooms: ['main'] } },
    { emit: { to: { rooms: ['main'] }, event: 'in-main', args: [1, { two: 2 }] } },
  ];
  assert.equal((await host.command(`run ${JSON.stringify(joinEmit)}`)).name, 'PALAVER_OK');
  assert.deepEqual(await inMain, [1, { two: 2 }]);

  for (const bad of [
    'not json',
    '{"emit":{"event":"x"}}',
    '[{"emit":{"event":"disconnect"}}]',
    '[{"emit_to":{"sid":"a","event":"x","args":[{"_placeholder":true,"num":0}],"bin":1}}]',
    '[{"join":{"ns":"no-slash","sid":"a","rooms":[]}}]',
    '[{"teleport":{}}]',
  ]) {
    const result = await host.command(`run ${bad}`);
    assert.equal(result.name, 'PALAVER_INVALID_ARG', bad);
    assert.ok(result.error.length > 0);
  }

  const sorted = (answer) => answer.map((s) => ({ ...s, rooms: [...s.rooms].sort() }));
  const fetched = await host.command(`query ${JSON.stringify({ fetch_sockets: { to: { rooms: ['main'] } } })}`);
  assert.equal(fetched.name, 'PALAVER_OK');
  assert.deepEqual(sorted(fetched.answer), [{ id, rooms: ['main', id].sort(), local: true }]);
  assert.deepEqual(sorted((await host.command('fetch main')).answer), sorted(fetched.answer));

  socket.on('q', (...args) => args.pop()('a', ...args));
  const asked = await host.command(
    `query ${JSON.stringify({ emit_with_ack: { to: { rooms: [id] }, event: 'q', args: [5], timeout_ms: 5000 } })}`,
  );
  assert.deepEqual(asked.answer, [{ id, args: ['a', 5], error: null }]);
  const silent = await host.command(
    `query ${JSON.stringify({ emit_with_ack: { to: { rooms: [id] }, event: 'unanswered', timeout_ms: 200 } })}`,
  );
  assert.deepEqual(silent.answer, [{ id, args: null, error: 'timeout' }]);

  for (const bad of ['', 'nope', '{"fetch_sockets":{"to":{"ns":"x"}}}', '{"emit_with_ack":{"event":"connect","timeout_ms":1}}']) {
    assert.equal((await host.command(`query ${bad}`)).name, 'PALAVER_INVALID_ARG', bad);
  }
  host.assertClean();
  clients.closeAll();
});

test('stats: nothing waits once every event and command is done', { timeout: 20000 }, async () => {
  await sleep(300);
  const { stats, name } = await host.command('stats');
  assert.equal(name, 'PALAVER_OK');
  assert.deepEqual(
    [stats.events_queued, stats.events_queued_bytes, stats.commands_queued_bytes, stats.pending_gates, stats.pending_host_acks],
    [0, 0, 0, 0, 0],
  );
  assert.ok(stats.connections_total > 20, `connections_total ${stats.connections_total}`);
  assert.ok(stats.connections_refused >= 4, `connections_refused ${stats.connections_refused}`);
});

test('stop: clients are disconnected, no event after stop returned; quit', { timeout: 30000 }, async () => {
  const socket = await clients.open('/', 'polling');
  const gone = disconnected(socket);
  const stop = await host.command('stop', 20000);
  assert.equal(stop.name, 'PALAVER_OK');
  assert.match(await gone, /io server disconnect|transport close/);
  await sleep(300);
  assert.deepEqual(host.events().filter((e) => e.index > stop.index).map((e) => e.line), []);
  for (const command of ['run []', 'query {"fetch_sockets":{}}', 'fetch', 'admit 1', 'stats']) {
    assert.equal((await host.command(command)).name, 'PALAVER_NOT_RUNNING', command);
  }
  const exit = await host.quit();
  assert.deepEqual(exit, { code: 0, signal: null }, host.output());
  host.assertClean();
});

test('stop while the callback waits in emit_with_ack: the query ends with the connections, stop returns', { timeout: 30000 }, async () => {
  const second = await Driver.start({ program: 'sio_host', config: { port: 0 } });
  const others = new Clients(second.url, { timeoutMs: WAIT });
  try {
    const socket = await others.open('/', 'websocket');
    socket.on('question', () => {}); // never answers: the host's callback waits for ASK_TIMEOUT_MS
    socket.emit('ask', 1, () => {});
    await second.event((e) => e.event_name === 'ask', 'ask');
    await sleep(200);
    const started = Date.now();
    const stop = await second.command('stop', 20000);
    assert.equal(stop.name, 'PALAVER_OK');
    assert.ok(Date.now() - started < 5000, `stop took ${Date.now() - started} ms`);
    // The callback's answer came too late for the stopping engine.
    const late = second.lines.filter((l) => l.type === 'app_error');
    assert.deepEqual(late.map((l) => l.name), ['PALAVER_NOT_RUNNING'], second.output());
    assert.deepEqual(await second.quit(), { code: 0, signal: null });
  } finally {
    others.closeAll();
    second.kill();
  }
});
