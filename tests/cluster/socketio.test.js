'use strict';
// palaver/socket.io across the cluster: two app processes' engines share rooms
// and broadcasts through one private Redis, as socket.io apps do with the Redis
// adapter. Each node is a palaver/socket.io server in this test process (the Node
// addon, built by `make node-debug` first), with its handlers in JavaScript.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { io: connect } = require('socket.io-client');
const { startRedis } = require('../support/redis.js');
const { nodeConfig, uniquePrefix } = require('../support/cluster.js');

const { Server } = require('../../node/socket.io.js');

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis && redis.stop('SIGKILL'));

/** A palaver/socket.io node of cluster `prefix`, with the seed-002 style handlers. */
function startNode(prefix, label) {
  const io = new Server(0, { palaver: nodeConfig(redis, prefix, { stop_timeout_ms: 2000 }) });
  io.on('connection', (socket) => {
    socket.on('join', (room, ack) => {
      socket.join(room);
      ack({ node: label });
    });
    socket.on('say', ({ room, text }) => socket.to(room).emit('said', { text, from: label }));
    socket.on('shout', (text) => io.emit('shouted', { text, from: label }));
    socket.on('who', async (room, ack) => {
      const sockets = await io.in(room).fetchSockets();
      ack(sockets.map((s) => ({ id: s.id, local: s.nsp !== undefined })));
    });
  });
  return io;
}

function client(io) {
  const socket = connect(`http://127.0.0.1:${io.port}`, { transports: ['websocket'], reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

function next(socket, event, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeout} ms`)), timeout);
    socket.once(event, (value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

test('rooms, broadcasts and fetchSockets reach the other node', { timeout: 60_000 }, async (t) => {
  const prefix = uniquePrefix('sio');
  const one = startNode(prefix, 'one');
  const two = startNode(prefix, 'two');
  t.after(() => Promise.all([one.close(), two.close()]));
  const ann = await client(one);
  const bob = await client(two);
  const cid = await client(two);
  t.after(() => [ann, bob, cid].forEach((s) => s.close()));

  assert.deepEqual(await ann.timeout(5000).emitWithAck('join', 'lobby'), { node: 'one' });
  assert.deepEqual(await bob.timeout(5000).emitWithAck('join', 'lobby'), { node: 'two' });

  // socket.to(room) from node one reaches the member on node two, not the sender,
  // and not the connection outside the room.
  const heard = next(bob, 'said');
  let cidHeard = false;
  cid.on('said', () => {
    cidHeard = true;
  });
  let annHeard = false;
  ann.on('said', () => {
    annHeard = true;
  });
  ann.emit('say', { room: 'lobby', text: 'hello from one' });
  assert.deepEqual(await heard, { text: 'hello from one', from: 'one' });

  // io.emit from node two reaches every client of both nodes.
  const everyone = [ann, bob, cid].map((s) => next(s, 'shouted'));
  bob.emit('shout', 'to all');
  for (const got of await Promise.all(everyone)) assert.deepEqual(got, { text: 'to all', from: 'two' });
  assert.equal(annHeard, false, 'the sender is left out of socket.to(room)');
  assert.equal(cidHeard, false, 'a connection outside the room hears nothing');

  // fetchSockets on node one sees the member of node two.
  const members = await ann.timeout(5000).emitWithAck('who', 'lobby');
  assert.deepEqual(members.map((m) => m.id).sort(), [ann.id, bob.id].sort());
  assert.deepEqual(members.find((m) => m.id === ann.id).local, true);
  assert.deepEqual(members.find((m) => m.id === bob.id).local, false);
});
