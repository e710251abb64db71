'use strict';
// Shared helpers of the node tests (no test of its own: `node --test test/` runs
// every .js file under test/, this one included, which then just loads).

const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { io } = require('socket.io-client');

const PACKAGE_DIR = path.join(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures');
/** The host events of docs/PROTOCOL.md ("Host events and commands"). */
const HOST_EVENTS = ['connected', 'disconnected', 'joined', 'left', 'message', 'private', 'custom'];
/** A quiet engine for tests: history in memory, fast room lists, quick stop. */
const TEST_OPTIONS = Object.freeze({
  history: { storage: 'memory' },
  roomList: { intervalMs: 20 },
  stopTimeoutMs: 2000,
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the first `event` of `emitter` whose argument passes `filter`. */
function waitFor(emitter, event, { filter = () => true, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out waiting for ${event}`));
    }, timeout);
    function listener(value) {
      if (!filter(value)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(value);
    }
    emitter.on(event, listener);
  });
}

/** Records every host event of a chat; `next(type, filter)` awaits one (past or future). */
class HostLog {
  constructor(chat) {
    this.events = [];
    this._waiters = [];
    for (const type of HOST_EVENTS) {
      chat.on(type, (event) => {
        this.events.push(event);
        for (const waiter of [...this._waiters]) waiter(event);
      });
    }
  }

  of(type, filter = () => true) {
    return this.events.filter((e) => e.type === type && filter(e));
  }

  next(type, filter = () => true, timeout = 5000) {
    const seen = this.of(type, filter);
    if (seen.length > 0) return Promise.resolve(seen[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._waiters = this._waiters.filter((w) => w !== waiter);
        reject(new Error(`host never saw ${type}`));
      }, timeout);
      const waiter = (event) => {
        if (event.type !== type || !filter(event)) return;
        clearTimeout(timer);
        this._waiters = this._waiters.filter((w) => w !== waiter);
        resolve(event);
      };
      this._waiters.push(waiter);
    });
  }
}

/** Listens on a free port of 127.0.0.1; resolves with the port. */
async function listen(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server.address().port;
}

/** Closes an http server, dropping its idle keep-alive connections. */
function closeServer(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/**
 * A socket.io-client connection to 127.0.0.1:port (`options.scheme`: 'https' for
 * TLS); resolves once connected, rejects on connect_error.
 */
function connect(port, { scheme = 'http', ...options } = {}) {
  const socket = io(`${scheme}://127.0.0.1:${port}`, {
    reconnection: false,
    forceNew: true,
    timeout: 5000,
    ...options,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

/**
 * Collects the events a client receives (everything but the room lists), so that a
 * test can check that nothing unexpected arrived.
 */
function inbox(socket) {
  const received = [];
  socket.onAny((event, data) => {
    if (event !== 'rooms' && event !== 'groupList' && event !== 'presence') received.push({ event, data });
  });
  return received;
}

/** A plain HTTP request; resolves with {status, headers, body (text)}. */
function request(port, method, urlPath, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: urlPath, headers, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** How many connections an http server holds. */
function connections(server) {
  return new Promise((resolve, reject) =>
    server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

/**
 * Runs a Node script (a fixture file, or `['-e', source]`) in a child process with
 * the package directory as cwd. Resolves with {code, signal, stdout, stderr, lines,
 * ms}; `lines` are the JSON lines of stdout. `onLine(line, child)` sees each JSON
 * line as it arrives. The child is killed after `timeout` ms (then `timedOut`).
 */
function runNode(args, { env = {}, timeout = 20000, onLine } = {}) {
  const childEnv = { ...process.env, PALAVER_FIXTURE: '1', ...env };
  delete childEnv.NODE_TEST_CONTEXT; // the child is no test of this runner
  const started = Date.now();
  const child = spawn(process.execPath, args, { cwd: PACKAGE_DIR, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let pending = '';
  const lines = [];
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    stdout += chunk;
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        continue;
      }
      lines.push(line);
      if (onLine) onLine(line, child);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    stderr += chunk;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeout);
  const done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, lines, timedOut, ms: Date.now() - started });
    });
  });
  done.child = child;
  return done;
}

module.exports = {
  FIXTURES,
  HOST_EVENTS,
  PACKAGE_DIR,
  TEST_OPTIONS,
  HostLog,
  closeServer,
  connect,
  connections,
  inbox,
  listen,
  request,
  runNode,
  sleep,
  waitFor,
};
