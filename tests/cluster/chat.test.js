'use strict';
// Cluster mode, the happy path: clients spread over several standalone nodes that
// share one Redis see one chat — room messages, join/leave notices and presence,
// member lists and counts, the pushed room lists, cluster-wide unique open names,
// private messages and history.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const { isDeepStrictEqual } = require('node:util');
const { sleep } = require('../support/server.js');
const { startRedis } = require('../support/redis.js');
const { startCluster, eventually, memberNames, counts } = require('../support/cluster.js');
const {
  TRANSPORTS,
  assertChat,
  assertNotice,
  assertNone,
  assertRefused,
  assertIncreasing,
  compareIds,
  withoutOk,
} = require('../support/e2e.js');

/** Room message ids in cluster mode are Redis stream ids. */
const STREAM_ID = /^\d+-\d+$/;
const WS = TRANSPORTS.websocket;
const POLLING = TRANSPORTS.polling;
const ident = (name) => ({ id: name, name });
const byId = (a, b) => compareIds(a.id, b.id);

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis && redis.stop('SIGKILL'));

test('room messages reach the members on every node, over WebSocket and long-polling', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, name: 'chat' });
  const ada = await c.clients[0].member('ada', ['lobby'], WS);
  const bob = await c.clients[1].member('bob', ['lobby'], POLLING);
  const cyd = await c.clients[2].member('cyd', ['lobby'], WS);
  const dan = await c.clients[2].member('dan', ['lobby'], POLLING);
  const eve = await c.clients[1].member('eve', ['elsewhere'], WS);
  const members = [ada, bob, cyd, dan];
  const names = ['ada', 'bob', 'cyd', 'dan'];
  const marks = members.map((m) => m.mark());
  const eveMark = eve.mark();

  const sent = [];
  for (const [i, sender] of members.entries()) {
    // A `user` field is ignored: the server says who sent it.
    const reply = await sender.request('message', { room: 'lobby', text: `hello from ${names[i]}`, user: 'mallory' });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.match(reply.id, STREAM_ID);
    assertChat(withoutOk(reply), { room: 'lobby', user: names[i], text: `hello from ${names[i]}` });
    sent.push(withoutOk(reply));
  }
  assertIncreasing(sent.map((m) => m.id), 'acks');

  for (const [i, member] of members.entries()) {
    const got = await member.waitCount('message', 3, (m) => m.kind === 'chat', { from: marks[i] });
    assert.deepEqual(
      [...got].sort(byId),
      sent.filter((m) => m.user !== names[i]),
      `${names[i]} gets every other member's message, exactly as acknowledged, and never its own`,
    );
  }
  await sleep(200);
  for (const [i, member] of members.entries()) {
    assert.equal(member.of('message', marks[i]).filter((m) => m.kind === 'chat').length, 3, `${names[i]}: no duplicates`);
  }
  assert.deepEqual(eve.of('message', eveMark), [], 'a non-member on a node with members gets nothing');

  // Typing notices cross nodes too (volatile, so checked on a WebSocket client).
  const typing = await ada.request('typing', { room: 'lobby' });
  assert.deepEqual(typing, { ok: true, relayed: true });
  assert.deepEqual(await cyd.wait('typing', () => true, { from: marks[2] }), {
    room: 'lobby',
    user: 'ada',
    user_id: 'ada',
    active: true,
  });
});

