'use strict';
// palaver/socket.io: an app handler that throws (synchronously, or by rejecting)
// is caught and reported — to `io.on('error')` listeners when there are any, else
// as a process warning — and the process, the thrower's connection and every other
// client live on. (The npm socket.io server lets such an error crash the process:
// these are Palaver's guarantees, docs/SOCKETIO.md.)
//
// Each scenario runs in a child process (fixtures/sio-scenario.js) with a timeout,
// so that a scenario that hangs or freezes the event loop fails its test instead of
// stopping the suite.

const assert = require('node:assert/strict');
const path = require('node:path');
const { describe, test } = require('node:test');
const { FIXTURES, runNode } = require('./helpers');

const SCENARIO = path.join(FIXTURES, 'sio-scenario.js');

/** Runs a scenario; asserts it exited by itself with its result, which it returns. */
async function scenario(name, ...args) {
  const run = await runNode([SCENARIO, name, ...args], { timeout: 20_000 });
  assert.equal(run.timedOut, false, `the scenario did not finish (killed after 20 s): ${run.stdout}${run.stderr}`);
  const line = run.lines.find((l) => 'result' in l || 'error' in l);
  assert.ok(line, `no result line: ${run.stdout}${run.stderr}`);
  assert.equal(line.error, undefined, `the scenario failed: ${line.error}\n${JSON.stringify(line.reported)}`);
  assert.equal(run.code, 0, run.stderr);
  return { ...line.result, stderr: run.stderr };
}

describe('palaver/socket.io: handlers that throw', { timeout: 90_000 }, () => {
  test('a sync throw and an async rejection go to io.on("error"); thrower and bystander go on; nothing is sent to clients', async () => {
    const result = await scenario('throw-with-listener');
    assert.deepEqual(result.errors, ['Error: sync boom', 'RangeError: async boom']);
    assert.deepEqual(result.warnings, [], 'reported to the listener, not as warnings');
    assert.deepEqual(result.echoes, ['thrower still here', 'bystander too']);
    assert.deepEqual(result.thrower, [['marker']], 'the error is not sent to the client');
    assert.deepEqual(result.bystander, [['marker']]);
    assert.deepEqual(result.connected, [true, true]);
  });

  test('without io.on("error"), a throwing handler is a process warning; the connection goes on', async () => {
    const result = await scenario('throw-without-listener');
    assert.equal(result.warnings.length, 1, JSON.stringify(result.warnings));
    assert.match(result.warnings[0], /unheard boom/);
    assert.equal(result.echo, 'alive');
    assert.deepEqual(result.got, [], 'nothing sent to the client');
    assert.match(result.stderr, /unheard boom/, 'printed on stderr as a warning');
  });

  test('seed 002: socket.on("message", ({text, room, user}) => ...) receiving message(null) is reported; the room chat goes on', async () => {
    const result = await scenario('seed-002-message-null');
    assert.equal(result.errors.length, 1, JSON.stringify(result));
    assert.match(result.errors[0], /^TypeError: Cannot destructure property 'text' of .*null/);
    assert.deepEqual(result.warnings, []);
    // Two senders: their messages may arrive in either order.
    const last = result.bobLast.sort((a, b) => a[1].text.localeCompare(b[1].text));
    assert.deepEqual(last, [
      ['message', { text: 'hello', user: 'ann' }],
      ['message', { text: 'sorry', user: 'evil' }],
    ]);
    assert.deepEqual(result.connected, [true, true, true]);
    assert.equal(result.sockets, 3);
  });

  test('a throwing connection listener and a throwing disconnect listener are reported; the socket still works', async () => {
    const result = await scenario('throw-in-connection-and-disconnect');
    assert.deepEqual(result.errors, ['Error: connection boom', 'Error: connection boom', 'Error: disconnect boom']);
    assert.deepEqual(result.echoes, ['hi', 'still']);
    assert.deepEqual(result.warnings, []);
  });
});
