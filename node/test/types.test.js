'use strict';
// index.d.ts, socket.io.d.ts and ws.d.ts are hand-written: type-check an exercise of
// each entry point's whole declared API (types-*.ts as CommonJS, types-*.mts as ESM,
// all importing the package by name through its "exports": 'palaver',
// 'palaver/socket.io', 'palaver/ws') so that the declarations cannot rot. One tsc run
// for all of them: most of its time goes to loading @types/node.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { runNode } = require('./helpers');

const CHECKS = [
  'types-check.ts',
  'types-check.mts',
  'types-socketio-check.ts',
  'types-socketio-check.mts',
  'types-ws-check.ts',
  'types-ws-check.mts',
];

test('index.d.ts, socket.io.d.ts, ws.d.ts: tsc --noEmit --strict over the types-*.ts and types-*.mts checks', { timeout: 120_000 }, async () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const result = await runNode(
    [
      tsc,
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
      ...CHECKS.map((file) => path.join('test', file)),
    ],
    { timeout: 115_000 },
  );
  assert.equal(result.timedOut, false);
  assert.equal(result.code, 0, `tsc found errors:\n${result.stdout}${result.stderr}`);
});
