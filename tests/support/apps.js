'use strict';
// Helpers for the tests of the tutorial apps (examples/socketio-apps/, tests in
// tests/apps/): start an app as a child process (`node <entry>` in its folder, the entry
// read from its package.json "start" script) with PORT and env, wait until it answers,
// and kill it at exit; real clients for its wire contract (npm socket.io-client and ws)
// that record everything they receive; its pages in Chromium (tests/support/browser.js)
// with their console lines recorded.
//
// Ports: the pages hard-code localhost:3000, so page tests run their app on port 3000
// (PAGE_PORT) and open http://localhost:3000; the app test files therefore run one at a
// time (`node --test --test-concurrency=1 apps/`) and fail with a clear message when
// port 3000 is taken by someone else. Wire tests run their app on a free port, which
// also shows that the app reads PORT.
//
// PALAVER_APPS_DIR (for checking the tests, not for CI): a directory with the same app
// folders to run instead of examples/socketio-apps/, e.g. copies whose require/import
// line is the original `socket.io` / `ws` (npm socket.io 4.8, ws 8), to prove the pages
// and the tests against the reference servers:
//
//   for each app: copy examples/socketio-apps/<app> (without node_modules and
//   package-lock.json) to /tmp/apps-ref/<app>; replace `palaver/socket.io` by
//   `socket.io` and `palaver/ws` by `ws` in its .js files and bin/www; in its
//   package.json drop "palaver" and add "socket.io": "4.8.4" (ws-echo: "ws": "8.23.1");
//   npm install there. Then: cd tests && PALAVER_APPS_DIR=/tmp/apps-ref \
//     node --test --test-concurrency=1 apps/
//
// With PALAVER_APPS_DIR set, REFERENCE is true and the checks of what only Palaver
// guarantees are skipped: a handler that throws (seed 002's `message(null)`, a
// bad-token socket in seed 004) kills the reference Node server, while under Palaver it
// is caught and reported and the process lives on.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const assert = require('node:assert/strict');
const { io } = require('socket.io-client');
const WebSocket = require('ws');
const { ROOT, sleep } = require('./server');

const APPS_DIR = process.env.PALAVER_APPS_DIR
  ? path.resolve(process.env.PALAVER_APPS_DIR)
  : path.join(ROOT, 'examples', 'socketio-apps');
/** True when the apps under test are not this repository's (see the header). */
const REFERENCE = Boolean(process.env.PALAVER_APPS_DIR);
/** Why the Palaver-only checks are skipped against the reference servers. */
const SKIP_ON_REFERENCE = REFERENCE
  ? 'PALAVER_APPS_DIR is set: the reference Node server dies on a throwing handler; only Palaver must survive it'
  : false;

/** The port the pages hard-code (ws://localhost:3000, http://localhost:3000). */
const PAGE_PORT = 3000;
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 5000;
/** How long a wait for an event, a message, a console line or output lasts. */
const WAIT_MS = 10000;

/** Apps still running; killed when the test process exits (a crash or a failed assertion too). */
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * A list that grows (events, messages, console lines) and can be waited on:
 * `wait(predicate, {from})` resolves with the first item at index >= from that matches,
 * already there or still to come.
 */
class Recorder {
  constructor(what) {
    this.what = what;
    this.items = [];
    this.waiters = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const waiter of this.waiters) waiter.check();
  }

  /** The index the next item will have. */
  mark() {
    return this.items.length;
  }

  wait(predicate, { from = 0, timeout = WAIT_MS, what = this.what } = {}) {
    return new Promise((resolve, reject) => {
      let next = from;
      const waiter = {
        check: () => {
          for (; next < this.items.length; next++) {
            if (predicate(this.items[next])) {
              clearTimeout(timer);
              this.waiters.delete(waiter);
              resolve(this.items[next]);
              return;
            }
          }
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeout} ms waiting for ${what}; got ${this.describe(from)}`));
      }, timeout);
      this.waiters.add(waiter);
      waiter.check();
    });
  }

  describe(from = 0) {
    const items = this.items.slice(from);
    const text = JSON.stringify(items);
    return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
  }
}

/** The entry file of an app: `node <entry>` of its package.json "start" script. */
function entryOf(dir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const match = /^node (\S+)$/.exec((pkg.scripts && pkg.scripts.start) || '');
  assert.ok(match, `${dir}/package.json: the start script must be "node <entry>"`);
  return match[1];
}

/** Rejects when `port` is in use (listening where an app would: all addresses). */
function assertPortFree(port) {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new Error(
            `port ${port} is already taken by another process. The tutorial pages hard-code ` +
              `localhost:${port}, so the app tests need it: stop whatever listens there ` +
              `(e.g. \`make run\`, an example app) and run the app tests one file at a time.`,
          ),
        );
      } else reject(err);
    });
    probe.listen(port, () => probe.close(() => resolve()));
  });
}

