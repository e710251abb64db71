'use strict';
// examples/socketio-apps/room-chat: tutorial 002's room chat (ESM, node:http + Express 4,
// `new Server(server, {cors: true})`) with its import line changed to palaver/socket.io.
// Its page in Chromium, and its wire contract with npm socket.io-client: join {name,
// room}, message {text, room, user}; message {user, text} (join notices to everyone, room
// messages to the *other* members, leave notices to the room), groupList to everyone.

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

const APP = 'room-chat';
const ADMIN_JOIN = '管理员：'; // the user of join notices, as the seed writes it
const ADMIN_LEAVE = '管理员'; // the user of leave notices
const joined = (name) => ({ user: ADMIN_JOIN, text: `${name}进入了房间` });
const left = (name) => ({ user: ADMIN_LEAVE, text: `${name}离开了房间` });

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
});

/** The page's chat lines (`user:text`). */
const lines = (p) => p.page.$$eval('.main .main-chat', (els) => els.map((e) => e.innerText));
/** The page's room list lines. */
const rooms = (p) => p.page.$$eval('.groupList .groupList-items', (els) => els.map((e) => e.innerText));
const roomLine = (room, count) => `房间名称:${room} 房间人数:${count}`;

/** Types a message into the page's input and presses Enter, as a user does. */
async function type(p, text) {
  await p.page.click('.ipt');
  await p.page.keyboard.type(text);
  await p.page.keyboard.press('Enter');
}

test('the page: two users in a room and one in another; room list, notices, messages to the room only, leave notice', async (t) => {
  const app = await useApp(t, APP);
  // The page asks for a name, then a room (prompt), and joins once connected.
  const alice = await openAppPage(browser, `${app.url}/`, { dialogs: ['Alice', 'r1'] });
  t.after(() => alice.close());
  await eventually(async () => assert.deepEqual(await rooms(alice), [roomLine('r1', 1)]));

  const bob = await openAppPage(browser, `${app.url}/`, { dialogs: ['Bob', 'r1'] });
  t.after(() => bob.close());
  await eventually(async () => {
    assert.deepEqual(await rooms(alice), [roomLine('r1', 2)]);
    assert.deepEqual(await rooms(bob), [roomLine('r1', 2)]);
    assert.deepEqual(await lines(alice), [`${ADMIN_JOIN}:Bob进入了房间`]);
  });

  const carol = await openAppPage(browser, `${app.url}/`, { dialogs: ['Carol', 'r2'] });
  t.after(() => carol.close());
  for (const p of [alice, bob, carol]) {
    await eventually(async () => assert.deepEqual(await rooms(p), [roomLine('r1', 2), roomLine('r2', 1)]));
  }
  // The join notice goes to everyone, whatever their room (socket.broadcast.emit).
  await eventually(async () => assert.deepEqual(await lines(bob), [`${ADMIN_JOIN}:Carol进入了房间`]));

  // Alice types: her page shows it at once, Bob (same room) gets it.
  await type(alice, 'hello r1');
  await eventually(async () => assert.deepEqual((await lines(bob)).at(-1), 'Alice:hello r1'));
  assert.deepEqual((await lines(alice)).at(-1), 'Alice:hello r1');
  assert.equal(await alice.page.innerText('.ipt'), '');
  // Bob answers.
  await type(bob, 'hi Alice');
  await eventually(async () => assert.deepEqual((await lines(alice)).at(-1), 'Bob:hi Alice'));

  // Carol (r2) got neither: a message to r2 sent after them reaches her, and nothing before it.
  const dave = await connectClient(app.url);
  closeAfter(t, dave);
  dave.emit('join', { name: 'Dave', room: 'r2' });
  dave.emit('message', { text: 'marker for r2', room: 'r2', user: 'Dave' });
  await eventually(async () =>
    assert.deepEqual(await lines(carol), [`${ADMIN_JOIN}:Dave进入了房间`, 'Dave:marker for r2']),
  );
  dave.close();
  await eventually(async () => assert.deepEqual((await lines(carol)).at(-1), `${ADMIN_LEAVE}:Dave离开了房间`));

  await screenshot(alice.page, 'app-room-chat');

  // Bob closes his page: r1 gets a leave notice, everyone the new list.
  await bob.close();
  await eventually(async () => assert.deepEqual((await lines(alice)).at(-1), `${ADMIN_LEAVE}:Bob离开了房间`));
  for (const p of [alice, carol]) {
    await eventually(async () => assert.deepEqual(await rooms(p), [roomLine('r1', 1), roomLine('r2', 1)]));
  }
  // The leave notice (sent before that list) went to r1 only.
  assert.ok(!(await lines(carol)).some((l) => l.includes('Bob离开了房间')), String(await lines(carol)));

  assertNoPageErrors(alice, bob, carol);
  app.assertAlive();
});

