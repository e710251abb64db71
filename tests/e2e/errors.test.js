'use strict';
// Refusals: bad payloads, wrong and missing fields, the `error` event for requests
// without an ack callback, unknown events, and raw malformed packets.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const WebSocket = require('ws');
const { startServer } = require('../support/server.js');
const { pool, bothTransports, assertRefused, httpRequest } = require('../support/e2e.js');

let server;
before(async () => {
  server = await startServer({
    config: {
      room_list: { interval_ms: 100 },
      limits: {
        max_connections_per_ip: 500,
        messages_per_second: 1000,
        message_burst: 1000,
        requests_per_second: 1000,
        request_burst: 1000,
      },
    },
  });
});
after(() => server.stop());

const NOT_OBJECTS = [
  ['a string', ['text']],
  ['a number', [42]],
  ['an array', [[{ room: 'r', text: 't' }]]],
  ['null', [null]],
  ['a boolean', [true]],
  ['no argument', []],
  ['binary data', [Buffer.from('{"room":"r","text":"t"}')]],
];

const EVENTS = ['join', 'leave', 'message', 'private', 'typing', 'history', 'members'];

/** Proves that `client` still works: a message in `room` reaches `peer`. */
async function stillWorks(client, peer, room, text) {
  const from = peer.mark();
  const reply = await client.request('message', { room, text });
  assert.equal(reply.ok, true, `the connection still works: ${JSON.stringify(reply)}`);
  await peer.wait('message', (m) => m.text === text, { from });
  assert.equal(client.connected, true);
}

bothTransports('payloads that are not objects are invalid_payload', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `np-${tn}`;
  const ada = await clients.member(`NP Ada ${tn}`, [room], transport);
  const bob = await clients.member(`NP Bob ${tn}`, [room], transport);
  for (const event of EVENTS) {
    for (const [why, args] of NOT_OBJECTS) {
      assertRefused(await ada.request(event, ...args), 'invalid_payload', `${event} with ${why}`);
    }
  }
  const anonymous = await clients.connect(transport);
  for (const [why, args] of NOT_OBJECTS) {
    assertRefused(await anonymous.request('login', ...args), 'invalid_payload', `login with ${why}`);
  }
  // Still anonymous after all that.
  assertRefused(await anonymous.request('members', { room }), 'not_logged_in');
  await stillWorks(ada, bob, room, 'after non-objects');
  // Nothing was applied: still in the room, the history holds only the real message.
  const history = await bob.request('history', { room });
  assert.deepEqual(history.messages.map((m) => m.text), ['after non-objects']);
});

test('fields of the wrong type are invalid_payload', async (t) => {
  const clients = pool(t, server.url);
  const room = 'wrong-types';
  const ada = await clients.member('WT Ada', [room]);
  const bob = await clients.member('WT Bob', [room]);
  const cases = [
    ['join', { room: 5 }],
    ['join', { room: null }],
    ['join', { room: ['wrong-types'] }],
    ['join', { room: { name: 'x' } }],
    ['leave', { room: true }],
    ['message', { room, text: 5 }],
    ['message', { room, text: null }],
    ['message', { room, text: ['hi'] }],
    ['message', { room, text: { text: 'hi' } }],
    ['message', { room, text: Buffer.from('hi') }],
    ['message', { room: 5, text: 'hi' }],
    ['private', { to: 5, text: 'hi' }],
    ['private', { to: 'WT Bob', text: 5 }],
    ['private', { to: ['WT Bob'], text: 'hi' }],
    ['typing', { room, active: 'yes' }],
    ['typing', { room, active: 1 }],
    ['typing', { room: 7 }],
    ['history', { room, before: 5 }],
    ['history', { room, limit: '5' }],
    ['history', { room: false }],
    ['members', { room: 5 }],
  ];
  for (const [event, payload] of cases) {
    assertRefused(await ada.request(event, payload), 'invalid_payload', `${event} ${JSON.stringify(payload)}`);
  }
  const anonymous = await clients.connect();
  assertRefused(await anonymous.request('login', { name: 5 }), 'invalid_payload', 'login name 5');
  assertRefused(await anonymous.request('login', { name: null }), 'invalid_payload', 'login name null');
  assertRefused(await anonymous.request('join', { room, name: 5 }), 'invalid_payload', 'join name 5');
  await stillWorks(ada, bob, room, 'after wrong types');
  assert.deepEqual((await bob.request('members', { room })).count, 2);
});

test('missing fields are invalid_payload', async (t) => {
  const clients = pool(t, server.url);
  const room = 'missing';
  const ada = await clients.member('MF Ada', [room]);
  const bob = await clients.member('MF Bob', [room]);
  const cases = [
    ['join', {}],
    ['leave', {}],
    ['message', { room }],
    ['message', { text: 'no room' }],
    ['private', { to: 'MF Bob' }],
    ['private', { text: 'to nobody' }],
    ['typing', {}],
    ['history', {}],
    ['members', {}],
  ];
  for (const [event, payload] of cases) {
    assertRefused(await ada.request(event, payload), 'invalid_payload', `${event} ${JSON.stringify(payload)}`);
  }
  const anonymous = await clients.connect();
  assertRefused(await anonymous.request('login', {}), 'invalid_payload', 'login {}');
  await stillWorks(ada, bob, room, 'after missing fields');
});

