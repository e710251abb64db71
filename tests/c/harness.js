'use strict';
// Shared by c_api.test.js, sio_host.test.js and valgrind.test.js: builds the C test
// programs and drives the C hosts tests/c/driver.c and tests/c/sio_host.c (commands
// on stdin, one JSON line per output on stdout).

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const { io, Manager } = require('socket.io-client');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'target', 'c-tests');
const bin = (name) => path.join(BIN, name);

/** Runs a build step; fails with its output. */
function buildStep(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', ...options });
  if (result.error) throw result.error;
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`,
  );
}

/**
 * cargo build -p palaver-ffi, then make -C tests/c. `node --test` runs test files
 * in parallel: flock keeps two makes from linking the same programs at once
 * (cargo has a lock of its own).
 */
function buildCPrograms() {
  buildStep('cargo', ['build', '-p', 'palaver-ffi']);
  buildStep('flock', [path.join(ROOT, 'target', 'c-tests.lock'), 'make', '-C', path.join('tests', 'c')]);
}

/** Runs a program to its end: {code, signal, stdout, stderr, ms}; kills it at the timeout. */
function run(command, args, { timeoutMs = 30000, env = {} } = {}) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut: signal === 'SIGKILL' });
    });
  });
}

/** The last `n` lines of a text, for assertion messages. */
const tail = (text, n = 60) => text.split('\n').slice(-n).join('\n');

const KIND_VALUES = {
  connected: 0,
  disconnected: 1,
  joined: 2,
  left: 3,
  message: 4,
  private: 5,
  custom: 6,
  socket_gate: 7,
  socket_connect: 8,
  socket_event: 9,
  socket_disconnect: 10,
  ws_open: 11,
  ws_message: 12,
  ws_close: 13,
};

/**
 * The struct fields an event must have, derived from its `json` field (the whole
 * event, docs/PROTOCOL.md "Host events and commands"). The JSON text fields are
 * checked by `expectedJsonFields`.
 */
function expectedFields(json) {
  const none = {
    sid: json.sid,
    user_id: null,
    user_name: null,
    room: null,
    text: null,
    message_id: null,
    to_user_id: null,
    event_name: null,
    reason: null,
    ns: null,
    ts: 0,
    ack_id: 0,
    gate_id: 0,
    ws_id: 0,
    close_code: 0,
  };
  const user = (u) => (u ? { user_id: u.id, user_name: u.name } : {});
  switch (json.type) {
    case 'connected':
      return { ...none, ...user(json.user) };
    case 'disconnected':
      return { ...none, ...user(json.user), reason: json.reason };
    case 'joined':
    case 'left':
      return { ...none, ...user(json.user), room: json.room };
    case 'message':
      return {
        ...none,
        room: json.message.room,
        user_id: json.message.user_id,
        user_name: json.message.user,
        text: json.message.text,
        message_id: json.message.id,
        ts: json.message.ts,
      };
    case 'private':
      return {
        ...none,
        ...user(json.message.from),
        to_user_id: json.message.to.id,
        text: json.message.text,
        message_id: json.message.id,
        ts: json.message.ts,
      };
    case 'custom':
      return { ...none, ...user(json.user), event_name: json.event, ack_id: json.ack ?? 0 };
    case 'socket_gate':
      return { ...none, ns: json.ns, gate_id: json.gate };
    case 'socket_connect':
      return { ...none, ns: json.ns };
    case 'socket_event':
      return { ...none, ns: json.ns, event_name: json.event, ack_id: json.ack ?? 0 };
    case 'socket_disconnect':
      return { ...none, ns: json.ns, reason: json.reason };
    case 'ws_open':
      return { ...none, sid: null, ws_id: json.id };
    case 'ws_message':
      return { ...none, sid: null, ws_id: json.id, text: json.text ?? null };
    case 'ws_close':
      return { ...none, sid: null, ws_id: json.id, close_code: json.code, reason: json.reason };
    default:
      throw new Error(`unknown event type ${json.type}`);
  }
}

/** The JSON text fields: what each must parse to, or undefined where it must be NULL. */
function expectedJsonFields(json) {
  const custom = json.type === 'custom';
  return {
    data_json: custom ? json.data : undefined,
    args_json: custom || json.type === 'socket_event' ? json.args : undefined,
    handshake_json: ['socket_gate', 'socket_connect', 'ws_open'].includes(json.type) ? json.handshake : undefined,
  };
}

/** Asserts that an event line's struct fields are what its `json` field says. */
function assertFieldsMatchJson(event) {
  const json = event.parsed;
  assert.equal(event.kind, json.type, `kind vs json.type: ${event.line}`);
  assert.equal(event.kind_value, KIND_VALUES[json.type], `palaver_event_kind value: ${event.line}`);
  const fields = Object.fromEntries(Object.keys(expectedFields(json)).map((k) => [k, event[k]]));
  assert.deepEqual(fields, expectedFields(json), `struct fields vs json: ${event.line}`);
  for (const [name, expected] of Object.entries(expectedJsonFields(json))) {
    if (expected === undefined) {
      assert.equal(event[name], null, `${name} of a ${json.type} event: ${event.line}`);
    } else {
      assert.equal(typeof event[name], 'string', `${name} of a ${json.type} event: ${event.line}`);
      assert.deepEqual(JSON.parse(event[name]), expected, `${name} vs json: ${event.line}`);
    }
  }
  if (json.type === 'ws_message') {
    assert.equal(event.attachments.length, json.binary ? 1 : 0, `attachments of a ws_message: ${event.line}`);
  } else if (json.type !== 'socket_event') {
    assert.deepEqual(event.attachments, [], `attachments of a ${json.type} event: ${event.line}`);
  }
}

/**
 * A C test host as a child process: tests/c/driver.c (the chat) or
 * tests/c/sio_host.c (a Socket.IO app), both printing test_host.h's lines.
 */
class Driver {
  /**
   * Starts `program` (under `wrapper`, e.g. valgrind, when given) and resolves
   * once it printed its ready line.
   */
  static async start({
    program = 'driver',
    config = { port: 0, history: { storage: 'memory' } },
    wrapper = [],
    readyTimeoutMs = 20000,
  } = {}) {
    const [command, ...args] = [...wrapper, bin(program), JSON.stringify(config)];
    const child = spawn(command, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const driver = new Driver(child);
    const ready = await driver.waitFor((l) => l.type === 'ready' || l.type === 'result', 'ready line', readyTimeoutMs);
    assert.equal(ready.type, 'ready', `the driver did not start: ${ready.line}\n${driver.stderr}`);
    assert.ok(ready.port > 0, ready.line);
    driver.port = ready.port;
    driver.url = `http://127.0.0.1:${ready.port}`;
    return driver;
  }

  constructor(child) {
    this.child = child;
    this.lines = [];
    this.stderr = '';
    this.waiters = new Set();
    child.stderr.on('data', (chunk) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = { type: 'unparsable' };
      }
      entry.line = line;
      entry.index = this.lines.length;
      if (entry.type === 'event') entry.parsed = JSON.parse(entry.json);
      this.lines.push(entry);
      for (const waiter of this.waiters) waiter();
    });
  }

  /** Resolves with the first line from index `from` on that matches `predicate`. */
  waitFor(predicate, what, timeoutMs = 10000, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.slice(from).find(predicate);
        if (!found) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${what} from the driver within ${timeoutMs} ms; output:\n${this.output()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The first event line (from index `from`) matching `predicate`. */
  event(predicate, what, timeoutMs = 10000, from = 0) {
    return this.waitFor((l) => l.type === 'event' && predicate(l), `${what} event`, timeoutMs, from);
  }

  /** Sends one command line and resolves with its result line. */
  command(text, timeoutMs = 10000) {
    const from = this.lines.length;
    this.child.stdin.write(`${text}\n`);
    const cmd = text.split(' ')[0];
    return this.waitFor(
      (l) => (l.type === 'result' && l.cmd === cmd) || l.type === 'unknown_command',
      `result of "${text}"`,
      timeoutMs,
      from,
    );
  }

  events() {
    return this.lines.filter((l) => l.type === 'event');
  }

  output() {
    return tail(this.lines.map((l) => l.line).join('\n'), 40) + (this.stderr ? `\nstderr:\n${tail(this.stderr)}` : '');
  }

  /**
   * No violation of the threading rules, no failed call of the app
   * (sio_host.c), nothing unparsable, every event consistent.
   */
  assertClean() {
    const bad = this.lines.filter((l) => ['violation', 'app_error', 'unparsable'].includes(l.type));
    assert.deepEqual(bad.map((l) => l.line), [], 'violations, app errors or unparsable lines from the host');
    for (const event of this.events()) assertFieldsMatchJson(event);
  }

  /** Sends quit and waits for the exit. */
  async quit(timeoutMs = 20000) {
    this.child.stdin.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * socket.io-client sockets for tests/c/sio_host.c: each opened on a namespace
 * over one transport (or on a shared Manager), closed together.
 */
class Clients {
  constructor(url, { timeoutMs = 10000 } = {}) {
    this.url = url;
    this.timeoutMs = timeoutMs;
    this.sockets = new Set();
  }

  /**
   * A socket on namespace `ns` over `transport` (or of `manager`), resolved once
   * connected and once the host sent its first event (`ready` on "/" and "/any",
   * whose listeners are set up then; `admin-welcome` on "/admin"), whose
   * arguments are kept in `socket.greeting`; rejected with the connect_error.
   */
  open(ns, transport, { auth, manager } = {}) {
    const options = { forceNew: true, reconnection: false, transports: [transport], auth, timeout: this.timeoutMs };
    const socket = manager ? manager.socket(ns, { auth }) : io(`${this.url}${ns === '/' ? '' : ns}`, options);
    this.sockets.add(socket);
    const greeting = this.next(socket, ns === '/admin' ? 'admin-welcome' : 'ready');
    greeting.catch(() => {}); // a refused connection never gets it
    return new Promise((resolve, reject) => {
      socket.once('connect_error', (err) => reject(err));
      socket.once('connect', () =>
        greeting.then((args) => {
          socket.greeting = args;
          resolve(socket);
        }, reject),
      );
    });
  }

  /** A Manager (one connection) for several namespaces. */
  manager(transport) {
    return new Manager(this.url, { forceNew: true, reconnection: false, transports: [transport], timeout: this.timeoutMs });
  }

  /** Every argument of the answer to an emit with an acknowledgement. */
  ack(socket, event, ...args) {
    return new Promise((resolve, reject) => {
      socket.timeout(this.timeoutMs).emit(event, ...args, (err, ...answer) => (err ? reject(err) : resolve(answer)));
    });
  }

  /** Every argument of the next `event` on `socket`. */
  next(socket, event) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} within ${this.timeoutMs} ms`)), this.timeoutMs);
      socket.once(event, (...args) => {
        clearTimeout(timer);
        resolve(args);
      });
    });
  }

  closeAll() {
    for (const socket of this.sockets) socket.close();
    this.sockets.clear();
  }
}

module.exports = { ROOT, BIN, bin, buildCPrograms, run, tail, Driver, Clients, assertFieldsMatchJson };
