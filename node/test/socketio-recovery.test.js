'use strict';
// palaver/socket.io: connection state recovery (socket.io's
// `connectionStateRecovery`) with the stock socket.io-client. A client whose
// connection is cut (its Engine.IO socket closed under it) and that comes back
// within the window resumes: `socket.recovered` on both sides, the same id, its
// rooms and `socket.data`, and every broadcast it missed, in order, once. Out of
// the window, or with a private session id that is not its own, a client connects
// as a new one.

const assert = require('node:assert/strict');
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const { describe, test } = require('node:test');
const { io: ioClient } = require('socket.io-client');
const { Server } = require('palaver/socket.io');
const { Harness, nextEvent, until } = require('./sio-support');

const TRANSPORTS = ['websocket', 'polling'];
const N = 500;

/**
 * A server whose clients join "room" when they say so in their auth, keep their
 * name in `socket.data`, and relay `say` to the room; `sync` is answered once the
 * events before it are handled (and so their broadcasts given to the engine).
 */
async function recoveringServer(h, recovery = {}, { palaver = {}, ...opts } = {}) {
  // The sender emits its N events at once: above the default per-connection rate.
  const limits = { requestsPerSecond: 100_000, requestBurst: 100_000 };
  const { io, port } = await h.io(Server, {
    connectionStateRecovery: recovery,
    palaver: { limits, ...palaver },
    ...opts,
  });
  const connections = [];
  io.on('connection', (socket) => {
    connections.push({
      id: socket.id,
      recovered: socket.recovered,
      data: { ...socket.data },
      rooms: [...socket.rooms].sort(),
    });
    if (!socket.recovered) {
      socket.data.name = socket.handshake.auth.name;
      if (socket.handshake.auth.room) socket.join('room');
    }
    socket.on('say', (i) => socket.to('room').emit('msg', i));
    socket.on('sync', (ack) => ack());
  });
  return { io, port, connections };
}

/** Waits until the server handled the connection of `client` (its `connection` handler ran). */
async function handled(connections, client) {
  await until(() => connections.some((c) => c.id === client.id), { what: `the connection of ${client.id}` });
  return connections.find((c) => c.id === client.id);
}

/** The numbers of the `msg` broadcasts a client got, in order. */
function numbers(inbox) {
  return inbox.of('msg').map((args) => args[0]);
}

/** Cuts the client's connection under it (no goodbye) and waits until the server saw it go. */
async function cut(client, serverSocket) {
  const gone = nextEvent(serverSocket, 'disconnect');
  const lost = nextEvent(client, 'disconnect');
  client.io.engine.close();
  const [[reason]] = await Promise.all([gone, lost]);
  return reason;
}

