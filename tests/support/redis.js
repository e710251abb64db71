'use strict';
// A private Redis for the cluster tests: the Debian `redis-server` binary on a free
// loopback port, with its data (append-only file, fsynced on every write) in a
// temporary directory. It never touches any other Redis (never port 6379) and is
// killed, and its directory removed, when the test process exits.
//
//   const redis = await startRedis();
//   redis.url                    // redis://127.0.0.1:PORT
//   await redis.command('PING')  // a tiny RESP client, for inspection in tests
//   await redis.stop();          // SHUTDOWN NOSAVE (or a signal); port and dir are kept
//   await redis.restart();       // same port, same dir: the AOF brings the data back

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REDIS_BIN = process.env.PALAVER_REDIS_SERVER || 'redis-server';
/** A Redis port the tests must never use: a developer's or CI's own Redis. */
const FORBIDDEN_PORTS = new Set([6379]);

const children = new Set();
const dirs = new Set();
function cleanUp() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}
process.on('exit', cleanUp);
// `exit` does not run when the process is killed by a signal; the test runner
// stops a file that hangs with SIGTERM, so clean up then too.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    cleanUp();
    process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
  });
}

let checkedBinary = null;
/** Throws a clear error when redis-server is not installed. */
function requireRedisServer() {
  if (checkedBinary === null) {
    const probe = spawnSync(REDIS_BIN, ['--version'], { encoding: 'utf8' });
    checkedBinary = probe.error
      ? probe.error
      : probe.status === 0
        ? true
        : new Error(`exit status ${probe.status}: ${probe.stderr}`);
  }
  if (checkedBinary !== true) {
    throw new Error(
      `the cluster tests need the Debian redis-server binary (${REDIS_BIN}), which is missing ` +
        `or broken (${checkedBinary.message}); \`make test\` installs it ` +
        `(scripts/ensure-debian-packages redis-server)`,
    );
  }
}

/** A free loopback TCP port (not 6379). */
async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: chosen } = server.address();
        server.close(() => resolve(chosen));
      });
    });
    if (!FORBIDDEN_PORTS.has(port)) return port;
  }
}

// ---- a tiny RESP2 client --------------------------------------------------------

function encode(args) {
  let out = `*${args.length}\r\n`;
  for (const arg of args) {
    const s = Buffer.from(String(arg));
    out += `$${s.length}\r\n${s.toString('binary')}\r\n`;
  }
  return Buffer.from(out, 'binary');
}

/** Parses one reply at `offset`; returns [value, nextOffset] or null when incomplete. */
function parse(buf, offset = 0) {
  const lineEnd = buf.indexOf('\r\n', offset);
  if (lineEnd < 0) return null;
  const type = String.fromCharCode(buf[offset]);
  const line = buf.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return [line, next];
    case '-': {
      const error = new Error(line);
      error.redisError = true;
      return [error, next];
    }
    case ':':
      return [Number(line), next];
    case '$': {
      const len = Number(line);
      if (len < 0) return [null, next];
      if (buf.length < next + len + 2) return null;
      return [buf.toString('utf8', next, next + len), next + len + 2];
    }
    case '*': {
      const len = Number(line);
      if (len < 0) return [null, next];
      const items = [];
      let at = next;
      for (let i = 0; i < len; i++) {
        const item = parse(buf, at);
        if (!item) return null;
        items.push(item[0]);
        at = item[1];
      }
      return [items, at];
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

/**
 * Sends one command on a fresh connection and resolves with the reply (Redis
 * errors reject). `timeoutMs` bounds connecting and answering.
 */
function command(port, args, { timeoutMs = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${args[0]} on port ${port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (error, value) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value);
    };
    socket.on('connect', () => socket.write(encode(args)));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let parsed;
      try {
        parsed = parse(buf);
      } catch (error) {
        finish(error);
        return;
      }
      if (!parsed) return;
      const [value] = parsed;
      if (value instanceof Error) finish(value);
      else finish(null, value);
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error(`redis ${args[0]} on port ${port}: connection closed`)));
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once Redis answers PING with PONG (rejects after `timeoutMs`). */
async function waitForPing(port, timeoutMs, exited) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    if (exited()) throw new Error('redis-server exited while starting');
    try {
      if ((await command(port, ['PING'], { timeoutMs: 500 })) === 'PONG') return;
    } catch (error) {
      // LOADING (replaying the AOF) or not listening yet
      last = error;
    }
    await sleep(25);
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms (${last && last.message})`);
}

/**
 * Starts a private redis-server with AOF persistence (`appendfsync always`) in a
 * temporary directory. Resolves once it answers PING.
 */
async function startRedis({ port, dir } = {}) {
  requireRedisServer();
  const dataDir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'palaver-redis-'));
  dirs.add(dataDir);
  let chosenPort = port || (await freePort());
  if (FORBIDDEN_PORTS.has(chosenPort)) throw new Error(`the tests never use Redis port ${chosenPort}`);

  const redis = {
    port: chosenPort,
    dir: dataDir,
    url: `redis://127.0.0.1:${chosenPort}`,
    process: null,
    exited: null,
    output: '',
    /** Runs one command (e.g. `redis.command('XLEN', key)`). */
    command: (...args) => command(redis.port, args),
    /** Whether the server process is running. */
    get running() {
      return Boolean(redis.process && redis.process.exitCode === null && redis.process.signalCode === null);
    },
    /**
     * Stops the server and waits for the process to end. `how`: "shutdown"
     * (SHUTDOWN NOSAVE: the AOF is already fsynced), or a signal name such as
     * "SIGTERM" or "SIGKILL".
     */
    async stop(how = 'shutdown') {
      if (!redis.running) return redis.exited;
      if (how === 'shutdown') {
        // The connection closes without an answer when the server exits.
        await command(redis.port, ['SHUTDOWN', 'NOSAVE']).catch(() => {});
      } else {
        redis.process.kill(how);
      }
      const timer = setTimeout(() => redis.running && redis.process.kill('SIGKILL'), 5000);
      const result = await redis.exited;
      clearTimeout(timer);
      return result;
    },
    /** Starts the server again on the same port with the same data directory. */
    async restart() {
      if (redis.running) await redis.stop();
      await launch();
      return redis;
    },
  };

  async function launch() {
    const args = [
      '--port', String(redis.port),
      '--bind', '127.0.0.1',
      '--protected-mode', 'yes',
      '--dir', redis.dir,
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--save', '',
      '--daemonize', 'no',
      '--logfile', '',
      '--loglevel', 'warning',
    ];
    const child = spawn(REDIS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    redis.process = child;
    redis.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
      }),
    );
    child.stdout.on('data', (chunk) => (redis.output += chunk));
    child.stderr.on('data', (chunk) => (redis.output += chunk));
    // A running Redis does not keep the test process alive; `exit` kills it.
    child.unref();
    child.stdout.unref();
    child.stderr.unref();
    const spawnError = new Promise((_, reject) => child.once('error', reject));
    try {
      await Promise.race([
        waitForPing(redis.port, 10000, () => child.exitCode !== null || child.signalCode !== null),
        spawnError,
      ]);
    } catch (error) {
      child.kill('SIGKILL');
      throw new Error(`${error.message}\nredis-server output:\n${redis.output}`);
    }
  }

  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      // The free port was taken in the meantime: pick another (only on first start).
      if (port || attempt >= 3 || !/Address already in use/i.test(error.message)) throw error;
      chosenPort = await freePort();
      redis.port = chosenPort;
      redis.url = `redis://127.0.0.1:${chosenPort}`;
    }
  }
  return redis;
}

module.exports = { startRedis, requireRedisServer, freePort, command };
