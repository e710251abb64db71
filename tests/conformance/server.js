'use strict';
// The reference server of the Socket.IO protocol test suite (the "Test suite" section
// of https://github.com/socketio/socket.io-protocol's Readme.md), written on
// `palaver/socket.io` instead of `socket.io`. protocol.test.js starts it on a free
// port; `make conformance-official SUITE=...` starts it on port 3000 for the official
// suite (see README.md here).
//
//   PORT=3001 node tests/conformance/server.js
//
// Prints `conformance server listening on <port>` once it serves; stops on SIGINT or
// SIGTERM.

const { Server } = require('../../node/socket.io.js');

const port = process.env.PORT === undefined || process.env.PORT === '' ? 3000 : Number(process.env.PORT);

const io = new Server(port, {
  pingInterval: 300,
  pingTimeout: 200,
  // The suite's `maxPayload: 1000000` is socket.io's default maxHttpBufferSize, which
  // Engine.IO advertises as the handshake's maxPayload; palaver's default is 64 KiB.
  maxHttpBufferSize: 1000000,
  connectTimeout: 1000,
  cors: {
    origin: '*',
  },
});

io.on('connection', (socket) => {
  socket.emit('auth', socket.handshake.auth);

  socket.on('message', (...args) => {
    socket.emit('message-back', ...args);
  });

  socket.on('message-with-ack', (...args) => {
    const ack = args.pop();
    ack(...args);
  });
});

io.of('/custom').on('connection', (socket) => {
  socket.emit('auth', socket.handshake.auth);
});

io.on('error', (error) => {
  // A handler fault: reported, never fatal.
  console.error('conformance server error:', error);
});

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

console.log(`conformance server listening on ${io.port}`);