describe('palaver/socket.io: connection state recovery', { timeout: 120_000 }, () => {
  for (const transport of TRANSPORTS) {
    test(`a cut client resumes with its id, rooms, data and the ${N} broadcasts it missed (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port, connections } = await recoveringServer(h);
      const { client: ann, socket: annServer, inbox } = await h.connect(port, {
        io,
        transport,
        auth: { name: 'ann', room: true },
      });
      const { client: bob } = await h.connect(port, { io, transport, auth: { name: 'bob' } });
      const firstId = ann.id;
      assert.equal(ann.recovered, false);
      // One broadcast before the cut: the client's last offset.
      bob.emit('say', 0);
      await inbox.wait('msg', 1);
      assert.equal(typeof inbox.of('msg')[0][1], 'string', 'a broadcast carries its offset last');

      // Half of them go while the connection is being cut, half once it is gone.
      for (let i = 1; i <= N / 2; i += 1) bob.emit('say', i);
      const reason = await cut(ann, annServer);
      assert.equal(reason, 'transport close');
      for (let i = N / 2 + 1; i <= N; i += 1) bob.emit('say', i);
      await bob.emitWithAck('sync');

      const started = performance.now();
      const back = nextEvent(ann, 'connect');
      ann.connect();
      await back;
      await inbox.wait('msg', N + 1);
      const elapsed = performance.now() - started;
      t.diagnostic(`${transport}: reconnect and ${N} missed broadcasts in ${elapsed.toFixed(0)} ms`);

      assert.equal(ann.recovered, true);
      assert.equal(ann.id, firstId);
      assert.deepEqual(
        numbers(inbox),
        Array.from({ length: N + 1 }, (_, i) => i),
        'every broadcast, in order, once',
      );
      await until(() => connections.filter((c) => c.id === firstId).length === 2, { what: 'the resumed connection' });
      const resumed = connections.filter((c) => c.id === firstId).at(-1);
      assert.deepEqual(resumed, {
        id: firstId,
        recovered: true,
        data: { name: 'ann' },
        rooms: [firstId, 'room'].sort(),
      });
      const serverSide = io.of('/').sockets.get(firstId);
      assert.equal(serverSide.recovered, true);
      assert.deepEqual([...serverSide.rooms].sort(), [firstId, 'room'].sort());
      // Live again: the next broadcast arrives after the replayed ones, and the
      // room lookups of the engine and of this side agree.
      bob.emit('say', N + 1);
      await inbox.wait('msg', N + 2);
      assert.equal(numbers(inbox).at(-1), N + 1);
      const inRoom = await io.in('room').fetchSockets();
      assert.deepEqual(
        inRoom.map((s) => s.id),
        [firstId],
      );
      assert.deepEqual([...io.of('/').adapter.rooms.get('room')], [firstId]);
    });

    test(`automatic reconnection resumes while broadcasts keep coming (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await recoveringServer(h);
      const { client: ann, socket: annServer, inbox } = await h.connect(port, {
        io,
        transport,
        auth: { name: 'ann', room: true },
        reconnection: true,
        reconnectionDelay: 50,
        reconnectionDelayMax: 50,
        randomizationFactor: 0,
      });
      const { client: bob } = await h.connect(port, { io, transport, auth: { name: 'bob' } });
      const firstId = ann.id;
      bob.emit('say', 0);
      await inbox.wait('msg', 1);
      const back = nextEvent(ann, 'connect');
      const gone = nextEvent(annServer, 'disconnect');
      for (let i = 1; i <= N; i += 1) {
        bob.emit('say', i);
        if (i === 10) ann.io.engine.close();
      }
      await Promise.all([back, gone]);
      await inbox.wait('msg', N + 1);
      assert.equal(ann.recovered, true);
      assert.equal(ann.id, firstId);
      assert.deepEqual(
        numbers(inbox),
        Array.from({ length: N + 1 }, (_, i) => i),
      );
    });

    test(`after the window a client connects as a new one (${transport})`, async (t) => {
      const h = new Harness(t);
      const windowMs = 200;
      const { io, port, connections } = await recoveringServer(h, { maxDisconnectionDuration: windowMs });
      const { client: ann, socket: annServer, inbox } = await h.connect(port, {
        io,
        transport,
        auth: { name: 'ann', room: true },
      });
      const { client: bob } = await h.connect(port, { io, transport, auth: { name: 'bob' } });
      const firstId = ann.id;
      bob.emit('say', 0);
      await inbox.wait('msg', 1);
      await cut(ann, annServer);
      bob.emit('say', 1);
      await bob.emitWithAck('sync');
      // The window is a duration: only time passing ends it.
      await new Promise((resolve) => setTimeout(resolve, windowMs * 3));
      const back = nextEvent(ann, 'connect');
      ann.connect();
      await back;
      assert.equal(ann.recovered, false);
      assert.notEqual(ann.id, firstId);
      assert.deepEqual(await handled(connections, ann), {
        id: ann.id,
        recovered: false,
        data: {},
        rooms: [ann.id],
      });
      // Nothing of the old session reaches it.
      await bob.emitWithAck('sync');
      assert.deepEqual(numbers(inbox), [0]);
    });
  }

  test('a connection the server drops for not answering pings resumes too (ping timeout)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await recoveringServer(h, {}, { pingInterval: 200, pingTimeout: 200 });
    const { client: ann, socket: annServer, inbox } = await h.connect(port, {
      io,
      auth: { name: 'ann', room: true },
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 50,
      randomizationFactor: 0,
    });
    const { client: bob } = await h.connect(port, { io, auth: { name: 'bob' } });
    const firstId = ann.id;
    bob.emit('say', 0);
    await inbox.wait('msg', 1);
    // The client stops reading (a half-open connection): no pong goes back, and
    // what is sent to it stays unread. Its own ping timer is stopped, so that the
    // server is the one to notice.
    const engine = ann.io.engine;
    const tcp = engine.transport.ws._socket;
    const gone = nextEvent(annServer, 'disconnect');
    tcp.pause();
    engine.clearTimeoutFn(engine._pingTimeoutTimer);
    engine._pingTimeoutTime = Infinity;
    for (let i = 1; i <= 50; i += 1) bob.emit('say', i);
    const [reason] = await gone;
    assert.equal(reason, 'ping timeout');
    for (let i = 51; i <= 100; i += 1) bob.emit('say', i);
    // The connection is lost with what it did not read; the client reconnects.
    tcp.destroy();
    await nextEvent(ann, 'connect', { filter: () => ann.recovered });
    await inbox.wait('msg', 101);
    assert.equal(ann.id, firstId);
    assert.deepEqual(
      numbers(inbox),
      Array.from({ length: 101 }, (_, i) => i),
    );
  });

  test('more missed broadcasts than half a connection\'s packet queue: a new connection', async (t) => {
    const h = new Harness(t);
    // transport.maxBufferSize 16: at most 8 broadcasts are replayed.
    const { io, port } = await recoveringServer(h, {}, { palaver: { transport: { maxBufferSize: 16 } } });
    const { client: ann, socket: annServer, inbox } = await h.connect(port, {
      io,
      auth: { name: 'ann', room: true },
    });
    const { client: bob } = await h.connect(port, { io, auth: { name: 'bob' } });
    bob.emit('say', 0);
    await inbox.wait('msg', 1);
    await cut(ann, annServer);
    for (let i = 1; i <= 9; i += 1) bob.emit('say', i);
    await bob.emitWithAck('sync');
    const back = nextEvent(ann, 'connect');
    ann.connect();
    await back;
    assert.ok(!ann.recovered);
    assert.notEqual(ann.id, annServer.id);
  });

  test('a private session id that is not the client\'s own resumes nothing', async (t) => {
    const h = new Harness(t);
    const { io, port, connections } = await recoveringServer(h);
    const { client: ann, socket: annServer, inbox } = await h.connect(port, {
      io,
      auth: { name: 'ann', room: true },
    });
    const { client: bob } = await h.connect(port, { io, auth: { name: 'bob' } });
    bob.emit('say', 0);
    await inbox.wait('msg', 1);
    const offset = inbox.of('msg')[0][1];
    await cut(ann, annServer);
    bob.emit('say', 1);
    await bob.emitWithAck('sync');

    // Forged ids, and ann's public socket id as a private one, with a valid offset.
    for (const pid of ['forged', 'A'.repeat(32), ann.id ?? annServer.id]) {
      const { client: eve, inbox: eveInbox } = await h.connect(port, {
        io,
        auth: { name: 'eve', pid, offset },
      });
      assert.equal(eve.recovered, false);
      assert.notEqual(eve.id, annServer.id);
      assert.deepEqual(await handled(connections, eve), { id: eve.id, recovered: false, data: {}, rooms: [eve.id] });
      await eve.emitWithAck('sync');
      assert.deepEqual(numbers(eveInbox), []);
    }
    // Ann's own session is still there for her.
    const back = nextEvent(ann, 'connect');
    ann.connect();
    await back;
    assert.equal(ann.recovered, true);
    assert.equal(ann.id, annServer.id);
    await inbox.wait('msg', 2);
    assert.deepEqual(numbers(inbox), [0, 1]);
  });

  test('a client that leaves on purpose keeps no session; a resumed one skips the middlewares', async (t) => {
    const h = new Harness(t);
    const { io, port } = await recoveringServer(h);
    const seen = [];
    io.use((socket, next) => {
      seen.push(socket.handshake.auth.name);
      next();
    });
    const { client: ann, socket: annServer, inbox } = await h.connect(port, {
      io,
      auth: { name: 'ann', room: true },
    });
    const { client: bob } = await h.connect(port, { io, auth: { name: 'bob' } });
    bob.emit('say', 0);
    await inbox.wait('msg', 1);
    await cut(ann, annServer);
    let back = nextEvent(ann, 'connect');
    ann.connect();
    await back;
    assert.equal(ann.recovered, true);
    assert.deepEqual(seen, ['ann', 'bob'], 'skipMiddlewares (the default)');

    const firstId = ann.id;
    ann.disconnect();
    await until(() => !io.of('/').sockets.has(firstId), { what: 'the server side to go' });
    back = nextEvent(ann, 'connect');
    ann.connect();
    await back;
    assert.equal(ann.recovered, false);
    assert.notEqual(ann.id, firstId);
  });

  test('skipMiddlewares: false runs them for a resumed socket, which they see as recovered', async (t) => {
    const h = new Harness(t);
    const { io, port } = await recoveringServer(h, { skipMiddlewares: false });
    const seen = [];
    io.use((socket, next) => {
      seen.push([socket.handshake.auth.name ?? socket.data.name, socket.recovered, socket.data.name]);
      next();
    });
    const { client: ann, socket: annServer, inbox } = await h.connect(port, {
      io,
      auth: { name: 'ann', room: true },
    });
    const { client: bob } = await h.connect(port, { io, auth: { name: 'bob' } });
    bob.emit('say', 0);
    await inbox.wait('msg', 1);
    await cut(ann, annServer);
    const back = nextEvent(ann, 'connect');
    ann.connect();
    await back;
    assert.equal(ann.recovered, true);
    assert.deepEqual(seen, [
      ['ann', false, undefined],
      ['bob', false, undefined],
      ['ann', true, 'ann'],
    ]);
  });

  test('the option is checked', async () => {
    assert.throws(
      () => new Server({ connectionStateRecovery: { maxDisconnectionDuration: -1 } }),
      { code: 'ERR_PALAVER_INVALID_OPTIONS' },
    );
    assert.throws(() => new Server({ connectionStateRecovery: 'yes' }), { code: 'ERR_PALAVER_INVALID_OPTIONS' });
    // Not with cluster mode (docs/SOCKETIO.md says why): refused when the engine starts.
    assert.throws(
      () =>
        new Server(http.createServer(), {
          connectionStateRecovery: {},
          palaver: { cluster: { redisUrl: 'redis://127.0.0.1:1' } },
        }),
      { code: 'ERR_PALAVER_INVALID_OPTIONS', message: /not available in cluster mode/ },
    );
  });

  test('without the option there is no private session and nothing resumes', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.on('connection', (socket) => {
      socket.join('room');
      socket.on('sync', (ack) => ack());
    });
    const { client, socket, inbox } = await h.connect(port, { io });
    io.to('room').emit('msg', 0);
    await inbox.wait('msg', 1);
    assert.deepEqual(inbox.of('msg'), [[0]], 'no offset argument');
    const firstId = client.id;
    await cut(client, socket);
    const back = nextEvent(client, 'connect');
    client.connect();
    await back;
    assert.ok(!client.recovered);
    assert.notEqual(client.id, firstId);
  });
});

// A stock client as a raw check of the wire: the CONNECT answer carries `pid`.
test('the CONNECT answer is {sid, pid} with an unguessable pid', async (t) => {
  const h = new Harness(t);
  const { io, port } = await recoveringServer(h);
  const pids = new Set();
  for (let i = 0; i < 3; i += 1) {
    const client = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
    h.clients.push(client);
    await nextEvent(client, 'connect');
    assert.match(client._pid, /^[A-Za-z0-9_-]{32}$/);
    assert.notEqual(client._pid, client.id);
    pids.add(client._pid);
  }
  assert.equal(pids.size, 3);
  assert.ok(io);
});
