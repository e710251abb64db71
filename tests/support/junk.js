'use strict';
// The junk battery's parts: a seeded random source, generators of malformed
// Engine.IO/Socket.IO packets, and the attacks that send them over raw WebSocket
// frames, raw long-polling HTTP and raw TCP. tests/e2e/junk.test.js runs them against
// the standalone server while honest clients chat; tests/conformance/junk.test.js
// against a palaver/socket.io host app.
//
// Every attack is reproducible from its seed: each attacker draws from its own
// generator (seed + attacker number), so the sequence of attacks one attacker makes
// does not depend on how the others are scheduled. Timing still varies from run to
// run; what a seed fixes is what is sent.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const WebSocket = require('ws');

/** mulberry32: a small, fast 32-bit generator; plenty for choosing junk. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng = {
    next,
    /** An integer in [lo, hi]. */
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
    bytes: (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
  };
  return rng;
}

/** The seed of this run: JUNK_SEED replays one, otherwise a fresh one. */
function seedFromEnv() {
  const given = process.env.JUNK_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new Error(`JUNK_SEED must be an integer 0..4294967295, got ${given}`);
    }
    return seed;
  }
  return crypto.randomBytes(4).readUInt32BE(0);
}

// ---- junk values ---------------------------------------------------------------

const EVENTS = ['join', 'leave', 'message', 'private', 'typing', 'history', 'members', 'rooms', 'login', 'logout'];
/** Names socket.io keeps for itself (and EventEmitter's own, and `error`). */
const RESERVED = ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener', 'error', 'disconn\\u0065ct'];
const STRINGS = [
  '',
  ' ',
  'hall',
  'side',
  'system',
  'ѕystem',
  'ｓｙｓｔｅｍ',
  '\u0000',
  '\u202e',
  '\ud800',
  '💬',
  '__proto__',
  'constructor',
  '-1',
  '1e309',
  'null',
  '"',
  '\\',
  '%00',
];

function junkString(rng) {
  switch (rng.int(0, 4)) {
    case 0:
      return rng.pick(STRINGS);
    case 1:
      return 'x'.repeat(rng.pick([1, 31, 32, 33, 64, 65, 2000, 2001, 30000]));
    case 2:
      return String.fromCharCode(...Array.from({ length: rng.int(1, 40) }, () => rng.int(0, 0xffff)));
    case 3:
      return `junk-${rng.int(0, 9999)}`;
    default:
      return rng.bytes(rng.int(1, 30)).toString('latin1');
  }
}

/** A random JSON value, `depth` levels at most. */
function junkValue(rng, depth = 3) {
  const kind = rng.int(0, depth > 0 ? 9 : 6);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, Number.MAX_SAFE_INTEGER + 2]);
    case 3:
    case 4:
    case 5:
    case 6:
      return junkString(rng);
    case 7:
      return Array.from({ length: rng.int(0, 4) }, () => junkValue(rng, depth - 1));
    default: {
      const keys = ['room', 'text', 'name', 'to', 'token', 'before', 'limit', 'active', 'user', junkString(rng)];
      const obj = {};
      for (let i = rng.int(0, 4); i > 0; i--) obj[rng.pick(keys)] = junkValue(rng, depth - 1);
      return obj;
    }
  }
}

/** A payload the chat's handlers look at closely: the right fields, odd values. */
function chatPayload(rng, event) {
  const room = rng.chance(0.7) ? rng.pick(['hall', 'side', 'junk']) : junkValue(rng, 1);
  switch (event) {
    case 'join':
      return { room, name: rng.chance(0.5) ? `junk${rng.int(0, 99)}` : junkValue(rng, 1) };
    case 'message':
      return { room, text: rng.chance(0.6) ? `junk says ${rng.int(0, 1e6)}` : junkValue(rng, 1) };
    case 'private':
      return { to: rng.pick(['honest-0', 'honest-1', 'nobody', junkString(rng)]), text: junkValue(rng, 1) };
    case 'history':
      return { room, before: junkValue(rng, 0), limit: rng.pick([0, 1, 200, 201, -5, 'x', 1e12]) };
    case 'typing':
      return { room, active: junkValue(rng, 0) };
    default:
      return rng.chance(0.5) ? { room } : junkValue(rng);
  }
}

