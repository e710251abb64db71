'use strict';
// The server's log never shows a handshake token or a message text, even at
// RUST_LOG=trace: the transport crates, which log raw packets at debug and trace,
// stay at info unless RUST_LOG names them.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { startServer, connect, sign } = require('../support/server.js');

const SECRET = 'e2e-logging-secret-0123456789';

for (const transport of ['websocket', 'polling']) {
  test(`RUST_LOG=trace: no token and no text in the log (${transport})`, { timeout: 30000 }, async () => {
    const server = await startServer({
      config: { identity: { mode: 'token', token_secret: SECRET } },
      env: { RUST_LOG: 'trace' },
    });
    const sockets = [];
    try {
      const token = sign({ sub: 'log-ada', exp: Math.floor(Date.now() / 1000) + 300 }, SECRET);
      const text = `secret-text-${transport}-${Date.now()}`;
      const ada = await connect(server.url, { auth: { token }, transports: [transport] });
      sockets.push(ada);
      assert.equal((await ada.emitWithAck('join', { room: 'logs' })).ok, true);
      assert.equal((await ada.emitWithAck('message', { room: 'logs', text })).ok, true);
      const log = server.output();
      assert.equal(log.includes(token), false, 'the token is in the log');
      assert.equal(log.includes(token.split('.')[1]), false, 'the token claims are in the log');
      assert.equal(log.includes(text), false, 'the message text is in the log');
    } finally {
      for (const socket of sockets) socket.close();
      await server.stop();
    }
  });
}
