'use strict';
// Packaging, as a user installs it: `npm pack` of node/ gives a tarball that a fresh
// Express app outside this repository installs from the tarball (and express from the npm
// registry) and runs, with `palaver`, `palaver/socket.io` and `palaver/ws` resolving from
// CommonJS and from ESM, and the prebuilt addon inside the package.
//
// Everything happens in a temporary directory (os.tmpdir(), removed afterwards):
//
//   <tmp>/palaver-<version>.tgz   npm pack --json --pack-destination <tmp> (in node/)
//   <tmp>/extract/package/...     the tarball's text files (tar, without the addon)
//   <tmp>/app/                    a fresh app: package.json ("type": "commonjs"), then
//                                 npm install --no-audit --no-fund <tarball> express@5.x,
//                                 app.js (CommonJS) and app.mjs (ESM), index.html
//
// The apps are started with their own directory as cwd, PORT=0 (they print the port the
// OS gave them) and no NODE_PATH / NODE_OPTIONS: nothing at run time points back at this
// repository. Each app reports what it resolved (require.resolve / import.meta.resolve)
// and which .node files its process mapped; both must lie inside the app's node_modules.
// They are driven with the npm socket.io-client (WebSocket, long-polling, polling then
// upgrade) and the npm ws client (a plain WebSocket echo), both from tests/node_modules.
//
// The addon must have been built (`make packaging-test` builds the debug addon first:
// under `make test` the packed addon is the debug build, which is fine here).
//
// PALAVER_KEEP_PACK_DIR=1 keeps the temporary directory (its path is printed) to look at
// the tarball and the app after a failure. NPM=/path/to/npm picks the npm to run.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');
const { fileURLToPath } = require('node:url');
const { io } = require('socket.io-client');
const WebSocket = require('ws');