/** JSON nested `depth` levels deep (arrays or objects). */
function deep(rng, depth) {
  if (rng.chance(0.5)) return '['.repeat(depth) + ']'.repeat(depth);
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** A Socket.IO packet (the part after Engine.IO's `4`), mostly malformed. */
function socketIoPacket(rng) {
  const ns = rng.chance(0.85) ? '' : rng.pick(['/nope,', '/admin,', '/,', '/' + 'n'.repeat(3000) + ',', '/\u0000,']);
  const ack = rng.chance(0.3) ? String(rng.pick([0, 1, rng.int(0, 1e6), '99999999999999999999999'])) : '';
  const event = rng.pick(EVENTS);
  switch (rng.int(0, 20)) {
    case 0:
      return `0${ns}${rng.chance(0.5) ? JSON.stringify(junkValue(rng)) : ''}`;
    case 1:
      return `1${ns}`;
    case 2: // bad JSON
      return `2${ns}${ack}${rng.pick(['[', '["message",{', '["x",]', '{}', '"str"', '[]', '[null]', 'nul', '["a"]]'])}`;
    case 3: // numeric event names
      return `2${ns}${ack}[${rng.pick([1, 0, -1, 1.5, 1e300, 2 ** 64])},${JSON.stringify(junkValue(rng))}]`;
    case 4: // a binary placeholder as the event name, or as data, with no attachment
      return `2${ns}${ack}[{"_placeholder":true,"num":${rng.int(0, 3)}},{}]`;
    case 5:
      return `5${rng.pick(['1', '0', '2', '99999999', '-1', ''])}-${ns}${ack}["${event}",{"_placeholder":true,"num":${rng.pick([0, 5, -1, 1e9])}}]`;
    case 6: // acks for ids the server never asked
      return `3${ns}${rng.int(0, 1e6)}${JSON.stringify([junkValue(rng)])}`;
    case 7:
      return `6${rng.int(0, 3)}-${ns}${rng.int(0, 1e6)}[{"_placeholder":true,"num":0}]`;
    case 8: // deeply nested payloads
      return `2${ns}${ack}["${event}",${deep(rng, rng.pick([64, 200, 1000, 5000, 20000]))}]`;
    case 9: // huge strings, under and over the payload limit
      return `2${ns}${ack}["message",{"room":"hall","text":"${'y'.repeat(rng.pick([1000, 30000, 65000, 70000]))}"}]`;
    case 10:
      return `${rng.pick(['7', '8', '9', 'x', '', ' ', '-1', '4'])}${ns}${JSON.stringify(junkValue(rng))}`;
    case 11: // many arguments
      return `2${ns}${ack}["${event}"${',{}'.repeat(rng.pick([10, 1000, 8000]))}]`;
    case 12: // binary event names: placeholders with attachments that follow
      return `51-${ns}${ack}[{"_placeholder":true,"num":0},{"room":"hall"}]`;
    case 13:
      return `2${ns}${ack}[${JSON.stringify(junkString(rng))},${JSON.stringify(junkValue(rng))}]`;
    case 14: // names the server side keeps for itself
      return `2${ns}${ack}["${rng.pick(RESERVED)}",${JSON.stringify(junkValue(rng))}]`;
    default: // the chat's own events with odd payloads, valid framing
      return `2${ns}${ack}${JSON.stringify([event, chatPayload(rng, event)])}`;
  }
}

/** An Engine.IO packet as a WebSocket message: text (string) or binary (Buffer). */
function engineIoMessage(rng) {
  switch (rng.int(0, 11)) {
    case 0:
      return rng.bytes(rng.int(0, 200)); // binary frame: an attachment nobody announced
    case 1: // invalid UTF-8 in a text frame
      return { text: Buffer.concat([Buffer.from('42["message",{"text":"'), rng.bytes(rng.int(1, 20)), Buffer.from('"}]')]) };
    case 2:
      return rng.pick(['', '0', '1', '2', '3', '5', '6', '7', '9', 'x', '2probe', '3probe', '0{"sid":"x"}']);
    case 3:
      return `${rng.int(0, 9)}${junkString(rng)}`;
    default:
      return `4${socketIoPacket(rng)}`;
  }
}

/** A long-polling POST body: Engine.IO packets joined by the record separator. */
function pollingBody(rng) {
  switch (rng.int(0, 7)) {
    case 0:
      return rng.bytes(rng.int(0, 500));
    case 1:
      return '\x1e'.repeat(rng.int(1, 50));
    case 2: // binary packets in a polling body are base64 after 'b'
      return `b${rng.chance(0.5) ? rng.bytes(30).toString('base64') : '@@@not base64'}`;
    default: {
      const n = rng.int(1, 8);
      return Array.from({ length: n }, () => {
        const m = engineIoMessage(rng);
        if (Buffer.isBuffer(m)) return `b${m.toString('base64')}`;
        if (typeof m === 'object') return m.text.toString('latin1');
        return m;
      }).join('\x1e');
    }
  }
}

// ---- transports ----------------------------------------------------------------

/**
 * Everything an attack opens, so that the battery can end them all: sockets are
 * destroyed at the end however an attack left them.
 */
class Arena {
  constructor(url) {
    const u = new URL(url);
    this.url = url;
    this.host = u.hostname;
    this.port = Number(u.port);
    this.open = new Set();
    this.counts = {};
  }

  count(what) {
    this.counts[what] = (this.counts[what] || 0) + 1;
  }

  track(thing) {
    this.open.add(thing);
    const forget = () => this.open.delete(thing);
    thing.once('close', forget);
    return thing;
  }

  destroyAll() {
    for (const thing of this.open) {
      if (typeof thing.terminate === 'function') thing.terminate();
      else thing.destroy();
    }
    this.open.clear();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `emitter` emits `event`, or after `ms` (with undefined). */
function within(emitter, event, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      resolve(undefined);
    }, ms);
    const on = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, on);
  });
}

