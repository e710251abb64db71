'use strict';
// Helpers for the cluster tests in tests/cluster/: a private Redis (./redis.js),
// several standalone servers sharing it (./server.js), recorded clients on each
// (./e2e.js), and polling assertions for things that converge across nodes.

const assert = require('node:assert/strict');
const path = require('node:path');
const { startServer, tempDir, sleep } = require('./server.js');
const { startRedis } = require('./redis.js');
const { pool } = require('./e2e.js');

/** Short cluster timings so that failures and recoveries are seen quickly. */
const TIMINGS = Object.freeze({ heartbeat_ms: 200, node_timeout_ms: 1000, redis_timeout_ms: 300 });

/** Limits high enough that no test trips them. */
const GENEROUS_LIMITS = Object.freeze({
  messages_per_second: 1000,
  message_burst: 1000,
  requests_per_second: 1000,
  request_burst: 1000,
});

let prefixes = 0;
/** A key prefix of its own for each cluster, so that tests sharing a Redis never meet. */
function uniquePrefix(name = 'c') {
  prefixes += 1;
  return `t${process.pid}-${name.replace(/[^a-z0-9]/gi, '')}-${prefixes}`;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `base` with `extra` merged in, objects recursively. */
function merge(base, extra) {
  const out = { ...base };
  for (const [key, value] of Object.entries(extra || {})) {
    out[key] = isObject(value) && isObject(base[key]) ? merge(base[key], value) : value;
  }
  return out;
}

/** The engine configuration of one node. */
function nodeConfig(redis, prefix, extra = {}) {
  return merge(
    {
      cluster: { redis_url: redis.url, key_prefix: prefix, ...TIMINGS },
      room_list: { interval_ms: 100 },
      // `refuse`: a private message to a user online nowhere is `user_offline`,
      // which the tests of presence across nodes read; recovery.test.js stores.
      history: { storage: 'memory', on_join: 50, page_max: 200, private_offline: 'refuse' },
      limits: GENEROUS_LIMITS,
    },
    extra,
  );
}

/**
 * A cluster of `nodes` standalone servers on one Redis (`redis`, or a new one).
 * Everything it starts is stopped after the test `t`. Each node gets a client
 * pool (`cluster.clients[i]`); `cluster.addNode()` starts one more.
 * `config` is merged into every node's configuration (history in memory unless
 * it says otherwise).
 */
async function startCluster(t, { nodes = 2, redis, config = {}, name = 'c' } = {}) {
  const ownRedis = !redis;
  if (ownRedis) redis = await startRedis();
  const prefix = uniquePrefix(name);
  const cluster = {
    redis,
    prefix,
    nodes: [],
    clients: [],
    /** Starts one more node; resolves with its server (see ./server.js). */
    async addNode(extra = {}) {
      // Each node its own journal file (used when its history storage is SQLite).
      const dir = tempDir('palaver-node-');
      const own = { cluster: { journal_path: path.join(dir, 'journal.db') } };
      const server = await startServer({ dir, admin: true, config: nodeConfig(redis, prefix, merge(own, merge(config, extra))) });
      cluster.nodes.push(server);
      cluster.clients.push(pool(null, server.url));
      return server;
    },
    /** The counters of node `i` (its admin listener's /stats). */
    health(i) {
      return cluster.nodes[i].stats();
    },
    /** A Redis key of this cluster. */
    key(...parts) {
      return [prefix, ...parts].join(':');
    },
  };
  t.after(async () => {
    for (const clients of cluster.clients) clients.closeAll();
    await Promise.all(cluster.nodes.map((node) => node.stop('SIGKILL')));
    if (ownRedis) await redis.stop('SIGKILL');
  });
  // Started together; `nodes[i]` and `clients[i]` always belong together.
  await Promise.all(Array.from({ length: nodes }, () => cluster.addNode()));
  return cluster;
}

/**
 * Retries `check` (which throws or returns false while not there yet) until it
 * passes or `timeout` ms have passed; then rethrows its last error. Resolves with
 * `check`'s value and the time it took.
 */
async function eventually(check, { timeout = 5000, interval = 50, what = 'condition' } = {}) {
  const started = Date.now();
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value !== false) return { value, elapsed: Date.now() - started };
      last = new Error(`${what} not reached`);
    } catch (error) {
      last = error;
    }
    if (Date.now() - started > timeout) {
      last.message = `${what}: still failing after ${timeout} ms: ${last.message}`;
      throw last;
    }
    await sleep(interval);
  }
}

/** Member names of a `members` (or `join`) ack, in order. */
function memberNames(reply) {
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return reply.members.map((m) => m.name);
}

/** `{room: count}` of a `rooms` push or ack list. */
function counts(rooms) {
  return Object.fromEntries(rooms.map((r) => [r.room, r.count]));
}

module.exports = {
  TIMINGS,
  GENEROUS_LIMITS,
  uniquePrefix,
  merge,
  nodeConfig,
  startCluster,
  eventually,
  memberNames,
  counts,
};