const ROOT = path.resolve(__dirname, '..', '..');
const NODE_DIR = path.join(ROOT, 'node');
const NPM = process.env.NPM || 'npm';
const ADDON = 'native/palaver.linux-x64-gnu.node';
const CLIENT_SCRIPT = path.join(__dirname, '..', 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js');

/** npm pack gzips a large addon (the debug build is ~150 MB): minutes on a slow machine. */
const PACK_TIMEOUT_MS = 5 * 60 * 1000;
/** npm install fetches express from the registry and unpacks the tarball. */
const INSTALL_TIMEOUT_MS = 10 * 60 * 1000;
const TAR_TIMEOUT_MS = 2 * 60 * 1000;
const START_TIMEOUT_MS = 30 * 1000;
const STOP_TIMEOUT_MS = 5 * 1000;
/** How long a client waits for a connection, a message or an echo. */
const WAIT_MS = 15 * 1000;
/** The most of a command's output a failure message repeats. */
const OUTPUT_TAIL = 12000;

/** Files npm puts in every tarball whatever "files" says. */
const ALWAYS_PACKED = [/^package\.json$/, /^readme(\.[^/]*)?$/i, /^licen[cs]e(\.[^/]*)?$/i, /^copying(\.[^/]*)?$/i];
/** What must never be in the tarball: sources, tests, build files, installed packages. */
const FORBIDDEN = [
  [/^src\//, 'the Rust sources (src/)'],
  [/^tests?\//, 'the tests (test/)'],
  [/(^|\/)node_modules\//, 'node_modules'],
  [/^target\//, 'a cargo target directory'],
  [/(^|\/)Cargo\.(toml|lock)$/, 'a Cargo manifest or lockfile'],
  [/(^|\/)build\.rs$/, 'the cargo build script'],
  [/\.rs$/, 'a Rust source file'],
  [/(^|\/)package-lock\.json$/, 'a package-lock.json'],
  [/(^|\/)binding\.gyp$/, 'a binding.gyp (npm would run node-gyp on install)'],
  [/\.tgz$/, 'a tarball'],
  [/(^|\/)\.[^/]+$/, 'a dotfile'],
];

// ---- temporary directory, child processes --------------------------------------------------

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'palaver-pack-'));
const APP_DIR = path.join(TMP, 'app');
const EXTRACT_DIR = path.join(TMP, 'extract');
const children = new Set();

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

process.on('exit', () => {
  for (const child of children) killGroup(child, 'SIGKILL');
});

after(async () => {
  for (const child of children) killGroup(child, 'SIGKILL');
  if (process.env.PALAVER_KEEP_PACK_DIR) {
      process.stdout.write(`# kept ${TMP} (PALAVER_KEEP_PACK_DIR is set)\n`);
  } else {
    fs.rmSync(TMP, { recursive: true, force: true });
  }
});

/** The environment of every child: nothing that redirects module resolution or node:test. */
function childEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  for (const name of ['NODE_PATH', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT']) delete env[name];
  return env;
}

function tail(text) {
  return text.length > OUTPUT_TAIL ? `…${text.slice(-OUTPUT_TAIL)}` : text;
}

/**
 * Runs a command to its end; rejects with its whole story (command, directory, exit
 * status, stdout, stderr) when it fails or outlives `timeout`.
 */
function run(command, args, { cwd, timeout }) {
  const started = Date.now();
  const shown = `${command} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so that a timeout ends npm's children too
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, timeout);
    const fail = (why) =>
      new Error(
        `\`${shown}\` (in ${cwd}) ${why} after ${Date.now() - started} ms\n` +
          `--- stdout ---\n${tail(stdout) || '(empty)'}\n--- stderr ---\n${tail(stderr) || '(empty)'}`,
      );
    child.once('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(fail(`could not start: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (timedOut) reject(fail(`timed out (limit ${timeout} ms)`));
      else if (code !== 0) reject(fail(`failed with ${signal ? `signal ${signal}` : `exit code ${code}`}`));
      else resolve({ stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A step that later steps depend on: runs once; a failure fails every test that needs it. */
function once(what, fn) {
  let promise;
  let told = false;
  return () => {
    promise ??= fn();
    return promise.catch((error) => {
      // The first test to need the step shows the whole story; the others point at it.
      if (!told) {
        told = true;
        throw error;
      }
      throw new Error(`${what} failed (the first failing test shows why): ${error.message.split('\n')[0]}`, { cause: error });
    });
  };
}

// ---- the steps -------------------------------------------------------------------------

const PKG = JSON.parse(fs.readFileSync(path.join(NODE_DIR, 'package.json'), 'utf8'));
const timings = {};

/** npm pack --json of node/ into TMP; the parsed report and the tarball's path. */
async function doPack() {
  assert.ok(
    fs.existsSync(path.join(NODE_DIR, ADDON)),
    `node/${ADDON} is missing: build the addon first (make node-debug, or cd node && npm run build)`,
  );
  const { stdout, stderr, ms } = await run(NPM, ['pack', '--json', '--pack-destination', TMP], {
    cwd: NODE_DIR,
    timeout: PACK_TIMEOUT_MS,
  });
  timings.pack = ms;
  let report;
  try {
    // Lifecycle scripts (none today) could print before the JSON: take it from the first '['.
    report = JSON.parse(stdout.slice(stdout.indexOf('[')));
  } catch (error) {
    throw new Error(`npm pack --json printed no JSON (${error.message})\n--- stdout ---\n${tail(stdout)}\n--- stderr ---\n${tail(stderr)}`);
  }
  assert.ok(Array.isArray(report) && report.length === 1, `npm pack --json: expected one package, got ${tail(stdout)}`);
  const [info] = report;
  const tarball = path.join(TMP, info.filename);
  assert.ok(fs.existsSync(tarball), `npm pack reported ${info.filename} but ${tarball} does not exist; stderr:\n${tail(stderr)}`);
  return { info, tarball, files: new Map(info.files.map((f) => [f.path, f])) };
}

/** What is really in the archive (tar -tzv), and its text files extracted (all but .node). */
async function doInspect() {
  const { tarball } = await packed();
  const listing = await run('tar', ['-tzvf', tarball], { cwd: TMP, timeout: TAR_TIMEOUT_MS });
  const entries = new Map();
  for (const line of listing.stdout.split('\n')) {
    // -rw-r--r-- 0/0  7855 1985-10-26 08:15 package/index.d.ts
    const match = /^(\S+)\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.+)$/.exec(line);
    if (match) entries.set(match[3], { mode: match[1], size: Number(match[2]) });
  }
  fs.mkdirSync(EXTRACT_DIR, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', EXTRACT_DIR, '--exclude=*.node'], { cwd: TMP, timeout: TAR_TIMEOUT_MS });
  return { entries, dir: path.join(EXTRACT_DIR, 'package') };
}

/** A fresh app in TMP/app: package.json, then npm install of the tarball and express 5. */
async function doInstall() {
  const { tarball } = await packed();
  fs.mkdirSync(APP_DIR, { recursive: true });
  fs.writeFileSync(
    path.join(APP_DIR, 'package.json'),
    `${JSON.stringify({ name: 'palaver-pack-smoke-app', version: '1.0.0', private: true, type: 'commonjs' }, null, 2)}\n`,
  );
  const { ms } = await run(NPM, ['install', '--no-audit', '--no-fund', tarball, 'express@5.x'], {
    cwd: APP_DIR,
    timeout: INSTALL_TIMEOUT_MS,
  });
  timings.install = ms;
  writeApps();
  return { dir: APP_DIR };
}

const packed = once('npm pack', doPack);
const inspected = once('reading the tarball', doInspect);
const installed = once('npm install of the tarball in a fresh app', doInstall);

// ---- the apps -------------------------------------------------------------------------

const PAGE = `<!doctype html>
<html>
  <head><meta charset="utf-8"><title>Socket.IO chat</title></head>
  <body>
    <ul id="messages"></ul>
    <form id="form" action=""><input id="input" autocomplete="off"><button>Send</button></form>
    <script src="/socket.io/socket.io.js"></script>
    <script>
      const socket = io();
      const form = document.getElementById('form');
      const input = document.getElementById('input');
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        if (input.value) { socket.emit('chat message', input.value); input.value = ''; }
      });
      socket.on('chat message', (msg) => {
        const item = document.createElement('li');
        item.textContent = msg;
        document.getElementById('messages').appendChild(item);
      });
    </script>
  </body>
</html>
`;

/** What both apps report once listening: where things resolved, which addon is mapped. */
const REPORT_FN = `
function mappedAddons() {
  // The shared objects this process has mapped: the addon must be the installed copy.
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    return [...new Set(maps.split('\\n').map((l) => l.slice(l.indexOf('/'))).filter((p) => p.startsWith('/') && p.endsWith('.node')))];
  } catch (error) {
    return ['(cannot read /proc/self/maps: ' + error.message + ')'];
  }
}
`;

const CJS_APP = `'use strict';
// The classic Socket.IO chat tutorial on Express, with palaver/socket.io in place of socket.io.
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const express = require('express');

const app = express();
const server = http.createServer(app);
const io = require('palaver/socket.io')(server);
const { WebSocketServer } = require('palaver/ws');
const palaver = require('palaver');

app.get('/', (req, res) => res.sendFile(path.join(__dirname, 'index.html')));

io.on('connection', (socket) => {
  socket.on('chat message', (msg) => io.emit('chat message', msg));
});

// A plain WebSocket echo beside it, at /echo.
const wss = new WebSocketServer({ server, path: '/echo' });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
${REPORT_FN}
server.listen(Number(process.env.PORT || 3000), () => {
  const report = {
    variant: 'cjs',
    port: server.address().port,
    resolved: {
      palaver: require.resolve('palaver'),
      'palaver/socket.io': require.resolve('palaver/socket.io'),
      'palaver/ws': require.resolve('palaver/ws'),
      express: require.resolve('express'),
    },
    types: { palaver: typeof palaver, server: typeof palaver.Server, io: io.constructor.name, wss: wss.constructor.name },
    addons: mappedAddons(),
  };
  console.log('READY ' + JSON.stringify(report));
});
`;

const ESM_APP = `// The same app as ESM: the named and default exports of the three entry points.
import fs from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import palaver from 'palaver';
import { Server as ChatServer } from 'palaver';
import createServer, { Server } from 'palaver/socket.io';
import WebSocket, { WebSocketServer } from 'palaver/ws';

const app = express();
const server = http.createServer(app);
const io = new Server(server);

app.get('/', (req, res) => res.sendFile(fileURLToPath(new URL('./index.html', import.meta.url))));

io.on('connection', (socket) => {
  socket.on('chat message', (msg) => io.emit('chat message', msg));
});

const wss = new WebSocketServer({ server, path: '/echo' });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
${REPORT_FN}
server.listen(Number(process.env.PORT || 3000), () => {
  const report = {
    variant: 'esm',
    port: server.address().port,
    // import.meta.resolve: Node 20.6 and later.
    resolved: typeof import.meta.resolve === 'function' ? {
      palaver: import.meta.resolve('palaver'),
      'palaver/socket.io': import.meta.resolve('palaver/socket.io'),
      'palaver/ws': import.meta.resolve('palaver/ws'),
      express: import.meta.resolve('express'),
    } : null,
    types: {
      palaver: typeof palaver,
      server: typeof palaver.Server,
      chatServerIsDefaultServer: ChatServer === palaver.Server,
      socketIoServerIsDefaultServer: Server === createServer.Server,
      wssIsDefaultServer: WebSocketServer === WebSocket.WebSocketServer,
      io: io.constructor.name,
      wss: wss.constructor.name,
    },
    addons: mappedAddons(),
  };
  console.log('READY ' + JSON.stringify(report));
});
`;

function writeApps() {
  fs.writeFileSync(path.join(APP_DIR, 'index.html'), PAGE);
  fs.writeFileSync(path.join(APP_DIR, 'app.js'), CJS_APP);
  fs.writeFileSync(path.join(APP_DIR, 'app.mjs'), ESM_APP);
}

/** Starts `node <entry>` in the app directory on a free port; resolves with its report. */
async function startApp(t, entry) {
  await installed();
  const child = spawn(process.execPath, [entry], {
    cwd: APP_DIR,
    env: childEnv({ PORT: '0' }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  let output = '';
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(signal ?? code);
    }),
  );
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  });
  const report = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`node ${entry} did not print READY within ${START_TIMEOUT_MS} ms; its output:\n${tail(output)}`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk) => {
      output += chunk;
      const match = /^READY (.*)$/m.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(JSON.parse(match[1]));
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    exited.then((status) => {
      clearTimeout(timer);
      reject(new Error(`node ${entry} (in ${APP_DIR}) exited (${status}) before listening; its output:\n${tail(output)}`));
    });
  });
  return {
    report,
    url: `http://localhost:${report.port}`,
    output: () => output,
    assertAlive() {
      assert.ok(child.exitCode === null && child.signalCode === null, `node ${entry} exited; its output:\n${tail(output)}`);
    },
  };
}

// ---- clients ---------------------------------------------------------------------------

function httpGet(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: WAIT_MS }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${WAIT_MS} ms`)));
    req.on('error', reject);
  });
}

/** A socket.io-client connection that records every `chat message` it gets. */
function connectChat(t, url, opts) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: WAIT_MS, ...opts });
  t.after(() => socket.disconnect());
  const messages = [];
  const waiters = new Set();
  socket.on('chat message', (msg) => {
    messages.push(msg);
    for (const w of waiters) w();
  });
  const client = {
    socket,
    messages,
    /** Resolves once a `chat message` deep-equal to `expected` has arrived. */
    receive(expected) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (messages.some((m) => isDeepEqual(m, expected))) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${describeClient(socket, opts)} got no chat message ${JSON.stringify(expected)} within ${WAIT_MS} ms; it got ${JSON.stringify(messages)}`));
        }, WAIT_MS);
        waiters.add(check);
        check();
      });
    },
  };
  const connected = new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(client));
    socket.once('connect_error', (error) =>
      reject(new Error(`${describeClient(socket, opts)} could not connect to ${url}: ${error.message}${error.description ? ` (${error.description})` : ''}`)),
    );
  });
  return connected;
}