bothTransports('without an ack callback a refusal arrives as an error event', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `noack-${tn}`;
  const ada = await clients.member(`NA Ada ${tn}`, [room], transport);
  const bob = await clients.member(`NA Bob ${tn}`, [room], transport);
  const anonymous = await clients.connect(transport);
  const from = ada.mark();
  const sent = [
    [['message', 'just a string'], 'invalid_payload', 'message'],
    [['message', { room }], 'invalid_payload', 'message'],
    [['message', { room: 'not-mine', text: 'hi' }], 'not_member', 'message'],
    [['message', { room, text: '   ' }], 'empty_text', 'message'],
    [['join', { room: 'bad/room' }], 'invalid_room', 'join'],
    [['private', { to: '', text: 'hi' }], 'invalid_recipient', 'private'],
    [['history', { room, before: 'nope' }], 'invalid_cursor', 'history'],
    [['login', { name: 'Again' }], 'already_logged_in', 'login'],
    [['typing', { room: 'not-mine' }], 'not_member', 'typing'],
    [['no-such-event', { x: 1 }], 'unknown_event', 'no-such-event'],
  ];
  for (const [args] of sent) ada.send(...args);
  const errors = await ada.waitCount('error', sent.length, () => true, { from });
  assert.equal(errors.length, sent.length);
  sent.forEach(([args, code, event], i) => {
    const body = errors[i];
    assert.deepEqual(Object.keys(body).sort(), ['code', 'event', 'message', 'ok'], JSON.stringify(body));
    assert.equal(body.ok, false);
    assert.equal(body.code, code, `${JSON.stringify(args)}: ${JSON.stringify(body)}`);
    assert.equal(body.event, event);
    assert.equal(typeof body.message, 'string');
    assert.ok(body.message.length > 0);
  });
  const anonFrom = anonymous.mark();
  anonymous.send('join', { room });
  const notLoggedIn = await anonymous.wait('error', () => true, { from: anonFrom });
  assert.deepEqual({ ...notLoggedIn, message: typeof notLoggedIn.message }, {
    ok: false,
    code: 'not_logged_in',
    message: 'string',
    event: 'join',
  });
  // A request with an ack callback gets no error event.
  const ackFrom = ada.mark();
  assertRefused(await ada.request('message', { room: 'not-mine', text: 'hi' }), 'not_member');
  await stillWorks(ada, bob, room, 'after error events');
  assert.deepEqual(ada.of('error', ackFrom), []);
  // Successful requests without an ack produce no error event either.
  ada.send('message', { room, text: 'no ack, fine' });
  await bob.wait('message', (m) => m.text === 'no ack, fine');
  assert.deepEqual(ada.of('error', ackFrom), []);
});

bothTransports('unknown custom events are unknown_event (the standalone server has no host listener)', async (t, transport, tn) => {
  const clients = pool(t, server.url);
  const room = `unknown-${tn}`;
  const ada = await clients.member(`UE Ada ${tn}`, [room], transport);
  const bob = await clients.member(`UE Bob ${tn}`, [room], transport);
  assertRefused(await ada.request('chat message', { text: 'hi' }), 'unknown_event');
  assertRefused(await ada.request('Message', { room, text: 'hi' }), 'unknown_event');
  assertRefused(await ada.request('custom'), 'unknown_event');
  const anonymous = await clients.connect(transport);
  assertRefused(await anonymous.request('whatever', 'a string'), 'unknown_event');
  await stillWorks(ada, bob, room, 'after unknown events');
  // Nobody else saw those events.
  assert.deepEqual(bob.events.filter((e) => ['chat message', 'Message', 'custom', 'whatever'].includes(e.event)), []);
});

// ---- Raw packets ------------------------------------------------------------

/** A raw Engine.IO WebSocket connection that has done the Socket.IO CONNECT. */
async function rawSocket(url) {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket');
  const frames = [];
  const waiters = [];
  let closed = false;
  ws.on('message', (data, isBinary) => {
    const frame = isBinary ? data : data.toString();
    if (frame === '2') ws.send('3');
    frames.push(frame);
    for (const w of [...waiters]) w();
  });
  ws.on('close', () => {
    closed = true;
    for (const w of [...waiters]) w();
  });
  ws.on('error', () => {});
  /** The first text frame matching `predicate`; null once the connection is closed. */
  const next = (predicate, timeout = 5000) =>
    new Promise((resolve, reject) => {
      const done = (value, error) => {
        waiters.splice(waiters.indexOf(check), 1);
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(value);
      };
      const check = () => {
        const found = frames.find((f) => typeof f === 'string' && predicate(f));
        if (found !== undefined) done(found);
        else if (closed) done(null);
      };
      const timer = setTimeout(() => done(null, new Error(`no matching frame; got ${JSON.stringify(frames)}`)), timeout);
      waiters.push(check);
      check();
    });
  assert.ok(await next((f) => f.startsWith('0{')), 'Engine.IO open packet');
  ws.send('40');
  assert.ok(await next((f) => f.startsWith('40{')), 'Socket.IO connect');
  return { ws, frames, next, closed: () => closed };
}

