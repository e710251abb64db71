'use strict';
// Palaver attached to an Express app through the Node addon: the same chat as
// the standalone server, on the app's own HTTP server. WebSocket connections are
// handed over to the Rust engine.
//
// BENCH_PORT (default 0: any free port) on 127.0.0.1; BENCH_PALAVER_CONFIG is the
// engine configuration (bench/config/palaver.json). Prints "BENCH_LISTENING <port>".

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const palaver = require('palaver');

const configPath = process.env.BENCH_PALAVER_CONFIG || path.join(__dirname, '..', 'config', 'palaver.json');
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));

const app = express();
app.get('/healthz', (req, res) => res.json({ ok: true }));

const server = http.createServer(app);
const chat = palaver(server, config);

server.listen(Number(process.env.BENCH_PORT || 0), '127.0.0.1', () => {
  console.log(`BENCH_LISTENING ${server.address().port}`);
});

// The harness kills this process; the time limit only guards against a leftover.
setTimeout(() => process.exit(0), Number(process.env.BENCH_MAX_SECONDS || 10800) * 1000).unref();

process.on('SIGTERM', () => {
  chat.close().finally(() => process.exit(0));
});
