'use strict';
// The C examples (examples/c) as their README shows them: built by their own
// Makefile (gcc -Werror, against the debug library here), run on a free port,
// used by socket.io-client, stopped with SIGTERM.
//
//   cd tests && node --test c/examples.test.js

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const { test, before, after } = require('node:test');
const { connect, nextEvent } = require('../support/server.js');
const { ROOT, buildCPrograms, Clients } = require('./harness.js');

const EXAMPLES = path.join(ROOT, 'examples', 'c');
const running = new Set();
// For their ack/next helpers and closing; the sockets are opened with connect().
const clients = new Clients(null, { timeoutMs: 10000 });

before(() => {
  buildCPrograms(); // the debug library, with the lock the other C tests take
  const make = spawnSync('flock', [path.join(ROOT, 'target', 'c-tests.lock'), 'make', '-C', EXAMPLES, 'PROFILE=debug'], {
    encoding: 'utf8',
  });
  assert.equal(make.status, 0, `make -C examples/c PROFILE=debug failed:\n${make.stdout}\n${make.stderr}`);
}, { timeout: 600000 });

after(() => {
  clients.closeAll();
  for (const child of running) child.kill('SIGKILL');
});

/** Starts an example on port 0; resolves with its URL once it printed it. */
async function start(program, args, env = {}) {
  const child = spawn(path.join(EXAMPLES, program), args, { env: { ...process.env, ...env } });
  running.add(child);
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${program} did not start:\n${output}`)), 20000);
    child.stdout.on('data', () => {
      const match = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    exited.then((exit) => reject(new Error(`${program} exited (${JSON.stringify(exit)}):\n${output}`)));
  });
  return {
    url,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      const exit = await exited;
      running.delete(child);
      return exit;
    },
  };
}

test('socketio_server: chat message to everyone, join and joined, who, the /admin gate, announcements', { timeout: 30000 }, async () => {
  const server = await start('socketio_server', ['0'], { ANNOUNCE_SECONDS: '1', ADMIN_TOKEN: 'letmein' });
  const a = await connect(server.url, { transports: ['websocket'] });
  const b = await connect(server.url, { transports: ['polling'] });
  clients.sockets.add(a).add(b);

  const got = [a, b].map((s) => clients.next(s, 'chat message'));
  a.emit('chat message', 'hello ✓', Buffer.from([1, 2]));
  for (const args of await Promise.all(got)) assert.deepEqual(args, ['hello ✓', Buffer.from([1, 2])]);

  assert.deepEqual(await clients.ack(b, 'join', 'r'), ['ok']);
  const joined = clients.next(b, 'joined');
  assert.deepEqual(await clients.ack(a, 'join', 'r'), ['ok']);
  assert.deepEqual(await joined, [a.id]);
  const [who] = await clients.ack(a, 'who');
  assert.deepEqual(who.map((s) => s.id).sort(), [a.id, b.id].sort());
  assert.ok((await nextEvent(a, 'announcement', () => true, 5000)).ts > 0);

  await assert.rejects(connect(`${server.url}/admin`, { auth: { token: 'nope' } }), { message: 'not authorized' });
  clients.sockets.add(await connect(`${server.url}/admin`, { auth: { token: 'letmein' } }));

  const gone = new Promise((resolve) => a.once('disconnect', resolve));
  assert.deepEqual(await server.stop(), { code: 0, signal: null }, server.output());
  // A host namespace's clients see their transport close at stop, as with
  // socket.io's io.close(): they reconnect to whatever serves next.
  assert.equal(await gone, 'transport close');
  assert.match(server.output(), /stopped\n$/);
  clients.closeAll();
});

test('chat_server: the built-in chat, a custom event answered by the C host', { timeout: 30000 }, async () => {
  const server = await start('chat_server', ['--memory', '0'], { ANNOUNCE_SECONDS: '0' });
  const ada = await connect(server.url, { auth: { name: 'Ada' } });
  clients.sockets.add(ada);
  assert.equal((await ada.emitWithAck('join', { room: 'lobby' })).ok, true);
  assert.equal((await ada.emitWithAck('message', { room: 'lobby', text: 'hello' })).ok, true);
  const { value } = await ada.timeout(5000).emitWithAck('roll', {});
  assert.ok(value >= 1 && value <= 6, `roll gave ${value}`);
  assert.deepEqual(await server.stop(), { code: 0, signal: null }, server.output());
  assert.match(server.output(), /\[message\] .*text="hello"/);
  clients.closeAll();
});