test('join and leave notices and presence events reach the members on every node', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, name: 'notices' });
  const ada = await c.clients[0].member('ada', ['hall']);
  const fromAda = ada.mark();

  const bob = await c.clients[1].member('bob', ['hall'], POLLING);
  assertNotice(await ada.wait('message', (m) => m.kind === 'join', { from: fromAda }), { room: 'hall', kind: 'join' });
  assert.deepEqual(await ada.wait('presence', () => true, { from: fromAda }), {
    room: 'hall',
    action: 'join',
    user: ident('bob'),
    count: 2,
  });

  const [fromAda2, fromBob] = [ada.mark(), bob.mark()];
  const cyd = await c.clients[2].member('cyd', ['hall']);
  for (const [client, from] of [
    [ada, fromAda2],
    [bob, fromBob],
  ]) {
    const notice = await client.wait('message', (m) => m.kind === 'join', { from });
    assertNotice(notice, { room: 'hall', kind: 'join' });
    assert.ok(notice.text.includes('cyd'), notice.text);
    assert.deepEqual(await client.wait('presence', () => true, { from }), {
      room: 'hall',
      action: 'join',
      user: ident('cyd'),
      count: 3,
    });
  }

  // cyd leaves with a request, bob by disconnecting: both are announced everywhere.
  const [fromAda3, fromBob3] = [ada.mark(), bob.mark()];
  assert.deepEqual(await cyd.request('leave', { room: 'hall' }), { ok: true, room: 'hall' });
  for (const [client, from] of [
    [ada, fromAda3],
    [bob, fromBob3],
  ]) {
    const notice = await client.wait('message', (m) => m.kind === 'leave', { from });
    assertNotice(notice, { room: 'hall', kind: 'leave' });
    assert.ok(notice.text.includes('cyd'), notice.text);
    assert.deepEqual(await client.wait('presence', () => true, { from }), {
      room: 'hall',
      action: 'leave',
      user: ident('cyd'),
      count: 2,
    });
  }
  const fromAda4 = ada.mark();
  bob.close();
  const notice = await ada.wait('message', (m) => m.kind === 'leave', { from: fromAda4 });
  assertNotice(notice, { room: 'hall', kind: 'leave' });
  assert.ok(notice.text.includes('bob'), notice.text);
  assert.deepEqual(await ada.wait('presence', () => true, { from: fromAda4 }), {
    room: 'hall',
    action: 'leave',
    user: ident('bob'),
    count: 1,
  });

  // Exactly one notice and one presence event per change, and none about oneself.
  await sleep(200);
  const adaNotices = ada.of('message', fromAda).map((m) => `${m.kind}:${m.text}`);
  assert.equal(adaNotices.length, 4, JSON.stringify(adaNotices));
  assert.equal(ada.of('presence', fromAda).length, 4);
  assert.deepEqual(
    cyd.of('presence').filter((p) => p.user.id === 'cyd'),
    [],
    'no presence event about oneself',
  );
});

test('member lists and counts cover every node, in join order', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, name: 'members' });
  const ada = await c.clients[0].member('ada', ['crew']);
  const bob = await c.clients[1].member('bob', ['crew']);
  const joined = await c.clients[2].member('cyd', []);
  const reply = await joined.request('join', { room: 'crew' });
  assert.deepEqual(reply, {
    ok: true,
    room: 'crew',
    user: ident('cyd'),
    count: 3,
    members: [ident('ada'), ident('bob'), ident('cyd')],
    history: [],
    has_more: false,
    epoch: null,
    offset: 0,
  });
  const dan = await c.clients[0].member('dan', ['crew'], POLLING);
  const everyone = [ada, bob, joined, dan];
  for (const client of everyone) {
    assert.deepEqual(await client.request('members', { room: 'crew' }), {
      ok: true,
      room: 'crew',
      count: 4,
      members: [ident('ada'), ident('bob'), ident('cyd'), ident('dan')],
    });
  }
  for (const client of everyone) {
    const { rooms } = await client.request('rooms');
    assert.deepEqual(rooms, [{ room: 'crew', count: 4 }]);
  }

  // A leave on node 1 and a disconnect on node 0 are seen from every node.
  await bob.request('leave', { room: 'crew' });
  dan.close();
  for (const client of [ada, joined]) {
    await eventually(async () => {
      assert.deepEqual(memberNames(await client.request('members', { room: 'crew' })), ['ada', 'cyd']);
    });
    assert.equal((await client.request('members', { room: 'crew' })).count, 2);
  }
  assertRefused(await bob.request('members', { room: 'crew' }), 'not_member');
});

