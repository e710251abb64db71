'use strict';
// `palaver/socket.io` end to end with the npm socket.io-client: the server API of
// the `socket.io` package (v4) as apps use it — connections, middleware,
// namespaces, broadcasting, sockets and rooms, events and acks, disconnects. Every
// expectation is what the real socket.io 4.8 server does with the same code, unless
// a test says otherwise (the engine's documented flood limit; a middleware that
// throws, which socket.io lets crash the process). Throwing handlers are in
// socketio-handlers.test.js, io.close() in socketio-close.test.js.
//
// Each test starts its own server (`Harness`, closed after the test). A test that
// checks that something did NOT arrive sends a marker after it and waits for the
// marker: a client receives what one server sends in order, so once the marker is
// there, nothing sent before it is still on its way.

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const { Manager } = require('socket.io-client');
const createServer = require('palaver/socket.io');
const { Harness, nextEvent, until } = require('./sio-support');

const { Server } = createServer;
const TRANSPORTS = ['websocket', 'polling'];

/** Waits until every client got `count` markers `event`. */
function markers(clients, event = 'marker', count = 1) {
  return Promise.all(clients.map((c) => c.inbox.wait(event, count)));
}

/** The names of the events a client received, without the markers. */
function received(client) {
  return client.inbox.items.filter((i) => i.event !== 'marker').map((i) => [i.event, ...i.args]);
}

/** A Buffer of whatever binary type the client gives (Buffer, ArrayBuffer, view). */
function bytes(value) {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new Error(`not binary: ${value}`);
}