/** A raw HTTP request that never throws: resolves with {status, body} or {error}. */
function rawHttp(arena, localAddress, { method = 'GET', path, headers = {}, body, timeoutMs = 8000 }) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: arena.host, port: arena.port, method, path, headers, agent: false, localAddress },
      (res) => {
        const chunks = [];
        let size = 0;
        res.on('data', (c) => {
          size += c.length;
          if (size < 1 << 20) chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
        res.on('error', (error) => resolve({ error }));
      },
    );
    req.on('socket', (s) => arena.track(s));
    req.on('error', (error) => resolve({ error }));
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const EIO = '/socket.io/?EIO=4';

/** An Engine.IO polling handshake; resolves with the sid or null. */
async function pollingHandshake(arena, localAddress) {
  const res = await rawHttp(arena, localAddress, { path: `${EIO}&transport=polling` });
  const match = res.status === 200 && /^0(\{.*\})/.exec(res.body);
  return match ? JSON.parse(match[1]).sid : null;
}

/** Opens a `ws` client on `path`; resolves with it once open, or null. */
async function openWs(arena, localAddress, path, options = {}) {
  const ws = new WebSocket(`ws://${arena.host}:${arena.port}${path}`, { localAddress, ...options });
  arena.track(ws);
  ws.on('error', () => {});
  const opened = await Promise.race([
    within(ws, 'open', 8000).then((r) => r !== undefined),
    within(ws, 'close', 8000).then(() => false),
    within(ws, 'unexpected-response', 8000).then(() => false),
  ]);
  if (!opened) {
    ws.terminate();
    return null;
  }
  return ws;
}

/**
 * Resolves with true once the server answers a Socket.IO CONNECT on `ws` (false if it
 * does not within 5 s). Events sent before that answer close the connection, as the
 * reference server does: the namespace socket does not exist yet.
 */
function socketIoConnected(ws) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.off('message', on);
      resolve(false);
    }, 5000);
    const on = (data, isBinary) => {
      if (isBinary || !data.toString().startsWith('40')) return;
      clearTimeout(timer);
      ws.off('message', on);
      resolve(true);
    };
    ws.on('message', on);
  });
}