function describeClient(socket, opts) {
  return `the socket.io-client (${(opts.transports || ['polling', 'websocket']).join(', ')})`;
}

function isDeepEqual(a, b) {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

/** A plain WebSocket (npm ws client); resolves once open, with its received messages. */
function connectWs(t, url) {
  const ws = new WebSocket(url);
  t.after(() => ws.terminate());
  const messages = [];
  const waiters = new Set();
  ws.on('message', (data, isBinary) => {
    messages.push({ data: isBinary ? Buffer.from(data) : data.toString('utf8'), isBinary });
    for (const w of waiters) w();
  });
  return new Promise((resolve, reject) => {
    ws.once('error', (error) => reject(new Error(`ws client could not connect to ${url}: ${error.message}`)));
    ws.once('unexpected-response', (req, res) =>
      reject(new Error(`ws client: ${url} answered the upgrade with HTTP ${res.statusCode}`)),
    );
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        /** Resolves once `count` messages have arrived. */
        waitFor(count) {
          return new Promise((res, rej) => {
            const check = () => {
              if (messages.length >= count) {
                clearTimeout(timer);
                waiters.delete(check);
                res(messages.slice(0, count));
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`the echo at ${url} sent ${messages.length} of ${count} messages within ${WAIT_MS} ms: ${JSON.stringify(messages)}`));
            }, WAIT_MS);
            waiters.add(check);
            check();
          });
        },
      }),
    );
  });
}

