'use strict';
// attach() to an https.Server: long-polling works (forwarded in-process); the
// WebSocket upgrade is refused (a TLS socket's descriptor carries ciphertext the
// engine cannot take over), so upgrading clients stay on polling.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { describe, test, before, after } = require('node:test');
const express = require('express');
const palaver = require('..');
const { TEST_OPTIONS, HostLog, closeServer, connect, listen, sleep, waitFor } = require('./helpers');

/** A throw-away self-signed certificate, or null without openssl. */
function selfSigned() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'palaver-tls-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=localhost', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    return { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) };
  } catch {
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const tls = selfSigned();

describe('https', { skip: tls ? false : 'openssl is not available', timeout: 30_000 }, () => {
  let server;
  let chat;
  let host;
  let port;
  const errors = [];
  // The certificate is self-signed.
  const connectTls = (options) => connect(port, { scheme: 'https', rejectUnauthorized: false, ...options });
  const get = (urlPath) =>
    new Promise((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: urlPath, rejectUnauthorized: false, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        })
        .on('error', reject);
    });

  before(async () => {
    const app = express();
    app.get('/api/health', (req, res) => res.json({ ok: true }));
    server = https.createServer(tls, app);
    chat = palaver(server, TEST_OPTIONS);
    chat.on('error', (error) => errors.push(error));
    host = new HostLog(chat);
    port = await listen(server);
  });

  after(async () => {
    await chat.close();
    await closeServer(server);
  });

  test('the app and long-polling clients work over TLS; upgrades stay on polling', async () => {
    assert.deepEqual(await get('/api/health'), { status: 200, body: '{"ok":true}' });
    const script = await get('/socket.io/socket.io.js');
    assert.equal(script.status, 200);
    assert.match(script.body, /Socket\.IO v4/);

    const pat = await connectTls({ transports: ['polling'], auth: { name: 'tls-pat' } });
    const una = await connectTls({ auth: { name: 'tls-una' } });
    try {
      assert.equal((await host.next('connected', (e) => e.sid === pat.id)).transport, 'polling');
      await pat.emitWithAck('join', { room: 'secure' });
      await una.emitWithAck('join', { room: 'secure' });
      const delivered = waitFor(una, 'message', { filter: (m) => m.kind === 'chat' });
      assert.equal((await pat.emitWithAck('message', { room: 'secure', text: 'over tls' })).ok, true);
      assert.equal((await delivered).text, 'over tls');
      // The upgrade probe was refused (HTTP 501), so the client kept polling.
      await sleep(300);
      assert.equal(una.io.engine.transport.name, 'polling');
      assert.equal((await una.emitWithAck('rooms', {})).ok, true);
    } finally {
      pat.close();
      una.close();
    }
    await assert.rejects(connectTls({ transports: ['websocket'], auth: { name: 'tls-wes' } }), {
      message: 'websocket error',
    });
    assert.deepEqual(errors, [], 'a refused upgrade is no error of the host');
  });
});
