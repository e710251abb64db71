'use strict';
// The checks of the chat attached to a web framework's http.Server, shared by
// express.test.js and koa.test.js (run there; this file defines no test itself).

const assert = require('node:assert/strict');
const http = require('node:http');
const { describe, test, before, after, afterEach } = require('node:test');
const jwt = require('jsonwebtoken');
const palaver = require('..');
const {
  TEST_OPTIONS,
  HostLog,
  closeServer,
  connect,
  connections,
  inbox,
  listen,
  request,
  sleep,
  waitFor,
} = require('./helpers');

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

/**
 * `makeHandler()` returns the framework's request handler (an Express app, a Koa
 * `app.callback()`) with the routes GET /api/health -> {ok, framework} and
 * POST /api/echo (JSON body) -> {received: body}.
 */
function defineAttachedSuite(framework, makeHandler) {
  describe(`${framework}: the chat attached to the app's server`, { timeout: 30_000 }, () => {
    let server;
    let chat;
    let port;
    let host;
    const customAcks = [];
    const sockets = [];

    async function client(options) {
      const socket = await connect(port, options);
      sockets.push(socket);
      return socket;
    }

    before(async () => {
      server = http.createServer(makeHandler());
      // The one line that replaces require('socket.io')(server).
      chat = palaver(server, TEST_OPTIONS);
      host = new HostLog(chat);
      chat.on('custom', (event) => {
        if (event.event === 'add' && event.ack) {
          const first = event.ack({ sum: event.data.a + event.data.b });
          const second = event.ack({ sum: 'again' });
          customAcks.push([first, second]);
        }
      });
      port = await listen(server);
    });

    afterEach(() => {
      for (const socket of sockets.splice(0)) socket.close();
    });

    after(async () => {
      await chat.close();
      await closeServer(server);
    });

    test('the app\'s own routes still answer, with and without a body', async () => {
      const health = await request(port, 'GET', '/api/health');
      assert.equal(health.status, 200);
      assert.deepEqual(JSON.parse(health.body), { ok: true, framework });

      const payload = { text: 'hello', list: [1, 2, 3], nested: { deep: true } };
      const echo = await request(port, 'POST', '/api/echo', {
        body: JSON.stringify(payload),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(echo.status, 200);
      assert.deepEqual(JSON.parse(echo.body), { received: payload });

      const missing = await request(port, 'GET', '/nowhere');
      assert.equal(missing.status, 404);
    });

    test('/socket.io/socket.io.js is served', async () => {
      const script = await request(port, 'GET', '/socket.io/socket.io.js');
      assert.equal(script.status, 200);
      assert.match(script.headers['content-type'], /javascript/);
      assert.ok(script.headers.etag, 'an ETag');
      assert.ok(script.body.length > 10_000, 'the whole bundle');
      assert.match(script.body, /Socket\.IO v4\.8\.4/);
    });

    test('users chat over WebSocket, and the host sees every event with its fields', async () => {
      const ada = await client({ transports: ['websocket'], auth: { name: 'ws-ada' } });
      const bob = await client({ transports: ['websocket'], auth: { name: 'ws-bob' } });
      const adaUser = { id: 'ws-ada', name: 'ws-ada' };
      const bobUser = { id: 'ws-bob', name: 'ws-bob' };

      const connected = await host.next('connected', (e) => e.sid === ada.id);
      assert.deepEqual(Object.keys(connected).sort(), ['address', 'sid', 'transport', 'type', 'user']);
      assert.deepEqual(connected.user, adaUser);
      assert.equal(connected.transport, 'websocket');
      assert.match(connected.address, /127\.0\.0\.1$/);

      assert.equal((await ada.emitWithAck('join', { room: 'lobby' })).ok, true);
      assert.equal((await bob.emitWithAck('join', { room: 'lobby' })).ok, true);
      const joined = await host.next('joined', (e) => e.sid === bob.id);
      assert.deepEqual(joined, { type: 'joined', sid: bob.id, room: 'lobby', user: bobUser });

      const delivered = waitFor(bob, 'message', { filter: (m) => m.kind === 'chat' });
      const ack = await ada.emitWithAck('message', { room: 'lobby', text: 'hello bob' });
      assert.equal(ack.ok, true);
      const received = await delivered;
      assert.equal(received.text, 'hello bob');
      assert.equal(received.user, 'ws-ada');
      const message = await host.next('message', (e) => e.sid === ada.id);
      assert.deepEqual(message, {
        type: 'message',
        sid: ada.id,
        message: {
          id: ack.id,
          room: 'lobby',
          user: 'ws-ada',
          user_id: 'ws-ada',
          text: 'hello bob',
          ts: ack.ts,
          kind: 'chat',
          offset: 1,
          epoch: ack.epoch,
        },
      });

      const whisper = waitFor(bob, 'private');
      const privateAck = await ada.emitWithAck('private', { to: 'ws-bob', text: 'psst' });
      assert.equal(privateAck.ok, true);
      assert.equal((await whisper).text, 'psst');
      const privateEvent = await host.next('private', (e) => e.sid === ada.id);
      assert.deepEqual(privateEvent, {
        type: 'private',
        sid: ada.id,
        message: {
          id: privateAck.id,
          from: adaUser,
          to: bobUser,
          text: 'psst',
          ts: privateAck.ts,
          offset: 1,
          epoch: privateAck.epoch,
        },
      });

      const rooms = await chat.rooms();
      const lobby = rooms.find((r) => r.room === 'lobby');
      assert.deepEqual(lobby, { room: 'lobby', count: 2, members: [adaUser, bobUser] });
      assert.ok(chat.stats().connections >= 2);

      assert.equal((await bob.emitWithAck('leave', { room: 'lobby' })).ok, true);
      const left = await host.next('left', (e) => e.sid === bob.id);
      assert.deepEqual(left, { type: 'left', sid: bob.id, room: 'lobby', user: bobUser });

      const adaSid = ada.id;
      ada.close();
      const gone = await host.next('disconnected', (e) => e.sid === adaSid);
      assert.deepEqual(gone.user, adaUser);
      assert.equal(typeof gone.reason, 'string');
      assert.ok(host.of('left', (e) => e.sid === adaSid && e.room === 'lobby').length === 1);
    });

    test('a polling-only client gets the whole protocol', async () => {
      const pat = await client({ transports: ['polling'], auth: { name: 'poll-pat' } });
      const wes = await client({ transports: ['websocket'], auth: { name: 'poll-wes' } });
      const connected = await host.next('connected', (e) => e.sid === pat.id);
      assert.equal(connected.transport, 'polling');
      assert.deepEqual(connected.user, { id: 'poll-pat', name: 'poll-pat' });

      assert.equal((await pat.emitWithAck('join', { room: 'polls' })).ok, true);
      assert.equal((await wes.emitWithAck('join', { room: 'polls' })).ok, true);

      const toWes = waitFor(wes, 'message', { filter: (m) => m.kind === 'chat' });
      assert.equal((await pat.emitWithAck('message', { room: 'polls', text: 'from polling' })).ok, true);
      assert.equal((await toWes).text, 'from polling');

      const toPat = waitFor(pat, 'message', { filter: (m) => m.kind === 'chat' });
      assert.equal((await wes.emitWithAck('message', { room: 'polls', text: 'to polling' })).ok, true);
      assert.equal((await toPat).text, 'to polling');

      const whisper = waitFor(pat, 'private');
      assert.equal((await wes.emitWithAck('private', { to: 'poll-pat', text: 'hi pat' })).ok, true);
      assert.equal((await whisper).text, 'hi pat');
      await host.next('private', (e) => e.sid === wes.id && e.message.to.id === 'poll-pat');
      await host.next('message', (e) => e.sid === pat.id && e.message.text === 'from polling');

      assert.equal(pat.io.engine.transport.name, 'polling');
      const patSid = pat.id;
      pat.close();
      await host.next('disconnected', (e) => e.sid === patSid);
    });

    test('a client upgrades from polling to WebSocket and chats on', async () => {
      const uma = await client({ auth: { name: 'up-uma' } });
      const vic = await client({ transports: ['websocket'], auth: { name: 'up-vic' } });
      const connected = await host.next('connected', (e) => e.sid === uma.id);
      assert.equal(connected.transport, 'polling');
      if (uma.io.engine.transport.name !== 'websocket') await waitFor(uma.io.engine, 'upgrade');
      assert.equal(uma.io.engine.transport.name, 'websocket');

      assert.equal((await uma.emitWithAck('join', { room: 'upgraded' })).ok, true);
      assert.equal((await vic.emitWithAck('join', { room: 'upgraded' })).ok, true);
      const toVic = waitFor(vic, 'message', { filter: (m) => m.kind === 'chat' });
      assert.equal((await uma.emitWithAck('message', { room: 'upgraded', text: 'over ws now' })).ok, true);
      assert.equal((await toVic).text, 'over ws now');
      const toUma = waitFor(uma, 'message', { filter: (m) => m.kind === 'chat' });
      assert.equal((await vic.emitWithAck('message', { room: 'upgraded', text: 'back' })).ok, true);
      assert.equal((await toUma).text, 'back');
    });

    test('host broadcasts reach all, a room, or a user, and no one else', async () => {
      const amy = await client({ transports: ['websocket'], auth: { name: 'bc-amy' } });
      const ben = await client({ transports: ['polling'], auth: { name: 'bc-ben' } });
      const cal = await client({ transports: ['websocket'], auth: { name: 'bc-cal' } });
      const inboxes = { amy: inbox(amy), ben: inbox(ben), cal: inbox(cal) };
      await amy.emitWithAck('join', { room: 'news' });
      await ben.emitWithAck('join', { room: 'news' });
      await cal.emitWithAck('join', { room: 'elsewhere' });

      const sentinels = [amy, ben, cal].map((s) => waitFor(s, 'sentinel'));
      await chat.emit('announce', { to: 'all' });
      await chat.to('news').emit('room-note', { to: 'news' });
      await chat.in('elsewhere').emit('room-note', { to: 'elsewhere' });
      await chat.toUser('bc-cal').emit('personal', { to: 'cal' });
      await chat.emit('sentinel', null);
      await Promise.all(sentinels);

      const hostEvents = (list) =>
        list.filter((r) => ['announce', 'room-note', 'personal', 'sentinel'].includes(r.event));
      const expectNews = [
        { event: 'announce', data: { to: 'all' } },
        { event: 'room-note', data: { to: 'news' } },
        { event: 'sentinel', data: null },
      ];
      assert.deepEqual(hostEvents(inboxes.amy), expectNews);
      assert.deepEqual(hostEvents(inboxes.ben), expectNews);
      assert.deepEqual(hostEvents(inboxes.cal), [
        { event: 'announce', data: { to: 'all' } },
        { event: 'room-note', data: { to: 'elsewhere' } },
        { event: 'personal', data: { to: 'cal' } },
        { event: 'sentinel', data: null },
      ]);
    });

    test('disconnectUser kicks only that user: kicked, then a disconnect', async () => {
      const kim = await client({ transports: ['websocket'], auth: { name: 'kick-kim' } });
      const ken = await client({ transports: ['polling'], auth: { name: 'kick-ken' } });
      const order = [];
      kim.on('kicked', (data) => order.push(['kicked', data]));
      const disconnected = new Promise((resolve) =>
        kim.on('disconnect', (reason) => {
          order.push(['disconnect', reason]);
          resolve();
        }),
      );
      const kenKicked = [];
      ken.on('kicked', (data) => kenKicked.push(data));
      const kimSid = kim.id;

      assert.equal(await chat.disconnectUser('kick-kim', 'spamming'), 1);
      await disconnected;
      assert.deepEqual(order, [
        ['kicked', { reason: 'spamming' }],
        ['disconnect', 'io server disconnect'],
      ]);
      await host.next('disconnected', (e) => e.sid === kimSid);

      assert.equal(ken.connected, true);
      assert.equal((await ken.emitWithAck('rooms', {})).ok, true);
      assert.deepEqual(kenKicked, []);
    });

    test('custom events: answered through ack, or ack === null without a callback', async () => {
      const cid = await client({ transports: ['websocket'], auth: { name: 'custom-cid' } });
      assert.deepEqual(await cid.emitWithAck('add', { a: 2, b: 3 }), { sum: 5 });
      const asked = await host.next('custom', (e) => e.sid === cid.id && e.event === 'add');
      assert.deepEqual(asked.user, { id: 'custom-cid', name: 'custom-cid' });
      assert.deepEqual(asked.data, { a: 2, b: 3 });
      assert.equal(typeof asked.ack, 'function');
      assert.deepEqual(customAcks.at(-1), [true, false], 'a second answer is refused');

      cid.emit('note', { x: 1 });
      const told = await host.next('custom', (e) => e.sid === cid.id && e.event === 'note');
      assert.equal(told.ack, null);
      assert.deepEqual(told.data, { x: 1 });
    });

    test('custom events nobody listens to are refused with unknown_event at once', async () => {
      const own = http.createServer(makeHandler());
      const quiet = palaver(own, TEST_OPTIONS); // no `custom` listener
      const seen = [];
      quiet.on('connected', (e) => seen.push(e.type));
      const ownPort = await listen(own);
      const dee = await connect(ownPort, { transports: ['websocket'], auth: { name: 'quiet-dee' } });
      try {
        const started = Date.now();
        const answer = await dee.timeout(3000).emitWithAck('whatever', { x: 1 });
        assert.deepEqual(answer, { ok: false, code: 'unknown_event', message: 'unknown event "whatever"' });
        assert.ok(Date.now() - started < 2000, 'not after host_ack_timeout_ms');
        assert.equal(quiet.stats().pending_host_acks, 0);
      } finally {
        dee.close();
        await quiet.close();
        await closeServer(own);
      }
    });

    test('a custom event on its way when the last custom listener goes is refused with unknown_event at once', async () => {
      const own = http.createServer(makeHandler());
      const racing = palaver(own, TEST_OPTIONS);
      let ran = 0;
      const onCustom = () => {
        ran += 1;
      };
      racing.on('custom', onCustom);
      const ownPort = await listen(own);
      const eve = await connect(ownPort, { transports: ['websocket'], auth: { name: 'race-eve' } });
      try {
        const answer = eve.timeout(3000).emitWithAck('late', { x: 1 });
        // Hold the JS thread until the engine has handed the event to the host (it
        // waits for the host's answer now), and a little longer so that the event
        // is queued for JS; only then does the listener go.
        const deadline = Date.now() + 3000;
        while (racing.stats().pending_host_acks === 0 && Date.now() < deadline);
        assert.equal(racing.stats().pending_host_acks, 1, 'the event reached the host before its listener went');
        const queued = Date.now() + 200;
        while (Date.now() < queued);
        racing.off('custom', onCustom);
        const started = Date.now();
        assert.deepEqual(await answer, { ok: false, code: 'unknown_event', message: 'unknown event "late"' });
        assert.ok(Date.now() - started < 2000, 'not after host_ack_timeout_ms');
        assert.equal(ran, 0, 'the removed listener ran');
      } finally {
        eve.close();
        await racing.close();
        await closeServer(own);
      }
    });

    test('WebSocket connections are handed over: Node no longer holds them', async () => {
      // A server of its own, so that Node's connection count is exact.
      const own = http.createServer(makeHandler());
      const ownChat = new palaver.Server(TEST_OPTIONS).attach(own);
      const ownHost = new HostLog(ownChat);
      const ownPort = await listen(own);
      try {
        assert.equal(await connections(own), 0);
        const wes = await connect(ownPort, { transports: ['websocket'], auth: { name: 'fd-wes' } });
        try {
          let count = await connections(own);
          for (let i = 0; i < 50 && count !== 0; i += 1) {
            await sleep(20);
            count = await connections(own);
          }
          assert.equal(count, 0, 'the Node server does not hold the WebSocket connection');
          // The engine counts a connection once it has set it up (its host event).
          await ownHost.next('connected', (e) => e.sid === wes.id);
          assert.equal(ownChat.stats().connections, 1, 'the engine does');
          assert.equal((await wes.emitWithAck('join', { room: 'fd' })).ok, true);

          // Node's server can even stop listening: the connection is the engine's.
          await closeServer(own);
          assert.equal((await wes.emitWithAck('message', { room: 'fd', text: 'still here' })).ok, true);

          const shutdown = waitFor(wes, 'shutdown');
          const gone = waitFor(wes, 'disconnect');
          await ownChat.close();
          assert.deepEqual(await shutdown, { reason: 'server_stopping' });
          assert.equal(await gone, 'io server disconnect');
        } finally {
          wes.close();
        }
      } finally {
        await ownChat.close();
        await closeServer(own);
      }
    });

    describe('token mode', () => {
      let tokenServer;
      let tokenChat;
      let tokenPort;
      let tokenHost;

      before(async () => {
        tokenServer = http.createServer(makeHandler());
        tokenChat = palaver(tokenServer, { ...TEST_OPTIONS, identity: { mode: 'token', tokenSecret: SECRET } });
        tokenHost = new HostLog(tokenChat);
        tokenPort = await listen(tokenServer);
      });

      after(async () => {
        await tokenChat.close();
        await closeServer(tokenServer);
      });

      test('a forged or missing token is refused', async () => {
        const forged = jwt.sign({ sub: 'mallory' }, 'another-secret-of-sufficient-length-000', { expiresIn: 60 });
        await assert.rejects(connect(tokenPort, { transports: ['websocket'], auth: { token: forged } }), {
          message: 'auth_invalid',
        });
        await assert.rejects(connect(tokenPort, { transports: ['polling'], auth: { token: 'not a jwt' } }), {
          message: 'auth_invalid',
        });
        await assert.rejects(connect(tokenPort, { transports: ['websocket'] }), { message: 'auth_required' });
        assert.equal(tokenHost.of('connected').length, 0);
      });

      test('a good token is accepted, and its claims are the identity', async () => {
        const token = jwt.sign({ sub: 'user-42', name: 'Una' }, SECRET, { expiresIn: 3600 });
        const una = await connect(tokenPort, { transports: ['websocket'], auth: { token } });
        try {
          const connected = await tokenHost.next('connected', (e) => e.sid === una.id);
          assert.deepEqual(connected.user, { id: 'user-42', name: 'Una' });
          const joined = await una.emitWithAck('join', { room: 'members' });
          assert.equal(joined.ok, true);
          assert.deepEqual(joined.user, { id: 'user-42', name: 'Una' });
        } finally {
          una.close();
        }
      });
    });
  });
}

module.exports = { defineAttachedSuite };
