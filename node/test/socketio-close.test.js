'use strict';
// palaver/socket.io: io.close() as socket.io does it — every socket gets its
// `disconnect` ("server shutting down") before close() resolves, clients are
// disconnected as by a lost connection ("transport close", so that they reconnect
// to the next server), the attached http.Server is closed too, nothing fires after,
// a second close is harmless, and the process then exits by itself. Scenarios that
// could hang run in child processes (fixtures/sio-app.js, fixtures/sio-scenario.js).

const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { describe, test } = require('node:test');
const { io: ioClient } = require('socket.io-client');
const { Server } = require('palaver/socket.io');
const { FIXTURES, runNode } = require('./helpers');
const { Harness, nextEvent } = require('./sio-support');

const TRANSPORTS = ['websocket', 'polling'];
const SCENARIO = path.join(FIXTURES, 'sio-scenario.js');

async function freePort() {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * Runs fixtures/sio-app.js in `mode`; once it prints its port, `drive(port)` talks
 * to it (and asks it to close). Resolves with the run and what `drive` returned.
 */
async function runApp(mode, drive, { port, timeout = 15_000 } = {}) {
  let driving = null;
  const run = await runNode([path.join(FIXTURES, 'sio-app.js'), mode, ...(port ? [String(port)] : [])], {
    timeout,
    onLine(line) {
      if (line.port !== undefined && !driving) driving = drive(line.port);
    },
  });
  return { run, driven: driving ? await driving.catch((error) => error) : undefined };
}

/**
 * Connects a websocket and a polling client, says hello with both, asks the app to
 * close; resolves with their disconnect reasons.
 */
async function helloThenClose(port) {
  const clients = TRANSPORTS.map((transport) =>
    ioClient(`http://127.0.0.1:${port}`, { transports: [transport], reconnection: false, forceNew: true }),
  );
  try {
    await Promise.all(clients.map((c) => nextEvent(c, 'connect')));
    for (const client of clients) assert.equal(await client.timeout(5000).emitWithAck('hello', 'x'), 'hello x');
    const gone = clients.map((c) => nextEvent(c, 'disconnect', { timeout: 10_000 }));
    clients[0].emit('please-close');
    return (await Promise.all(gone)).map(([reason]) => reason);
  } finally {
    for (const client of clients) client.close();
  }
}

describe('palaver/socket.io: io.close()', { timeout: 120_000 }, () => {
  test('every socket gets "disconnect" ("server shutting down") before close() resolves; the map empties; nothing fires after', async (t) => {
    const h = new Harness(t);
    const { io, port, server } = await h.io(Server);
    let closed = false;
    const late = [];
    const reasons = [];
    io.on('connection', (socket) => {
      if (closed) late.push(['connection', socket.id]);
      socket.onAny((event) => closed && late.push(['event', event]));
      socket.on('disconnecting', (reason) => closed && late.push(['disconnecting', reason]));
      socket.on('disconnect', (reason) => (closed ? late.push(['disconnect', reason]) : reasons.push(reason)));
    });
    const clients = [];
    for (const transport of [...TRANSPORTS, 'websocket']) clients.push(await h.connect(port, { io, transport }));
    const gone = clients.map((c) => nextEvent(c.client, 'disconnect'));
    // The clients keep talking while the server closes.
    for (const c of clients) c.client.emit('chatter', 1);
    const closing = io.close();
    assert.ok(closing instanceof Promise, 'close() returns a promise');
    await closing;
    closed = true;
    assert.deepEqual(reasons, ['server shutting down', 'server shutting down', 'server shutting down']);
    assert.equal(io.sockets.sockets.size, 0);
    assert.equal(io.of('/').adapter.rooms.size, 0);
    await Promise.all(gone);
    // A client that tries now is not let in, and nothing reaches the handlers.
    const latecomer = ioClient(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: 2000,
    });
    h.clients.push(latecomer);
    await nextEvent(latecomer, 'connect_error');
    assert.deepEqual(late, []);
    // socket.io docs: io.close() "also closes the underlying HTTP server".
    assert.equal(server.listening, false, 'the attached http.Server is closed too');
  });

  for (const transport of TRANSPORTS) {
    test(`close(): a client with reconnection on reconnects to the next server on the port, as with socket.io (${transport})`, async (t) => {
      // socket.io disconnects clients at close() as a lost connection ("transport
      // close" / "transport error"), so a client reconnects to whatever serves the
      // port next (a restarted app). After "io server disconnect" it would not.
      const h = new Harness(t);
      const port = await freePort();
      const first = h.track(new Server(port));
      first.on('connection', (socket) => socket.emit('hello', 'first'));
      const client = ioClient(`http://127.0.0.1:${port}`, {
        transports: [transport],
        forceNew: true,
        reconnection: true,
        reconnectionDelay: 50,
        reconnectionDelayMax: 100,
        randomizationFactor: 0,
      });
      h.clients.push(client);
      const hellos = [];
      client.on('hello', (from) => hellos.push(from));
      await nextEvent(client, 'connect');
      // The client's `connect` can come before the server's connection handler has
      // run (docs/SOCKETIO.md): the first server's hello is awaited before it closes.
      for (let i = 0; i < 500 && !hellos.includes('first'); i += 1) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(hellos, ['first']);
      const gone = nextEvent(client, 'disconnect');
      await first.close();
      const [reason] = await gone;
      assert.notEqual(reason, 'io server disconnect', 'a reason the client reconnects after');
      const second = h.track(new Server(port));
      second.on('connection', (socket) => socket.emit('hello', 'second'));
      await nextEvent(client, 'hello', { timeout: 5000, filter: (from) => from === 'second' });
      assert.deepEqual(hellos, ['first', 'second']);
    });
  }

  test('close(cb) calls cb; a second close() resolves too', async (t) => {
    const h = new Harness(t);
    const { io, port } = await h.io(Server);
    await h.connect(port, { io });
    const first = await new Promise((resolve) => {
      const returned = io.close((error) => resolve({ error, returned }));
    });
    assert.equal(first.error, undefined);
    assert.ok(first.returned instanceof Promise);
    await io.close(); // resolves, does not throw
    const second = await new Promise((resolve) => io.close((...args) => resolve(args)));
    assert.ok(second.length <= 1, 'called back once more (socket.io passes an error: the server is not running)');
  });

  test('close() while the disconnect handlers emit (seed 002\'s handler) resolves, and reports no error (io.on("error") set)', async () => {
    const run = await runNode([SCENARIO, 'close-while-disconnect-handlers-emit', 'listener'], { timeout: 20_000 });
    assert.equal(run.timedOut, false, `io.close() never finished (killed after 20 s): ${run.stdout}${run.stderr.slice(0, 2000)}`);
    const line = run.lines.find((l) => 'result' in l || 'error' in l);
    assert.ok(line && line.result, run.stdout + run.stderr);
    assert.deepEqual(line.result.disconnects, ['server shutting down', 'server shutting down', 'server shutting down']);
    // socket.io: emitting to sockets that are going away is a no-op, not an error.
    assert.deepEqual(line.result.errors, [], 'emitting from a disconnect handler during close() is no error');
    assert.deepEqual(line.result.warnings, []);
  });

  test('close() while the disconnect handlers emit, no io.on("error"): no warning either', async () => {
    const run = await runNode([SCENARIO, 'close-while-disconnect-handlers-emit'], { timeout: 20_000 });
    assert.equal(run.timedOut, false, `io.close() never finished: ${run.stdout}${run.stderr.slice(0, 2000)}`);
    const line = run.lines.find((l) => 'result' in l || 'error' in l);
    assert.ok(line && line.result, run.stdout + run.stderr);
    assert.deepEqual(line.result.warnings, [], 'no process warning');
    assert.doesNotMatch(run.stderr, /ERR_PALAVER/);
  });

  for (const mode of ['attach', 'require']) {
    test(`the process exits by itself after io.close() (${mode}: the http.Server is closed by io.close(), as in socket.io)`, async () => {
      const { run, driven } = await runApp(mode, helloThenClose);
      assert.equal(run.timedOut, false, `still running 15 s later: ${run.stdout}${run.stderr}`);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(!(driven instanceof Error), String(driven && driven.stack));
      const closed = run.lines.find((l) => l.closed);
      assert.ok(closed, run.stdout);
      assert.deepEqual(closed.disconnects, ['server shutting down', 'server shutting down']);
      assert.equal(closed.listening, false);
      assert.deepEqual(run.lines.at(-1), { exit: 0 });
    });
  }

  for (const mode of ['port', 'listen']) {
    test(`the process exits by itself after io.close() (${mode}: new Server(port) / new Server().listen(port))`, async () => {
      const port = await freePort();
      const { run, driven } = await runApp(mode, helloThenClose, { port });
      assert.equal(run.timedOut, false, `still running 15 s later: ${run.stdout}${run.stderr}`);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(!(driven instanceof Error), String(driven && driven.stack));
      assert.ok(run.lines.find((l) => l.closed), run.stdout);
      assert.deepEqual(run.lines.at(-1), { exit: 0 });
    });
  }
});
