'use strict';
// The C API under valgrind: a short driver scenario with real clients, the
// Socket.IO app sio_host over both transports, misuse and lifecycle_loop, each run
// with
//   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
//            --error-exitcode=99 --track-origins=yes
// No definite or indirect leak and no invalid read, write or use of uninitialised
// memory may be reported. tests/c/valgrind.supp lists what valgrind reports that is
// not a bug (each entry explains itself).
//
//   cd tests && node --test c/valgrind.test.js

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test, before } = require('node:test');
const { connect, nextEvent } = require('../support/server.js');
const { BIN, bin, buildCPrograms, run, tail, Clients, Driver } = require('./harness.js');

const SUPPRESSIONS = path.join(__dirname, 'valgrind.supp');
// Under valgrind the engine runs 10-30x slower: generous waits everywhere.
const SLOW = 30000;

before(() => {
  const probe = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'valgrind is not installed; `make test` installs it (scripts/ensure-debian-packages valgrind), ' +
        'or install the Debian package valgrind',
    );
  }
  buildCPrograms();
}, { timeout: 600000 });

/** valgrind and its options, logging into target/c-tests/valgrind-<name>.log. */
function valgrind(name) {
  const log = path.join(BIN, `valgrind-${name}.log`);
  fs.rmSync(log, { force: true });
  return {
    log,
    wrapper: [
      'valgrind',
      '--leak-check=full',
      '--errors-for-leak-kinds=definite,indirect',
      '--show-leak-kinds=definite,indirect',
      '--error-exitcode=99',
      '--track-origins=yes',
      '--num-callers=40',
      `--suppressions=${SUPPRESSIONS}`,
      `--log-file=${log}`,
    ],
  };
}

/** Asserts a clean valgrind run: exit 0, no errors, no definite/indirect leaks. */
function assertClean(name, exit, log, output = '') {
  const report = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '(no valgrind log)';
  const context = `${name} under valgrind: ${JSON.stringify(exit)}\n${tail(output, 15)}\nvalgrind log ${log}:\n${tail(report, 80)}`;
  assert.equal(exit.code, 0, context);
  assert.match(report, /ERROR SUMMARY: 0 errors from 0 contexts/, context);
  assert.doesNotMatch(report, /Invalid (read|write|free)|uninitialised|definitely lost: [1-9]|indirectly lost: [1-9]/, context);
}

test('driver: chat, commands, stop and quit with real clients', { timeout: 150000 }, async () => {
  const { wrapper, log } = valgrind('driver');
  const driver = await Driver.start({ wrapper, readyTimeoutMs: 60000 });
  const sockets = [];
  try {
    const ada = await connect(driver.url, { auth: { name: 'Ada' }, transports: ['websocket'], timeout: SLOW });
    const bob = await connect(driver.url, { auth: { name: 'Bob' }, transports: ['polling'], timeout: SLOW });
    sockets.push(ada, bob);
    await driver.event((e) => e.kind === 'connected' && e.user_id === 'Bob', 'connected Bob', SLOW);

    assert.equal((await ada.timeout(SLOW).emitWithAck('join', { room: 'lobby' })).ok, true);
    assert.equal((await bob.timeout(SLOW).emitWithAck('join', { room: 'lobby' })).ok, true);
    const sent = await ada.timeout(SLOW).emitWithAck('message', { room: 'lobby', text: 'hello ✓' });
    const message = await driver.event((e) => e.kind === 'message', 'message', SLOW);
    assert.deepEqual([message.text, message.message_id], ['hello ✓', sent.id]);
    assert.equal((await bob.timeout(SLOW).emitWithAck('private', { to: 'Ada', text: 'psst' })).ok, true);
    await driver.event((e) => e.kind === 'private', 'private', SLOW);

    // Answered inside the callback, and later from the main thread.
    assert.deepEqual(await ada.timeout(SLOW).emitWithAck('ping', { n: 1 }), { pong: { n: 1 } });
    const pending = bob.timeout(SLOW).emitWithAck('later', { k: 2 });
    await driver.waitFor((l) => l.type === 'later', 'later line', SLOW);
    assert.equal((await driver.command('ack_later {"done": true}', SLOW)).name, 'PALAVER_OK');
    assert.deepEqual(await pending, { done: true });

    const news = [ada, bob].map((s) => nextEvent(s, 'news', () => true, SLOW));
    assert.equal((await driver.command('emit_all news {"n": 1}', SLOW)).name, 'PALAVER_OK');
    await Promise.all(news);
    const roomNews = nextEvent(bob, 'roomnews', () => true, SLOW);
    assert.equal((await driver.command('emit_room lobby roomnews {}', SLOW)).name, 'PALAVER_OK');
    await roomNews;
    assert.equal((await driver.command('emit_user Nobody x {}', SLOW)).name, 'PALAVER_USER_OFFLINE');

    const rooms = await driver.command('rooms 8', SLOW);
    assert.deepEqual([rooms.first.name, rooms.name, rooms.rooms[0].count], ['PALAVER_BUFFER_TOO_SMALL', 'PALAVER_OK', 2]);
    const { stats } = await driver.command('stats', SLOW);
    assert.deepEqual([stats.connections, stats.messages, stats.private_messages], [2, 1, 1]);

    const kicked = nextEvent(bob, 'kicked', () => true, SLOW);
    assert.equal((await driver.command('disconnect Bob bye', SLOW)).count, 1);
    assert.deepEqual(await kicked, { reason: 'bye' });
    await driver.event((e) => e.kind === 'disconnected' && e.user_id === 'Bob', 'disconnected Bob', SLOW);

    const shutdown = nextEvent(ada, 'shutdown', () => true, SLOW);
    const stop = await driver.command('stop', 60000);
    assert.equal(stop.name, 'PALAVER_OK');
    assert.deepEqual(await shutdown, { reason: 'server_stopping' });
    assert.equal((await driver.command('stats', SLOW)).name, 'PALAVER_NOT_RUNNING');

    const exit = await driver.quit(60000);
    assert.deepEqual(driver.events().filter((e) => e.index > stop.index), [], 'events after the stop result');
    driver.assertClean();
    assertClean('driver', exit, log, driver.output());
  } finally {
    for (const socket of sockets) socket.close();
    driver.kill();
  }
});