/** A port that was free a moment ago, chosen by the OS. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves true once something answers HTTP at localhost:port (any status). */
function answersHttp(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: 'localhost', port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Resolves true once a TCP connection to localhost:port succeeds. */
function acceptsTcp(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: 'localhost', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts an app of APPS_DIR: `node <entry>` in its folder with PORT and `env`. Resolves
 * once it answers: HTTP (`probe: 'http'`, any status on GET /) or a bare TCP connection
 * (`probe: 'tcp'`, for a server that is only a WebSocket server). `port` defaults to
 * PAGE_PORT, which must be free; `port: 'free'` picks a free one.
 */
async function startApp(name, { port = PAGE_PORT, env = {}, probe = 'http' } = {}) {
  if (port === 'free') port = await freePort();
  else await assertPortFree(port);
  const dir = path.join(APPS_DIR, name);
  const entry = entryOf(dir);
  const child = spawn(process.execPath, [entry], {
    cwd: dir,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const output = new Recorder(`output of ${name}`);
  let text = '';
  const onData = (chunk) => {
    text += chunk;
    output.push(text);
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const alive = () => child.exitCode === null && child.signalCode === null;

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!alive()) {
      const { code, signal } = await exited;
      throw new Error(`${name} (node ${entry}) exited (${code ?? signal}) before answering on port ${port}:\n${text}`);
    }
    if (await (probe === 'tcp' ? acceptsTcp(port) : answersHttp(port))) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} (node ${entry}) did not answer on port ${port} within ${START_TIMEOUT_MS} ms:\n${text}`);
    }
    await sleep(50);
  }

  return {
    name,
    dir,
    port,
    url: `http://localhost:${port}`,
    process: child,
    exited,
    alive,
    /** Everything the app printed (stdout and stderr). */
    output: () => text,
    /** Resolves once the app's output matches `pattern` (a RegExp or a string). */
    async waitForOutput(pattern, { timeout = WAIT_MS } = {}) {
      const test = typeof pattern === 'string' ? (s) => s.includes(pattern) : (s) => pattern.test(s);
      if (test(text)) return text;
      return output.wait(test, { from: 0, timeout, what: `${pattern} in the output of ${name}` }).catch(() => {
        throw new Error(`${name} never printed ${pattern}; its output:\n${text}`);
      });
    },
    /** Asserts that the app is still running. */
    assertAlive(context = '') {
      assert.ok(alive(), `${name} exited (${child.exitCode ?? child.signalCode})${context ? ` ${context}` : ''}; its output:\n${text}`);
    },
    /** SIGTERM, then SIGKILL if it lingers; resolves with how it ended. */
    async stop() {
      if (alive()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/**
 * startApp, stopped when the test `t` ends; the end of what it printed goes to the
 * test's diagnostics (read it when a test fails: what the server did).
 */
async function useApp(t, name, options) {
  const app = await startApp(name, options);
  t.after(async () => {
    const { code, signal } = await app.stop();
    const text = app.output();
    const tail = text.length > 3000 ? `…${text.slice(-3000)}` : text;
    t.diagnostic(`${name} ended (${code ?? signal}); it printed:`);
    for (const line of tail.trimEnd().split('\n')) t.diagnostic(`  ${line}`);
  });
  return app;
}

/**
 * A socket.io-client socket that records every event it gets, from before it connects
 * (the tutorial servers emit in their connection handlers), with all arguments:
 * `events` items are {event, args}. `url` may carry a query (`?token=...`), as the pages'
 * URLs do. Rejects with the connect_error.
 *
 * Event names match as socket.io-client's own emitter matches them (by their string:
 * `socket.on(2)` fires for a packet `[2, ...]` and `["2", ...]` alike); `events` keeps
 * them as they came, for the tests that check the encoding itself.
 */
async function connectClient(url, options = {}) {
  const socket = io(url, {
    forceNew: true,
    reconnection: false,
    autoConnect: false,
    timeout: 5000,
    ...options,
  });
  const events = new Recorder(`events of a client of ${url}`);
  socket.onAny((event, ...args) => events.push({ event, args }));
  const disconnected = new Promise((resolve) => socket.on('disconnect', (reason) => resolve(reason)));
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
    socket.connect();
  });
  return {
    socket,
    events,
    disconnected,
    emit: (...args) => socket.emit(...args),
    mark: () => events.mark(),
    /** The args of each `event` received since `from`. */
    of: (event, from = 0) =>
      events.items.slice(from).filter((e) => String(e.event) === String(event)).map((e) => e.args),
    /** Resolves with the args of the first `event` since `from` whose args match. */
    async wait(event, predicate = () => true, { from = 0, timeout = WAIT_MS } = {}) {
      const found = await events.wait((e) => String(e.event) === String(event) && predicate(...e.args), {
        from,
        timeout,
        what: `event ${JSON.stringify(event)}`,
      });
      return found.args;
    },
    close: () => socket.close(),
  };
}

/** Closes clients when the test ends. */
function closeAfter(t, ...clients) {
  t.after(() => {
    for (const c of clients) c.close();
  });
}

/**
 * An npm `ws` client that records every message: `messages` items are
 * {data: string, isBinary}. Resolves once open.
 */
async function connectWs(url) {
  const ws = new WebSocket(url);
  const messages = new Recorder(`messages of a WebSocket to ${url}`);
  ws.on('message', (data, isBinary) => messages.push({ data: data.toString('utf8'), isBinary }));
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    closed,
    send: (data, options) => ws.send(data, options),
    mark: () => messages.mark(),
    wait: (predicate, options) => messages.wait(predicate, options),
    close: () => ws.close(),
  };
}

/**
 * A page in its own browser context (own storage), opened at `url`. Console lines go to
 * `console` (a Recorder of strings), uncaught errors to `errors`; `dialogs` answers the
 * page's prompt() calls in order (accepting alerts and confirms). `waitUntil: 'commit'`
 * for a page that may navigate away on its own before it has loaded.
 */
async function openAppPage(browser, url, { dialogs = [], waitUntil = 'load' } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const errors = [];
  const consoleLines = new Recorder(`console lines of ${url}`);
  const answers = [...dialogs];
  page.on('pageerror', (err) => errors.push(err));
  page.on('console', (msg) => consoleLines.push(msg.text()));
  page.on('dialog', (dialog) => dialog.accept(answers.shift()));
  await page.goto(url, { waitUntil });
  return {
    context,
    page,
    errors,
    console: consoleLines,
    /** Resolves once the page logged `line` (exactly) at or after `from`. */
    waitForConsole: (line, { from = 0, timeout = WAIT_MS } = {}) =>
      consoleLines.wait((l) => l === line, { from, timeout, what: `console line ${JSON.stringify(line)}` }),
    close: () => context.close(),
  };
}

/** Fetches a URL (no redirect following unless asked); resolves {status, headers, body}. */
async function httpGet(url, { headers = {}, redirect = 'manual' } = {}) {
  const res = await fetch(url, { headers, redirect });
  return { status: res.status, headers: res.headers, body: await res.text(), url: res.url };
}

module.exports = {
  APPS_DIR,
  REFERENCE,
  SKIP_ON_REFERENCE,
  PAGE_PORT,
  WAIT_MS,
  Recorder,
  startApp,
  useApp,
  freePort,
  connectClient,
  closeAfter,
  connectWs,
  openAppPage,
  httpGet,
  sleep,
};
