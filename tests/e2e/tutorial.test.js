'use strict';
// The classic Socket.IO room-chat tutorial page's wire contract, simulated with
// socket.io-client: join {name, room} and message {text, room, user}, never with an
// ack callback; messages shown as user:text; the room list from groupList.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { startServer } = require('../support/server.js');
const { pool, bothTransports, httpRequest } = require('../support/e2e.js');

const INTERVAL = 100;
let server;
before(async () => {
  server = await startServer({
    config: { room_list: { interval_ms: INTERVAL }, limits: { max_connections_per_ip: 500 } },
  });
});
after(() => server.stop());

/** What the tutorial page does on connect. */
async function tutorialClient(clients, name, room, transport = {}) {
  const client = await clients.connect(transport);
  client.send('join', { name, room });
  return client;
}

const groupEntry = (name, room) => ({ name, room, id: name });

bothTransports('the tutorial page chats: join and message without acks, messages from the real name', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `tut-${tn}`;
  const alice = await tutorialClient(clients, `alice-${tn}`, room, transport);
  // Alice's join is done once the room list shows her.
  await alice.wait('groupList', (g) => g[room]?.length === 1);
  const bob = await tutorialClient(clients, `bob-${tn}`, room, transport);
  // Alice sees Bob's join as a message from system.
  const joinNotice = await alice.wait('message', (m) => m.kind === 'join');
  assert.equal(joinNotice.user, 'system');
  assert.equal(joinNotice.room, room);
  assert.equal(typeof joinNotice.text, 'string');
  assert.ok(joinNotice.text.includes(`bob-${tn}`), joinNotice.text);
  // Every client gets groupList shaped {"room": [{name, room, id}]} with both.
  const expected = { [room]: [groupEntry(`alice-${tn}`, room), groupEntry(`bob-${tn}`, room)] };
  for (const client of [alice, bob]) {
    const list = await client.wait('groupList', (g) => g[room]?.length === 2);
    assert.deepEqual(list[room], expected[room]);
  }
  // Bob sends the way the page does: with a `user` field, without an ack.
  const fromAlice = alice.mark();
  const fromBob = bob.mark();
  bob.send('message', { text: 'hello from bob <b>!</b>', room, user: 'mallory' });
  const got = await alice.wait('message', (m) => m.kind === 'chat', { from: fromAlice });
  assert.equal(got.user, `bob-${tn}`, 'shown as the sender\'s real name, not the user field');
  assert.equal(got.text, 'hello from bob <b>!</b>');
  assert.equal(got.room, room);
  assert.equal(got.user_id, `bob-${tn}`);
  assert.equal(got.kind, 'chat');
  assert.equal(typeof got.id, 'string');
  assert.ok(Number.isInteger(got.ts));
  // Alice answers; Bob gets it, which proves that his own message would have come back by now.
  alice.send('message', { text: 'hi bob', room, user: `alice-${tn}` });
  const answer = await bob.wait('message', (m) => m.kind === 'chat', { from: fromBob });
  assert.equal(answer.user, `alice-${tn}`);
  assert.equal(answer.text, 'hi bob');
  assert.deepEqual(
    bob.of('message', fromBob).filter((m) => m.kind === 'chat').map((m) => `${m.user}:${m.text}`),
    [`alice-${tn}:hi bob`],
    'the sender does not receive its own message',
  );
  assert.deepEqual(
    alice.of('message', fromAlice).filter((m) => m.kind === 'chat').map((m) => `${m.user}:${m.text}`),
    [`bob-${tn}:hello from bob <b>!</b>`],
  );
  // No refusals along the way (they would have come as error events).
  assert.deepEqual(alice.of('error'), []);
  assert.deepEqual(bob.of('error'), []);
});

test('leave notices reach the tutorial page as messages from system; groupList follows', async (t) => {
  const clients = pool(t, server.url);
  const room = 'tut-leave';
  const alice = await tutorialClient(clients, 'alice-leave', room);
  await alice.wait('groupList', (g) => g[room]?.length === 1);
  const bob = await tutorialClient(clients, 'bob-leave', room);
  await alice.wait('groupList', (g) => g[room]?.length === 2);
  await bob.wait('groupList', (g) => g[room]?.length === 2);
  const from = alice.mark();
  bob.close();
  const notice = await alice.wait('message', (m) => m.kind === 'leave', { from });
  assert.equal(notice.user, 'system');
  assert.equal(notice.room, room);
  assert.ok(notice.text.includes('bob-leave'), notice.text);
  const list = await alice.wait('groupList', (g) => g[room]?.length === 1, { from });
  assert.deepEqual(list[room], [groupEntry('alice-leave', room)]);
});

test('groupList reaches every client, in every room, when membership changes', async (t) => {
  const own = await startServer({ config: { room_list: { interval_ms: INTERVAL } } });
  t.after(() => own.stop());
  const clients = pool(t, own.url);
  const red1 = await tutorialClient(clients, 'red1', 'red');
  const blue1 = await tutorialClient(clients, 'blue1', 'blue');
  const lurker = await clients.connect(); // connected, in no room: the page before its join
  const red2 = await tutorialClient(clients, 'red2', 'red');
  const expected = {
    red: [groupEntry('red1', 'red'), groupEntry('red2', 'red')],
    blue: [groupEntry('blue1', 'blue')],
  };
  for (const client of [red1, blue1, lurker, red2]) {
    const list = await client.wait('groupList', (g) => g.red?.length === 2 && g.blue?.length === 1);
    assert.deepEqual(list, expected);
  }
  // Messages stay in their room: blue's message reaches blue2 only, red's reaches red1 only.
  const blue2 = await tutorialClient(clients, 'blue2', 'blue');
  for (const client of [red1, blue1, lurker, red2, blue2]) {
    await client.wait('groupList', (g) => g.blue?.length === 2);
  }
  const marks = [red1, blue1, red2, blue2, lurker].map((c) => c.mark());
  blue1.send('message', { text: 'blue only', room: 'blue', user: 'blue1' });
  assert.equal((await blue2.wait('message', (m) => m.kind === 'chat', { from: marks[3] })).text, 'blue only');
  red2.send('message', { text: 'red only', room: 'red', user: 'red2' });
  assert.equal((await red1.wait('message', (m) => m.kind === 'chat', { from: marks[0] })).text, 'red only');
  blue2.send('message', { text: 'blue proof', room: 'blue', user: 'blue2' });
  await blue1.wait('message', (m) => m.text === 'blue proof', { from: marks[1] });
  const chats = (c, i) => c.of('message', marks[i]).filter((m) => m.kind === 'chat').map((m) => m.text);
  assert.deepEqual(chats(red1, 0), ['red only']);
  assert.deepEqual(chats(blue1, 1), ['blue proof']);
  assert.deepEqual(chats(red2, 2), []);
  assert.deepEqual(chats(lurker, 4), []);
});

test('the tutorial page is served as is at /tutorial.html', async () => {
  const res = await httpRequest(`${server.url}/tutorial.html`);
  assert.equal(res.status, 200, 'PROTOCOL.md: examples/server/static/tutorial.html is served as is');
  assert.match(res.headers['content-type'], /^text\/html/);
  const html = res.body.toString('utf8');
  assert.match(html, /socket\.io\/socket\.io\.js/);
  assert.match(html, /groupList/);
});
