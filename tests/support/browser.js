'use strict';
// Helpers for the real-browser tests: Debian's Chromium driven by playwright-core,
// and the chat page's login and queries. The element ids are documented at the top of
// examples/server/static/app.js.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const assert = require('node:assert/strict');
const { chromium } = require('playwright-core');
const { ROOT, SERVER_BIN, sleep } = require('./server');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT_DIR = path.join(ROOT, 'target', 'browser-screenshots');

/** Launches Chromium with a fresh temporary profile (playwright's default). */
function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * A page in its own browser context (own cookies and storage). Uncaught page errors
 * are collected in `errors`.
 */
async function openPage(browser, url, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  const errors = [];
  page.on('pageerror', (err) => errors.push(err));
  await page.goto(url);
  return { context, page, errors, close: () => context.close() };
}

/** Retries `fn` (which throws while the condition is not met) until it passes. */
async function eventually(fn, { timeout = 8000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(interval);
    }
  }
}

/** Signs the main page in (open mode) and waits for the room to be open. */
async function login(page, name, room) {
  await page.waitForSelector('#conn-status[data-state="connected"]');
  await page.fill('#login-name', name);
  await page.fill('#login-room', room || '');
  await page.click('#login-submit');
  await page.waitForSelector('#chat-view:not([hidden])');
  if (room) await page.waitForSelector(`#chat-title[data-room="${room}"]`);
}

/** Opens the main page in a new context and signs in. */
async function openChat(browser, url, name, room) {
  const p = await openPage(browser, url + '/');
  await login(p.page, name, room);
  return p;
}

/** The open conversation's messages: [{user, text, kind, own, id, state}]. */
function messages(page) {
  return page.$$eval('#messages [data-testid=message]', (items) =>
    items.map((li) => ({
      user: li.querySelector('[data-testid=message-user]').textContent,
      text: li.querySelector('[data-testid=message-text]').textContent,
      time: li.querySelector('[data-testid=message-time]').textContent,
      kind: li.dataset.kind,
      own: li.classList.contains('own'),
      id: li.dataset.id,
      state: li.dataset.state || null,
    })),
  );
}

/** The open conversation's notices: [{kind, text}]. */
function notices(page) {
  return page.$$eval('#messages [data-testid=notice]', (items) =>
    items.map((li) => ({ kind: li.dataset.kind, text: li.querySelector('.notice-text').textContent })),
  );
}

/** Member names of the open room, as shown. */
function memberNames(page) {
  return page.$$eval('#member-list [data-testid=member-name]', (els) => els.map((e) => e.textContent));
}

/** The member count shown for `room` in the room lists, or null. */
function roomCount(page, room) {
  return page.$$eval(
    '[data-testid=room-item]',
    (items, room) => {
      const item = items.find((i) => i.dataset.room === room);
      return item ? item.querySelector('[data-testid=room-count]').textContent : null;
    },
    room,
  );
}

/** Types and sends a message in the main page's composer. */
async function send(page, text) {
  await page.fill('#message-input', text);
  await page.press('#message-input', 'Enter');
}

/** Writes target/browser-screenshots/<name>.png. */
async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * Starts the standalone server on a given port (tests/support/server.js always picks
 * a free one); used to bring a server back where a stopped one was.
 */
async function startServerOnPort(port) {
  const child = spawn(SERVER_BIN, ['--port', String(port), '--memory-history'], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /Palaver chat on (http:\/\/[^\s/]+)\//.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.stderr.on('data', (chunk) => (output += chunk));
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
  return {
    url,
    process: child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Asserts that no page had an uncaught error. */
function assertNoPageErrors(...pages) {
  for (const p of pages) assert.deepEqual(p.errors.map(String), []);
}

module.exports = {
  CHROMIUM,
  CHROMIUM_ARGS,
  SCREENSHOT_DIR,
  launchBrowser,
  openPage,
  openChat,
  login,
  eventually,
  messages,
  notices,
  memberNames,
  roomCount,
  send,
  screenshot,
  startServerOnPort,
  assertNoPageErrors,
};
