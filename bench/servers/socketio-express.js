'use strict';
// The Node Socket.IO 4.8 server the benchmark compares against: an Express app
// with the room chat written the straightforward way the tutorials write it.
//
//   join {room, name}   -> socket.join(room), ack {ok, room, members}
//   message {room, text} -> socket.to(room).emit('message', {...}), ack {ok, ...message}
//   private {to, text}  -> 'private' to every socket of that name, ack {ok, ...}
//
// BENCH_PORT (default 0: any free port) on 127.0.0.1; prints "BENCH_LISTENING <port>".
// BENCH_RECOVERY=1 turns on Socket.IO's connectionStateRecovery (defaults: sessions
// kept 2 minutes, middlewares skipped on recovery), for the reconnect storm only:
// with it every broadcast packet gets an offset and is kept in memory, which the
// other scenarios should not pay for.

const http = require('node:http');
const express = require('express');
const { Server } = require('socket.io');

const app = express();
app.get('/healthz', (req, res) => res.json({ ok: true }));

const server = http.createServer(app);
const io = new Server(server, process.env.BENCH_RECOVERY === '1' ? { connectionStateRecovery: {} } : {});

let nextId = 1;
/** name -> Set of sockets with that name */
const byName = new Map();

io.on('connection', (socket) => {
  socket.on('join', (data, ack) => {
    const room = data && data.room;
    if (typeof room !== 'string' || room === '') {
      if (ack) ack({ ok: false, code: 'invalid_room' });
      return;
    }
    if (!socket.data.name) {
      const name = String((data && data.name) || socket.id);
      socket.data.name = name;
      if (!byName.has(name)) byName.set(name, new Set());
      byName.get(name).add(socket);
    }
    socket.join(room);
    const members = [...(io.sockets.adapter.rooms.get(room) || [])].map(
      (id) => io.sockets.sockets.get(id)?.data.name,
    );
    if (ack) ack({ ok: true, room, members });
  });

  socket.on('message', (data, ack) => {
    const { room, text } = data || {};
    if (!socket.rooms.has(room)) {
      if (ack) ack({ ok: false, code: 'not_member' });
      return;
    }
    const name = socket.data.name;
    const message = { id: String(nextId++), room, user: name, user_id: name, text, ts: Date.now(), kind: 'chat' };
    socket.to(room).emit('message', message);
    if (ack) ack({ ok: true, ...message });
  });

  socket.on('private', (data, ack) => {
    const { to, text } = data || {};
    const targets = byName.get(to);
    if (!targets || !socket.data.name) {
      if (ack) ack({ ok: false, code: 'user_offline' });
      return;
    }
    const name = socket.data.name;
    const message = { id: `p${nextId++}`, from: { id: name, name }, to: { id: to, name: to }, text, ts: Date.now() };
    for (const target of targets) target.emit('private', message);
    if (ack) ack({ ok: true, ...message });
  });

  socket.on('disconnect', () => {
    const name = socket.data.name;
    const set = name && byName.get(name);
    if (set) {
      set.delete(socket);
      if (set.size === 0) byName.delete(name);
    }
  });
});

server.listen(Number(process.env.BENCH_PORT || 0), '127.0.0.1', () => {
  console.log(`BENCH_LISTENING ${server.address().port}`);
});

// The harness kills this process; the time limit only guards against a leftover.
setTimeout(() => process.exit(0), Number(process.env.BENCH_MAX_SECONDS || 10800) * 1000).unref();

process.on('SIGTERM', () => process.exit(0));
