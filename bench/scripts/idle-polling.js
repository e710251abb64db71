// Idle memory of long-polling sessions: opens COUNT socket.io-client connections
// restricted to the polling transport against a running server, each joins a room
// of ROOM (ack awaited), then prints the server's RSS before and after (VmRSS of
// /proc/PID/status, once stable) and the KiB per session. Every idle session keeps
// one GET pending (answered at each ping), so this is what a polling client costs
// between its messages.
//
//   node bench/scripts/idle-polling.js URL PID [COUNT] [ROOM]
//
// Uses socket.io-client from tests/node_modules (`make setup-test`).
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { io } = require(path.join(__dirname, '../../tests/node_modules/socket.io-client'));

const [url, pidText, countText = '2000', roomText = '100'] = process.argv.slice(2);
if (!url || !pidText) {
  console.error('usage: node bench/scripts/idle-polling.js URL PID [COUNT] [ROOM]');
  process.exit(2);
}
const pid = Number(pidText);
const count = Number(countText);
const room = Number(roomText);

function rssKb() {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

async function settled() {
  let last = rssKb();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = rssKb();
    if (Math.abs(now - last) * 200 <= last) return now;
    last = now;
  }
}

// One agent with keep-alive for all sessions: each session holds one pending GET.
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function open(i) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['polling'], forceNew: true, reconnection: false, agent });
    const timer = setTimeout(() => reject(new Error(`session ${i} timed out`)), 60_000);
    socket.on('connect_error', (e) => reject(e));
    socket.on('connect', () => {
      socket.emit('join', { room: `idle-${Math.floor(i / room)}`, name: `p${i}` }, (answer) => {
        clearTimeout(timer);
        if (answer && answer.ok) resolve(socket);
        else reject(new Error(`join refused: ${JSON.stringify(answer)}`));
      });
    });
  });
}

(async () => {
  const before = await settled();
  const sockets = [];
  const inFlight = 50;
  for (let i = 0; i < count; i += inFlight) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + inFlight); j++) batch.push(open(j));
    sockets.push(...(await Promise.all(batch)));
  }
  const after = await settled();
  console.log(
    `polling sessions ${sockets.length}  RSS before ${(before / 1024).toFixed(1)} MiB  ` +
      `after ${(after / 1024).toFixed(1)} MiB  KiB per session ${((after - before) / sockets.length).toFixed(2)}`,
  );
  for (const s of sockets) s.close();
  agent.destroy();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
