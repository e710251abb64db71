'use strict';
// The tests of tutorial 004's token chat, run against both of its apps
// (examples/socketio-apps/token-chat-express and token-chat-koa: the same
// websocketServer.js module, with its require line changed to palaver/socket.io, under
// an Express app and a Koa app). tests/apps/token-chat-*.test.js call tokenChatSuite.
//
// The contract: a JWT in the handshake query (`?token=`), numeric event names 0 Error,
// 1 GroupList, 2 GroupChat, 3 SingleChat, payloads {user, data}; on connect with a good
// token 2 {user: null, data: welcome} to the socket and 1 {user: null, data: [payloads]}
// to everyone (the list is built from io.sockets.sockets and the `user` each socket
// object keeps); 2 {data} is broadcast as 2 {user, data}; 3 {data, to} goes to every
// connection of `to`; a bad token gets 0 {user: null, data: "token过期"} (the page then
// goes to /login) and, as the seed has it, stays connected.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const jwt = require('jsonwebtoken');
const { launchBrowser, eventually, assertNoPageErrors, screenshot } = require('./browser');
const {
  SKIP_ON_REFERENCE,
  useApp,
  connectClient,
  closeAfter,
  openAppPage,
  httpGet,
} = require('./apps');

const SECRET = 'palaver-apps-test-secret';
// How long the server may take to notice that a page went away. Usually at once (its
// request or WebSocket closes); but a page that leaves while its connection upgrades
// from long-polling to WebSocket leaves nothing open to close, and the server notices
// only when a ping goes unanswered: pingInterval + pingTimeout, 25 s + 20 s by default
// in npm socket.io and in Palaver's engine (transport.ping_interval_ms, ping_timeout_ms).
const GONE_MS = 60000;
const ENV = { TOKEN_SECRET: SECRET };
const WELCOME = '欢迎来到聊天室';
const EXPIRED_TEXT = 'token过期';

const token = (username, options = {}) =>
  jwt.sign({ username }, SECRET, { algorithm: 'HS256', expiresIn: '1h', ...options });
const forged = (username) => jwt.sign({ username }, 'not-the-secret', { algorithm: 'HS256' });
const expired = (username) =>
  jwt.sign({ username, exp: Math.floor(Date.now() / 1000) - 60 }, SECRET, { algorithm: 'HS256' });

/** Connects the way the page does: the token in the URL's query. */
const join = (app, tok) => connectClient(`${app.url}?token=${tok}`);
const names = (list) => list.map((u) => (u ? u.username : u));