test('wire: join gets groupList {room: [{name, room, id}]}; join notices go to everyone else', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  closeAfter(t, a, b);

  a.emit('join', { name: 'alice', room: 'r1' });
  const [list1] = await a.wait('groupList');
  assert.deepEqual(list1, { r1: [{ name: 'alice', room: 'r1', id: a.socket.id }] });
  // b (not in any room yet) is told too: the notice and the list are broadcast to all.
  assert.deepEqual(await b.wait('message'), [joined('alice')]);
  assert.deepEqual(await b.wait('groupList'), [list1]);

  const aMark = a.mark();
  b.emit('join', { name: 'bob', room: 'r2' });
  const both = {
    r1: [{ name: 'alice', room: 'r1', id: a.socket.id }],
    r2: [{ name: 'bob', room: 'r2', id: b.socket.id }],
  };
  assert.deepEqual(await a.wait('message', () => true, { from: aMark }), [joined('bob')]);
  assert.deepEqual(await a.wait('groupList', () => true, { from: aMark }), [both]);
  assert.deepEqual(await b.wait('groupList', (g) => 'r2' in g), [both]);
  // The joiner gets no notice of its own join (socket.broadcast.emit).
  assert.deepEqual(b.of('message'), [[joined('alice')]]);
});

test('wire: message {text, room, user} reaches the other members of the room only, with the client-sent user', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  const c = await connectClient(app.url);
  closeAfter(t, a, b, c);
  a.emit('join', { name: 'alice', room: 'r1' });
  await a.wait('groupList');
  b.emit('join', { name: 'bob', room: 'r1' });
  await a.wait('groupList', (g) => g.r1.length === 2);
  c.emit('join', { name: 'carol', room: 'r2' });
  await a.wait('groupList', (g) => 'r2' in g);
  await b.wait('groupList', (g) => 'r2' in g);
  await c.wait('groupList', (g) => 'r2' in g);

  const [am, bm, cm] = [a.mark(), b.mark(), c.mark()];
  // The seed trusts `user`: bob can speak as anyone.
  b.emit('message', { text: 'hi <b>r1</b>', room: 'r1', user: 'mallory' });
  assert.deepEqual(await a.wait('message', () => true, { from: am }), [{ text: 'hi <b>r1</b>', user: 'mallory' }]);
  // ...and into a room he is not in: carol gets this one, after anything sent before.
  b.emit('message', { text: 'into r2', room: 'r2', user: 'bob' });
  assert.deepEqual(await c.wait('message', () => true, { from: cm }), [{ text: 'into r2', user: 'bob' }]);
  // a, in r1, got the r1 message only; carol, in r2, the r2 message only; bob none of his own.
  a.emit('message', { text: 'marker', room: 'r1', user: 'alice' });
  await b.wait('message', (m) => m.text === 'marker', { from: bm });
  assert.deepEqual(a.of('message', am), [[{ text: 'hi <b>r1</b>', user: 'mallory' }]]);
  assert.deepEqual(c.of('message', cm), [[{ text: 'into r2', user: 'bob' }]]);
  assert.deepEqual(b.of('message', bm), [[{ text: 'marker', user: 'alice' }]]);
});

