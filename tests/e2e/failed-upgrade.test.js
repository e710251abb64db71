'use strict';
// A connected long-polling session whose WebSocket upgrade fails (the probe
// socket sends junk, or closes) still ends at its ping timeout once its client
// goes quiet, releasing its per-address session slot: a failed upgrade never
// leaves a session behind.

const assert = require('node:assert/strict');
const http = require('node:http');
const { test } = require('node:test');
const WebSocket = require('ws');
const { startServer } = require('../support/server.js');

/** Opens a long-polling Engine.IO session; resolves with its sid. */
function openPollingSession(base) {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}/socket.io/?EIO=4&transport=polling`, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => {
          const open = JSON.parse(body.slice(body.indexOf('{')));
          resolve(open.sid);
        });
      })
      .on('error', reject);
  });
}

/** Sends the Socket.IO CONNECT of the main namespace over the session's polling transport. */
function connectNamespace(base, sid) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}/socket.io/?EIO=4&transport=polling&sid=${sid}`,
      { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`POST ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end('40');
  });
}

/** Tries to upgrade `sid` and fails it: `how` is 'junk' (not the probe) or 'close'. */
function failUpgrade(base, sid, how) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
    ws.on('open', () => {
      if (how === 'junk') ws.send('definitely not 2probe');
      else ws.close();
    });
    ws.on('close', () => resolve());
    ws.on('error', reject);
    if (how === 'junk') setTimeout(() => ws.terminate(), 500);
  });
}

async function sessionsUntil(server, want, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { sessions, connections } = await server.stats();
    if (sessions === want && connections === want) return;
    if (Date.now() > deadline) {
      throw new Error(`${sessions} sessions, ${connections} connections after ${timeoutMs} ms, expected ${want}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('a failed WebSocket upgrade leaves a polling session that still times out', async (t) => {
  const server = await startServer({
    admin: true,
    config: { transport: { ping_interval_ms: 1000, ping_timeout_ms: 1000 } },
  });
  t.after(() => server.stop());
  for (const how of ['junk', 'close']) {
    const sid = await openPollingSession(server.url);
    // Connected: no connect timeout will end this session, only its heartbeat.
    await connectNamespace(server.url, sid);
    await sessionsUntil(server, 1, 2000);
    await failUpgrade(server.url, sid, how);
    // The client goes quiet: no poll answers the pings, so the session ends
    // within a ping interval and timeout (2 s).
    await sessionsUntil(server, 0, 8000);
  }
  assert.equal((await server.stats()).sessions, 0);
});
