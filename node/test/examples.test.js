'use strict';
// examples/express and examples/koa, run as `node app.js` would run them: their
// own routes and page, the project's chat page at /chat/, a chat between a
// WebSocket and a polling client, the custom event, /api/rooms, and Ctrl-C.
// The examples' dependencies come from their node_modules when installed, else
// from this package's (same pinned express and koa) and a link to this package.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { describe, test, before, after } = require('node:test');
const { PACKAGE_DIR, connect, request, waitFor } = require('./helpers');

const EXAMPLES = path.join(PACKAGE_DIR, '..', 'examples');

describe('examples', { timeout: 60_000 }, () => {
  let tmp;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'palaver-examples-'));
    fs.mkdirSync(path.join(tmp, 'modules'));
    fs.symlinkSync(PACKAGE_DIR, path.join(tmp, 'modules', 'palaver'), 'dir');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const name of ['express', 'koa']) {
    test(`examples/${name}: node app.js serves the app and the chat; Ctrl-C stops it`, async () => {
      const env = { ...process.env, PORT: '0', PALAVER_HISTORY_PATH: path.join(tmp, `${name}-history.db`) };
      delete env.NODE_TEST_CONTEXT;
      env.NODE_PATH = [path.join(tmp, 'modules'), path.join(PACKAGE_DIR, 'node_modules')].join(path.delimiter);
      const app = spawn(process.execPath, ['app.js'], {
        cwd: path.join(EXAMPLES, name),
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      app.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
      app.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk));
      const exited = new Promise((resolve) => app.on('exit', (code, signal) => resolve({ code, signal })));
      const sockets = [];
      try {
        const port = await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no port in: ${output}`)), 10_000);
          const look = () => {
            const match = /on http:\/\/localhost:(\d+)\//.exec(output);
            if (match) {
              clearTimeout(timer);
              resolve(Number(match[1]));
            }
          };
          app.stdout.on('data', look);
          exited.then(() => reject(new Error(`exited: ${output}`)));
        });

        // The app's own page and routes.
        const home = await request(port, 'GET', '/');
        assert.equal(home.status, 200);
        assert.match(home.body, /href="\/chat\/"/);
        assert.deepEqual(JSON.parse((await request(port, 'GET', '/api/health')).body).ok, true);
        assert.equal((await request(port, 'GET', '/nowhere')).status, 404);

        // The project's chat page, and the client script it loads.
        const redirect = await request(port, 'GET', '/chat');
        assert.ok([301, 302].includes(redirect.status), `redirect, got ${redirect.status}`);
        assert.match(redirect.headers.location, /\/chat\/$/);
        const page = await request(port, 'GET', '/chat/');
        assert.equal(page.status, 200);
        assert.match(page.body, /<script src="\/socket\.io\/socket\.io\.js"/);
        assert.equal(page.body, fs.readFileSync(path.join(EXAMPLES, 'server', 'static', 'index.html'), 'utf8'));
        for (const asset of ['app.js', 'style.css']) {
          const file = await request(port, 'GET', `/chat/${asset}`);
          assert.equal(file.status, 200, asset);
          assert.match(file.headers['content-type'], asset.endsWith('.js') ? /javascript/ : /css/);
        }
        assert.equal((await request(port, 'GET', '/chat/../package.json')).status, 404);
        assert.equal((await request(port, 'GET', '/socket.io/socket.io.js')).status, 200);

        // A chat through it.
        const ada = await connect(port, { transports: ['websocket'], auth: { name: 'ada' } });
        sockets.push(ada);
        const bob = await connect(port, { transports: ['polling'], auth: { name: 'bob' } });
        sockets.push(bob);
        assert.equal((await ada.emitWithAck('join', { room: 'general' })).ok, true);
        assert.equal((await bob.emitWithAck('join', { room: 'general' })).ok, true);
        const delivered = waitFor(bob, 'message', { filter: (m) => m.kind === 'chat' });
        assert.equal((await ada.emitWithAck('message', { room: 'general', text: 'hello bob' })).ok, true);
        assert.equal((await delivered).text, 'hello bob');
        const time = await ada.emitWithAck('server-time', {});
        assert.equal(time.ok, true);
        assert.ok(!Number.isNaN(Date.parse(time.now)));
        assert.equal((await ada.emitWithAck('no-such-thing', {})).code, 'unknown_event');

        const rooms = JSON.parse((await request(port, 'GET', '/api/rooms')).body);
        assert.deepEqual(rooms, [
          { room: 'general', count: 2, members: [{ id: 'ada', name: 'ada' }, { id: 'bob', name: 'bob' }] },
        ]);
        assert.equal(JSON.parse((await request(port, 'GET', '/api/stats')).body).connections, 2);
        assert.match(output, /\[chat\] ada connected over websocket/);
        assert.match(output, /\[chat\] bob connected over polling/);
        assert.match(output, /\[chat\] #general <ada> hello bob/);
        assert.match(output, /\[chat\] custom event server-time from ada/);

        // Ctrl-C: the clients are told, the process ends by itself.
        const shutdown = waitFor(ada, 'shutdown');
        const gone = waitFor(ada, 'disconnect');
        app.kill('SIGINT');
        assert.deepEqual(await shutdown, { reason: 'server_stopping' });
        assert.equal(await gone, 'io server disconnect');
        const timer = setTimeout(() => app.kill('SIGKILL'), 10_000);
        const { code, signal } = await exited;
        clearTimeout(timer);
        assert.equal(signal, null, `exited on its own: ${output}`);
        assert.equal(code, 0, output);
        assert.match(output, /SIGINT: closing the chat/);
        assert.match(output, /stopped/);
        assert.doesNotMatch(output, /Error/);
      } finally {
        for (const socket of sockets) socket.close();
        if (app.exitCode === null && app.signalCode === null) app.kill('SIGKILL');
        await exited;
      }
    });
  }
});
