'use strict';
// The junk battery (tests/support/junk.js) against a `palaver/socket.io` host app
// (junk-host.js here), the face where an app's own handlers receive what the parsers
// let through. Honest socket.io-client clients chat through the app in rooms while
// attackers send malformed Engine.IO/Socket.IO packets over both transports, open
// half-open sockets and trickle headers. It passes when the app's process stays up
// and reports no fault, no honest client is disconnected, every honest message is
// acknowledged within ACK_BOUND_MS and reaches the room's other honest clients in
// order, and the process's resident set stays under RSS_BOUND_MIB.
//
// JUNK_SECONDS (default 20; `make soak` runs 900), JUNK_SEED and JUNK_WORKERS as in
// tests/e2e/junk.test.js.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { test } = require('node:test');
const { io } = require('socket.io-client');
const { prng, seedFromEnv, attack, Arena, watchRss } = require('../support/junk.js');

const SECONDS = Number(process.env.JUNK_SECONDS || 20);
const SEED = seedFromEnv();
const WORKERS = Number(process.env.JUNK_WORKERS || 8);
const ATTACK_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const ACK_BOUND_MS = 10000;
/** Node, V8 and the engine in one process (debug addon); idle it is about 65 MiB. */
const RSS_BOUND_MIB = Number(process.env.JUNK_HOST_RSS_BOUND_MIB || 256);

const HONEST = [
  { name: 'honest-0', options: { transports: ['websocket'] }, rooms: ['hall', 'side'] },
  { name: 'honest-1', options: { transports: ['polling'] }, rooms: ['hall', 'side'] },
  { name: 'honest-2', options: {}, rooms: ['hall'] },
  { name: 'honest-3', options: { transports: ['websocket'] }, rooms: ['side'] },
];

/** Starts junk-host.js on a free port; resolves with {child, url, output(), exited}. */
async function startHost() {
  const child = spawn(process.execPath, [path.join(__dirname, 'junk-host.js')], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  process.on('exit', () => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  let gone = null;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((gone = { code, signal }))));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the junk host did not start:\n${output}`)), 60000);
    const poll = setInterval(() => {
      const match = /listening on (\d+)/.exec(output);
      if (match || gone) {
        clearInterval(poll);
        clearTimeout(timer);
        if (match) resolve(Number(match[1]));
        else reject(new Error(`the junk host exited (${gone.code ?? gone.signal}):\n${output}`));
      }
    }, 20);
  });
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited, gone: () => gone };
}

/** A connected socket.io-client socket that records its `said` events and disconnects. */
async function honestClient(url, spec) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 10000, auth: { name: spec.name }, ...spec.options });
  const client = { spec, socket, said: [], disconnect: null };
  socket.on('said', (m) => client.said.push(m));
  socket.on('disconnect', (reason) => (client.disconnect = reason));
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  for (const room of spec.rooms) {
    const reply = await socket.timeout(ACK_BOUND_MS).emitWithAck('join', { room });
    assert.equal(reply.ok, true);
  }
  return client;
}

async function chat(client, rng, deadline, report) {
  let seq = 0;
  while (Date.now() < deadline) {
    const room = rng.pick(client.spec.rooms);
    const text = `${client.spec.name} ${seq++}`;
    const started = Date.now();
    try {
      const reply = await client.socket.timeout(ACK_BOUND_MS).emitWithAck('say', { room, text });
      if (reply?.ok !== true) throw new Error(`refused: ${JSON.stringify(reply)}`);
    } catch (err) {
      report.failures.push(`${client.spec.name}: "${text}": ${err.message}`);
      return;
    }
    report.slowestAckMs = Math.max(report.slowestAckMs, Date.now() - started);
    report.acked.push({ sender: client.spec.name, room, text });
    await new Promise((resolve) => setTimeout(resolve, rng.int(50, 400)));
  }
}

test(`junk battery on palaver/socket.io: ${SECONDS} s (JUNK_SEED=${SEED})`, { timeout: (SECONDS + 120) * 1000 }, async (t) => {
  console.log(`junk battery (socket.io host): JUNK_SEED=${SEED} JUNK_SECONDS=${SECONDS}`);
  const host = await startHost();
  t.after(() => host.child.kill('SIGKILL'));
  const clients = [];
  t.after(() => clients.forEach((c) => c.socket.close()));
  for (const spec of HONEST) clients.push(await honestClient(host.url, spec));

  const rss = watchRss(host.child.pid);
  const report = { acked: [], failures: [], slowestAckMs: 0 };
  const deadline = Date.now() + SECONDS * 1000;
  const rng = prng(SEED ^ 0x9e3779b9);
  const [counts] = await Promise.all([
    attack(new Arena(host.url), { seed: SEED, workers: WORKERS, deadline, addresses: ATTACK_ADDRESSES }),
    ...clients.map((c) => chat(c, prng(rng.int(0, 2 ** 31)), deadline, report)),
  ]);
  const memory = rss.stop();
  console.log(
    `junk battery (socket.io host) summary: ${JSON.stringify({
      seed: SEED,
      attacks: counts,
      honestMessages: report.acked.length,
      slowestAckMs: report.slowestAckMs,
      rssMiB: { start: memory.first >> 10, max: memory.max >> 10, end: memory.last >> 10, quarters: memory.quarters.map((k) => k >> 10) },
    })}`,
  );

  assert.equal(host.gone(), null, `the host exited:\n${host.output().slice(-4000)}`);
  assert.deepEqual(report.failures, [], 'honest messages refused or unacknowledged');
  for (const c of clients) {
    assert.equal(c.disconnect, null, `${c.spec.name} was disconnected`);
    assert.equal(c.socket.connected, true, `${c.spec.name} is not connected`);
  }
  assert.ok(memory.max >> 10 < RSS_BOUND_MIB, `host RSS reached ${memory.max >> 10} MiB (bound ${RSS_BOUND_MIB} MiB)`);

  // Every honest member of a room gets the others' acknowledged messages there, in order.
  for (const c of clients) {
    const expected = report.acked.filter((m) => m.sender !== c.spec.name && c.spec.rooms.includes(m.room));
    const isHonest = (m) => HONEST.some((h) => h.name === m.from) && m.from !== c.spec.name;
    const until = Date.now() + 30000;
    while (c.said.filter(isHonest).length < expected.length && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const got = c.said.filter(isHonest);
    for (const room of c.spec.rooms) {
      const want = expected.filter((m) => m.room === room).map((m) => `${m.sender}: ${m.text}`);
      const have = got.filter((m) => m.room === room).map((m) => `${m.from}: ${m.text}`);
      for (const sender of HONEST.map((h) => h.name)) {
        const mine = (list) => list.filter((line) => line.startsWith(`${sender}: `));
        assert.deepEqual(mine(have), mine(want), `${c.spec.name} got ${sender}'s messages in ${room} otherwise than acked`);
      }
    }
  }
  // The app's own error listener reports handler faults; junk must cause none.
  assert.doesNotMatch(host.output(), /junk host error|panic/i, host.output().slice(-4000));
  assert.equal(host.gone(), null, 'the host exited');
});
