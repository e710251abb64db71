'use strict';
// examples/socketio-apps/ws-echo: the plain WebSocket echo server of tutorial 003
// (`new WebSocket.Server({port: 3000})` from npm ws) with its require line changed to
// palaver/ws. Its page (opened from disk, as the tutorial does: the server has no HTTP
// side; the page connects to ws://localhost:3000) in Chromium, and its wire contract
// with the npm ws client: each message comes back to its sender only, as text, with
// 举头望明月，低头思故乡, appended.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { launchBrowser, assertNoPageErrors } = require('../support/browser');
const { APPS_DIR, useApp, connectWs, openAppPage } = require('../support/apps');

const APP = 'ws-echo';
const SUFFIX = '举头望明月，低头思故乡,';
const PAGE_URL = pathToFileURL(path.join(APPS_DIR, APP, 'index.html')).href;
const wsUrl = (app) => `ws://localhost:${app.port}`;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
});

test('the page: connects to ws://localhost:3000, logs the open and the echo', async (t) => {
  const app = await useApp(t, APP, { probe: 'tcp' });
  const page = await openAppPage(browser, PAGE_URL);
  t.after(() => page.close());
  await page.waitForConsole('连接上服务器了');
  await page.waitForConsole(`床前明月光，原来是惠康;${SUFFIX}`);
  await app.waitForOutput('有个人进来了');
  // A second page gets its own echo; the first gets no second one.
  const other = await openAppPage(browser, PAGE_URL);
  await other.waitForConsole(`床前明月光，原来是惠康;${SUFFIX}`);
  assert.deepEqual(page.console.items, ['连接上服务器了', `床前明月光，原来是惠康;${SUFFIX}`]);
  assertNoPageErrors(page, other);
  // Closing a page closes its socket: the server logs it.
  await other.close();
  await app.waitForOutput('ta又走了！呜呜呜');
  app.assertAlive();
});

test('wire: each text message comes back as text with the suffix, in order', async (t) => {
  const app = await useApp(t, APP, { port: 'free', probe: 'tcp' });
  const c = await connectWs(wsUrl(app));
  t.after(() => c.close());
  const sent = ['床前明月光，原来是惠康;', 'abc', '', '举头望明月'.repeat(1000)];
  for (const s of sent) c.send(s);
  await c.wait((m) => m.data === `${sent.at(-1)}${SUFFIX}`);
  assert.deepEqual(
    c.messages.items,
    sent.map((s) => ({ data: s + SUFFIX, isBinary: false })),
  );
});

test('wire: a message larger than 64 KiB is echoed too (npm ws accepts up to 100 MiB by default)', async (t) => {
  const app = await useApp(t, APP, { port: 'free', probe: 'tcp' });
  const c = await connectWs(wsUrl(app));
  t.after(() => c.close());
  const big = 'x'.repeat(70000);
  c.send(big);
  const echo = await Promise.race([
    c.wait(() => true),
    c.closed.then((code) => {
      throw new Error(`the server closed the connection (${code}) instead of echoing ${big.length} bytes`);
    }),
  ]);
  assert.equal(echo.data, big + SUFFIX);
});

test('wire: the echo goes to its sender only', async (t) => {
  const app = await useApp(t, APP, { port: 'free', probe: 'tcp' });
  const a = await connectWs(wsUrl(app));
  const b = await connectWs(wsUrl(app));
  t.after(() => {
    a.close();
    b.close();
  });
  a.send('from a');
  b.send('from b');
  await a.wait((m) => m.data === `from a${SUFFIX}`);
  await b.wait((m) => m.data === `from b${SUFFIX}`);
  // Each sends once more: by then the other's echo would have arrived before.
  a.send('again a');
  b.send('again b');
  await a.wait((m) => m.data === `again a${SUFFIX}`);
  await b.wait((m) => m.data === `again b${SUFFIX}`);
  assert.deepEqual(a.messages.items.map((m) => m.data), [`from a${SUFFIX}`, `again a${SUFFIX}`]);
  assert.deepEqual(b.messages.items.map((m) => m.data), [`from b${SUFFIX}`, `again b${SUFFIX}`]);
});

test('wire: a binary message is echoed as text (data + string decodes it as UTF-8)', async (t) => {
  const app = await useApp(t, APP, { port: 'free', probe: 'tcp' });
  const c = await connectWs(wsUrl(app));
  t.after(() => c.close());
  c.send(Buffer.from('二进制', 'utf8'), { binary: true });
  assert.deepEqual(await c.wait(() => true), { data: `二进制${SUFFIX}`, isBinary: false });
});

test('wire: close and abrupt disconnects are seen; the server keeps serving', async (t) => {
  const app = await useApp(t, APP, { port: 'free', probe: 'tcp' });
  const a = await connectWs(wsUrl(app));
  await app.waitForOutput('有个人进来了');
  a.close();
  await a.closed;
  await app.waitForOutput('ta又走了！呜呜呜');
  const b = await connectWs(wsUrl(app));
  b.ws.terminate(); // TCP reset-like end, no close frame
  await app.waitForOutput(/(ta又走了！呜呜呜[\s\S]*){2}/);
  const c = await connectWs(wsUrl(app));
  t.after(() => c.close());
  c.send('still here');
  assert.equal((await c.wait(() => true)).data, `still here${SUFFIX}`);
  app.assertAlive();
});