const MALFORMED = [
  '42["message",',
  '42{}',
  '42[]',
  '42[123]',
  '42[null]',
  '42["message"',
  '42"message"',
  '42["join",{"room":"raw"}',
  '4{"not":"socket.io"}',
  '4',
  '49',
  '4x',
  '',
  'not json at all',
  'x',
  '9',
  '42["message",{"room":"raw","text":"\\ud800"}]',
  '4' + '2'.repeat(30) + '["message"]',
  '41/nope,',
  '40/nowhere,',
  '42/nowhere,["message",{}]',
  '43999["ack for nothing"]',
  '451-["message",{"_placeholder":true,"num":0}]',
];

test('raw malformed Socket.IO packets over WebSocket crash nothing and disturb no one', async (t) => {
  const clients = pool(t, server.url);
  const room = 'raw-room';
  const ada = await clients.member('Raw Ada', [room]);
  const bob = await clients.member('Raw Bob', [room], { transports: ['polling'] });
  // The raw client speaks valid Socket.IO too.
  const sane = await rawSocket(server.url);
  sane.ws.send('421["rooms"]');
  const ack = await sane.next((f) => f.startsWith('431['));
  const [reply] = JSON.parse(ack.slice(3));
  assert.equal(reply.ok, true);
  assert.ok(Array.isArray(reply.rooms));
  sane.ws.close();
  for (const [i, packet] of MALFORMED.entries()) {
    const raw = await rawSocket(server.url);
    raw.ws.send(packet);
    // A valid request right after it: answered, or the connection was closed.
    raw.ws.send('427["rooms"]');
    await raw.next((f) => f.startsWith('437['));
    raw.ws.terminate();
    assert.equal(server.process.exitCode, null, `the server survived ${JSON.stringify(packet)}`);
    await stillWorks(i % 2 ? ada : bob, i % 2 ? bob : ada, room, `after raw packet ${i}`);
  }
  // A binary frame and an oversized garbage frame.
  for (const packet of [Buffer.from([0, 1, 2, 3, 255]), 'q'.repeat(100000)]) {
    const raw = await rawSocket(server.url);
    raw.ws.send(packet);
    raw.ws.send('427["rooms"]');
    await raw.next((f) => f.startsWith('437['));
    raw.ws.terminate();
  }
  assert.equal(server.process.exitCode, null);
  await stillWorks(ada, bob, room, 'after all raw packets');
  await stillWorks(bob, ada, room, 'and back');
  assert.equal(ada.disconnectReason, null);
  assert.equal(bob.disconnectReason, null);
  // Nothing the raw clients sent reached the room.
  assert.deepEqual(
    [...ada.of('message'), ...bob.of('message')].filter((m) => m.kind === 'chat' && !m.text.startsWith('after') && m.text !== 'and back'),
    [],
  );
});

test('an ack for an unknown id is ignored, as the reference server does: the connection stays up', async (t) => {
  const raw = await rawSocket(server.url);
  t.after(() => raw.ws.terminate());
  // ACK packets (type 3) for ids the server never asked about, one with data.
  raw.ws.send('31234[]');
  raw.ws.send('35["late answer"]');
  raw.ws.send('429["rooms"]');
  const ack = await raw.next((f) => f.startsWith('439['));
  assert.equal(JSON.parse(ack.slice(3))[0].ok, true, 'answered after the stray acks');
  assert.equal(raw.ws.readyState, WebSocket.OPEN);
});

test('raw malformed packets over long-polling crash nothing', async (t) => {
  const clients = pool(t, server.url);
  const room = 'raw-poll-room';
  const ada = await clients.member('RawP Ada', [room]);
  const bob = await clients.member('RawP Bob', [room]);
  const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
  for (const packet of ['40', '42["message",', '42{}', 'garbage', '', '4:4:42[]', '\x1e\x1e']) {
    const open = await httpRequest(base);
    assert.equal(open.status, 200);
    const { sid } = JSON.parse(open.body.toString().slice(1));
    const url = `${base}&sid=${encodeURIComponent(sid)}`;
    await httpRequest(url, { method: 'POST', body: '40', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    await httpRequest(url);
    await httpRequest(url, { method: 'POST', body: packet, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    assert.equal(server.process.exitCode, null, `the server survived ${JSON.stringify(packet)}`);
    await stillWorks(ada, bob, room, `after polled ${JSON.stringify(packet)}`);
    // Close the raw session (Engine.IO close packet) so that it does not linger.
    await httpRequest(url, { method: 'POST', body: '1', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
  }
  assert.equal(ada.disconnectReason, null);
  assert.equal(bob.disconnectReason, null);
});
