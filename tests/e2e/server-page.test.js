'use strict';
// The standalone server's page and assets are built into the binary: a copy of
// the binary in another directory serves them, with their content types and
// ETags (a repeated request with If-None-Match gets a bodiless 304). --static-dir
// serves a directory instead.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { ROOT, SERVER_BIN, startServer, tempDir } = require('../support/server.js');
const { httpRequest } = require('../support/e2e.js');

const STATIC = path.join(ROOT, 'examples', 'server', 'static');
const PAGE = [
  ['/', 'index.html', /^text\/html; charset=utf-8$/],
  ['/app.js', 'app.js', /^text\/javascript; charset=utf-8$/],
  ['/style.css', 'style.css', /^text\/css; charset=utf-8$/],
  ['/tutorial.html', 'tutorial.html', /^text\/html; charset=utf-8$/],
];

test('the page is in the binary: a copy run from an empty directory serves it, and the client script', async (t) => {
  const binary = fs.readFileSync(SERVER_BIN);
  for (const [, file] of PAGE) {
    assert.ok(binary.includes(fs.readFileSync(path.join(STATIC, file))), `${file} is built into the binary`);
  }
  const dir = tempDir('palaver-copy-');
  const copy = path.join(dir, 'palaver-server');
  fs.copyFileSync(SERVER_BIN, copy);
  fs.chmodSync(copy, 0o755);
  const server = await startServer({ bin: copy, cwd: dir, dir });
  t.after(() => server.stop());
  for (const [route, file, type] of PAGE) {
    const { status, headers, body } = await httpRequest(`${server.url}${route}`);
    assert.equal(status, 200, route);
    assert.match(headers['content-type'], type, route);
    assert.equal(headers['cache-control'], 'no-cache', route);
    assert.match(headers.etag, /^"[0-9a-f]{64}"$/, route);
    assert.ok(body.equals(fs.readFileSync(path.join(STATIC, file))), `${route} is ${file}`);
  }
  // The page loads the Socket.IO client from the engine, not from the network.
  const html = fs.readFileSync(path.join(STATIC, 'index.html'), 'utf8');
  assert.match(html, /src="\/socket\.io\/socket\.io(\.min)?\.js"/);
  const script = await httpRequest(`${server.url}/socket.io/socket.io.min.js`);
  assert.equal(script.status, 200);
  assert.match(script.headers['content-type'], /javascript/);
  assert.equal((await httpRequest(`${server.url}/no-such-file.js`)).status, 404);
});

test('ETag: a repeated request with If-None-Match gets 304 without a body', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const first = await httpRequest(`${server.url}/app.js`);
  const again = await httpRequest(`${server.url}/app.js`, { headers: { 'if-none-match': first.headers.etag } });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  assert.equal(again.headers.etag, first.headers.etag);
  const other = await httpRequest(`${server.url}/app.js`, { headers: { 'if-none-match': '"something-else"' } });
  assert.equal(other.status, 200);
  assert.equal((await httpRequest(`${server.url}/`, { method: 'POST' })).status, 405);
});

test('--static-dir serves a directory instead; one without index.html stops the start', async (t) => {
  const dir = tempDir('palaver-page-');
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>own page</title>');
  const server = await startServer({ args: ['--static-dir', dir] });
  t.after(() => server.stop());
  const page = await httpRequest(`${server.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.body.toString(), /own page/);
  const empty = tempDir('palaver-empty-');
  await assert.rejects(startServer({ args: ['--static-dir', empty] }), /no index\.html/);
});
