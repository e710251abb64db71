'use strict';
// index.d.ts is hand-written: type-check an exercise of the whole declared API
// (types-check.ts as CommonJS, types-check.mts as ESM, both importing 'palaver'
// by name through the package's "exports") so that the declarations cannot rot.

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { runNode } = require('./helpers');

test('index.d.ts: tsc --noEmit --strict over types-check.ts and types-check.mts', { timeout: 60_000 }, async () => {
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
      path.join('test', 'types-check.ts'),
      path.join('test', 'types-check.mts'),
    ],
    { timeout: 55_000 },
  );
  assert.equal(result.timedOut, false);
  assert.equal(result.code, 0, `tsc found errors:\n${result.stdout}${result.stderr}`);
});
