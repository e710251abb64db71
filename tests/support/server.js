'use strict';
// Shared fixture for the end-to-end tests: starts the real standalone server
// (target/debug/palaver-server) on a free loopback port and connects real
// socket.io-client sockets to it.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { io } = require('socket.io-client');
const jwt = require('jsonwebtoken');

const ROOT = path.resolve(__dirname, '..', '..');
const SERVER_BIN =
  process.env.PALAVER_SERVER_BIN || path.join(ROOT, 'target', 'debug', 'palaver-server');

/** Temporary directories to remove and servers to kill when the process exits. */
const tempDirs = new Set();
const children = new Set();
process.on('exit', () => {
  // A test process that ends (or crashes) leaves no server behind.
  for (const child of children) child.kill('SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the process exits. */
function tempDir(prefix = 'palaver-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/**
 * Starts the standalone server. `config` is the engine configuration (JSON, see
 * docs/PROTOCOL.md); the port is always chosen by the OS. History is in memory unless
 * `config.history` says otherwise. `admin: true` opens the admin listener on a free
 * loopback port (`server.admin`, `server.stats()`). `bin` and `cwd` run another copy
 * of the binary, from another directory. Resolves once the server listens.
 */
async function startServer({ config = {}, args = [], env = {}, dir = tempDir(), admin = false, bin = SERVER_BIN, cwd } = {}) {
  const fullConfig = {
    history: { storage: 'memory' },
    ...config,
    port: 0,
  };
  const configPath = path.join(dir, `config-${process.pid}-${Date.now()}-${Math.random()}.json`);
  fs.writeFileSync(configPath, JSON.stringify(fullConfig));
  const adminArgs = admin ? ['--admin-listen', '127.0.0.1:0'] : [];
  const child = spawn(bin, ['--config', configPath, '--port', '0', ...adminArgs, ...args], {
    cwd,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20000);
    const onData = (chunk) => {
      output += chunk;
      const match = /Palaver chat on (http:\/\/[^\s/]+)\//.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => (output += chunk));
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
  // Printed before the chat line, so it is in `output` by now.
  const adminUrl = /admin \(.*\) on (http:\/\/[^\s/]+)\//.exec(output)?.[1];
  const server = {
    url,
    /** The admin listener's base URL (with `admin: true`). */
    admin: adminUrl,
    /** The engine's counters from the admin listener's /stats. */
    async stats() {
      // Required here: ./e2e.js requires this module.
      const { httpRequest } = require('./e2e.js');
      const { status, body } = await httpRequest(`${adminUrl}/stats`);
      if (status !== 200) throw new Error(`/stats answered ${status}: ${body}`);
      return JSON.parse(body.toString());
    },
    process: child,
    dir,
    output: () => output,
    exited,
    /** Sends a signal and waits for the process to end. */
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return server;
}

/** A connected socket.io-client socket; rejects with the connect_error. */
function connect(url, options = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...options });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** Resolves with the next `event` payload matching `predicate`. */
function nextEvent(socket, event, predicate = () => true, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(payload);
    };
    socket.on(event, listener);
  });
}

/** Records every event a socket receives, for later inspection. */
function record(socket) {
  const events = [];
  socket.onAny((event, payload) => events.push({ event, payload }));
  return {
    events,
    of: (name) => events.filter((e) => e.event === name).map((e) => e.payload),
  };
}

/** Waits `ms` milliseconds. */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Signs an HS256 token. */
function sign(claims, secret, options = {}) {
  return jwt.sign(claims, secret, { algorithm: 'HS256', ...options });
}

module.exports = { ROOT, SERVER_BIN, startServer, connect, nextEvent, record, sleep, sign, tempDir };
