'use strict';
// The standalone server's status answers: /healthz on the chat port says only
// whether the server is alive; the counters (/stats as JSON, /metrics for
// Prometheus) are on the admin listener, off unless --admin-listen is given,
// loopback unless an admin token protects it.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { startServer, tempDir } = require('../support/server.js');
const { pool, httpRequest } = require('../support/e2e.js');

const get = async (url, headers = {}) => {
  const { status, headers: answerHeaders, body } = await httpRequest(url, { headers });
  return { status, headers: answerHeaders, body: body.toString() };
};

/**
 * Parses the Prometheus / OpenMetrics text format strictly: every line is a
 * `# HELP`, `# TYPE` or `# UNIT` comment, a sample of a family declared by `# TYPE`
 * before it, or the final `# EOF`. Returns {families: name → type, samples: name → value}.
 */
function parseMetrics(text) {
  const families = new Map();
  const samples = new Map();
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'the text ends with a line end');
  assert.equal(lines.pop(), '# EOF', 'OpenMetrics text ends with # EOF');
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  for (const line of lines) {
    let m;
    if ((m = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|info|stateset|unknown)$`).exec(line))) {
      assert.ok(!families.has(m[1]), `family ${m[1]} declared twice`);
      families.set(m[1], m[2]);
    } else if (new RegExp(`^# (HELP|UNIT) ${name}( .*)?$`).test(line)) {
      // Help texts and units: free text.
    } else if ((m = new RegExp(`^(${name})(\\{[^}]*\\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( [0-9.]+)?$`).exec(line))) {
      const family = [...families.keys()].find((f) => m[1] === f || m[1] === `${f}_total` || m[1] === `${f}_created`);
      assert.ok(family, `sample ${m[1]} of no declared family`);
      if (families.get(family) === 'counter') assert.match(m[1], /_(total|created)$/, `counter sample ${m[1]}`);
      assert.ok(!Number.isNaN(Number(m[3])), `value of ${m[1]}: ${m[3]}`);
      samples.set(m[1] + (m[2] || ''), Number(m[3]));
    } else {
      assert.fail(`not a line of the text format: ${JSON.stringify(line)}`);
    }
  }
  return { families, samples };
}

test('/healthz on the chat port says only whether the server is alive; no counters there', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const health = await get(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(JSON.parse(health.body), { ok: true });
  for (const route of ['/stats', '/metrics']) {
    assert.equal((await get(`${server.url}${route}`)).status, 404, `${route} on the chat port`);
  }
  assert.doesNotMatch(server.output(), /admin/, 'no admin listener unless asked for');
});

test('the admin listener: /stats has the counters, /metrics the same in the Prometheus format', async (t) => {
  const server = await startServer({ admin: true });
  t.after(() => server.stop());
  assert.match(server.admin, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(JSON.parse((await get(`${server.admin}/healthz`)).body), { ok: true });

  const before = await get(`${server.admin}/metrics`);
  assert.equal(before.status, 200);
  assert.match(before.headers['content-type'], /^application\/openmetrics-text; version=1\.0\.0/);
  const first = parseMetrics(before.body);
  for (const [family, type] of [
    ['palaver_connections', 'gauge'],
    ['palaver_sessions', 'gauge'],
    ['palaver_rooms', 'gauge'],
    ['palaver_messages', 'counter'],
    ['palaver_packets_dropped', 'counter'],
    ['palaver_requests_rejected', 'counter'],
    ['palaver_sockets_refused', 'counter'],
  ]) {
    assert.equal(first.families.get(family), type, family);
  }
  assert.equal(first.samples.get('palaver_messages_total'), 0);
  assert.equal(first.families.has('palaver_cluster_redis_connected'), false, 'cluster figures only in cluster mode');

  const clients = pool(t, server.url);
  const ada = await clients.member('Ada', ['metrics']);
  await clients.member('Bob', ['metrics']);
  for (let i = 0; i < 3; i++) assert.equal((await ada.request('message', { room: 'metrics', text: `m${i}` })).ok, true);
  assert.equal((await ada.request('join', { room: '' })).ok, false, 'one refused request');

  const after = parseMetrics((await get(`${server.admin}/metrics`)).body);
  assert.equal(after.samples.get('palaver_messages_total'), 3);
  assert.equal(after.samples.get('palaver_connections'), 2);
  assert.equal(after.samples.get('palaver_rooms'), 1);
  assert.equal(after.samples.get('palaver_requests_rejected_total'), 1);
  assert.equal(after.samples.get('palaver_refusals_total{code="invalid_room"}'), 1);
  assert.equal(first.families.get('palaver_refusals'), 'counter');
  assert.equal(after.samples.get('palaver_connections_accepted_total'), 2);

  const stats = await server.stats();
  assert.equal(stats.messages, 3);
  assert.equal(stats.connections, 2);
  assert.equal(stats.cluster, null);
  assert.deepEqual(stats.refusals, { invalid_room: 1 });
});

test('an admin token: /stats and /metrics need the bearer token; /healthz stays open', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'admin-token');
  fs.writeFileSync(file, 'admin-token-0123456789\n', { mode: 0o600 });
  const server = await startServer({ admin: true, args: ['--admin-token-file', file], dir });
  t.after(() => server.stop());
  for (const route of ['/stats', '/metrics']) {
    const refused = await get(`${server.admin}${route}`);
    assert.equal(refused.status, 401, route);
    assert.equal(refused.headers['www-authenticate'], 'Bearer');
    assert.equal((await get(`${server.admin}${route}`, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await get(`${server.admin}${route}`, { authorization: 'Bearer admin-token-0123456789' })).status, 200);
  }
  assert.equal((await get(`${server.admin}/healthz`)).status, 200);
  assert.doesNotMatch(fs.readFileSync(`/proc/${server.process.pid}/cmdline`, 'utf8'), /admin-token-0123/);
});

test('an admin listener reachable from other machines needs a token; PALAVER_ADMIN_TOKEN gives one', async (t) => {
  await assert.rejects(startServer({ args: ['--admin-listen', '0.0.0.0:0'] }), (err) => {
    assert.match(err.message, /server exited \(1\)/);
    assert.match(err.message, /admin token/);
    return true;
  });
  const server = await startServer({
    args: ['--admin-listen', '0.0.0.0:0'],
    env: { PALAVER_ADMIN_TOKEN: 'from-the-environment' },
  });
  t.after(() => server.stop());
  const port = new URL(server.admin).port;
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await get(`${base}/stats`)).status, 401);
  const stats = await get(`${base}/stats`, { authorization: 'Bearer from-the-environment' });
  assert.equal(stats.status, 200);
  assert.equal(JSON.parse(stats.body).connections, 0);
});