test('the rooms and groupList pushes show the whole cluster on every node', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, name: 'lists' });
  // Observers in no room, one per node, plus one polling.
  const observers = [
    await c.clients[0].ready(WS),
    await c.clients[1].ready(POLLING),
    await c.clients[2].ready(WS),
  ];
  const marks = observers.map((o) => o.mark());
  const ada = await c.clients[0].member('ada', ['alpha', 'beta']);
  await c.clients[1].member('bob', ['alpha']);
  const cyd = await c.clients[2].member('cyd', ['alpha', 'gamma']);

  const expectedRooms = [
    { room: 'alpha', count: 3 },
    { room: 'beta', count: 1 },
    { room: 'gamma', count: 1 },
  ];
  const expectedGroups = {
    alpha: [
      { name: 'ada', room: 'alpha', id: 'ada' },
      { name: 'bob', room: 'alpha', id: 'bob' },
      { name: 'cyd', room: 'alpha', id: 'cyd' },
    ],
    beta: [{ name: 'ada', room: 'beta', id: 'ada' }],
    gamma: [{ name: 'cyd', room: 'gamma', id: 'cyd' }],
  };
  // Coalesced pushes may show the joins part way; the last one shows them all.
  const same = isDeepStrictEqual;
  for (const [i, observer] of observers.entries()) {
    await observer.wait('rooms', (rooms) => same(rooms, expectedRooms), { from: marks[i] });
    await observer.wait('groupList', (groups) => same(groups, expectedGroups), { from: marks[i] });
  }
  // A client connecting now gets the whole cluster's lists right away.
  const late = await c.clients[1].connect();
  assert.deepEqual(await late.wait('rooms'), expectedRooms);
  assert.deepEqual(await late.wait('groupList'), expectedGroups);

  // Changes on one node are pushed on every node.
  const marks2 = observers.map((o) => o.mark());
  ada.close();
  await cyd.request('leave', { room: 'gamma' });
  const roomsAfter = [{ room: 'alpha', count: 2 }];
  const groupsAfter = {
    alpha: [
      { name: 'bob', room: 'alpha', id: 'bob' },
      { name: 'cyd', room: 'alpha', id: 'cyd' },
    ],
  };
  for (const [i, observer] of observers.entries()) {
    await observer.wait('rooms', (rooms) => same(rooms, roomsAfter), { from: marks2[i] });
    await observer.wait('groupList', (groups) => same(groups, groupsAfter), { from: marks2[i] });
  }
  assert.deepEqual(counts((await late.request('rooms')).rooms), { alpha: 2 });
});

test('open-mode names are unique across the cluster, and free again after a disconnect', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, name: 'names' });
  const session = (name) => ({ user: ident(name), mode: 'open' });
  const a = await c.clients[0].connect({ auth: { name: 'ada' } });
  assert.deepEqual(await a.wait('session'), session('ada'));
  const b = await c.clients[1].connect({ auth: { name: 'ada' } });
  assert.deepEqual(await b.wait('session'), session('ada-2'));
  // Compared case-insensitively, by login and by the tutorial's join with a name.
  const d = await c.clients[2].connect();
  await d.wait('session');
  assert.deepEqual(await d.request('login', { name: 'ADA' }), { ok: true, user: ident('ADA-3') });
  const e = await c.clients[1].connect(POLLING);
  await e.wait('session');
  const joined = await e.request('join', { room: 'names', name: 'Ada' });
  assert.deepEqual(joined.user, ident('Ada-4'));

  // Claimed at the same moment on three nodes: still all different.
  const racers = await Promise.all(
    Array.from({ length: 9 }, (_, i) => c.clients[i % 3].connect({ auth: { name: 'kim' } })),
  );
  const raced = await Promise.all(racers.map((r) => r.wait('session')));
  const racedNames = raced.map((s) => s.user.name).sort();
  assert.deepEqual(racedNames, ['kim', 'kim-2', 'kim-3', 'kim-4', 'kim-5', 'kim-6', 'kim-7', 'kim-8', 'kim-9'].sort());

  // Free again once its connection is gone, on any node.
  a.close();
  await eventually(async () => {
    const again = await c.clients[2].connect({ auth: { name: 'ada' } });
    const { user } = await again.wait('session');
    again.close();
    assert.equal(user.name, 'ada');
  });
  // Logout frees it too.
  assert.deepEqual(await b.request('logout'), { ok: true });
  const f = await c.clients[0].connect({ auth: { name: 'ada-2' } });
  assert.deepEqual(await f.wait('session'), session('ada-2'));
});

