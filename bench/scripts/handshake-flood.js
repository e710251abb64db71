'use strict';
// Engine.IO handshakes from one address, and what they cost the server:
//
//   node bench/scripts/handshake-flood.js [server-binary] [count]
//
// starts the server (default target/release/palaver-server, memory history, a free
// port), sends `count` (default 50000) polling handshakes
// (GET /socket.io/?EIO=4&transport=polling, none of which connects to a namespace)
// from 127.0.0.1 over 50 keep-alive sockets, then prints the server's RSS before
// and after, the HTTP statuses seen and the counters (admin /stats) as one JSON
// line. Sessions past limits.max_sessions_per_ip are refused with 429
// (bench/results/HARDENING.md).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const bin = process.argv[2] || path.join(__dirname, '..', '..', 'target', 'release', 'palaver-server');
const count = Number(process.argv[3] || 50000);
const configPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'palaver-flood-')), 'config.json');
fs.writeFileSync(configPath, JSON.stringify({ port: 0, history: { storage: 'memory' } }));

const child = spawn(bin, ['--config', configPath, '--port', '0', '--admin-listen', '127.0.0.1:0'], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, RUST_LOG: 'error' },
});
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;

function get(agent, url) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', (e) => resolve({ status: e.code, body: '' }));
  });
}

let started = false;
let printed = '';
child.stdout.on('data', async (data) => {
  printed += data;
  // The admin line comes first, the chat line once the server listens.
  const found = /Palaver chat on (http:\/\/[^\s/]+)\//.exec(printed);
  if (!found || started) return;
  started = true;
  const base = found[1];
  const admin = /admin \(.*\) on (http:\/\/[^\s/]+)\//.exec(printed)[1];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  const before = rssMb();
  const statuses = {};
  let sent = 0;
  const t0 = Date.now();
  const worker = async () => {
    while (sent < count) {
      sent++;
      const { status } = await get(agent, `${base}/socket.io/?EIO=4&transport=polling`);
      statuses[status] = (statuses[status] || 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  const seconds = (Date.now() - t0) / 1000;
  const health = JSON.parse((await get(undefined, `${admin}/stats`)).body);
  console.log(
    JSON.stringify({ count, seconds, rss_before_mb: +before.toFixed(1), rss_after_mb: +rssMb().toFixed(1), statuses, stats: health }),
  );
  agent.destroy();
  child.kill('SIGKILL');
});
child.on('exit', (code, signal) => {
  if (!started) {
    console.error(`the server exited before listening (${code ?? signal})`);
    process.exit(1);
  }
});
