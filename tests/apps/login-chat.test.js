'use strict';
// examples/socketio-apps/login-chat: tutorial 001's login chat (CommonJS,
// `require("socket.io")(server)`) with that line changed to palaver/socket.io. Its page
// in Chromium (served at /, loads /socket.io/socket.io.js, connects to
// http://localhost:3000), and its wire contract with npm socket.io-client: login(name) (a
// bare string), message {username, message}, loginOut; loginSuccess to the sender,
// notify(name) and updateUserList([{username}]) to everyone, recevied(username, msg) (two
// arguments, to everyone including the sender), loginOut(name).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { launchBrowser, eventually, assertNoPageErrors, screenshot } = require('../support/browser');
const {
  SKIP_ON_REFERENCE,
  useApp,
  connectClient,
  closeAfter,
  openAppPage,
  httpGet,
} = require('../support/apps');

const APP = 'login-chat';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
});

/** The page's message lines (#text spans). */
const texts = (p) => p.page.$$eval('#text span', (els) => els.map((e) => e.textContent));
/** The page's user list (#userList items). */
const users = (p) => p.page.$$eval('#userList li', (els) => els.map((e) => e.textContent));

async function login(p, name) {
  await p.page.fill('#account', name);
  await p.page.click('button[onclick="login()"]');
}

async function send(p, text) {
  await p.page.fill('#info', text);
  await p.page.click('#btn');
}

test('the page: login, notify, user list, messages to everyone, logout', async (t) => {
  const app = await useApp(t, APP);
  const alice = await openAppPage(browser, `${app.url}/`);
  const bob = await openAppPage(browser, `${app.url}/`);
  t.after(() => Promise.all([alice.close(), bob.close()]));
  assert.equal(await alice.page.isVisible('#info'), false);

  await login(alice, 'alice');
  await eventually(async () => {
    assert.deepEqual(await texts(alice), ['alice登陆成功！', 'alice加入进来了!']);
    assert.deepEqual(await users(alice), ['alice(本人)']);
    assert.equal(await alice.page.isVisible('#info'), true);
    assert.equal(await alice.page.isVisible('#btn'), true);
    // Bob, not logged in, is told too.
    assert.deepEqual(await texts(bob), ['alice加入进来了!']);
    assert.deepEqual(await users(bob), ['alice']);
  });

  await login(bob, 'bob');
  await eventually(async () => {
    assert.deepEqual(await users(alice), ['alice(本人)', 'bob']);
    assert.deepEqual(await users(bob), ['alice', 'bob(本人)']);
    assert.deepEqual((await texts(alice)).at(-1), 'bob加入进来了!');
    assert.deepEqual(await texts(bob), ['alice加入进来了!', 'bob登陆成功！', 'bob加入进来了!']);
  });

  // recevied(username, msg) reaches everyone, the sender too.
  await send(alice, 'hello bob');
  for (const p of [alice, bob]) {
    await eventually(async () => assert.match((await texts(p)).at(-1), /^alice: hello bob---------\S/));
  }
  assert.equal(await alice.page.inputValue('#info'), '');
  await send(bob, 'hi alice');
  for (const p of [alice, bob]) {
    await eventually(async () => assert.match((await texts(p)).at(-1), /^bob: hi alice---------\S/));
  }
  await screenshot(alice.page, 'app-login-chat');

  // Alice logs out: everyone is told, the list loses her.
  await alice.page.click('button[onclick="loginOut()"]');
  for (const p of [alice, bob]) {
    await eventually(async () => assert.equal((await texts(p)).at(-1), 'alice退出了群聊！'));
  }
  await eventually(async () => {
    assert.deepEqual(await users(bob), ['bob(本人)']);
    assert.deepEqual(await users(alice), ['bob']);
  });
  assert.equal(await alice.page.isVisible('#info'), false);

  assertNoPageErrors(alice, bob);
  app.assertAlive();
});

test('wire: login(name): loginSuccess to the sender, notify and updateUserList to everyone', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  closeAfter(t, a, b);

  a.emit('login', 'alice');
  assert.deepEqual(await a.wait('updateUserList'), [[{ username: 'alice' }]]);
  // In this order, loginSuccess with no argument.
  assert.deepEqual(a.events.items, [
    { event: 'loginSuccess', args: [] },
    { event: 'notify', args: ['alice'] },
    { event: 'updateUserList', args: [[{ username: 'alice' }]] },
  ]);
  assert.deepEqual(await b.wait('updateUserList'), [[{ username: 'alice' }]]);
  assert.deepEqual(b.of('notify'), [['alice']]);
  assert.deepEqual(b.of('loginSuccess'), []);

  b.emit('login', 'bob');
  const both = [[{ username: 'alice' }, { username: 'bob' }]];
  assert.deepEqual(await a.wait('updateUserList', (l) => l.length === 2), both);
  assert.deepEqual(await b.wait('updateUserList', (l) => l.length === 2), both);
  assert.deepEqual(a.of('notify'), [['alice'], ['bob']]);
});