function wsSend(ws, message) {
  if (ws.readyState !== WebSocket.OPEN) return;
  if (Buffer.isBuffer(message)) ws.send(message, { binary: true });
  else if (typeof message === 'object') ws.send(message.text, { binary: false });
  else ws.send(message);
}

// ---- attacks -------------------------------------------------------------------

/** WebSocket frames of junk, sometimes after a valid Socket.IO connect and join. */
async function wsJunk(rng, arena, localAddress) {
  const ws = await openWs(arena, localAddress, `${EIO}&transport=websocket`);
  if (!ws) return;
  if (rng.chance(0.5)) {
    const connected = socketIoConnected(ws);
    wsSend(ws, rng.chance(0.5) ? `40{"name":"junk${rng.int(0, 999)}"}` : '40');
    if (rng.chance(0.5) && (await connected)) {
      wsSend(ws, `42${rng.int(1, 99)}["join",{"room":"${rng.pick(['hall', 'side'])}","name":"junk${rng.int(0, 999)}"}]`);
    }
  }
  for (let i = rng.int(1, 30); i > 0 && ws.readyState === WebSocket.OPEN; i--) {
    wsSend(ws, engineIoMessage(rng));
    if (rng.chance(0.3)) await sleep(rng.int(0, 50));
  }
  await within(ws, 'close', rng.int(0, 500));
  ws.terminate();
}