describe('palaver/socket.io: connections, middleware, namespaces', { timeout: 60_000 }, () => {
  for (const transport of TRANSPORTS) {
    test(`io.on("connection") and io.on("connect") both get the socket (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server);
      const seen = [];
      io.on('connection', (socket) => seen.push(['connection', socket.id, socket.connected]));
      io.on('connect', (socket) => seen.push(['connect', socket.id]));
      const { client } = await h.connect(port, { io, transport });
      await until(() => seen.length === 2, { what: 'both listeners' });
      assert.deepEqual(seen.sort(), [
        ['connect', client.id],
        ['connection', client.id, true],
      ]);
    });
  }

  test('io.use: middlewares run in order, may be async, may set socket.data; next() lets the client in', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const order = [];
    io.use(async (socket, next) => {
      await new Promise((resolve) => setImmediate(resolve));
      order.push(['first', socket.handshake.auth.name]);
      next();
    });
    io.use((socket, next) => {
      order.push(['second', socket.connected]);
      socket.data.user = { name: socket.handshake.auth.name };
      next();
    });
    const connected = [];
    io.on('connection', (socket) => connected.push(socket.data.user));
    await h.connect(port, { io, auth: { name: 'ann' } });
    assert.deepEqual(order, [
      ['first', 'ann'],
      ['second', false],
    ]);
    assert.deepEqual(connected, [{ name: 'ann' }]);
  });

  test('io.use: next(new Error(msg)) refuses: the client gets connect_error with that message', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    let connections = 0;
    io.on('connection', () => (connections += 1));
    io.use((socket, next) => {
      if (socket.handshake.auth.token === 'good') next();
      else next(new Error('not authorized'));
    });
    const error = await h.refused(port, { auth: { token: 'bad' } });
    assert.equal(error.message, 'not authorized');
    await h.connect(port, { io, auth: { token: 'good' } });
    assert.equal(connections, 1, 'only the good client connected');
  });

  test('io.use: an async middleware that rejects, and one that throws, refuse with their message; the server runs on', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.use(async (socket, next) => {
      if (socket.handshake.auth.mode === 'reject') throw new Error('rejected by async middleware');
      if (socket.handshake.auth.mode === 'throw-sync') return next(new Error('unused'));
      next();
    });
    io.use((socket, next) => {
      if (socket.handshake.auth.mode === 'throw') throw new Error('thrown by middleware');
      next();
    });
    assert.equal((await h.refused(port, { auth: { mode: 'reject' } })).message, 'rejected by async middleware');
    assert.equal((await h.refused(port, { auth: { mode: 'throw' } })).message, 'thrown by middleware');
    const { client } = await h.connect(port, { io, auth: { mode: 'fine' } });
    assert.equal(client.connected, true);
  });

  test('namespaces: io.of("/admin") has its own connection handlers and middleware', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const mainConnections = [];
    const adminConnections = [];
    let mainMiddleware = 0;
    io.use((socket, next) => {
      mainMiddleware += 1;
      next();
    });
    io.on('connection', (socket) => mainConnections.push(socket.id));
    const admin = io.of('/admin');
    assert.equal(io.of('/admin'), admin, 'the same namespace object each time');
    assert.equal(admin.name, '/admin');
    admin.use((socket, next) => {
      if (socket.handshake.auth.token === 'secret') next();
      else next(new Error('admins only'));
    });
    admin.on('connection', (socket) => {
      adminConnections.push(socket.id);
      socket.on('whoami', (cb) => cb({ nsp: socket.nsp.name, id: socket.id }));
    });
    assert.equal((await h.refused(port, { nsp: '/admin', auth: { token: 'nope' } })).message, 'admins only');
    const adminClient = await h.connect(port, { io, nsp: '/admin', auth: { token: 'secret' } });
    const mainClient = await h.connect(port, { io });
    assert.deepEqual(await adminClient.client.emitWithAck('whoami'), { nsp: '/admin', id: adminClient.client.id });
    assert.deepEqual(adminConnections, [adminClient.client.id]);
    assert.deepEqual(mainConnections, [mainClient.client.id]);
    assert.equal(mainMiddleware, 1, 'the main namespace middleware ran for the main client only');
    // Each namespace's emits reach its own clients only.
    admin.emit('for-admins', 1);
    io.emit('for-all-main', 2);
    admin.emit('marker');
    io.emit('marker');
    await markers([adminClient, mainClient]);
    assert.deepEqual(received(adminClient), [['for-admins', 1]]);
    assert.deepEqual(received(mainClient), [['for-all-main', 2]]);
    assert.equal(admin.sockets.size, 1);
    assert.equal(io.sockets.sockets.size, 1);
  });

  test('a namespace created after the server started (io.of after attach) accepts clients', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    await h.connect(port, { io });
    io.of('/late').on('connection', (socket) => socket.emit('hello', socket.nsp.name));
    const late = await h.connect(port, { io, nsp: '/late' });
    assert.deepEqual(await late.inbox.wait('hello'), [['/late']]);
  });

  test('an unknown namespace is refused with "Invalid namespace"', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.of('/known');
    const error = await h.refused(port, { nsp: '/unknown' });
    assert.equal(error.message, 'Invalid namespace');
  });
});

describe('palaver/socket.io: broadcasting', { timeout: 60_000 }, () => {
  /** Three clients: a in r1; b in r1 and r2; c in r2. */
  async function threeClients(t, transport = 'websocket') {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.on('connection', (socket) => {
      socket.join(socket.handshake.auth.rooms);
      // relay(how, target, event, ...args, cb): the sender's socket emits for it.
      socket.on('relay', (how, target, event, ...args) => {
        const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        if (how === 'broadcast') socket.broadcast.emit(event, ...args);
        if (how === 'to') socket.to(target).emit(event, ...args);
        if (how === 'broadcast-to') socket.broadcast.to(target).emit(event, ...args);
        if (how === 'except') socket.except(target).emit(event, ...args);
        if (how === 'volatile') socket.volatile.emit(event, ...args);
        if (cb) cb();
      });
    });
    const a = await h.connect(port, { io, transport, auth: { rooms: ['r1'] } });
    const b = await h.connect(port, { io, transport, auth: { rooms: ['r1', 'r2'] } });
    const c = await h.connect(port, { io, transport, auth: { rooms: ['r2'] } });
    await until(() => io.of('/').adapter.rooms.get('r2')?.size === 2, { what: 'the rooms joined' });
    return { h, io, port, a, b, c, all: [a, b, c] };
  }

  for (const transport of TRANSPORTS) {
    test(`io.emit, io.sockets.emit and io.send reach everyone (${transport})`, async (t) => {
      const { io, all } = await threeClients(t, transport);
      io.emit('news', { n: 1 }, 'two');
      io.sockets.emit('news', { n: 2 });
      io.send('hello');
      io.emit('marker');
      await markers(all);
      for (const client of all) {
        assert.deepEqual(received(client), [
          ['news', { n: 1 }, 'two'],
          ['news', { n: 2 }],
          ['message', 'hello'],
        ]);
      }
    });
  }

  test('io.to / io.in / io.except, rooms combined: each member once', async (t) => {
    const { io, a, b, c, all } = await threeClients(t);
    io.to('r1').emit('to-r1');
    io.in('r2').emit('in-r2');
    io.to('r1').to('r2').emit('r1-or-r2'); // b is in both: once
    io.to(['r1', 'r2']).emit('array');
    io.except('r1').emit('not-r1');
    io.to('r2').except('r1').emit('r2-not-r1');
    io.to(a.client.id).emit('to-a-by-id');
    io.except([a.client.id, c.client.id]).emit('only-b');
    io.to('nobody-here').emit('lost');
    io.emit('marker');
    await markers(all);
    assert.deepEqual(received(a), [['to-r1'], ['r1-or-r2'], ['array'], ['to-a-by-id']]);
    assert.deepEqual(received(b), [['to-r1'], ['in-r2'], ['r1-or-r2'], ['array'], ['only-b']]);
    assert.deepEqual(received(c), [['in-r2'], ['r1-or-r2'], ['array'], ['not-r1'], ['r2-not-r1']]);
  });

  test('socket.broadcast.emit, socket.to(room).emit, socket.except(room).emit: never to the sender', async (t) => {
    const { io, a, b, c, all } = await threeClients(t);
    await b.client.emitWithAck('relay', 'broadcast', null, 'from-b');
    await b.client.emitWithAck('relay', 'to', 'r1', 'b-to-r1'); // b is in r1 itself
    await b.client.emitWithAck('relay', 'broadcast-to', 'r2', 'b-broadcast-to-r2');
    await b.client.emitWithAck('relay', 'except', c.client.id, 'b-except-c');
    await a.client.emitWithAck('relay', 'except', 'r2', 'a-except-r2'); // b and c are in r2: nobody
    await c.client.emitWithAck('relay', 'to', c.client.id, 'c-to-itself');
    io.emit('marker');
    await markers(all);
    assert.deepEqual(received(a), [['from-b'], ['b-to-r1'], ['b-except-c']]);
    assert.deepEqual(received(b), []);
    assert.deepEqual(received(c), [['from-b'], ['b-broadcast-to-r2']]);
  });

  test('volatile: io.volatile.emit, io.to(room).volatile.emit and socket.volatile.emit reach idle clients', async (t) => {
    // socket.io drops a volatile packet when the transport is busy (another packet
    // of the same tick being written): one volatile emit at a time, each awaited.
    const { io, a, b, c, all } = await threeClients(t);
    io.volatile.emit('v-all', 1);
    await Promise.all(all.map((x) => x.inbox.wait('v-all')));
    io.to('r1').volatile.emit('v-r1', 2);
    await Promise.all([a, b].map((x) => x.inbox.wait('v-r1')));
    await a.client.emitWithAck('relay', 'volatile', null, 'v-self', 3);
    await a.inbox.wait('v-self');
    io.emit('marker');
    await markers(all);
    assert.deepEqual(received(a), [['v-all', 1], ['v-r1', 2], ['v-self', 3]]);
    assert.deepEqual(received(b), [['v-all', 1], ['v-r1', 2]]);
    assert.deepEqual(received(c), [['v-all', 1]]);
  });
});

describe('palaver/socket.io: sockets and rooms', { timeout: 60_000 }, () => {
  test('io.sockets.sockets: live Socket objects with app properties; gone at disconnect (already inside the handler)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const atDisconnecting = [];
    const atDisconnect = [];
    io.on('connection', (socket) => {
      socket.user = { name: socket.handshake.auth.name };
      socket.join('lobby');
      socket.on('disconnecting', (reason) => {
        atDisconnecting.push({
          reason,
          inMap: io.sockets.sockets.has(socket.id),
          rooms: [...socket.rooms].sort(),
        });
      });
      socket.on('disconnect', (reason) => {
        atDisconnect.push({
          reason,
          inMap: io.sockets.sockets.has(socket.id),
          rooms: socket.rooms.size,
          connected: socket.connected,
          inLobby: io.of('/').adapter.rooms.get('lobby')?.has(socket.id) ?? false,
        });
      });
    });
    const ann = await h.connect(port, { io, auth: { name: 'ann' } });
    const bob = await h.connect(port, { io, auth: { name: 'bob' } });
    assert.ok(io.sockets.sockets instanceof Map);
    assert.equal(io.sockets.sockets.get(ann.client.id), ann.socket);
    assert.deepEqual(io.sockets.sockets.get(bob.client.id).user, { name: 'bob' });
    assert.equal(io.of('/').sockets, io.sockets.sockets);
    const annId = ann.client.id;
    const gone = nextEvent(ann.socket, 'disconnect');
    ann.client.disconnect();
    await gone;
    assert.deepEqual(atDisconnecting, [
      { reason: 'client namespace disconnect', inMap: true, rooms: ['lobby', annId].sort() },
    ]);
    assert.deepEqual(atDisconnect, [
      { reason: 'client namespace disconnect', inMap: false, rooms: 0, connected: false, inLobby: false },
    ]);
    assert.deepEqual([...io.sockets.sockets.keys()], [bob.client.id]);
  });

  test('io.fetchSockets and io.in(room).fetchSockets resolve with the same Socket objects', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.on('connection', (socket) => {
      socket.user = socket.handshake.auth.name;
      if (socket.user !== 'cat') socket.join('pets');
    });
    const ann = await h.connect(port, { io, auth: { name: 'ann' } });
    const bob = await h.connect(port, { io, auth: { name: 'bob' } });
    const cat = await h.connect(port, { io, auth: { name: 'cat' } });
    const all = await io.fetchSockets();
    assert.deepEqual(all.map((s) => s.id).sort(), [ann, bob, cat].map((c) => c.client.id).sort());
    for (const found of all) assert.equal(found, io.sockets.sockets.get(found.id), 'the live Socket object');
    assert.deepEqual(all.map((s) => s.user).sort(), ['ann', 'bob', 'cat']);
    const pets = await io.in('pets').fetchSockets();
    assert.deepEqual(pets.map((s) => s.user).sort(), ['ann', 'bob']);
    assert.equal(pets.find((s) => s.user === 'ann'), ann.socket);
    assert.deepEqual((await io.of('/').in(cat.client.id).fetchSockets()).map((s) => s.user), ['cat']);
    assert.deepEqual(await io.in('empty-room').fetchSockets(), []);
  });

  test('socketsJoin, socketsLeave and disconnectSockets act on the sockets a target reaches', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const reasons = [];
    io.on('connection', (socket) => {
      socket.join(socket.handshake.auth.rooms);
      socket.on('disconnect', (reason) => reasons.push([socket.handshake.auth.name, reason]));
    });
    const ann = await h.connect(port, { io, auth: { name: 'ann', rooms: ['r1'] } });
    const bob = await h.connect(port, { io, auth: { name: 'bob', rooms: ['r1'] } });
    const cat = await h.connect(port, { io, auth: { name: 'cat', rooms: ['r2'] } });
    const all = [ann, bob, cat];
    io.in('r1').socketsJoin(['r3', 'r4']);
    assert.ok(ann.socket.rooms.has('r3') && bob.socket.rooms.has('r4'), 'joined at once');
    assert.equal(cat.socket.rooms.has('r3'), false);
    io.to('r3').emit('to-r3');
    io.socketsLeave('r4');
    assert.equal(ann.socket.rooms.has('r4'), false, 'left at once');
    io.to('r4').emit('to-r4');
    io.emit('marker');
    await markers(all);
    assert.deepEqual(received(ann), [['to-r3']]);
    assert.deepEqual(received(bob), [['to-r3']]);
    assert.deepEqual(received(cat), []);
    // disconnectSockets: the sockets of r2 only.
    const catGone = nextEvent(cat.client, 'disconnect');
    io.in('r2').disconnectSockets();
    assert.equal((await catGone)[0], 'io server disconnect');
    assert.deepEqual(reasons, [['cat', 'server namespace disconnect']]);
    assert.equal(io.sockets.sockets.has(cat.client.id), false);
    // Then everyone, closing the whole connections.
    const annGone = nextEvent(ann.client, 'disconnect');
    const bobGone = nextEvent(bob.client, 'disconnect');
    io.disconnectSockets(true);
    assert.equal((await annGone)[0], 'io server disconnect');
    assert.equal((await bobGone)[0], 'io server disconnect');
    assert.equal(io.sockets.sockets.size, 0);
  });

  test('nsp.adapter.rooms: Map of room -> Set of socket ids, each socket in a room of its own id', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.on('connection', (socket) => {
      socket.join('shared');
      socket.on('leave-shared', (cb) => {
        socket.leave('shared');
        cb();
      });
    });
    const ann = await h.connect(port, { io });
    const bob = await h.connect(port, { io });
    const rooms = io.of('/').adapter.rooms;
    assert.ok(rooms instanceof Map);
    assert.deepEqual([...rooms.get('shared')].sort(), [ann.client.id, bob.client.id].sort());
    assert.deepEqual([...rooms.get(ann.client.id)], [ann.client.id]);
    await ann.client.emitWithAck('leave-shared');
    assert.deepEqual([...io.of('/').adapter.rooms.get('shared')], [bob.client.id]);
    await bob.client.emitWithAck('leave-shared');
    assert.equal(io.of('/').adapter.rooms.has('shared'), false, 'an empty room is deleted');
  });

  for (const transport of TRANSPORTS) {
    test(`socket.id, socket.handshake (query, auth, headers, address, url), socket.data (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server);
      const { client, socket } = await h.connect(port, {
        io,
        transport,
        query: { token: 'abc', lang: 'zh' },
        auth: { name: 'ann', n: 1 },
        extraHeaders: { 'x-app': 'yes' },
      });
      assert.equal(socket.id, client.id);
      assert.equal(typeof socket.id, 'string');
      const { handshake } = socket;
      assert.equal(handshake.query.token, 'abc');
      assert.equal(handshake.query.lang, 'zh');
      assert.equal(handshake.query.EIO, '4');
      assert.equal(handshake.query.transport, transport);
      assert.deepEqual(handshake.auth, { name: 'ann', n: 1 });
      assert.equal(handshake.headers['x-app'], 'yes');
      assert.equal(handshake.headers.host, `127.0.0.1:${port}`);
      assert.match(handshake.address, /^(::ffff:)?127\.0\.0\.1$/);
      assert.match(handshake.url, /^\/socket\.io\/\?/);
      assert.match(handshake.url, /token=abc/);
      assert.equal(typeof handshake.issued, 'number');
      assert.equal(typeof handshake.time, 'string');
      assert.equal(handshake.secure, false);
      assert.deepEqual(socket.data, {});
      assert.equal(socket.nsp, io.of('/'));
      assert.equal(socket.connected, true);
      assert.equal(socket.disconnected, false);
    });
  }

  test('socket.rooms: a Set with its own id; join (one or an array) and leave', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const { client, socket, inbox } = await h.connect(port, { io });
    const other = await h.connect(port, { io });
    assert.ok(socket.rooms instanceof Set);
    assert.deepEqual([...socket.rooms], [socket.id]);
    socket.join('a');
    socket.join(['b', 'c']);
    assert.deepEqual([...socket.rooms].sort(), [socket.id, 'a', 'b', 'c'].sort());
    socket.leave('b');
    assert.deepEqual([...socket.rooms].sort(), [socket.id, 'a', 'c'].sort());
    io.to('a').emit('to-a');
    io.to('b').emit('to-b');
    io.to('c').emit('to-c');
    io.emit('marker');
    await markers([{ inbox }, other]);
    assert.deepEqual(received({ inbox }), [['to-a'], ['to-c']]);
    assert.deepEqual(received(other), []);
    assert.equal(client.connected, true);
  });
});