test('wire: message {username, message} comes back to everyone as recevied(username, msg), two arguments', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  closeAfter(t, a, b);
  a.emit('login', 'alice');
  await b.wait('updateUserList');

  a.emit('message', { username: 'alice', message: 'hi <i>all</i>' });
  assert.deepEqual(await a.wait('recevied'), ['alice', 'hi <i>all</i>']);
  assert.deepEqual(await b.wait('recevied'), ['alice', 'hi <i>all</i>']);
  // The seed trusts the client's username, and needs no login at all.
  const bm = b.mark();
  b.emit('message', { username: 'alice', message: 'not really alice' });
  assert.deepEqual(await a.wait('recevied', (u, m) => m === 'not really alice'), ['alice', 'not really alice']);
  assert.deepEqual(await b.wait('recevied', () => true, { from: bm }), ['alice', 'not really alice']);
});

test('wire: loginOut: loginOut(name) and updateUserList(users, "") to everyone; without a login, loginOut(null)', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  closeAfter(t, a, b);
  a.emit('login', 'alice');
  b.emit('login', 'bob');
  await a.wait('updateUserList', (l) => l.length === 2);
  await b.wait('updateUserList', (l) => l.length === 2);

  const [am, bm] = [a.mark(), b.mark()];
  a.emit('loginOut');
  assert.deepEqual(await b.wait('loginOut', () => true, { from: bm }), ['alice']);
  assert.deepEqual(await b.wait('updateUserList', () => true, { from: bm }), [[{ username: 'bob' }], '']);
  assert.deepEqual(await a.wait('updateUserList', () => true, { from: am }), [[{ username: 'bob' }], '']);
  assert.deepEqual(a.of('loginOut', am), [['alice']]);

  // Logged out (or never logged in): the name is gone; the page says "not logged in".
  const bm2 = b.mark();
  a.emit('loginOut');
  const [name] = await b.wait('loginOut', () => true, { from: bm2 });
  assert.ok(!name, `expected no name, got ${JSON.stringify(name)}`);
});

test('wire: a user who disconnects without loginOut stays in the list (the seed never removes them)', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  a.emit('login', 'alice');
  await a.wait('updateUserList');
  a.close();
  const c = await connectClient(app.url);
  closeAfter(t, c);
  c.emit('login', 'carol');
  assert.deepEqual(await c.wait('updateUserList'), [[{ username: 'alice' }, { username: 'carol' }]]);
});

test('wire: the page and /socket.io/socket.io.js are served', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const page = await httpGet(`${app.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.body, /<script src="\/socket\.io\/socket\.io\.js"><\/script>/);
  assert.match(page.body, /io\("http:\/\/localhost:3000"\)/);
  const script = await httpGet(`${app.url}/socket.io/socket.io.js`);
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type'), /javascript/);
  assert.ok(script.body.length > 10000, `a client bundle, got ${script.body.length} bytes`);
});

test('wire: message(null) throws in the handler; the server lives on and keeps serving', { skip: SKIP_ON_REFERENCE }, async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const evil = await connectClient(app.url);
  closeAfter(t, a, evil);
  a.emit('login', 'alice');
  await a.wait('updateUserList');

  evil.emit('message', null); // let { username, message } = null: TypeError in the seed's handler
  evil.emit('message', { username: 'evil', message: 'after the throw' });
  assert.deepEqual(await a.wait('recevied'), ['evil', 'after the throw']);
  a.emit('message', { username: 'alice', message: 'still here' });
  assert.deepEqual(await a.wait('recevied', (u) => u === 'alice'), ['alice', 'still here']);
  const late = await connectClient(app.url);
  closeAfter(t, late);
  late.emit('login', 'late');
  assert.deepEqual(await late.wait('updateUserList'), [[{ username: 'alice' }, { username: 'late' }]]);
  await app.waitForOutput(/Cannot destructure property 'username'/);
  app.assertAlive('after message(null)');
});