function tokenChatSuite(APP) {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    if (browser) await browser.close();
  });

  /** The page's select options (values). */
  const options = (p) => p.page.$$eval('#select option', (els) => els.map((e) => e.value));

  /** The login page flow: a name, the token in localStorage, then the chat page. */
  async function loginAs(p, name) {
    await p.page.waitForURL('**/login');
    await p.page.fill('#name', name);
    await Promise.all([p.page.waitForURL((u) => u.pathname === '/'), p.page.click('#submit')]);
    await p.page.waitForFunction((n) => document.getElementById('username').textContent === n, name);
  }

  /** Sends from the page: choose all or a user in the select, type, click 发送. */
  async function sendFrom(p, to, text) {
    await p.page.selectOption('#select', to);
    await p.page.fill('#text', text);
    await p.page.click('#send');
  }

  test(`${APP}: the page: login, user lists, group and private messages, bad tokens go to /login`, async (t) => {
    const app = await useApp(t, APP, { env: ENV });
    // A third user on the wire sees everything a connection change causes: each
    // disconnect sends it the list (1), including the bad-token sockets' disconnects.
    const carol = await join(app, token('carol'));
    closeAfter(t, carol);
    await carol.wait(1);

    // No token yet: the page gets 0 and goes to /login; the server drops that socket.
    let mark = carol.mark();
    const alice = await openAppPage(browser, `${app.url}/`, { waitUntil: 'commit' });
    t.after(() => alice.close());
    await alice.page.waitForURL('**/login');
    await carol.wait(1, () => true, { from: mark, timeout: GONE_MS });
    await loginAs(alice, 'alice');
    assert.deepEqual(await alice.page.evaluate(() => [localStorage.getItem('username'), typeof localStorage.getItem('token')]), ['alice', 'string']);
    assert.equal(await alice.page.title(), '聊天室');
    await eventually(async () => assert.deepEqual((await options(alice)).sort(), ['alice', 'all', 'carol']));
    await alice.waitForConsole(`广播：${WELCOME}`);

    mark = carol.mark();
    const bob = await openAppPage(browser, `${app.url}/`, { waitUntil: 'commit' });
    t.after(() => bob.close());
    await bob.page.waitForURL('**/login');
    await carol.wait(1, () => true, { from: mark, timeout: GONE_MS });
    await loginAs(bob, 'bob');
    for (const p of [alice, bob]) {
      await eventually(async () => assert.deepEqual((await options(p)).sort(), ['alice', 'all', 'bob', 'carol']));
    }

    // Group: everyone, the sender too.
    let aliceMark = alice.console.mark();
    await sendFrom(alice, 'all', 'hello all');
    await alice.waitForConsole('alice：hello all', { from: aliceMark });
    await bob.waitForConsole('alice：hello all');
    assert.deepEqual(await carol.wait(2, (m) => m.data === 'hello all'), [{ user: 'alice', data: 'hello all' }]);

    // Private: to bob only.
    const carolMark = carol.mark();
    aliceMark = alice.console.mark();
    await sendFrom(alice, 'bob', 'psst bob');
    await bob.waitForConsole('alice：psst bob');
    await sendFrom(bob, 'alice', 'psst alice');
    await alice.waitForConsole('bob：psst alice', { from: aliceMark });
    // A group message after them: whoever would have got the private ones has them by now.
    await sendFrom(bob, 'all', 'after');
    await alice.waitForConsole('bob：after', { from: aliceMark });
    await bob.waitForConsole('bob：after');
    await carol.wait(2, (m) => m.data === 'after', { from: carolMark });
    assert.ok(!alice.console.items.includes('alice：psst bob'), JSON.stringify(alice.console.items));
    assert.ok(!bob.console.items.includes('bob：psst alice'), JSON.stringify(bob.console.items));
    assert.deepEqual(carol.of(3, carolMark), []);
    await screenshot(alice.page, `app-${APP}`);

    // carol privately to alice, from the wire.
    carol.emit(3, { data: 'from carol', to: 'alice' });
    await alice.waitForConsole('carol：from carol');

    // Bad tokens (forged, expired): the page drops its token and goes to /login.
    for (const [kind, bad] of [['forged', forged('eve')], ['expired', expired('eve')]]) {
      const eve = await openAppPage(browser, `${app.url}/login`);
      t.after(() => eve.close());
      await eve.page.evaluate((tok) => {
        localStorage.setItem('token', tok);
        localStorage.setItem('username', 'eve');
      }, bad);
      mark = carol.mark();
      await eve.page.goto(`${app.url}/`, { waitUntil: 'commit' });
      await eve.page.waitForURL('**/login');
      assert.equal(await eve.page.evaluate(() => localStorage.getItem('token')), null, `${kind} token removed`);
      await carol.wait(1, () => true, { from: mark, timeout: GONE_MS });
      assertNoPageErrors(eve);
    }

    // Bob leaves: the others' lists lose him.
    await bob.close();
    await eventually(async () => assert.deepEqual((await options(alice)).sort(), ['alice', 'all', 'carol']));
    assertNoPageErrors(alice, bob);
    app.assertAlive();
  });

  test(`${APP}: wire: a good token gets the welcome (2) and everyone the list (1) of the sockets' users`, async (t) => {
    const app = await useApp(t, APP, { port: 'free', env: ENV });
    const alice = await join(app, token('alice'));
    closeAfter(t, alice);
    const [list] = await alice.wait(1);
    assert.deepEqual(alice.of(2), [[{ user: null, data: WELCOME }]]);
    assert.equal(String(alice.events.items[0].event), '2', 'the welcome comes first');
    assert.equal(list.user, null);
    assert.deepEqual(names(list.data), ['alice']);
    // The list carries the token payloads as the sockets keep them.
    assert.deepEqual(Object.keys(list.data[0]).sort(), ['exp', 'iat', 'username']);

    const aliceMark = alice.mark();
    const bob = await join(app, token('bob'));
    closeAfter(t, bob);
    const [bobList] = await bob.wait(1);
    const [aliceList] = await alice.wait(1, () => true, { from: aliceMark });
    assert.deepEqual(names(bobList.data), ['alice', 'bob']);
    assert.deepEqual(aliceList, bobList);
    assert.deepEqual(alice.of(2, aliceMark), [], 'the welcome goes to the newcomer only');

    // 1 asks for the list: everyone gets it.
    const [am, bm] = [alice.mark(), bob.mark()];
    bob.emit(1);
    assert.deepEqual(names((await alice.wait(1, () => true, { from: am }))[0].data), ['alice', 'bob']);
    assert.deepEqual(names((await bob.wait(1, () => true, { from: bm }))[0].data), ['alice', 'bob']);

    // A disconnect: the others get the list without it.
    const am2 = alice.mark();
    bob.close();
    assert.deepEqual(names((await alice.wait(1, () => true, { from: am2 }))[0].data), ['alice']);
  });

  test(`${APP}: wire: socket.emit(2, {data}) keeps the connection and is broadcast as 2 {user, data}`, async (t) => {
    const app = await useApp(t, APP, { port: 'free', env: ENV });
    const alice = await join(app, token('alice'));
    const bob = await join(app, token('bob'));
    closeAfter(t, alice, bob);
    await alice.wait(1, (l) => l.data.length === 2);
    await bob.wait(1);

    alice.emit(2, { data: 'hello everyone' });
    assert.deepEqual(await bob.wait(2, (m) => m.user !== null), [{ user: 'alice', data: 'hello everyone' }]);
    assert.deepEqual(await alice.wait(2, (m) => m.user !== null), [{ user: 'alice', data: 'hello everyone' }]);
    assert.ok(alice.socket.connected, 'a numeric event name must not close the connection');
    // npm socket.io sends a numeric name as a number ([2, {...}]); palaver/socket.io sends
    // its decimal text (["2", {...}]), a documented difference (docs/SOCKETIO.md):
    // socket.io-client's socket.on(2) fires for both, only onAny sees the difference.
    const names = [...new Set(bob.events.items.map((e) => String(e.event)))];
    assert.deepEqual(names.sort(), ['1', '2'], `event names as received: ${JSON.stringify(bob.events.items.map((e) => e.event))}`);
    if (!process.env.PALAVER_APPS_DIR) {
      const kinds = [...new Set(bob.events.items.map((e) => typeof e.event))];
      assert.deepEqual(kinds, ['string']);
    }
    // The name is the token's, whatever the payload says; data passes as sent.
    bob.emit(2, { data: { any: ['json'] }, user: 'mallory' });
    assert.deepEqual(await alice.wait(2, (m) => m.user === 'bob'), [{ user: 'bob', data: { any: ['json'] } }]);
    assert.ok(alice.socket.connected && bob.socket.connected);
  });

  test(`${APP}: wire: 3 {data, to} reaches every connection of \`to\` and nobody else`, async (t) => {
    const app = await useApp(t, APP, { port: 'free', env: ENV });
    const alice = await join(app, token('alice'));
    const bob1 = await join(app, token('bob'));
    const bob2 = await join(app, token('bob'));
    const carol = await join(app, token('carol'));
    const all = [alice, bob1, bob2, carol];
    closeAfter(t, ...all);
    for (const c of all) await c.wait(1, (l) => l.data.length === 4);

    alice.emit(3, { data: 'psst', to: 'bob' });
    for (const b of [bob1, bob2]) assert.deepEqual(await b.wait(3), [{ user: 'alice', data: 'psst' }]);
    // Then a group message: alice and carol would have had the private one before it.
    alice.emit(2, { data: 'after' });
    for (const c of all) await c.wait(2, (m) => m.data === 'after');
    assert.deepEqual(alice.of(3), []);
    assert.deepEqual(carol.of(3), []);
    // To nobody: nothing, and no harm.
    carol.emit(3, { data: 'into the void', to: 'nobody' });
    carol.emit(3, { data: 'to carol herself', to: 'carol' });
    assert.deepEqual(await carol.wait(3), [{ user: 'carol', data: 'to carol herself' }]);
    for (const c of [alice, bob1, bob2]) assert.deepEqual(c.of(3).filter(([m]) => m.user === 'carol'), []);
  });

  test(`${APP}: wire: a missing, forged or expired token gets 0 {user: null, data: "token过期"} and, as in the seed, stays connected`, async (t) => {
    const app = await useApp(t, APP, { port: 'free', env: ENV });
    const alice = await join(app, token('alice'));
    closeAfter(t, alice);
    await alice.wait(1);
    const bad = {
      'no token': app.url,
      'token=null (the page without a token)': `${app.url}?token=null`,
      'empty token': `${app.url}?token=`,
      'garbage': `${app.url}?token=garbage`,
      'forged': `${app.url}?token=${forged('alice')}`,
      'expired': `${app.url}?token=${expired('alice')}`,
    };
    for (const [kind, url] of Object.entries(bad)) {
      const c = await connectClient(url);
      closeAfter(t, c);
      assert.deepEqual(await c.wait(0), [{ user: null, data: EXPIRED_TEXT }], kind);
      assert.deepEqual(c.of(2), [], 'no welcome');
      // It still reads the group chat (the seed's flaw, kept).
      alice.emit(2, { data: `for ${kind}` });
      assert.deepEqual(await c.wait(2), [{ user: 'alice', data: `for ${kind}` }]);
      assert.ok(c.socket.connected);
      // In the list, a socket without a user shows as null.
      const am = alice.mark();
      alice.emit(1);
      const [list] = await alice.wait(1, () => true, { from: am });
      assert.deepEqual(names(list.data), ['alice', null]);
      const am2 = alice.mark();
      c.close();
      assert.deepEqual(names((await alice.wait(1, () => true, { from: am2 }))[0].data), ['alice']);
    }
  });

  test(`${APP}: wire: a bad-token socket's group or private message throws in the handler; the server lives on`, { skip: SKIP_ON_REFERENCE }, async (t) => {
    const app = await useApp(t, APP, { port: 'free', env: ENV });
    const alice = await join(app, token('alice'));
    const bob = await join(app, token('bob'));
    closeAfter(t, alice, bob);
    await alice.wait(1, (l) => l.data.length === 2);
    const eve = await join(app, forged('eve'));
    closeAfter(t, eve);
    await eve.wait(0);
    // socket.user is undefined: socket.user.username throws.
    eve.emit(2, { data: 'from eve' });
    eve.emit(3, { data: 'from eve', to: 'alice' });
    // alice's private message walks io.sockets.sockets and throws at eve's socket
    // (item[1].user.username); whatever reached bob before that is the seed's business.
    alice.emit(3, { data: 'psst', to: 'bob' });
    // A group message without a payload: msg.data throws.
    alice.emit(2);
    alice.emit(2, null);
    // The server still serves everyone, eve's and alice's later requests included.
    eve.emit(1);
    const [list] = await alice.wait(1, (l) => l.data.includes(null));
    assert.deepEqual(names(list.data), ['alice', 'bob', null]);
    bob.emit(2, { data: 'still here' });
    assert.deepEqual(await alice.wait(2, (m) => m.data === 'still here'), [{ user: 'bob', data: 'still here' }]);
    alice.emit(2, { data: 'me too' });
    assert.deepEqual(await bob.wait(2, (m) => m.data === 'me too'), [{ user: 'alice', data: 'me too' }]);
    assert.ok(!alice.of(2).some(([m]) => m.data === 'from eve'));
    const late = await join(app, token('late'));
    closeAfter(t, late);
    assert.deepEqual(await late.wait(2), [{ user: null, data: WELCOME }]);
    await app.waitForOutput(/Cannot read properties of undefined \(reading 'username'\)/);
    app.assertAlive('after the handlers threw');
  });

  test(`${APP}: wire: /javascripts/socketio.js loads the client the server serves; /login issues tokens`, async (t) => {
    const app = await useApp(t, APP, { port: 'free', env: ENV });
    const page = await httpGet(`${app.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /text\/html/);
    assert.ok(!page.body.includes('<%'), 'the template tags are filled');
    assert.match(page.body, /<script src="\/javascripts\/socketio\.js"><\/script>/);
    const script = await httpGet(`${app.url}/javascripts/socketio.js`, { redirect: 'follow' });
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type'), /javascript/);
    const direct = await httpGet(`${app.url}/socket.io/socket.io.js`);
    assert.equal(script.body, direct.body);

    const login = await httpGet(`${app.url}/login`);
    assert.equal(login.status, 200);
    assert.match(login.body, /id="name"/);
    const post = async (body) => {
      const res = await fetch(`${app.url}/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const ok = await post({ username: '小明' });
    assert.equal(ok.status, 200);
    const payload = jwt.verify(ok.body.token, SECRET, { algorithms: ['HS256'] });
    assert.equal(payload.username, '小明');
    assert.ok(payload.exp > Date.now() / 1000);
    for (const username of ['', '<img src=x onerror=alert(1)>', 'a b', 'x'.repeat(21), 42, undefined]) {
      const refused = await post({ username });
      assert.equal(refused.status, 400, `username ${JSON.stringify(username)}`);
      assert.equal(refused.body.token, undefined);
    }
    // The issued token opens the chat.
    const c = await join(app, ok.body.token);
    closeAfter(t, c);
    assert.deepEqual(names((await c.wait(1))[0].data), ['小明']);
  });
}

module.exports = { tokenChatSuite };