test('an online user\'s name is never given away: with every numbered form taken, name_taken', async (t) => {
  const c = await startCluster(t, { redis, nodes: 2, name: 'nametaken' });
  // The real Ada, on node 1.
  const ada = await c.clients[1].member('Ada', []);
  assert.deepEqual((await ada.wait('session')).user, ident('Ada'));
  // Every numbered form an attacker could hold (ada-2 ... ada-1000), reserved the
  // way nodes reserve names: by look-alike key, where 0 and 1 are the letters o
  // and l (core/src/lookalike.rs, numbered_names_key_their_zeros_and_ones_as_letters).
  const lookAlikeKey = (name) => name.toLowerCase().replace(/0/g, 'o').replace(/1/g, 'l');
  const held = ['HSET', c.key('names')];
  for (let n = 2; n <= 1000; n++) held.push(lookAlikeKey(`ada-${n}`), `elsewhere|ada-${n}`);
  await redis.command(...held);
  // On node 0: by handshake, by login, by the tutorial's join with a name.
  const byHandshake = await c.clients[0].connect({ auth: { name: 'ada' } });
  const refusal = await byHandshake.wait('error');
  assert.deepEqual(
    { ok: refusal.ok, code: refusal.code, event: refusal.event },
    { ok: false, code: 'name_taken', event: 'connect' },
    JSON.stringify(refusal),
  );
  assert.deepEqual(await byHandshake.wait('session'), { user: null, mode: 'open' });
  assert.equal(byHandshake.connected, true, 'the connection stays, without an identity');
  // A node that briefly finds Redis slow (a timeout under load) answers
  // `unavailable`, which is retried; what counts is that the name is never given.
  const refusedFor = async (event, payload) => {
    const { value } = await eventually(async () => {
      const reply = await byHandshake.request(event, payload);
      return reply.code === 'unavailable' ? false : reply;
    }, { what: `${event} answered other than unavailable` });
    return value;
  };
  assertRefused(await refusedFor('login', { name: 'ADA' }), 'name_taken');
  assertRefused(await refusedFor('join', { room: 'r', name: 'Ada' }), 'name_taken');
  assertRefused(await byHandshake.request('members', { room: 'r' }), 'not_logged_in');
  // Nothing was half-applied: the name is still Ada's alone, and so are her messages.
  const bob = await c.clients[0].member('bob', []);
  const fromAda = ada.mark();
  const sent = await bob.request('private', { to: 'Ada', text: 'for ada only' });
  assert.deepEqual(sent.to, ident('Ada'));
  assert.equal((await ada.wait('private', () => true, { from: fromAda })).text, 'for ada only');
  assert.deepEqual(byHandshake.of('private'), []);
  assert.equal(await redis.command('HGET', c.key('names'), 'ada').then((v) => String(v).endsWith('|Ada')), true);
  // Another name still works on that connection.
  assert.deepEqual(await byHandshake.request('login', { name: 'eve' }), { ok: true, user: ident('eve') });
});

test('look-alike open-mode names are one name across the cluster', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, name: 'lookalike' });
  const session = (name) => ({ user: ident(name), mode: 'open' });
  const cyrillic = 'v\u0435ra'; // Cyrillic ie for e
  const a = await c.clients[0].connect({ auth: { name: 'vera' } });
  assert.deepEqual(await a.wait('session'), session('vera'));
  const b = await c.clients[1].connect({ auth: { name: cyrillic } });
  assert.deepEqual(await b.wait('session'), session(`${cyrillic}-2`));
  // Fullwidth letters are shown as plain ones, and are taken twice over.
  const d = await c.clients[2].connect();
  await d.wait('session');
  assert.deepEqual(await d.request('login', { name: '\uFF36\uFF25\uFF32\uFF21' }), {
    ok: true,
    user: ident('VERA-3'),
  });
  // Look-alikes of the reserved name are refused on every node.
  for (const client of c.clients) {
    assert.equal(await client.refused({ auth: { name: '\u0455ystem' } }), 'invalid_name');
  }
  // Once the holder is gone, the look-alike is free under its own spelling.
  a.close();
  await eventually(async () => {
    const again = await c.clients[2].connect({ auth: { name: cyrillic } });
    const { user } = await again.wait('session');
    again.close();
    assert.equal(user.name, cyrillic);
  });
});

