'use strict';
// The Node addon in token mode: a connection ends with its token (token_expiring,
// then kicked auth_expired and a disconnect the host sees), with the settings given
// in camelCase.

const assert = require('node:assert/strict');
const http = require('node:http');
const { test } = require('node:test');
const jwt = require('jsonwebtoken');
const palaver = require('..');
const { TEST_OPTIONS, HostLog, closeServer, connect, listen, waitFor } = require('./helpers');

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

test('a connection ends when its token expires, and the host sees it go', async () => {
  const server = http.createServer();
  const chat = palaver(server, {
    ...TEST_OPTIONS,
    identity: { mode: 'token', tokenSecret: SECRET, tokenLeewaySecs: 0, tokenExpiryNoticeSecs: 2 },
  });
  const host = new HostLog(chat);
  try {
    const port = await listen(server);
    // Far enough ahead that the notice comes after the listeners below are in place.
    const exp = Math.floor(Date.now() / 1000) + 5;
    const socket = await connect(port, { auth: { token: jwt.sign({ sub: 'short-lived', exp }, SECRET) } });
    const events = [];
    socket.onAny((event, payload) => events.push([event, payload]));
    const sid = socket.id;
    const gone = waitFor(socket, 'disconnect', { timeout: 20000 });
    assert.equal(await gone, 'io server disconnect');
    assert.deepEqual(
      events.filter(([event]) => event === 'token_expiring' || event === 'kicked'),
      [
        ['token_expiring', { expires_at: exp * 1000 }],
        ['kicked', { reason: 'auth_expired' }],
      ],
    );
    const disconnected = await host.next('disconnected', (e) => e.sid === sid);
    assert.equal(disconnected.reason, 'server_disconnect');
    assert.equal(disconnected.user.id, 'short-lived');
  } finally {
    await chat.close();
    await closeServer(server);
  }
});
