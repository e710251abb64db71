'use strict';
// palaver/socket.io: only the events an app listens to cross from the engine into
// JavaScript (docs/SOCKETIO.md, "How it works"). A flood of an event nobody
// listens to is dropped in Rust: it never reaches the JS event function, costs the
// connection nothing of its flood budget, and the connection stays open.
//
// The spy: the native binding module is swapped, in this process's module cache,
// for one whose NativeEngine.start wraps the event function the engine calls. So
// every event that crosses into JavaScript is counted, by type and name, before
// palaver/socket.io sees it. (This file loads palaver/socket.io only after the swap.)

const assert = require('node:assert/strict');
const path = require('node:path');
const { describe, test } = require('node:test');

const bindingPath = require.resolve(path.join(__dirname, '..', 'native', 'binding.js'));
const binding = require(bindingPath);
/** Every event that crossed into JS: {type, ns, event}. */
const crossed = [];
function record(first) {
  let text = first;
  if (first && typeof first === 'object' && typeof first.json === 'string') text = first.json;
  if (typeof text !== 'string' || text === '') return;
  try {
    const event = JSON.parse(text);
    crossed.push({ type: event.type, ns: event.ns, sid: event.sid, event: event.event });
  } catch {
    crossed.push({ type: 'unparsed' });
  }
}
const SpyEngine = {
  start(config, kinds, onEvent, ...rest) {
    return binding.NativeEngine.start(
      config,
      kinds,
      (...args) => {
        record(args[0]);
        return onEvent(...args);
      },
      ...rest,
    );
  },
};
require.cache[bindingPath].exports = new Proxy(binding, {
  get: (target, key) => (key === 'NativeEngine' ? SpyEngine : Reflect.get(target, key)),
});

const { Server } = require('palaver/socket.io');
const { Harness, until } = require('./sio-support');

/** The socket_event crossings of one connection, by event name. */
function eventsOf(sid) {
  const counts = {};
  for (const c of crossed) if (c.type === 'socket_event' && c.sid === sid) counts[c.event] = (counts[c.event] ?? 0) + 1;
  return counts;
}

describe('palaver/socket.io: only listened events cross into JavaScript', { timeout: 60_000 }, () => {
  test('the spy sees the engine events (connect, listened events)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.on('connection', (socket) => socket.on('heard', (cb) => cb('ok')));
    const { client } = await h.connect(port, { io });
    assert.equal(await client.timeout(5000).emitWithAck('heard'), 'ok');
    assert.ok(crossed.some((c) => c.type === 'socket_connect' && c.sid === client.id), JSON.stringify(crossed));
    assert.deepEqual(eventsOf(client.id), { heard: 1 });
  });

  test('a flood of 1000 unlistened events never reaches JS, is not rate limited, and the connection stays open', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const jsSaw = [];
    io.on('connection', (socket) => {
      socket.on('heard', (n, cb) => {
        jsSaw.push(n);
        cb(n);
      });
    });
    const { client, inbox } = await h.connect(port, { io });
    // Once the first ack is back, the engine knows the socket's listeners.
    assert.equal(await client.timeout(5000).emitWithAck('heard', 0), 0);
    const rejectedBefore = io.stats().requests_rejected;
    for (let i = 0; i < 1000; i += 1) client.emit('unheard', { i, pad: 'x'.repeat(100) });
    // Events of one connection are handled in order: once this ack is back, the
    // engine has seen every flood event before it.
    assert.equal(await client.timeout(5000).emitWithAck('heard', 1), 1);
    assert.deepEqual(eventsOf(client.id), { heard: 2 }, 'no "unheard" crossed into JS');
    assert.deepEqual(jsSaw, [0, 1]);
    assert.equal(io.stats().requests_rejected, rejectedBefore, 'unheard events do not count against the flood limit');
    assert.deepEqual(inbox.of('error'), [], 'no error sent back');
    assert.equal(client.connected, true);
  });

  test('a listener added later makes its events cross from then on; removing it stops them again', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const late = [];
    io.on('connection', (socket) => {
      const onLate = (n) => late.push(n);
      socket.on('start', (cb) => {
        socket.on('late', onLate);
        cb();
      });
      socket.on('stop', (cb) => {
        socket.off('late', onLate);
        cb();
      });
      socket.on('sync', (cb) => cb());
    });
    const { client } = await h.connect(port, { io });
    await client.timeout(5000).emitWithAck('sync');
    client.emit('late', 'before start');
    await client.timeout(5000).emitWithAck('start');
    client.emit('late', 'while listened');
    await client.timeout(5000).emitWithAck('stop');
    client.emit('late', 'after stop');
    await client.timeout(5000).emitWithAck('sync');
    assert.deepEqual(late, ['while listened']);
    assert.equal(eventsOf(client.id).late, 1, 'only the listened one crossed');
  });

  test('socket.onAny and socket.use: every event crosses (they see them all)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const anySaw = [];
    io.on('connection', (socket) => {
      if (socket.handshake.auth.mode === 'any') socket.onAny((event) => anySaw.push(event));
      else socket.use(([event], next) => anySaw.push(event) && next());
      socket.on('sync', (cb) => cb());
    });
    for (const mode of ['any', 'use']) {
      const { client } = await h.connect(port, { io, auth: { mode } });
      for (let i = 0; i < 5; i += 1) client.emit('unheard', i);
      await client.timeout(5000).emitWithAck('sync');
      assert.deepEqual(eventsOf(client.id), { unheard: 5, sync: 1 }, mode);
    }
    assert.deepEqual(anySaw, [...Array(5).fill('unheard'), 'sync', ...Array(5).fill('unheard'), 'sync']);
  });

  test('events of a namespace nobody listens to do not cross for the main namespace\'s listeners', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.on('connection', (socket) => socket.on('shared-name', () => {}));
    io.of('/quiet').on('connection', (socket) => socket.on('sync', (cb) => cb()));
    const quiet = await h.connect(port, { io, nsp: '/quiet' });
    // Until the connection handler has registered its listeners every event crosses
    // (it may add one for it); the first ack comes after they are known.
    await quiet.client.timeout(5000).emitWithAck('sync');
    for (let i = 0; i < 20; i += 1) quiet.client.emit('shared-name', i);
    await quiet.client.timeout(5000).emitWithAck('sync');
    await until(() => eventsOf(quiet.client.id).sync === 2, { what: 'the sync events' });
    assert.deepEqual(
      crossed.filter((c) => c.type === 'socket_event' && c.ns === '/quiet').map((c) => c.event),
      ['sync', 'sync'],
    );
  });
});