test('wire: a disconnect sends a leave notice to the room and the list without it to everyone else', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  const c = await connectClient(app.url);
  closeAfter(t, a, b, c);
  a.emit('join', { name: 'alice', room: 'r1' });
  await a.wait('groupList');
  b.emit('join', { name: 'bob', room: 'r1' });
  await a.wait('groupList', (g) => g.r1.length === 2);
  c.emit('join', { name: 'carol', room: 'r2' });
  await a.wait('groupList', (g) => 'r2' in g);
  await c.wait('groupList', (g) => 'r2' in g);

  const [am, cm] = [a.mark(), c.mark()];
  b.close();
  assert.deepEqual(await a.wait('message', () => true, { from: am }), [left('bob')]);
  const expected = { r1: [{ name: 'alice', room: 'r1', id: a.socket.id }], r2: [{ name: 'carol', room: 'r2', id: c.socket.id }] };
  assert.deepEqual(await a.wait('groupList', () => true, { from: am }), [expected]);
  assert.deepEqual(await c.wait('groupList', () => true, { from: cm }), [expected]);
  // The notice went before the list, to r1 only.
  assert.deepEqual(c.of('message', cm), []);
});

test('wire: the page and its client script are served; cors: true answers other origins', async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const page = await httpGet(`${app.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.body, /import \{ io \} from "\/socket\.io\/socket\.io\.esm\.min\.js"/);
  assert.doesNotMatch(page.body, /from\s*"https?:/, 'the page must not need the CDN');
  const script = await httpGet(`${app.url}/socket.io/socket.io.esm.min.js`);
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type'), /javascript/);
  assert.match(script.body, /export\s*\{/);
  // A page opened elsewhere (the tutorial opened it from disk or another dev server).
  const origin = 'http://localhost:5500';
  const handshake = await httpGet(`${app.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: origin } });
  assert.equal(handshake.status, 200);
  assert.ok(['*', origin].includes(handshake.headers.get('access-control-allow-origin')), JSON.stringify([...handshake.headers]));
});

test('wire: message(null) throws in the handler; the server lives on and keeps serving', { skip: SKIP_ON_REFERENCE }, async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const a = await connectClient(app.url);
  const b = await connectClient(app.url);
  const evil = await connectClient(app.url);
  closeAfter(t, a, b, evil);
  a.emit('join', { name: 'alice', room: 'r1' });
  await a.wait('groupList');
  b.emit('join', { name: 'bob', room: 'r1' });
  await a.wait('groupList', (g) => g.r1.length === 2);

  const am = a.mark();
  evil.emit('message', null); // ({ text, room, user }) = null: TypeError in the seed's handler
  evil.emit('message'); // and with no argument at all
  // The same connection's next request is still served, after those.
  evil.emit('join', { name: 'evil', room: 'r1' });
  assert.deepEqual(await a.wait('message', () => true, { from: am }), [joined('evil')]);
  // Others keep chatting, new clients get in.
  b.emit('message', { text: 'still here', room: 'r1', user: 'bob' });
  assert.deepEqual(await a.wait('message', (m) => m.text === 'still here', { from: am }), [{ text: 'still here', user: 'bob' }]);
  const late = await connectClient(app.url);
  closeAfter(t, late);
  late.emit('join', { name: 'late', room: 'r1' });
  const [list] = await late.wait('groupList');
  assert.deepEqual(list.r1.map((m) => m.name), ['alice', 'bob', 'evil', 'late']);
  app.assertAlive('after message(null)');
});

test('wire: a handler that throws is reported on the app\'s output', { skip: SKIP_ON_REFERENCE }, async (t) => {
  const app = await useApp(t, APP, { port: 'free' });
  const evil = await connectClient(app.url);
  closeAfter(t, evil);
  evil.emit('message', null);
  await app.waitForOutput(/Cannot destructure property 'text'/);
  app.assertAlive('after reporting the error');
});
