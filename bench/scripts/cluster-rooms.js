'use strict';
// What a `rooms` request and a new connection cost a cluster node:
//
//   node bench/scripts/cluster-rooms.js [server-binary] [rooms] [requests]
//
// starts a private redis-server (tests/support/redis.js: a free loopback port,
// never 6379) and one node on it (default target/release/palaver-server), fills
// `rooms` (default 960) rooms with 16 per client, then sends `requests` (default
// 200) `rooms` requests one after another, then the same number from as many
// clients at once, then opens 20 connections; for each phase it prints the Redis
// commands run (INFO commandstats, scripts' own calls included) per request and the
// latency percentiles, and the Redis outages the node went through (a read that
// takes longer than cluster.redis_timeout_ms puts it into outage mode), as one JSON line (bench/results/HARDENING.md).
// Needs `make setup-test` (socket.io-client from tests/node_modules).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const repo = path.join(__dirname, '..', '..');
const bin = process.argv[2] || path.join(repo, 'target', 'release', 'palaver-server');
process.env.PALAVER_SERVER_BIN = path.resolve(bin);
const { io } = require(path.join(repo, 'tests', 'node_modules', 'socket.io-client'));
const { startRedis } = require(path.join(repo, 'tests', 'support', 'redis.js'));
const { startServer } = require(path.join(repo, 'tests', 'support', 'server.js'));

const roomCount = Number(process.argv[3] || 960);
const requests = Number(process.argv[4] || 200);
const PER_CLIENT = 16;

function connect(url, auth) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], auth });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

const ask = (socket, event, payload) =>
  new Promise((resolve) => (payload === undefined ? socket.emit(event, resolve) : socket.emit(event, payload, resolve)));

async function commands(redis) {
  const info = (await redis.command('INFO', 'commandstats')).toString();
  let total = 0;
  for (const found of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (found[1] !== 'info' && found[1] !== 'config') total += Number(found[2]);
  }
  return total;
}

function percentiles(ms) {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (p) => +sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(2);
  return { p50_ms: at(0.5), p99_ms: at(0.99) };
}

/** Runs `one` `n` times (`together`: all at once) and measures it. */
async function phase(redis, n, together, one) {
  await redis.command('CONFIG', 'RESETSTAT');
  const times = [];
  const timed = async (i) => {
    const t0 = process.hrtime.bigint();
    await one(i);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  };
  if (together) await Promise.all(Array.from({ length: n }, (_, i) => timed(i)));
  else for (let i = 0; i < n; i += 1) await timed(i);
  return { commands_per_request: +((await commands(redis)) / n).toFixed(1), ...percentiles(times) };
}

async function main() {
  const redis = await startRedis();
  const config = {
    cluster: { redis_url: redis.url },
    history: { storage: 'memory' },
    limits: {
      requests_per_second: 100000,
      request_burst: 100000,
      room_changes_per_second: 1000,
      room_change_burst: 1000,
      max_connections_per_ip: 100000,
      max_sessions_per_ip: 100000,
      max_sockets_per_ip: 100000,
    },
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'palaver-rooms-'));
  const server = await startServer({ dir, config });
  const sockets = [];
  try {
    for (let first = 0; first < roomCount; first += PER_CLIENT) {
      const socket = await connect(server.url, { name: `filler${first}` });
      sockets.push(socket);
      for (let i = first; i < Math.min(first + PER_CLIENT, roomCount); i += 1) {
        const reply = await ask(socket, 'join', { room: `room-${i}` });
        if (!reply.ok) throw new Error(`join: ${JSON.stringify(reply)}`);
      }
    }
    const asker = await connect(server.url);
    sockets.push(asker);
    const sequential = await phase(redis, requests, false, () => ask(asker, 'rooms'));
    const crowd = await Promise.all(Array.from({ length: requests }, () => connect(server.url)));
    sockets.push(...crowd);
    const concurrent = await phase(redis, requests, true, (i) => ask(crowd[i], 'rooms'));
    const connections = await phase(redis, 20, false, async () => {
      const socket = io(server.url, { forceNew: true, reconnection: false, transports: ['websocket'] });
      await new Promise((resolve) => socket.once('rooms', resolve));
      socket.close();
    });
    const health = await (await fetch(`${server.url}/healthz`)).json();
    const outages = health.cluster.redis_outages;
    console.log(JSON.stringify({ rooms: roomCount, requests, sequential, concurrent, connections, redis_outages: outages }));
  } finally {
    for (const socket of sockets) socket.close();
    await server.stop('SIGKILL');
    await redis.stop('SIGKILL');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