test('sio_host: the Socket.IO primitives with real clients over both transports, stop and quit', { timeout: 240000 }, async () => {
  const { wrapper, log } = valgrind('sio_host');
  const host = await Driver.start({ program: 'sio_host', config: { port: 0 }, wrapper, readyTimeoutMs: 60000 });
  const clients = new Clients(host.url, { timeoutMs: SLOW });
  try {
    let last;
    for (const transport of ['websocket', 'polling']) {
      const socket = await clients.open('/', transport);
      last = socket;
      // Binary arguments through the event view and back out of emit_to_socket and ack_args.
      const args = ['hi ✓', { file: Buffer.from([0, 255]) }, Buffer.from([1, 2, 3])];
      const back = clients.next(socket, 'message-back');
      socket.emit('message', ...args);
      assert.deepEqual(await back, args);
      assert.deepEqual(await clients.ack(socket, 'message-with-ack', 1, Buffer.from([7])), [1, Buffer.from([7])]);
      // Rooms, a target with an exception, and both queries from inside the callback.
      assert.deepEqual(await clients.ack(socket, 'join', transport), ['joined', transport]);
      const [found] = await clients.ack(socket, 'fetch', transport);
      assert.deepEqual(found.map((s) => s.id), [socket.id]);
      socket.on('question', (...question) => question.pop()('yes', ...question));
      assert.deepEqual(await clients.ack(socket, 'ask', 2), [[{ id: socket.id, args: ['yes', 2], error: null }]]);
      assert.deepEqual(await clients.ack(socket, 'leave', transport), ['left', transport]);
      // The gate, both ways.
      await assert.rejects(clients.open('/admin', transport, { auth: { token: 'bad' } }), { message: 'not authorized' });
      const admin = await clients.open('/admin', transport, { auth: { token: 's3cret' } });
      assert.deepEqual(admin.greeting, ['hello admin']);
      const any = await clients.open('/any', transport);
      assert.deepEqual(await clients.ack(any, 'a\u0000b'), [3, 1]);
    }

    // From the main thread: a batch with attachments, a query, a fetch.
    const bin = clients.next(last, 'bin');
    const batch = [{ emit_to: { sid: last.id, event: 'bin', args: [{ _placeholder: true, num: 1 }], bin: 2 } }];
    assert.equal((await host.command(`run_bin ${JSON.stringify(batch)}`, SLOW)).name, 'PALAVER_OK');
    assert.deepEqual(await bin, [Buffer.from([0, 255])]);
    const fetched = await host.command('query {"fetch_sockets":{}}', SLOW);
    assert.equal(fetched.name, 'PALAVER_OK');
    assert.ok(fetched.answer.some((s) => s.id === last.id));
    assert.equal((await host.command('run not json', SLOW)).name, 'PALAVER_INVALID_ARG');

    const stop = await host.command('stop', 60000);
    assert.equal(stop.name, 'PALAVER_OK');
    assert.equal((await host.command('fetch', SLOW)).name, 'PALAVER_NOT_RUNNING');
    const exit = await host.quit(60000);
    assert.deepEqual(host.events().filter((e) => e.index > stop.index), [], 'events after the stop result');
    host.assertClean();
    assertClean('sio_host', exit, log, host.output());
  } finally {
    clients.closeAll();
    host.kill();
  }
});

test('misuse', { timeout: 120000 }, async () => {
  const { wrapper, log } = valgrind('misuse');
  const result = await run(wrapper[0], [...wrapper.slice(1), bin('misuse')], { timeoutMs: 110000 });
  assertClean('misuse', result, log, result.stdout + result.stderr);
  assert.match(result.stdout, /misuse: all \d+ checks passed/);
});

test('lifecycle_loop: 3 cycles', { timeout: 60000 }, async () => {
  const { wrapper, log } = valgrind('lifecycle_loop');
  const result = await run(wrapper[0], [...wrapper.slice(1), bin('lifecycle_loop'), '3'], { timeoutMs: 55000 });
  assertClean('lifecycle_loop', result, log, result.stdout + result.stderr);
  assert.match(result.stdout, /3 cycles passed/);
});

test(
  'lifecycle_loop --abandon: no leak when a long-polling session is open at stop',
  {
    timeout: 60000,
  },
  async () => {
    const { wrapper, log } = valgrind('lifecycle_loop-abandon');
    const args = [...wrapper.slice(1), bin('lifecycle_loop'), '1', '--abandon'];
    const result = await run(wrapper[0], args, { timeoutMs: 55000 });
    assertClean('lifecycle_loop --abandon', result, log, result.stdout + result.stderr);
  },
);