/** Raw bytes after a genuine WebSocket upgrade: bad frame headers, lying lengths. */
async function wsRawFrames(rng, arena, localAddress) {
  const socket = arena.track(net.connect({ host: arena.host, port: arena.port, localAddress }));
  socket.on('error', () => {});
  if (!(await within(socket, 'connect', 5000))) return socket.destroy();
  socket.write(
    `GET ${EIO}&transport=websocket HTTP/1.1\r\nHost: ${arena.host}:${arena.port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
      'Sec-WebSocket-Version: 13\r\n\r\n',
  );
  await within(socket, 'data', 5000);
  const frames = [];
  for (let i = rng.int(1, 6); i > 0; i--) {
    switch (rng.int(0, 4)) {
      case 0: // a 64-bit length no one could hold
        frames.push(Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]));
        break;
      case 1: // unmasked client frame
        frames.push(Buffer.concat([Buffer.from([0x81, 0x02]), Buffer.from('40')]));
        break;
      case 2: // reserved opcode and bits
        frames.push(Buffer.from([0x70 | rng.int(3, 15), 0x80, 0, 0, 0, 0]));
        break;
      case 3: // a continuation frame with nothing to continue, then fragments forever
        frames.push(Buffer.from([0x00, 0x81, 1, 2, 3, 4, 5]));
        break;
      default:
        frames.push(rng.bytes(rng.int(1, 300)));
    }
  }
  socket.write(Buffer.concat(frames));
  await within(socket, 'close', rng.int(100, 1500));
  socket.destroy();
}

/** Long-polling junk: bad bodies, bogus and stolen sids, oversized bodies, bad queries. */
async function pollingJunk(rng, arena, localAddress) {
  const sid = rng.chance(0.8) ? await pollingHandshake(arena, localAddress) : null;
  const useSid = () =>
    rng.pick([sid, sid, sid, 'bogus', '', crypto.randomBytes(15).toString('base64url'), 'x'.repeat(5000)]);
  for (let i = rng.int(1, 8); i > 0; i--) {
    const q = `${EIO}&transport=polling&sid=${encodeURIComponent(useSid() || '')}`;
    switch (rng.int(0, 9)) {
      case 0: // an oversized body
        await rawHttp(arena, localAddress, {
          method: 'POST',
          path: q,
          headers: { 'content-type': 'text/plain' },
          body: Buffer.alloc(rng.pick([65537, 200000, 2000000]), 0x34),
          timeoutMs: 5000,
        });
        break;
      case 1: // a Content-Length that lies, then silence
        await rawHttp(arena, localAddress, {
          method: 'POST',
          path: q,
          headers: { 'content-length': String(rng.pick([1e6, 1e9, 2 ** 40])) },
          body: 'abc',
          timeoutMs: rng.int(200, 1500),
        });
        break;
      case 2: // two GETs at once on one session
        await Promise.all([rawHttp(arena, localAddress, { path: q, timeoutMs: 2000 }), rawHttp(arena, localAddress, { path: q, timeoutMs: 2000 })]);
        break;
      case 3: // queries Engine.IO does not speak
        await rawHttp(arena, localAddress, {
          method: rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']),
          path: rng.pick([
            '/socket.io/?EIO=3&transport=polling',
            '/socket.io/?EIO=5&transport=polling',
            '/socket.io/?EIO=x&transport=polling',
            '/socket.io/?transport=polling',
            '/socket.io/?EIO=4&transport=flash',
            '/socket.io/?EIO=4',
            `/socket.io/?EIO=4&transport=polling&j=${'a'.repeat(rng.pick([100, 8000, 60000]))}`,
            '/socket.io/?EIO=4&EIO=3&transport=polling&transport=websocket',
            '/socket.io/%00',
            '/socket.io/../../etc/passwd',
            '/healthz?x=' + '%'.repeat(100),
          ]),
          timeoutMs: 3000,
        });
        break;
      case 4: // too many or too large headers
        await rawHttp(arena, localAddress, {
          path: q,
          headers: Object.fromEntries(Array.from({ length: rng.pick([50, 500]) }, (_, k) => [`x-junk-${k}`, 'v'.repeat(rng.int(1, 200))])),
          timeoutMs: 3000,
        });
        break;
      case 5: // a GET that waits for packets (a long poll) but is cut short
        await rawHttp(arena, localAddress, { path: q, timeoutMs: rng.int(50, 1000) });
        break;
      default:
        await rawHttp(arena, localAddress, {
          method: 'POST',
          path: q,
          headers: { 'content-type': rng.pick(['text/plain;charset=UTF-8', 'application/octet-stream', 'application/json']) },
          body: pollingBody(rng),
          timeoutMs: 3000,
        });
    }
  }
}

/** WebSocket upgrades of sessions that are not there, or of real ones with junk probes. */
async function upgradeJunk(rng, arena, localAddress) {
  const real = rng.chance(0.6) ? await pollingHandshake(arena, localAddress) : null;
  const sid = real || rng.pick(['bogus', crypto.randomBytes(15).toString('base64url'), '', '%00']);
  const ws = await openWs(arena, localAddress, `${EIO}&transport=websocket&sid=${encodeURIComponent(sid)}`);
  if (!ws) return;
  for (let i = rng.int(0, 6); i > 0; i--) {
    wsSend(ws, rng.pick(['2probe', '5', '2probe', engineIoMessage(rng)]));
  }
  if (real && rng.chance(0.5)) {
    // The polling side of an upgrading session, meanwhile.
    await rawHttp(arena, localAddress, { method: 'POST', path: `${EIO}&transport=polling&sid=${real}`, body: pollingBody(rng), timeoutMs: 2000 });
  }
  await within(ws, 'close', rng.int(0, 800));
  ws.terminate();
}

/** TCP connections that never speak, or speak junk that is not HTTP. */
async function halfOpen(rng, arena, localAddress) {
  const socket = arena.track(net.connect({ host: arena.host, port: arena.port, localAddress }));
  socket.on('error', () => {});
  if (!(await within(socket, 'connect', 5000))) return socket.destroy();
  if (rng.chance(0.3)) socket.write(rng.bytes(rng.int(1, 2000)));
  await within(socket, 'close', rng.int(500, 4000));
  socket.destroy();
}

/** Slowloris: a request's headers trickled a byte at a time. */
async function slowloris(rng, arena, localAddress) {
  const socket = arena.track(net.connect({ host: arena.host, port: arena.port, localAddress }));
  socket.on('error', () => {});
  let closed = false;
  socket.once('close', () => (closed = true));
  if (!(await within(socket, 'connect', 5000))) return socket.destroy();
  const head = `GET ${rng.pick([`${EIO}&transport=polling`, `${EIO}&transport=websocket`, '/healthz'])} HTTP/1.1\r\nHost: x\r\n`;
  socket.write(head);
  const until = Date.now() + rng.int(1000, 6000);
  while (!closed && Date.now() < until) {
    socket.write(rng.pick(['X', '-', 'a', ':', ' ', 'b']));
    await sleep(rng.int(50, 300));
  }
  if (closed) arena.count('slowloris closed by the server');
  socket.destroy();
}

/**
 * A client that joins a room where honest clients chat and then stops reading: its
 * TCP window fills while the room goes on. `ws` variant pauses the socket; the
 * polling variant stops polling.
 */
async function stopsReading(rng, arena, localAddress, { joinRoom = true } = {}) {
  const name = `reader${rng.int(0, 9999)}`;
  const room = rng.pick(['hall', 'side']);
  const hold = rng.int(1000, 6000);
  if (rng.chance(0.6)) {
    const ws = await openWs(arena, localAddress, `${EIO}&transport=websocket`);
    if (!ws) return;
    const connected = socketIoConnected(ws);
    wsSend(ws, `40{"name":"${name}"}`);
    if (joinRoom && (await connected)) {
      wsSend(ws, `421["join",{"room":"${room}"}]`);
      arena.count('stopsReading joined');
    }
    await sleep(rng.int(50, 300));
    ws._socket.pause();
    await within(ws, 'close', hold);
    ws.terminate();
  } else {
    const sid = await pollingHandshake(arena, localAddress);
    if (!sid) return;
    const path = `${EIO}&transport=polling&sid=${sid}`;
    await rawHttp(arena, localAddress, { method: 'POST', path, body: `40{"name":"${name}"}` });
    // The CONNECT answer first (events before it would close the session).
    const answer = await rawHttp(arena, localAddress, { path, timeoutMs: 5000 });
    if (joinRoom && /(^|\x1e)40\{/.test(answer.body || '')) {
      await rawHttp(arena, localAddress, { method: 'POST', path, body: `421["join",{"room":"${room}"}]` });
      arena.count('stopsReading joined');
    }
    await sleep(hold); // never polls: the server queues what the room says
  }
}

const ATTACKS = { wsJunk, wsRawFrames, pollingJunk, upgradeJunk, halfOpen, slowloris, stopsReading };

/**
 * Runs `workers` attackers until `deadline` (ms since the epoch). Attacker k draws
 * from prng(seed + k) and uses the loopback address `addresses[k % length]`. Resolves
 * with the counts of attacks made.
 */
async function attack(arena, { seed, workers, deadline, addresses, only }) {
  const names = only || Object.keys(ATTACKS);
  await Promise.all(
    Array.from({ length: workers }, async (_, k) => {
      const rng = prng(seed + k);
      const localAddress = addresses[k % addresses.length];
      while (Date.now() < deadline) {
        const name = rng.pick(names);
        arena.count(name);
        await ATTACKS[name](rng, arena, localAddress);
      }
    }),
  );
  arena.destroyAll();
  return arena.counts;
}

/** The resident set size of process `pid` in KiB (Linux /proc). */
function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]);
}

/** Samples the RSS of `pid` every `everyMs`; `stop()` returns {first, max, last, quarters} in KiB. */
function watchRss(pid, everyMs = 250) {
  const samples = [rssKiB(pid)];
  const timer = setInterval(() => {
    try {
      samples.push(rssKiB(pid));
    } catch {
      // The process is gone; the battery reports that as the failure it is.
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const at = (fraction) => samples[Math.min(samples.length - 1, Math.floor(fraction * samples.length))];
      return {
        first: samples[0],
        max: Math.max(...samples),
        last: samples[samples.length - 1],
        // The resident set at each quarter of the run: a leak shows as a steady climb.
        quarters: [0.25, 0.5, 0.75].map(at).concat(samples[samples.length - 1]),
      };
    },
  };
}

module.exports = { prng, seedFromEnv, attack, Arena, ATTACKS, rssKiB, watchRss, rawHttp, socketIoPacket, engineIoMessage };
