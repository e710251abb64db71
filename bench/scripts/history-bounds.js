'use strict';
// What room history keeps after everyone has left, in memory and in Redis:
//
//   node bench/scripts/history-bounds.js memory [server-binary] [config-json]
//   node bench/scripts/history-bounds.js redis  [server-binary] [config-json]
//
// memory: starts the server (default target/release/palaver-server, memory
// history, a free port), has 51 clients join 16 rooms each (810 rooms) and send 9
// messages of 2000 four-byte characters to each room, disconnects them all, and
// prints the server's RSS before, with everyone in, right after they left and
// once `wait_ms` (default 0) more have passed, plus how many rooms and messages a
// reader then finds, as one JSON line.
//
// redis: starts a private redis-server (tests/support/redis.js) and the server in
// cluster mode on it, sends 1000 messages to one room and 1000 spread over 100
// rooms, and prints DBSIZE and INFO memory's used_memory before and after each.
//
// config-json is merged into the engine configuration (e.g. '{"history":
// {"memory_idle_secs": 2}}' and `wait_ms` in the same object for the memory run).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { io } = require(path.join(__dirname, '..', '..', 'tests', 'node_modules', 'socket.io-client'));

const mode = process.argv[2] || 'memory';
const bin = path.resolve(process.argv[3] || path.join(__dirname, '..', '..', 'target', 'release', 'palaver-server'));
const extra = JSON.parse(process.argv[4] || '{}');
const waitMs = extra.wait_ms || 0;
delete extra.wait_ms;

const CLIENTS = 51;
const ROOMS_PER_CLIENT = 16;
const PER_ROOM = 9;
const TEXT = '😀'.repeat(2000);
const LIMITS = { messages_per_second: 100000, message_burst: 100000, requests_per_second: 100000, request_burst: 100000, room_change_burst: 100 };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function merge(base, more) {
  const out = { ...base };
  for (const [key, value] of Object.entries(more)) {
    out[key] = value && typeof value === 'object' && !Array.isArray(value) ? merge(base[key] || {}, value) : value;
  }
  return out;
}

/** Starts the server with `config`; resolves with its URL and process. */
function startServer(config) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'palaver-history-bounds-'));
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(config));
  const child = spawn(bin, ['--config', configPath, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: 'error' },
    cwd: dir,
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (data) => {
      out += data;
      const found = /(http:\/\/[^\s/]+)\//.exec(out);
      if (found) resolve({ url: found[1], child });
    });
    child.on('exit', (code, signal) => reject(new Error(`the server exited before listening (${code ?? signal})`)));
  });
}

const rssMb = (child) => +(Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024).toFixed(1);

async function client(url, name) {
  const socket = io(url, { forceNew: true, reconnection: false, transports: ['websocket'], auth: { name } });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

async function request(socket, event, payload) {
  const reply = await socket.timeout(30000).emitWithAck(event, payload);
  if (!reply.ok) throw new Error(`${event}: ${JSON.stringify(reply)}`);
  return reply;
}

async function memory() {
  const config = merge({ port: 0, history: { storage: 'memory' }, limits: { ...LIMITS, max_connections_per_ip: 200 } }, extra);
  const { url, child } = await startServer(config);
  const before = rssMb(child);
  const sockets = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(url, `writer${i}`)));
  await Promise.all(
    sockets.map(async (socket, i) => {
      for (let r = 0; r < ROOMS_PER_CLIENT; r++) {
        const room = `room-${i}-${r}`;
        await request(socket, 'join', { room });
        for (let m = 0; m < PER_ROOM; m++) await request(socket, 'message', { room, text: TEXT });
      }
    }),
  );
  const full = rssMb(child);
  for (const socket of sockets) socket.close();
  await sleep(500);
  const left = rssMb(child);
  await sleep(waitMs);
  const later = rssMb(child);
  // Reads every room's history (joining makes it occupied again: measured last).
  let rooms = 0;
  let messages = 0;
  const readers = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(url, `reader${i}`)));
  await Promise.all(
    readers.map(async (socket, i) => {
      for (let r = 0; r < ROOMS_PER_CLIENT; r++) {
        const { history } = await request(socket, 'join', { room: `room-${i}-${r}` });
        rooms += history.length > 0 ? 1 : 0;
        messages += history.length;
      }
    }),
  );
  for (const socket of readers) socket.close();
  console.log(
    JSON.stringify({
      rooms_written: CLIENTS * ROOMS_PER_CLIENT,
      messages_written: CLIENTS * ROOMS_PER_CLIENT * PER_ROOM,
      rss_mb: { before, everyone_in: full, after_leaving: left, [`after_${waitMs}_ms`]: later },
      kept: { rooms, messages },
    }),
  );
  child.kill('SIGKILL');
}

async function redis() {
  const { startRedis } = require(path.join(__dirname, '..', '..', 'tests', 'support', 'redis.js'));
  const server = await startRedis();
  const config = merge(
    { port: 0, history: { storage: 'memory' }, cluster: { redis_url: server.url, key_prefix: 'bounds' }, limits: { ...LIMITS, max_rooms_per_connection: 128 } },
    extra,
  );
  const { url, child } = await startServer(config);
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await server.command('INFO', 'memory'))[1]);
  const figures = async () => ({ keys: await server.command('DBSIZE'), used_memory: await usedMemory() });
  const socket = await client(url, 'sender');
  const send = async (rooms) => {
    for (const room of rooms) await request(socket, 'join', { room });
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) => request(socket, 'message', { room: rooms[(i + k) % rooms.length], text: `message ${i + k}` })),
      );
    }
  };
  const start = await figures();
  await send(['one-room']);
  const oneRoom = await figures();
  await send(Array.from({ length: 100 }, (_, r) => `room-${r}`));
  const hundredRooms = await figures();
  console.log(JSON.stringify({ start, after_1000_in_one_room: oneRoom, after_1000_more_over_100_rooms: hundredRooms }));
  socket.close();
  child.kill('SIGKILL');
  await server.stop('SIGKILL');
}

(mode === 'redis' ? redis() : memory()).then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