describe('palaver/socket.io: events and acknowledgements', { timeout: 60_000 }, () => {
  for (const transport of TRANSPORTS) {
    test(`events and acks with many arguments, both ways (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server);
      let got = null;
      io.on('connection', (socket) => {
        socket.on('many', (...args) => {
          const cb = args.pop();
          got = args;
          cb(args.length, 'two', { three: 3 }, [4], null, false);
        });
        socket.on('no-args', (cb) => cb());
        socket.on('send-many', () => socket.emit('many-back', 1, 'a', { b: [2] }, null, true));
      });
      const { client, inbox } = await h.connect(port, { io, transport });
      const sent = [1, 'two', { three: { deep: [3] } }, [4, 5], null, true, 'x'.repeat(1000)];
      const answer = await new Promise((resolve) => client.emit('many', ...sent, (...a) => resolve(a)));
      assert.deepEqual(got, sent);
      assert.deepEqual(answer, [7, 'two', { three: 3 }, [4], null, false]);
      assert.deepEqual(await new Promise((resolve) => client.emit('no-args', (...a) => resolve(a))), []);
      client.emit('send-many');
      assert.deepEqual(await inbox.wait('many-back'), [[1, 'a', { b: [2] }, null, true]]);
    });

    test(`binary: Buffers from the client (nested too) and in the server's ack (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server);
      let got = null;
      io.on('connection', (socket) => {
        socket.on('upload', (file, meta, cb) => {
          got = { file, meta };
          cb(Buffer.from([9, 8, 7]), { nested: { blob: Buffer.from('back') }, n: 1 });
        });
      });
      const { client } = await h.connect(port, { io, transport });
      const meta = { name: 'f', parts: [Buffer.from('p1'), 'text'] };
      const answer = await new Promise((resolve) => client.emit('upload', Buffer.from([1, 2, 3]), meta, (...a) => resolve(a)));
      assert.ok(Buffer.isBuffer(got.file), 'the server gets a Buffer');
      assert.deepEqual([...got.file], [1, 2, 3]);
      assert.equal(got.meta.name, 'f');
      assert.ok(Buffer.isBuffer(got.meta.parts[0]));
      assert.equal(got.meta.parts[0].toString(), 'p1');
      assert.equal(got.meta.parts[1], 'text');
      assert.deepEqual([...bytes(answer[0])], [9, 8, 7]);
      assert.equal(bytes(answer[1].nested.blob).toString(), 'back');
      assert.equal(answer[1].n, 1);
    });

    test(`binary: server socket.emit and io.emit with Buffers (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server);
      const { socket, inbox } = await h.connect(port, { io, transport });
      socket.emit('file', Buffer.from('hello'), { inner: new Uint8Array([1, 2]) }, 'plain');
      io.emit('all-file', { list: [Buffer.from([255, 0])] });
      const [[file, meta, plain]] = await inbox.wait('file');
      assert.equal(bytes(file).toString(), 'hello');
      assert.deepEqual([...bytes(meta.inner)], [1, 2]);
      assert.equal(plain, 'plain');
      const [[all]] = await inbox.wait('all-file');
      assert.deepEqual([...bytes(all.list[0])], [255, 0]);
    });

    test(`binary: a client's ack with a Buffer reaches the server's callback (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server);
      const { client, socket } = await h.connect(port, { io, transport });
      client.on('give-bytes', (n, cb) => cb(Buffer.from([n, n + 1]), { also: Buffer.from('x') }));
      const [error, ...answer] = await new Promise((resolve) =>
        socket.timeout(5000).emit('give-bytes', 5, (...a) => resolve(a)),
      );
      assert.equal(error, null, `the ack arrives (got ${error})`);
      assert.ok(Buffer.isBuffer(answer[0]), `a Buffer, got ${JSON.stringify(answer[0])}`);
      assert.deepEqual([...answer[0]], [5, 6]);
      assert.ok(Buffer.isBuffer(answer[1].also));
      assert.deepEqual(await socket.timeout(5000).emitWithAck('give-bytes', 1).then((b) => [...b]), [1, 2]);
    });
  }

  test('socket.once, socket.off and removeAllListeners: later events no longer reach the handler', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const calls = [];
    io.on('connection', (socket) => {
      socket.once('one', (n) => calls.push(['one', n]));
      const counted = (n) => calls.push(['counted', n]);
      socket.on('counted', counted);
      socket.on('stop-counting', (cb) => {
        socket.off('counted', counted);
        cb();
      });
      socket.on('all', (n) => calls.push(['all', n]));
      socket.on('drop-all', (cb) => {
        socket.removeAllListeners('all');
        cb();
      });
      socket.on('sync', (cb) => cb());
    });
    const { client } = await h.connect(port, { io });
    client.emit('one', 1);
    client.emit('one', 2);
    client.emit('counted', 1);
    await client.emitWithAck('stop-counting');
    client.emit('counted', 2);
    client.emit('all', 1);
    await client.emitWithAck('drop-all');
    client.emit('all', 2);
    await client.emitWithAck('sync');
    assert.deepEqual(calls, [
      ['one', 1],
      ['counted', 1],
      ['all', 1],
    ]);
  });

  test('socket.onAny sees every event with its arguments; offAny stops it', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const seen = [];
    io.on('connection', (socket) => {
      const any = (event, ...args) => seen.push([event, ...args.filter((a) => typeof a !== 'function')]);
      socket.onAny(any);
      socket.on('stop', (cb) => {
        socket.offAny(any);
        cb();
      });
      socket.on('sync', (cb) => cb());
    });
    const { client } = await h.connect(port, { io });
    client.emit('unheard', 1, { a: 2 }); // no listener of its own: onAny still sees it
    await client.emitWithAck('stop');
    client.emit('unheard', 3);
    await client.emitWithAck('sync');
    assert.deepEqual(seen, [
      ['unheard', 1, { a: 2 }],
      ['stop'],
    ]);
  });

  test('numeric event names: client.emit(2, data) reaches socket.on(2, ...), server socket.emit(3, ...) reaches client.on(3, ...)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const got = [];
    io.on('connection', (socket) => {
      socket.on(2, (data, cb) => {
        got.push(data);
        socket.emit(3, { reply: data.n });
        if (typeof cb === 'function') cb('acked');
      });
    });
    const { client } = await h.connect(port, { io });
    const threes = [];
    client.on(3, (data) => threes.push(data));
    client.emit(2, { n: 1 });
    assert.equal(await client.emitWithAck(2, { n: 2 }), 'acked');
    await until(() => threes.length === 2, { what: 'two replies on event 3' });
    assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
    assert.deepEqual(threes, [{ reply: 1 }, { reply: 2 }]);
    assert.equal(client.connected, true, 'the connection stays open');
  });

  test('numeric event names: onAny gets the number the client sent, as in socket.io', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const names = [];
    io.on('connection', (socket) => {
      socket.onAny((event, ...args) => {
        names.push(event);
        const cb = args[args.length - 1];
        if (typeof cb === 'function') cb();
      });
    });
    const { client } = await h.connect(port, { io });
    client.emit(2, {});
    await client.timeout(5000).emitWithAck('sync');
    assert.deepEqual(names, [2, 'sync']);
  });

  test('socket.emit with an ack callback; socket.timeout(ms).emit gets (err, ...answer), or a timeout error', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const { client, socket } = await h.connect(port, { io });
    client.on('question', (q, cb) => cb(`answer to ${q}`, 42));
    client.on('ignored', () => {});
    const plain = await new Promise((resolve) => socket.emit('question', 'life', (...a) => resolve(a)));
    assert.deepEqual(plain, ['answer to life', 42]);
    const timed = await new Promise((resolve) => socket.timeout(5000).emit('question', 'x', (...a) => resolve(a)));
    assert.deepEqual(timed, [null, 'answer to x', 42]);
    const started = Date.now();
    const [error, ...rest] = await new Promise((resolve) => socket.timeout(200).emit('ignored', (...a) => resolve(a)));
    assert.ok(error instanceof Error);
    assert.equal(error.message, 'operation has timed out');
    assert.deepEqual(rest, []);
    assert.ok(Date.now() - started >= 150, 'not before the timeout');
  });

  test('socket.emitWithAck and socket.timeout(ms).emitWithAck (rejects when the client does not answer)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const { client, socket } = await h.connect(port, { io });
    client.on('double', (n, cb) => cb(n * 2));
    client.on('ignored', () => {});
    assert.equal(await socket.emitWithAck('double', 21), 42);
    assert.equal(await socket.timeout(5000).emitWithAck('double', 2), 4);
    await assert.rejects(socket.timeout(200).emitWithAck('ignored'), { message: 'operation has timed out' });
  });

  test('io.timeout(ms).emitWithAck across several clients: every answer; rejects when one does not answer', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    io.on('connection', (socket) => socket.join(socket.handshake.auth.room));
    const clients = [];
    for (const [i, room] of ['r1', 'r1', 'r2'].entries()) {
      const c = await h.connect(port, { io, auth: { room } });
      c.client.on('vote', (question, cb) => cb({ voter: i, question }));
      clients.push(c);
    }
    const answers = await io.timeout(5000).emitWithAck('vote', 'q1');
    assert.deepEqual(answers.map((a) => a.voter).sort(), [0, 1, 2]);
    assert.ok(answers.every((a) => a.question === 'q1'));
    const inRoom = await io.to('r1').timeout(5000).emitWithAck('vote', 'q2');
    assert.deepEqual(inRoom.map((a) => a.voter).sort(), [0, 1]);
    const viaCallback = await new Promise((resolve) => {
      io.timeout(5000).emit('vote', 'q3', (err, responses) => resolve({ err, responses }));
    });
    assert.equal(viaCallback.err, null);
    assert.equal(viaCallback.responses.length, 3);
    // One client that never answers: the whole emit times out.
    const silent = await h.connect(port, { io, auth: { room: 'r2' } });
    silent.client.on('vote', () => {});
    await assert.rejects(io.timeout(300).emitWithAck('vote', 'q4'), { message: 'operation has timed out' });
  });

  test('reserved event names throw on emit (socket, io, namespace, broadcast)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const { socket } = await h.connect(port, { io });
    for (const name of ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']) {
      const expected = { message: `"${name}" is a reserved event name` };
      assert.throws(() => socket.emit(name), expected);
      assert.throws(() => io.emit(name), expected);
      assert.throws(() => io.of('/').emit(name), expected);
      assert.throws(() => io.to('room').emit(name), expected);
      assert.throws(() => socket.broadcast.emit(name), expected);
      assert.throws(() => socket.to('room').emit(name), expected);
    }
  });

  test('a burst of 200 events reaches its listener once the flood limit is raised (docs/SOCKETIO.md: 30/s, burst 60 by default)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server, { palaver: { limits: { requestsPerSecond: 1000, requestBurst: 1000 } } });
    let ticks = 0;
    io.on('connection', (socket) => {
      socket.on('tick', () => (ticks += 1));
      socket.on('count', (cb) => cb(ticks));
    });
    const { client, inbox } = await h.connect(port, { io });
    for (let i = 0; i < 200; i += 1) client.emit('tick', i);
    assert.equal(await client.timeout(5000).emitWithAck('count'), 200);
    assert.deepEqual(inbox.of('error'), [], 'no error event sent back');
  });

  test('with the default flood limit, events over the burst are refused with rate_limited (documented difference)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    let ticks = 0;
    io.on('connection', (socket) => {
      socket.on('tick', () => (ticks += 1));
      socket.on('count', (cb) => cb(ticks));
    });
    const { client, inbox } = await h.connect(port, { io });
    for (let i = 0; i < 100; i += 1) client.emit('tick', i);
    // Each event is either handled or refused (an `error` event naming it).
    await until(() => ticks + inbox.of('error').length === 100, { what: 'every tick handled or refused' });
    const refusals = inbox.of('error');
    assert.ok(ticks >= 60, `the burst got through, got ${ticks}`);
    assert.ok(refusals.length >= 10, `events over the burst were refused, got ${refusals.length}`);
    assert.ok(
      refusals.every(([body]) => body.code === 'rate_limited' && body.event === 'tick'),
      JSON.stringify(refusals[0]),
    );
    assert.equal(client.connected, true, 'refused, not disconnected');
  });

  test('an event of 500 kB reaches its listener with maxHttpBufferSize: 1e6 (socket.io\'s default)', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server, { maxHttpBufferSize: 1e6 });
    io.on('connection', (socket) => socket.on('big', (text, cb) => cb(text.length)));
    for (const transport of TRANSPORTS) {
      const { client } = await h.connect(port, { io, transport });
      assert.equal(await client.timeout(5000).emitWithAck('big', 'x'.repeat(500_000)), 500_000, transport);
      assert.equal(client.connected, true);
    }
  });
});

