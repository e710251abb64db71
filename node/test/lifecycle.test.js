'use strict';
// Start, stop, restart, process exit, events after close, throwing listeners and
// the ESM entry, each in a child process (fixtures/) so that nothing of one check
// (threads, handles, listeners) can hide a problem of another.

const assert = require('node:assert/strict');
const path = require('node:path');
const { describe, test } = require('node:test');
const { FIXTURES, connect, runNode, sleep, waitFor } = require('./helpers');

const fixture = (name) => path.join(FIXTURES, name);

/** Runs a fixture that prints {port}; `withPort(port, child)` then drives it. */
async function runWithPort(name, withPort, options = {}) {
  let driving = null;
  const run = runNode([fixture(name), ...(options.args || [])], {
    ...options,
    onLine(line, child) {
      if (line.port !== undefined && !driving) driving = withPort(line.port, child);
    },
  });
  const result = await run;
  return { ...result, driven: driving ? await driving : undefined };
}

describe('lifecycle', { timeout: 60_000 }, () => {
  test('the process exits on its own after close(), with clients connected before', async () => {
    const clientSaw = [];
    const result = await runWithPort(
      'exit-after-close.js',
      async (port) => {
        const ws = await connect(port, { transports: ['websocket'], auth: { name: 'exit-ws' } });
        const polling = await connect(port, { transports: ['polling'], auth: { name: 'exit-poll' } });
        ws.on('shutdown', (data) => clientSaw.push(['ws', 'shutdown', data.reason]));
        const wsGone = waitFor(ws, 'disconnect', { timeout: 10_000 });
        const pollingGone = waitFor(polling, 'disconnect', { timeout: 10_000 });
        await ws.emitWithAck('join', { room: 'bye' });
        // The second join closes the chat, maybe before its answer is out: no ack.
        polling.emit('join', { room: 'bye' });
        clientSaw.push(['ws', 'disconnect', await wsGone]);
        clientSaw.push(['polling', 'disconnect', await pollingGone]);
        ws.close();
        polling.close();
      },
      { timeout: 15_000 },
    );
    assert.equal(result.timedOut, false, `the child did not exit by itself: ${result.stdout}${result.stderr}`);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      result.lines.filter((l) => l.port === undefined),
      [{ closing: true }, { closed: true }, { serverClosed: true }],
    );
    assert.deepEqual(clientSaw.slice(0, 2), [
      ['ws', 'shutdown', 'server_stopping'],
      ['ws', 'disconnect', 'io server disconnect'],
    ]);
    assert.equal(clientSaw[2][0], 'polling', 'the polling client was disconnected too');
  });

  test('no event fires after close() resolves; the disconnects come before', async () => {
    const CLIENTS = 4;
    const result = await runWithPort(
      'events-after-close.js',
      async (port) => {
        const sockets = [];
        for (let i = 0; i < CLIENTS; i += 1) {
          sockets.push(
            await connect(port, {
              transports: i % 2 ? ['polling'] : ['websocket'],
              auth: { name: `late-${i}` },
            }),
          );
        }
        await Promise.all(sockets.map((s) => s.emitWithAck('join', { room: 'busy' })));
        // Everyone chats until the server goes away.
        let stop = false;
        const loops = sockets.map(async (socket, i) => {
          for (let n = 0; !stop && socket.connected; n += 1) {
            socket.emit('message', { room: 'busy', text: `m${i}-${n}` });
            await sleep(5);
          }
        });
        await Promise.all(sockets.map((s) => waitFor(s, 'disconnect', { timeout: 10_000 })));
        stop = true;
        await Promise.all(loops);
        for (const socket of sockets) socket.close();
      },
      { env: { CLIENTS: String(CLIENTS) }, timeout: 20_000 },
    );
    assert.equal(result.timedOut, false, result.stdout + result.stderr);
    assert.equal(result.code, 0, result.stderr);
    const summary = result.lines.find((l) => l.late !== undefined);
    assert.ok(summary, result.stdout);
    assert.equal(summary.late, 0, 'events after close() resolved');
    assert.equal(summary.connected, CLIENTS);
    assert.equal(summary.disconnected, CLIENTS, 'the host saw every disconnect before close() resolved');
    assert.ok(summary.duringClose >= CLIENTS, 'events kept coming while the chat stopped');
  });

  test('close() twice: the same promise, resolved; commands afterwards fail', async () => {
    const result = await runNode([fixture('close-twice.js')]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.lines, [
      { samePromise: true, results: ['fulfilled', 'fulfilled'], third: 'fulfilled', commandError: 'ERR_PALAVER_CLOSED' },
    ]);
  });

  test('attach, close, attach again (same server, then a new one)', async () => {
    const result = await runNode([fixture('reattach.js')]);
    assert.equal(result.timedOut, false, result.stdout + result.stderr);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.deepEqual(result.lines, [
      {
        round1: true,
        // Closed: the app has /socket.io/ back (its own 404).
        between: { api: 200, script: 404 },
        round2: true,
        script2: 200,
        round3: true,
        stale: 404,
        messages: ['hi from one', 'hi from two', 'hi from three'],
      },
    ]);
  });

  test('listen(0) keeps the process alive until close()', async () => {
    let aliveAfterWait = null;
    const result = await runWithPort(
      'listen-alive.js',
      async (port, child) => {
        await sleep(1000);
        aliveAfterWait = child.exitCode === null && child.signalCode === null;
        const socket = await connect(port, { transports: ['websocket'], auth: { name: 'keeper' } });
        const joined = await socket.emitWithAck('join', { room: 'alive' });
        const answer = await socket.emitWithAck('please-close', {});
        socket.close();
        return { joined: joined.ok, answer };
      },
      { timeout: 15_000 },
    );
    assert.equal(aliveAfterWait, true, 'still running after a second with nothing but the chat');
    assert.equal(result.timedOut, false, 'exits on its own after close()');
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.driven, { joined: true, answer: { closing: true } });
    assert.deepEqual(result.lines.at(-1), { closed: true });
  });

  test('a throwing listener is reported through the `error` event; the chat works on', async () => {
    const result = await runNode([fixture('throwing-listener.js'), 'error-listener']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.lines, [
      { reported: [['error', 'boom from joined']], joined: true, sent: true, later: ['still working'], messages: 1 },
    ]);
  });

  test('without an `error` listener it is a process warning; the chat works on', async () => {
    const result = await runNode([fixture('throwing-listener.js'), 'warning']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.lines, [
      {
        reported: [['warning', 'Error', 'boom from joined']],
        joined: true,
        sent: true,
        later: ['still working'],
        messages: 1,
      },
    ]);
  });

  test('a throwing listener with nothing to catch it never ends the process', async () => {
    const source = `
      const http = require('node:http');
      const palaver = require('.');
      const { io } = require('socket.io-client');
      const server = http.createServer();
      const chat = palaver(server, { history: { storage: 'memory' } });
      chat.on('connected', () => { throw new Error('unhandled boom'); });
      server.listen(0, '127.0.0.1', () => {
        const client = io('http://127.0.0.1:' + server.address().port, { transports: ['websocket'], reconnection: false });
        client.on('connect', () => setTimeout(async () => {
          client.close();
          await chat.close();
          server.close();
          console.log(JSON.stringify({ alive: true }));
        }, 200));
      });`;
    const result = await runNode(['-e', source], { timeout: 10_000 });
    assert.equal(result.timedOut, false);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.lines, [{ alive: true }]);
    assert.match(result.stderr, /unhandled boom/, 'the error is printed as a warning');
  });

  test('ESM: import palaver, { Server } from "palaver"', async () => {
    const result = await runNode([fixture('esm-import.mjs')]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.lines.length, 1, result.stdout);
    const [report] = result.lines;
    assert.equal(report.defaultIsFunction, true);
    assert.equal(report.sameServer, true);
    assert.equal(report.samePalaverError, true);
    assert.deepEqual(report.namespaceKeys, ['PalaverError', 'Server', 'default']);
    assert.equal(report.isServer, true);
    assert.equal(typeof report.port, 'number');
    assert.ok(report.port > 0);
    assert.equal(report.connections, 0);
    assert.deepEqual(report.notHttp, { isPalaverError: true, code: 'ERR_PALAVER_NOT_HTTP_SERVER' });
  });
});