test('private messages reach a user on another node; user_offline for a user online nowhere', async (t) => {
  const c = await startCluster(t, { redis, nodes: 3, name: 'private' });
  const ada = await c.clients[0].member('ada', []);
  const bob = await c.clients[1].member('bob', [], POLLING);
  const cyd = await c.clients[2].member('cyd', []);
  await Promise.all([ada, bob, cyd].map((x) => x.wait('session')));
  const [fromAda, fromCyd] = [ada.mark(), cyd.mark()];

  const reply = await ada.request('private', { to: 'bob', text: 'psst' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual(reply.from, ident('ada'));
  assert.deepEqual(reply.to, ident('bob'));
  assert.equal(reply.text, 'psst');
  assert.equal(typeof reply.id, 'string');
  const got = await bob.wait('private');
  assert.deepEqual(got, withoutOk(reply));

  const back = await bob.request('private', { to: 'cyd', text: 'hi cyd' });
  assert.equal(back.ok, true);
  assert.deepEqual(await cyd.wait('private', () => true, { from: fromCyd }), withoutOk(back));
  assert.notEqual(back.id, reply.id, 'private ids are unique across nodes');

  await assertNone(ada, 'private', () => true, { from: fromAda, ms: 200 });
  assert.equal(bob.of('private').length, 1, 'exactly one copy');

  assertRefused(await ada.request('private', { to: 'nobody', text: 'hello?' }), 'user_offline');
  assertRefused(await ada.request('private', { to: 'ada', text: 'me' }), 'invalid_recipient');
  // Once bob is gone from every node, he is offline everywhere.
  bob.close();
  await eventually(async () => {
    assertRefused(await cyd.request('private', { to: 'bob', text: 'still there?' }), 'user_offline');
  });
});

test('history: a message sent on one node is in the history read on another', async (t) => {
  const c = await startCluster(t, { redis, nodes: 2, name: 'history', config: { history: { on_join: 4 } } });
  const ada = await c.clients[0].member('ada', ['log']);
  const bob = await c.clients[1].member('bob', ['log'], POLLING);
  const sent = [];
  for (let i = 0; i < 7; i++) {
    const sender = i % 2 ? bob : ada;
    const reply = await sender.request('message', { room: 'log', text: `line ${i}` });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    sent.push(withoutOk(reply));
    // Acknowledged only once stored: the entry is in the room's Redis stream already.
    const [entry] = await redis.command('XRANGE', c.key('history', 'log'), reply.id, reply.id);
    assert.ok(entry, `message ${reply.id} is in the stream when acknowledged`);
    assert.equal(entry[1][entry[1].indexOf('t') + 1], `line ${i}`);
  }
  assertIncreasing(sent.map((m) => m.id), 'acks');
  assert.equal(await redis.command('XLEN', c.key('history', 'log')), 7);

  // A newcomer on either node gets the newest `on_join` messages, oldest first.
  for (const [i, name] of [
    [0, 'cyd'],
    [1, 'dan'],
  ]) {
    const client = await c.clients[i].member(name, []);
    const join = await client.request('join', { room: 'log' });
    assert.equal(join.ok, true);
    assert.deepEqual(join.history, sent.slice(3), `join history on node ${i}`);
    assert.equal(join.has_more, true);
  }

  // Paging with `before` on node 1 through messages stored by both nodes.
  // The room's head: one epoch and offsets 1..7 across both nodes.
  const head = { epoch: sent[0].epoch, offset: 7 };
  assert.deepEqual(sent.map((m) => [m.epoch, m.offset]), sent.map((_, i) => [head.epoch, i + 1]));
  const page1 = await bob.request('history', { room: 'log', limit: 3 });
  assert.deepEqual(page1, { ok: true, room: 'log', messages: sent.slice(4), has_more: true, ...head });
  const page2 = await bob.request('history', { room: 'log', limit: 3, before: page1.messages[0].id });
  assert.deepEqual(page2, { ok: true, room: 'log', messages: sent.slice(1, 4), has_more: true, ...head });
  const page3 = await ada.request('history', { room: 'log', limit: 3, before: page2.messages[0].id });
  assert.deepEqual(page3, { ok: true, room: 'log', messages: sent.slice(0, 1), has_more: false, ...head });
  const all = await ada.request('history', { room: 'log' });
  assert.deepEqual(all.messages, sent);
  assert.equal(all.has_more, false);

  assertRefused(await ada.request('history', { room: 'log', before: 'j1' }), 'invalid_cursor');
  assertRefused(await ada.request('history', { room: 'log', before: 'nonsense' }), 'invalid_cursor');
  assertRefused(await ada.request('history', { room: 'other' }), 'not_member');
});

test(
  'concurrent senders on different nodes: every member sees the room in id order',
  async (t) => {
    const c = await startCluster(t, { redis, nodes: 2, name: 'order' });
    const senders = [await c.clients[0].member('s0', ['race']), await c.clients[1].member('s1', ['race'])];
    const observers = [await c.clients[0].member('o0', ['race']), await c.clients[1].member('o1', ['race'])];
    const marks = observers.map((o) => o.mark());
    const acks = await Promise.all(
      senders.flatMap((s, k) => Array.from({ length: 20 }, (_, i) => s.request('message', { room: 'race', text: `${k}:${i}` }))),
    );
    assert.ok(acks.every((a) => a.ok));
    const seen = [];
    for (const [i, o] of observers.entries()) {
      const got = await o.waitCount('message', 40, (m) => m.kind === 'chat', { from: marks[i] });
      seen.push(got.map((m) => m.id));
    }
    for (const [i, ids] of seen.entries()) {
      const inversions = ids.filter((id, k) => k > 0 && compareIds(ids[k - 1], id) > 0).length;
      assert.equal(inversions, 0, `observer on node ${i}: ${inversions} of 40 messages arrived after a later id`);
    }
    assert.equal(JSON.stringify(seen[0]) === JSON.stringify(seen[1]), true, 'both observers see the same order');
  },
);

test('Redis holds one key memo per room and window, not a key per message; idle streams and memos expire', async (t) => {
  const c = await startCluster(t, {
    redis,
    nodes: 1,
    name: 'keys',
    // A window long enough that a store timed out under load and retried from
    // the outage journal is still recognised (a duplicate otherwise).
    config: { cluster: { history_idle_secs: 2, dedup_window_ms: 3000 } },
  });
  const ada = await c.clients[0].member('ada', ['busy']);
  for (let i = 0; i < 1000; i += 50) {
    const acks = await Promise.all(
      Array.from({ length: 50 }, (_, k) => ada.request('message', { room: 'busy', text: `n${i + k}` })),
    );
    for (const ack of acks) assert.equal(ack.ok, true, JSON.stringify(ack));
  }
  const keys = await redis.command('KEYS', `${c.prefix}:*`);
  const memos = keys.filter((key) => key.startsWith(`${c.key('keys')}:`));
  assert.deepEqual(keys.filter((key) => key.startsWith(`${c.key('msg')}:`)), [], 'no key per message');
  assert.ok(memos.length >= 1 && memos.length <= 3, `memos of this and the last windows only: ${memos}`);
  assert.ok(keys.length < 20, `1000 messages, ${keys.length} keys: ${keys}`);
  assert.equal(await redis.command('XLEN', c.key('history', 'busy')), 1000);
  const ttl = await redis.command('PTTL', c.key('history', 'busy'));
  assert.ok(ttl > 0 && ttl <= 2000, `the stream expires when idle (PTTL ${ttl})`);
  // Quiet for history_idle_secs: the stream and its key memos are gone.
  assert.ok((await redis.command('PTTL', c.key('head', 'busy'))) <= 2000, 'the head expires with the stream');
  await eventually(
    async () => {
      assert.equal(await redis.command('EXISTS', c.key('history', 'busy')), 0);
      assert.equal(await redis.command('EXISTS', c.key('head', 'busy')), 0);
      assert.deepEqual(await redis.command('KEYS', `${c.key('keys')}:*`), []);
    },
    { timeout: 25000, what: 'the idle stream and key memos expire' },
  );
  assert.deepEqual((await ada.request('history', { room: 'busy' })).messages, []);
  // The room goes on with a new stream, which expires again only when idle.
  const reply = await ada.request('message', { room: 'busy', text: 'again' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual((await ada.request('history', { room: 'busy' })).messages, [withoutOk(reply)]);
  // A stream that expired is a new epoch: its offsets start again at 1.
  assert.equal(reply.offset, 1);
});