// ---- path checks -----------------------------------------------------------------------

const INSTALLED_PKG = () => fs.realpathSync(path.join(APP_DIR, 'node_modules', 'palaver'));

function assertInsideApp(what, file) {
  const real = fs.realpathSync(file);
  const home = INSTALLED_PKG();
  assert.ok(
    real.startsWith(home + path.sep),
    `${what} resolved to ${real}, not inside the app's installed package ${home}`,
  );
  assert.ok(!real.startsWith(ROOT + path.sep), `${what} resolved into the repository: ${real}`);
}

/** A glob of package.json "files" as a RegExp over packed paths (a directory takes its contents). */
function filesPattern(pattern) {
  const clean = pattern.replace(/^\.?\//, '').replace(/\/+$/, '');
  let re = '';
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i];
    if (c === '*' && clean[i + 1] === '*') {
      re += '.*';
      i++;
      if (clean[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}(?:/.*)?$`);
}

/** Every target string of an "exports" map. */
function exportTargets(exportsField, at = '') {
  if (typeof exportsField === 'string') return [[at || '.', exportsField]];
  if (exportsField === null || typeof exportsField !== 'object') return [];
  return Object.entries(exportsField).flatMap(([key, value]) => exportTargets(value, at ? `${at} > ${key}` : key));
}

// ---- the tests -------------------------------------------------------------------------

test('npm pack: the tarball holds every "files" entry, the addon, and nothing unexpected', { timeout: PACK_TIMEOUT_MS + 60000 }, async (t) => {
  t.diagnostic(`temporary directory: ${TMP}`);
  const { info, tarball, files } = await packed();
  t.diagnostic(`npm pack: ${info.filename}, ${info.entryCount} files, ${(info.size / 1e6).toFixed(1)} MB packed, ${(info.unpackedSize / 1e6).toFixed(1)} MB unpacked, in ${timings.pack} ms`);
  const paths = [...files.keys()].sort();
  const problems = [];

  // Every "files" entry matches something: an entry that matches nothing names a file
  // that does not exist.
  assert.ok(Array.isArray(PKG.files) && PKG.files.length > 0, 'node/package.json has no "files" list');
  const patterns = PKG.files.filter((p) => !p.startsWith('!')).map((p) => [p, filesPattern(p)]);
  for (const [pattern, re] of patterns) {
    if (!paths.some((p) => re.test(p))) problems.push(`"files" entry ${JSON.stringify(pattern)} matches no packed file (node/${pattern} does not exist)`);
  }

  // main, types and every "exports" target are in the tarball.
  const targets = [
    ['"main"', PKG.main],
    ['"types"', PKG.types],
    ...exportTargets(PKG.exports).map(([where, target]) => [`"exports" ${where}`, target]),
  ].filter(([, target]) => target !== undefined);
  for (const [where, target] of targets) {
    const rel = target.replace(/^\.\//, '');
    if (!files.has(rel)) problems.push(`${where} points to ${target}, which is not in the tarball${fs.existsSync(path.join(NODE_DIR, rel)) ? ' (it exists in node/: add it to "files")' : ' (node/' + rel + ' does not exist)'}`);
  }

  // The prebuilt addon is inside, whole.
  const addon = files.get(ADDON);
  if (!addon) problems.push(`the addon ${ADDON} is not in the tarball`);
  else if (!(addon.size > 1e6)) problems.push(`the addon ${ADDON} in the tarball is only ${addon.size} bytes`);

  // Nothing beyond "files" and what npm always adds; none of the known unwanted files.
  for (const p of paths) {
    if (!ALWAYS_PACKED.some((re) => re.test(p)) && !patterns.some(([, re]) => re.test(p)) && p !== PKG.main) {
      problems.push(`${p} is in the tarball but matches no "files" entry`);
    }
    for (const [re, what] of FORBIDDEN) if (re.test(p)) problems.push(`${p} is in the tarball: ${what}`);
  }

  // Installing must not need a toolchain: no install scripts.
  for (const script of ['preinstall', 'install', 'postinstall']) {
    if (PKG.scripts && PKG.scripts[script]) problems.push(`package.json has an "${script}" script: installing would run ${JSON.stringify(PKG.scripts[script])}`);
  }

  assert.deepEqual(problems, [], `packaging problems in ${tarball}:\n  ${problems.join('\n  ')}\npacked files:\n  ${paths.join('\n  ')}`);
});

test('the archive itself: the addon is inside with its size, and every relative require/import of the JS is packed', { timeout: TAR_TIMEOUT_MS * 2 + 60000 }, async () => {
  const { files } = await packed();
  const { entries, dir } = await inspected();
  // What tar sees is what npm reported.
  const inArchive = [...entries.keys()].filter((p) => !p.endsWith('/')).map((p) => p.replace(/^package\//, '')).sort();
  assert.deepEqual(inArchive, [...files.keys()].sort(), 'the archive (tar -tzv) and npm pack --json disagree on the file list');
  const addon = entries.get(`package/${ADDON}`);
  assert.ok(addon, `package/${ADDON} is not in the archive`);
  assert.equal(addon.size, files.get(ADDON).size, 'the addon in the archive does not have the size npm reported');

  // The JS of the package reaches only packed files (the generated loader, which tries
  // every platform's file in turn, aside: its linux-x64-gnu file is checked above).
  const missing = [];
  for (const rel of files.keys()) {
    if (!/\.(c|m)?js$/.test(rel) || rel === 'native/binding.js') continue;
    const source = fs.readFileSync(path.join(dir, rel), 'utf8');
    const specs = [
      ...source.matchAll(/require\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g),
      ...source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g),
    ].map((m) => m[1]);
    for (const spec of specs) {
      const base = path.posix.normalize(path.posix.join(path.posix.dirname(rel), spec));
      const candidates = [base, `${base}.js`, `${base}.json`, `${base}.node`, `${base}/index.js`];
      if (!candidates.some((c) => files.has(c))) missing.push(`${rel} requires ${spec} (${base}), which is not in the tarball`);
    }
  }
  assert.deepEqual(missing, [], `the packed JS needs files that are not packed:\n  ${missing.join('\n  ')}`);
});

test('a fresh app outside the repository installs the tarball and express 5 from the registry', { timeout: PACK_TIMEOUT_MS + INSTALL_TIMEOUT_MS + 60000 }, async (t) => {
  await installed();
  t.diagnostic(`npm install --no-audit --no-fund <tarball> express@5.x: ${timings.install} ms`);
  assert.ok(!fs.realpathSync(APP_DIR).startsWith(ROOT + path.sep), `the app directory ${APP_DIR} is inside the repository`);
  const appPkg = JSON.parse(fs.readFileSync(path.join(APP_DIR, 'package.json'), 'utf8'));
  assert.match(String(appPkg.dependencies && appPkg.dependencies.palaver), /^file:.*\.tgz$/, `the app's package.json: ${JSON.stringify(appPkg)}`);
  assert.match(String(appPkg.dependencies && appPkg.dependencies.express), /^\^?5\./, `the app's package.json: ${JSON.stringify(appPkg)}`);

  // A copy, not a link to node/.
  const installedDir = path.join(APP_DIR, 'node_modules', 'palaver');
  assert.equal(fs.lstatSync(installedDir).isSymbolicLink(), false, `${installedDir} is a symlink to ${fs.realpathSync(installedDir)}`);
  const installedPkg = JSON.parse(fs.readFileSync(path.join(installedDir, 'package.json'), 'utf8'));
  assert.equal(installedPkg.version, PKG.version);
  const { files } = await packed();
  assert.equal(fs.statSync(path.join(installedDir, ADDON)).size, files.get(ADDON).size, 'the installed addon differs in size from the packed one');
  const expressPkg = JSON.parse(fs.readFileSync(path.join(APP_DIR, 'node_modules', 'express', 'package.json'), 'utf8'));
  assert.match(expressPkg.version, /^5\./);
  t.diagnostic(`installed palaver ${installedPkg.version}, express ${expressPkg.version}`);

  // require.resolve from the app directory lands in the app's node_modules.
  const appRequire = createRequire(path.join(APP_DIR, 'app.js'));
  for (const spec of ['palaver', 'palaver/socket.io', 'palaver/ws', 'palaver/package.json']) {
    assertInsideApp(`require.resolve('${spec}') from ${APP_DIR}`, appRequire.resolve(spec));
  }
  assert.equal(path.relative(INSTALLED_PKG(), appRequire.resolve('palaver')), 'index.js');
  assert.equal(path.relative(INSTALLED_PKG(), appRequire.resolve('palaver/socket.io')), 'socket.io.js');
  assert.equal(path.relative(INSTALLED_PKG(), appRequire.resolve('palaver/ws')), 'ws.js');
});

for (const [variant, entry, extension] of [
  ['CommonJS', 'app.js', '.js'],
  ['ESM', 'app.mjs', '.mjs'],
]) {
  test(`${variant} app (node ${entry}): resolves the installed package and loads its addon`, { timeout: INSTALL_TIMEOUT_MS + 120000 }, async (t) => {
    const app = await startApp(t, entry);
    const { report } = app;
    if (report.resolved === null) {
      t.diagnostic(`import.meta.resolve is not available in Node ${process.version}: the ESM resolution is shown by the app running at all`);
      report.resolved = {};
    }
    const expected = { palaver: `index${extension}`, 'palaver/socket.io': `socket.io${extension}`, 'palaver/ws': `ws${extension}` };
    for (const [spec, file] of Object.entries(expected)) {
      const resolved = report.resolved[spec];
      if (resolved === undefined) continue;
      const asPath = resolved.startsWith('file:') ? fileURLToPath(resolved) : resolved;
      assertInsideApp(`${spec} in the ${variant} app`, asPath);
      assert.equal(path.relative(INSTALLED_PKG(), fs.realpathSync(asPath)), file, `${spec} in the ${variant} app resolved to ${resolved}`);
    }
    const expressResolved = String(report.resolved.express ?? '').startsWith('file:') ? fileURLToPath(report.resolved.express) : report.resolved.express;
    if (expressResolved) assert.ok(fs.realpathSync(expressResolved).startsWith(fs.realpathSync(path.join(APP_DIR, 'node_modules', 'express')) + path.sep), `express resolved to ${expressResolved}`);
    // The addon the process loaded is the installed copy, and no other .node file.
    assert.deepEqual(
      report.addons.map((p) => fs.realpathSync(p)),
      [fs.realpathSync(path.join(APP_DIR, 'node_modules', 'palaver', ADDON))],
      `the ${variant} app mapped ${JSON.stringify(report.addons)}`,
    );
    assert.equal(report.types.palaver, 'function');
    assert.equal(report.types.server, 'function');
    assert.equal(report.types.io, 'Server');
    assert.equal(report.types.wss, 'WebSocketServer');
    if (variant === 'ESM') {
      assert.equal(report.types.chatServerIsDefaultServer, true, 'import { Server } from "palaver" is not palaver.Server');
      assert.equal(report.types.socketIoServerIsDefaultServer, true, 'import { Server } from "palaver/socket.io" is not the default export\'s Server');
      assert.equal(report.types.wssIsDefaultServer, true, 'import { WebSocketServer } from "palaver/ws" is not the default export\'s WebSocketServer');
    }
    t.diagnostic(`${variant} app on port ${report.port}; addon ${report.addons.join(', ')}`);
  });

  test(`${variant} app (node ${entry}): the page, the client script, chat over WebSocket and polling, a WebSocket echo`, { timeout: INSTALL_TIMEOUT_MS + 120000 }, async (t) => {
    const app = await startApp(t, entry);

    // Express still serves the app's own routes.
    const page = await httpGet(`${app.url}/`);
    assert.equal(page.status, 200, `GET / answered ${page.status}: ${page.body.toString().slice(0, 500)}`);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.body.toString('utf8'), PAGE);
    const missing = await httpGet(`${app.url}/no-such-page`);
    assert.equal(missing.status, 404, 'Express answers an unknown route with 404');

    // The page's <script src="/socket.io/socket.io.js"> is served by the engine (from the addon).
    const script = await httpGet(`${app.url}/socket.io/socket.io.js`);
    assert.equal(script.status, 200, `GET /socket.io/socket.io.js answered ${script.status}`);
    assert.match(String(script.headers['content-type']), /javascript/);
    assert.ok(script.body.equals(fs.readFileSync(CLIENT_SCRIPT)), 'the served client script is not socket.io-client\'s dist/socket.io.min.js');

    // Chat: io.emit reaches every client whatever its transport.
    const ws = await connectChat(t, app.url, { transports: ['websocket'] });
    const poll = await connectChat(t, app.url, { transports: ['polling'] });
    assert.equal(ws.socket.io.engine.transport.name, 'websocket');
    assert.equal(poll.socket.io.engine.transport.name, 'polling');
    const fromWs = `over WebSocket (${variant}) ✓`;
    const fromPoll = { text: `over polling (${variant})`, n: 2, list: [1, 'two', null] };
    let both = Promise.all([ws.receive(fromWs), poll.receive(fromWs)]);
    ws.socket.emit('chat message', fromWs);
    await both;
    both = Promise.all([ws.receive(fromPoll), poll.receive(fromPoll)]);
    poll.socket.emit('chat message', fromPoll);
    await both;
    assert.equal(poll.socket.io.engine.transport.name, 'polling', 'the polling-only client changed transport');

    // A client with the default transports (a browser page's `io()`): polling, then upgrade.
    const upgrading = await connectChat(t, app.url, {});
    if (upgrading.socket.io.engine.transport.name !== 'websocket') {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the default client did not upgrade to WebSocket within ${WAIT_MS} ms`)), WAIT_MS);
        upgrading.socket.io.engine.once('upgrade', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const fromUpgraded = `after the upgrade (${variant})`;
    both = Promise.all([ws.receive(fromUpgraded), poll.receive(fromUpgraded), upgrading.receive(fromUpgraded)]);
    upgrading.socket.emit('chat message', fromUpgraded);
    await both;

    // The plain WebSocket echo (palaver/ws) at /echo, in order, as text. (What palaver/ws
    // does with every kind of frame is node/test's and tests/apps' business.)
    const echo = await connectWs(t, `ws://localhost:${app.report.port}/echo`);
    const sent = ['hello, echo', `床前明月光 ✓ (${variant})`, 'x'.repeat(5000)];
    for (const text of sent) echo.ws.send(text);
    assert.deepEqual(await echo.waitFor(sent.length), sent.map((data) => ({ data, isBinary: false })));
    // The echo and the chat do not see each other's traffic.
    assert.equal(ws.messages.length, 3, `the WebSocket chat client got ${JSON.stringify(ws.messages)}`);
    app.assertAlive();
  });
}
