'use strict';
// examples/socketio-apps/hello-chat: the Socket.IO "hello world" chat of tutorial 003
// (`const {Server} = require('socket.io'); new Server(server)`) with that line changed
// to palaver/socket.io. Its page in Chromium (served at /, `io()`), and its wire
// contract with npm socket.io-client: `chat message` (a string) broadcast with io.emit to
// everyone, the sender included.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { launchBrowser, eventually, assertNoPageErrors, screenshot } = require('../support/browser');
const { useApp, connectClient, closeAfter, openAppPage, httpGet } = require('../support/apps');

const APP = 'hello-chat';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
});

const items = (p) => p.page.$$eval('ul li', (els) => els.map((e) => e.textContent));

async function send(p, text) {
  await p.page.fill('form input', text);
  await p.page.click('form button');
}

test('the page: a message typed in one page appears in both', async (t) => {
  const app = await useApp(t, APP);
  const a = await openAppPage(browser, `${app.url}/`);
  const b = await openAppPage(browser, `${app.url}/`);
  t.after(() => Promise.all([a.close(), b.close()]));
  // Both pages are connected once the server has logged two connections.
  await app.waitForOutput(/(有个connection进入了聊天室[\s\S]*){2}/);

  await send(a, 'hello from a');
  for (const p of [a, b]) await eventually(async () => assert.deepEqual(await items(p), ['hello from a']));
  assert.equal(await a.page.inputValue('form input'), '');
  await send(b, 'hi <b>a</b>');
  for (const p of [a, b]) {
    await eventually(async () => assert.deepEqual(await items(p), ['hello from a', 'hi <b>a</b>']));
  }
  // An empty input sends nothing.
  await a.page.click('form button');
  await send(a, 'third');
  for (const p of [a, b]) {
    await eventually(async () => assert.deepEqual(await items(p), ['hello from a', 'hi <b>a</b>', 'third']));
  }
  await screenshot(a.page, 'app-hello-chat');
  assertNoPageErrors(a, b);

  await b.close();
  await app.waitForOutput('connection离开了');
  app.assertAlive();
});

test('wire: chat message is broadcast to everyone, the sender included, in order', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  closeAfter(t, a, b);
  for (const text of ['one', 'two', '举头望明月']) a.emit('chat message', text);
  b.emit('chat message', 'from b');
  for (const c of [a, b]) {
    await c.wait('chat message', (m) => m === '举头望明月');
    await c.wait('chat message', (m) => m === 'from b');
    const fromA = c.of('chat message').map(([m]) => m).filter((m) => m !== 'from b');
    assert.deepEqual(fromA, ['one', 'two', '举头望明月']);
  }
  await app.waitForOutput('举头望明月');
});

test('wire: the payload is relayed as the client sent it', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  closeAfter(t, a, b);
  a.emit('chat message', { not: 'a string', n: [1, 2] });
  assert.deepEqual(await b.wait('chat message'), [{ not: 'a string', n: [1, 2] }]);
  a.emit('chat message', null);
  assert.deepEqual(await b.wait('chat message', (m) => m === null), [null]);
  app.assertAlive();
});

test('wire: the page and /socket.io/socket.io.js are served; a disconnect is seen by the server', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const page = await httpGet(`${app.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.body, /<script src="\/socket\.io\/socket\.io\.js"><\/script>/);
  const script = await httpGet(`${app.url}/socket.io/socket.io.js`);
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type'), /javascript/);
  const a = await connectClient(app.url);
  await app.waitForOutput('有个connection进入了聊天室');
  a.close();
  await app.waitForOutput('connection离开了');
});
