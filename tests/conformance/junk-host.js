'use strict';
// The host app the junk battery attacks on the `palaver/socket.io` face
// (tests/conformance/junk.test.js): a room chat written as a socket.io app, with the
// default settings, so that everything an app's handlers receive has come through the
// same parsers the attack aims at.
//
//   PORT=0 node tests/conformance/junk-host.js
//
// Events: `join {room}` (ack {ok}), `say {room, text}`: relayed to the room's other
// sockets as `said {from, room, text, n}` (n counts the room's relays), ack {ok, n}.
// A `disconnecting` or `disconnect` listener called with anything but one of
// socket.io's reasons prints `junk host error`, which fails the battery.
// Prints `junk host listening on <port>`; stops on SIGINT or SIGTERM.

const { Server } = require('../../node/socket.io.js');

const port = process.env.PORT === undefined || process.env.PORT === '' ? 3000 : Number(process.env.PORT);
const io = new Server(port);
const relayed = new Map();

const isRoom = (room) => typeof room === 'string' && room.length > 0 && room.length <= 64;

/** The reasons a socket.io `disconnect` listener may be given. */
const REASONS = new Set([
  'transport close',
  'transport error',
  'client namespace disconnect',
  'server namespace disconnect',
  'ping timeout',
  'parse error',
  'server shutting down',
]);

io.on('connection', (socket) => {
  const name = typeof socket.handshake.auth?.name === 'string' ? socket.handshake.auth.name : socket.id;
  const answer = (ack, value) => typeof ack === 'function' && ack(value);
  // A middleware, as many apps have: every event of the client reaches JS.
  socket.use((packet, next) => next());
  // Only the server may say that a socket went, with one of socket.io's reasons.
  for (const event of ['disconnecting', 'disconnect']) {
    socket.on(event, (reason) => {
      if (!REASONS.has(reason)) console.error(`junk host error: ${event} with ${JSON.stringify(reason)}`);
    });
  }
  socket.on('join', (data, ack) => {
    if (!isRoom(data?.room)) return answer(ack, { ok: false });
    socket.join(data.room);
    answer(ack, { ok: true });
  });
  socket.on('say', (data, ack) => {
    if (!isRoom(data?.room) || typeof data.text !== 'string' || !socket.rooms.has(data.room)) {
      return answer(ack, { ok: false });
    }
    const n = (relayed.get(data.room) || 0) + 1;
    relayed.set(data.room, n);
    socket.to(data.room).emit('said', { from: name, room: data.room, text: data.text, n });
    answer(ack, { ok: true, n });
  });
});

io.on('error', (error) => console.error('junk host error:', error));

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  io.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

console.log(`junk host listening on ${io.port}`);