describe('palaver/socket.io: disconnects and socket middleware', { timeout: 60_000 }, () => {
  for (const transport of TRANSPORTS) {
    test(`the client disconnects: "disconnecting" then "disconnect", reason "client namespace disconnect" (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server);
      const events = [];
      io.on('connection', (socket) => {
        socket.join('room');
        socket.on('disconnecting', (reason) => events.push(['disconnecting', reason, socket.rooms.has('room')]));
        socket.on('disconnect', (reason) => events.push(['disconnect', reason, socket.rooms.size]));
      });
      const { client, socket } = await h.connect(port, { io, transport });
      const gone = nextEvent(socket, 'disconnect');
      client.disconnect();
      await gone;
      assert.deepEqual(events, [
        ['disconnecting', 'client namespace disconnect', true],
        ['disconnect', 'client namespace disconnect', 0],
      ]);
      assert.equal(socket.connected, false);
      assert.equal(socket.disconnected, true);
    });

    test(`the server disconnects: client "io server disconnect", server "server namespace disconnect" (${transport})`, async (t) => {
      const h = new Harness(t);
      const { io, port } = await h.io(Server);
      const reasons = [];
      io.on('connection', (socket) => socket.on('disconnect', (reason) => reasons.push(reason)));
      const { client, socket } = await h.connect(port, { io, transport });
      const clientGone = nextEvent(client, 'disconnect');
      assert.equal(socket.disconnect(), socket, 'disconnect() returns the socket');
      assert.equal((await clientGone)[0], 'io server disconnect');
      assert.deepEqual(reasons, ['server namespace disconnect']);
      assert.equal(io.sockets.sockets.size, 0);
    });
  }

  test('socket.disconnect() leaves the connection to other namespaces; disconnect(true) closes it', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const serverSide = new Map();
    const track = (socket) => serverSide.set(`${socket.nsp.name}:${socket.id}`, socket);
    io.on('connection', track);
    io.of('/chat').on('connection', (socket) => {
      track(socket);
      socket.on('ping-chat', (cb) => cb('pong'));
    });
    const manager = new Manager(`http://127.0.0.1:${port}`, { reconnection: false, transports: ['websocket'] });
    const main = manager.socket('/');
    const chat = manager.socket('/chat');
    h.clients.push(main, chat);
    t.after(() => manager.engine?.close());
    await Promise.all([nextEvent(main, 'connect'), nextEvent(chat, 'connect')]);
    await until(() => serverSide.size === 2, { what: 'both namespaces on the server' });
    const mainServer = serverSide.get(`/:${main.id}`);
    const chatServer = serverSide.get(`/chat:${chat.id}`);
    const mainGone = nextEvent(main, 'disconnect');
    mainServer.disconnect();
    assert.equal((await mainGone)[0], 'io server disconnect');
    assert.equal(await chat.timeout(5000).emitWithAck('ping-chat'), 'pong', '/chat is still connected');
    const chatGone = nextEvent(chat, 'disconnect');
    chatServer.disconnect(true);
    assert.equal((await chatGone)[0], 'io server disconnect');
    await until(() => manager.engine.readyState === 'closed', { what: 'the whole connection closed' });
  });

  test('the client closes its connection: reason "transport close"', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const { client, socket } = await h.connect(port, { io });
    const gone = nextEvent(socket, 'disconnect');
    client.io.engine.close();
    assert.equal((await gone)[0], 'transport close');
  });

  test('socket.use: sees [event, ...args] of every event, may change them; next(err) goes to socket "error", not to the listener', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    const seenByMiddleware = [];
    const delivered = [];
    const errors = [];
    io.on('connection', (socket) => {
      socket.use((packet, next) => {
        seenByMiddleware.push(packet[0]);
        if (packet[0] === 'forbidden') return next(new Error('unauthorized event'));
        if (packet[0] === 'shout') packet[1] = packet[1].toUpperCase();
        next();
      });
      socket.on('error', (error) => errors.push(error.message));
      socket.on('shout', (text) => delivered.push(['shout', text]));
      socket.on('forbidden', () => delivered.push(['forbidden']));
      socket.on('sync', (cb) => cb());
    });
    const { client } = await h.connect(port, { io });
    client.emit('shout', 'hi');
    client.emit('forbidden');
    client.emit('nobody-listens');
    await client.emitWithAck('sync');
    assert.deepEqual(seenByMiddleware, ['shout', 'forbidden', 'nobody-listens', 'sync']);
    assert.deepEqual(delivered, [['shout', 'HI']]);
    assert.deepEqual(errors, ['unauthorized event']);
    assert.equal(client.connected, true);
  });
});
