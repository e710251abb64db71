'use strict';
// The chat page (examples/server/static/index.html) and the tutorial page in a real
// browser: Debian's Chromium driven by playwright-core, against the real standalone
// server. Screenshots go to target/browser-screenshots/.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, connect, nextEvent, sleep, sign } = require('../support/server');
const { startCluster } = require('../support/cluster');
const {
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
} = require('../support/browser');

let browser;
let server;

/**
 * The open conversation as shown, top to bottom: "user: text" for messages,
 * "gap(reason)" for gap markers, "resume" for the "new since you left" marker,
 * "kind: text" for other local notices. Hidden items and join/leave notices are left out.
 */
function timeline(page) {
  return page.$$eval('#messages ol.msg-list > li:not([hidden])', (items) =>
    items.filter((li) => !['join', 'leave'].includes(li.dataset.kind)).map((li) => {
      if (li.dataset.testid === 'message') {
        const user = li.querySelector('[data-testid=message-user]').textContent;
        return `${user}: ${li.querySelector('[data-testid=message-text]').textContent}`;
      }
      if (li.dataset.kind === 'gap') return `gap(${li.dataset.reason})`;
      if (li.dataset.kind === 'resume') return 'resume';
      return `${li.dataset.kind}: ${li.querySelector('.notice-text').textContent}`;
    }),
  );
}

/** The offsets of the open conversation's messages, top to bottom. */
function offsets(page) {
  return page.$$eval('#messages [data-testid=message]', (items) =>
    items.map((li) => (li.dataset.offset === undefined ? null : Number(li.dataset.offset))),
  );
}

/** The tab's saved session (sessionStorage), as the page keeps it for a reload. */
function savedSession(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem('palaver.session')));
}

/**
 * Takes the page's network away: Chromium's offline emulation closes the open
 * WebSocket and refuses new connections. Resolves once the server has seen the page's
 * user leave `room` (a `presence` to `watcher`), so that what is sent next is missed.
 */
async function goOffline(p, watcher, room, userId) {
  const left = nextEvent(
    watcher,
    'presence',
    (e) => e.room === room && e.action === 'leave' && e.user.id === userId,
    15000,
  );
  await p.context.setOffline(true);
  await p.page.waitForSelector('#conn-status:is([data-state="reconnecting"], [data-state="disconnected"])');
  await left;
}

/** Sends `texts` to `room` one after another, each acknowledged. */
async function sendAll(socket, room, texts) {
  for (const text of texts) {
    const ack = await socket.emitWithAck('message', { room, text });
    assert.equal(ack.ok, true, JSON.stringify(ack));
  }
}

const range = (from, to, f) => Array.from({ length: to - from + 1 }, (_, i) => f(from + i));

before(async () => {
  // on_join 5 so that "load older" has something to load with few messages;
  // private messages to someone offline refused, so that the page shows user_offline.
  [browser, server] = await Promise.all([
    launchBrowser(),
    startServer({ config: { history: { storage: 'memory', on_join: 5, private_offline: 'refuse' } } }),
  ]);
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('two pages chat in one room: messages, members, counts, typing, notices', async () => {
  const a = await openChat(browser, server.url, 'Alice', 'lobby');
  const b = await openChat(browser, server.url, 'Bob', 'lobby');
  try {
    assert.equal(await a.page.textContent('#me-name'), 'Alice');
    assert.equal(await b.page.textContent('#me-name'), 'Bob');
    assert.equal(await a.page.getAttribute('#conn-status', 'data-state'), 'connected');

    // Members (join ack + presence) and counts (presence + the coalesced room list).
    await eventually(async () => {
      assert.deepEqual(await memberNames(a.page), ['Alice', 'Bob']);
      assert.deepEqual(await memberNames(b.page), ['Bob', 'Alice']);
      assert.equal(await a.page.textContent('#member-count'), '2');
      assert.equal(await b.page.textContent('#member-count'), '2');
      assert.equal(await roomCount(a.page, 'lobby'), '2');
      assert.equal(await roomCount(b.page, 'lobby'), '2');
    });
    // Alice saw Bob arrive, as a notice.
    await eventually(async () =>
      assert.deepEqual(await notices(a.page), [{ kind: 'join', text: 'Bob joined' }]),
    );

    // Typing: Bob sees it while Alice types, and it goes when she sends.
    await a.page.locator('#message-input').pressSequentially('Hello', { delay: 15 });
    await b.page.waitForFunction(
      () => document.getElementById('typing-indicator').textContent === 'Alice is typing…',
    );
    await a.page.locator('#message-input').pressSequentially(' from Alice', { delay: 5 });
    await a.page.press('#message-input', 'Enter');

    await eventually(async () => {
      const got = await messages(b.page);
      assert.equal(got.length, 1);
      assert.equal(got[0].user, 'Alice');
      assert.equal(got[0].text, 'Hello from Alice');
      assert.equal(got[0].own, false);
      assert.match(got[0].time, /\d{1,2}:\d{2}/);
    });
    await eventually(async () =>
      assert.equal(await b.page.textContent('#typing-indicator'), ''),
    );

    await send(b.page, 'Hi Alice, Bob here');
    await eventually(async () => {
      const got = await messages(a.page);
      assert.deepEqual(
        got.map((m) => [m.user, m.text, m.own]),
        [
          ['Alice', 'Hello from Alice', true],
          ['Bob', 'Hi Alice, Bob here', false],
        ],
      );
      assert.ok(got.every((m) => m.state === null && m.id), 'acknowledged, with ids');
    });
    // Own messages appear once, from the ack (the server does not echo them).
    await sleep(300);
    for (const p of [a, b]) {
      const got = await messages(p.page);
      assert.equal(got.length, 2, 'each message once');
      assert.deepEqual(got.map((m) => m.text), ['Hello from Alice', 'Hi Alice, Bob here']);
    }
    assert.deepEqual(
      (await messages(b.page)).map((m) => m.own),
      [false, true],
    );

    await screenshot(a.page, 'chat-alice');
    await screenshot(b.page, 'chat-bob');

    // Bob leaves: Alice sees the notice, the member list and the counts drop.
    await b.page.click('#leave-btn');
    await eventually(async () => {
      assert.deepEqual(await memberNames(a.page), ['Alice']);
      assert.equal(await a.page.textContent('#member-count'), '1');
      assert.equal(await roomCount(a.page, 'lobby'), '1');
      assert.deepEqual((await notices(a.page)).at(-1), { kind: 'leave', text: 'Bob left' });
      // Bob still sees the room in "other rooms", with its count.
      assert.equal(await roomCount(b.page, 'lobby'), '1');
    });
    assert.equal(
      await b.page.getAttribute('#room-list [data-testid=room-item][data-room="lobby"]', 'data-joined'),
      'false',
    );
    // ...and can click it to join again; history on join shows the conversation.
    await b.page.click('#room-list [data-testid=room-item][data-room="lobby"] button');
    await b.page.waitForSelector('#chat-title[data-room="lobby"]');
    await eventually(async () =>
      assert.deepEqual(
        (await messages(b.page)).map((m) => [m.user, m.text, m.own]),
        [
          ['Alice', 'Hello from Alice', false],
          ['Bob', 'Hi Alice, Bob here', true],
        ],
      ),
    );
    assertNoPageErrors(a, b);
  } finally {
    await a.close();
    await b.close();
  }
});

test('history on join and "load older"', async () => {
  const writer = await connect(server.url, { auth: { name: 'Archivist' } });
  try {
    assert.equal((await writer.emitWithAck('join', { room: 'archive' })).ok, true);
    for (let i = 1; i <= 8; i++) {
      const ack = await writer.emitWithAck('message', { room: 'archive', text: `entry ${i}` });
      assert.equal(ack.ok, true);
    }
    const r = await openChat(browser, server.url, 'Reader', 'archive');
    try {
      // history.on_join is 5: the newest five, oldest first, and more to load.
      await eventually(async () =>
        assert.deepEqual((await messages(r.page)).map((m) => m.text), [4, 5, 6, 7, 8].map((i) => `entry ${i}`)),
      );
      await r.page.waitForSelector('#load-older:not([hidden])');
      await r.page.click('#load-older');
      await eventually(async () =>
        assert.deepEqual(
          (await messages(r.page)).map((m) => m.text),
          [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `entry ${i}`),
        ),
      );
      await r.page.waitForSelector('#load-older', { state: 'hidden' });
      assertNoPageErrors(r);
    } finally {
      await r.close();
    }
  } finally {
    writer.close();
  }
});

test('hostile text is shown as text; hostile names are refused; punctuation names display', async () => {
  const hostile = [
    '<img src=x onerror="window.__pwned=1">',
    '<script>window.__pwned=1</script>',
    '"quotes" & \'apostrophes\' <b>not bold</b> &amp; &lt;',
  ];
  const a = await openChat(browser, server.url, 'Mallory', 'xss');
  const b = await openChat(browser, server.url, 'Victim', 'xss');
  const c = await openPage(browser, server.url + '/');
  try {
    for (const text of hostile) await send(a.page, text);
    for (const p of [a, b]) {
      await eventually(async () =>
        assert.deepEqual((await messages(p.page)).map((m) => m.text), hostile),
      );
    }
    await sleep(200); // give any (wrongly created) <img> time to fail and run onerror
    for (const p of [a, b]) {
      assert.equal(await p.page.evaluate(() => window.__pwned), undefined);
      assert.equal(await p.page.locator('#messages img, #messages script, #messages b').count(), 0);
    }

    // A hostile name is refused by the server (connect_error invalid_name), shown as text.
    await c.page.waitForSelector('#conn-status[data-state="connected"]');
    await c.page.fill('#login-name', '<b>x</b><img src=x onerror="window.__pwned=1">');
    await c.page.fill('#login-room', 'xss');
    await c.page.click('#login-submit');
    const error = c.page.locator('#login-error[data-code="invalid_name"]');
    await error.waitFor();
    const errorText = await error.textContent();
    assert.match(errorText, /invalid_name/);
    assert.ok(errorText.includes('<b>x</b><img src=x onerror="window.__pwned=1">'), errorText);
    assert.equal(await c.page.locator('#login-error b, #login-error img').count(), 0);
    assert.equal(await c.page.isVisible('#login-view'), true);
    assert.equal(await c.page.evaluate(() => window.__pwned), undefined);
    await screenshot(c.page, 'login-refused');

    // A valid name with punctuation (letters, digits, space and _ - . ' @).
    const name = "O'Neil-Smith @Co.";
    await login(c.page, name, 'xss');
    assert.equal(await c.page.textContent('#me-name'), name);
    await eventually(async () => {
      assert.ok((await memberNames(a.page)).includes(name));
      assert.ok((await notices(b.page)).some((n) => n.text === `${name} joined`));
    });
    await send(c.page, 'Top o\' the morning & "hello" <3');
    await eventually(async () => {
      const last = (await messages(b.page)).at(-1);
      assert.deepEqual([last.user, last.text], [name, 'Top o\' the morning & "hello" <3']);
    });
    // The room list and history on join carry the same texts, as text.
    const ownView = (await messages(c.page)).map((m) => m.text);
    assert.deepEqual(ownView.slice(0, 3), hostile);
    assert.equal(await c.page.locator('#messages img, #messages script, #messages b').count(), 0);
    assert.equal(await c.page.evaluate(() => window.__pwned), undefined);
    await screenshot(b.page, 'hostile-text');
    assertNoPageErrors(a, b, c);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test('the tutorial page and the main page chat in one room', async () => {
  const a = await openChat(browser, server.url, 'Ada', 'tutorial');
  const t = await openPage(browser, `${server.url}/tutorial.html?name=Tutu&room=tutorial`);
  try {
    const tutorialLines = () => t.page.$$eval('#messages li', (lis) => lis.map((li) => li.textContent));

    // The tutorial joined with {name, room}: the main page sees it arrive.
    await eventually(async () => {
      assert.deepEqual(await memberNames(a.page), ['Ada', 'Tutu']);
      assert.deepEqual((await notices(a.page)).at(-1), { kind: 'join', text: 'Tutu joined' });
    });
    // The tutorial's room list comes from groupList.
    await eventually(async () =>
      assert.deepEqual(
        await t.page.$$eval('#groups li', (lis) => lis.map((li) => li.textContent)),
        ['tutorial (2): Ada, Tutu'],
      ),
    );

    // Tutorial → main page.
    await t.page.fill('#input', 'hi from the tutorial');
    await t.page.press('#input', 'Enter');
    await eventually(async () => {
      const last = (await messages(a.page)).at(-1);
      assert.deepEqual([last.user, last.text, last.own], ['Tutu', 'hi from the tutorial', false]);
    });

    // Main page → tutorial, shown as user:text, as text.
    await send(a.page, 'hello tutorial <i>x</i>');
    await eventually(async () =>
      assert.deepEqual(await tutorialLines(), ['Tutu:hi from the tutorial', 'Ada:hello tutorial <i>x</i>']),
    );
    assert.equal(await t.page.locator('#messages i').count(), 0);
    await screenshot(t.page, 'tutorial');
    await screenshot(a.page, 'chat-with-tutorial');

    // Notices reach the tutorial as messages from "system".
    await a.page.click('#leave-btn');
    await eventually(async () => assert.equal((await tutorialLines()).at(-1), 'system:Ada left'));
    assertNoPageErrors(a, t);
  } finally {
    await Promise.all([a.close(), t.close()]);
  }
});

test('private messages between two pages; user_offline is shown', async () => {
  const a = await openChat(browser, server.url, 'Priya', 'dm');
  const b = await openChat(browser, server.url, 'Quinn', 'dm');
  const g = await openChat(browser, server.url, 'Ghost', 'dm');
  try {
    await eventually(async () => assert.deepEqual(await memberNames(a.page), ['Priya', 'Ghost', 'Quinn']));

    // Priya clicks Quinn in the member list: a private conversation opens.
    await a.page.click('#member-list [data-testid=member][data-user-id="Quinn"] button');
    await eventually(async () => assert.equal(await a.page.textContent('#chat-title'), 'Quinn'));
    assert.equal(await a.page.isVisible('#close-dm-btn'), true);
    await send(a.page, 'psst, Quinn');
    await eventually(async () => {
      const got = await messages(a.page);
      assert.deepEqual(got.map((m) => [m.user, m.text, m.kind, m.own, m.state]), [
        ['Priya', 'psst, Quinn', 'private', true, null],
      ]);
    });

    // Quinn gets it: the conversation appears with an unread badge.
    const item = '#dm-list [data-testid=dm-item][data-user-id="Priya"]';
    await b.page.waitForSelector(item);
    await eventually(async () => assert.equal(await b.page.textContent(`${item} [data-testid=unread]`), '1'));
    await screenshot(b.page, 'private-unread');
    await b.page.click(`${item} button`);
    await eventually(async () =>
      assert.deepEqual((await messages(b.page)).map((m) => [m.user, m.text, m.own]), [
        ['Priya', 'psst, Quinn', false],
      ]),
    );
    assert.equal(await b.page.isVisible(`${item} [data-testid=unread]`), false);
    await send(b.page, 'hi Priya');
    await eventually(async () =>
      assert.deepEqual((await messages(a.page)).map((m) => [m.user, m.text, m.own]), [
        ['Priya', 'psst, Quinn', true],
        ['Quinn', 'hi Priya', false],
      ]),
    );
    // The room conversations are untouched by private messages.
    assert.equal(await g.page.locator('#messages [data-testid=message]').count(), 0);
    await screenshot(a.page, 'private');

    // A private conversation with someone who went away: user_offline.
    await a.page.click('[data-testid=room-item][data-room="dm"] button');
    await a.page.click('#member-list [data-testid=member][data-user-id="Ghost"] button');
    await eventually(async () => assert.equal(await a.page.textContent('#chat-title'), 'Ghost'));
    await g.close();
    await b.page.click('[data-testid=room-item][data-room="dm"] button');
    await eventually(async () => assert.deepEqual(await memberNames(b.page), ['Quinn', 'Priya']));
    await send(a.page, 'are you there?');
    await a.page.waitForSelector('#toasts [data-testid=toast][data-code="user_offline"]');
    await eventually(async () => {
      const [m] = await messages(a.page);
      assert.equal(m.state, 'failed');
    });
    assert.match(await a.page.textContent('#messages [data-testid=message-error]'), /user_offline/);
    assertNoPageErrors(a, b);
  } finally {
    await Promise.all([a.close(), b.close(), g.close()]);
  }
});

test('token mode: the page asks for a token and shows auth refusals', async () => {
  const secret = 'browser-test-secret';
  const tokenServer = await startServer({ env: { PALAVER_TOKEN_SECRET: secret } });
  const p = await openPage(browser, tokenServer.url + '/');
  try {
    // The anonymous first connection is refused with auth_required: token field.
    await p.page.waitForSelector('#login-token-field:not([hidden])');
    assert.equal(await p.page.isVisible('#login-name'), false);
    assert.equal(await p.page.isVisible('#login-error'), false);

    const now = Math.floor(Date.now() / 1000);
    await p.page.fill('#login-token', sign({ sub: 'u-42', name: 'Tess', exp: now - 3600 }, secret));
    await p.page.fill('#login-room', 'secure');
    await p.page.click('#login-submit');
    await p.page.waitForSelector('#login-error[data-code="auth_expired"]');

    await p.page.fill('#login-token', sign({ sub: 'u-42', name: 'Tess', exp: now + 3600 }, secret));
    await p.page.click('#login-submit');
    await p.page.waitForSelector('#chat-title[data-room="secure"]');
    assert.equal(await p.page.textContent('#me-name'), 'Tess');
    await eventually(async () => assert.deepEqual(await memberNames(p.page), ['Tess']));
    assert.equal(await p.page.getAttribute('#member-list [data-testid=member]', 'data-user-id'), 'u-42');
    assertNoPageErrors(p);
  } finally {
    await p.close();
    await tokenServer.stop();
  }
});


test('token mode: token_expiring shows a notice; a fresh token pasted there keeps the connection', async () => {
  const secret = 'browser-renew-secret';
  // Leeway 0 and the default notice time (60 s): a token with less left is noticed at once.
  const tokenServer = await startServer({
    config: { identity: { mode: 'token', token_secret: secret, token_leeway_secs: 0 } },
  });
  const p = await openPage(browser, tokenServer.url + '/');
  try {
    await p.page.waitForSelector('#login-token-field:not([hidden])');
    // Long enough for the steps below on a loaded machine, short enough to wait out.
    const exp = Math.floor(Date.now() / 1000) + 15;
    await p.page.fill('#login-token', sign({ sub: 'u-7', name: 'Rena', exp }, secret));
    await p.page.fill('#login-room', 'renew');
    await p.page.click('#login-submit');
    await p.page.waitForSelector('#chat-title[data-room="renew"]');
    await p.page.waitForSelector('#banner[data-kind="token_expiring"]:not([hidden])');
    assert.match(await p.page.textContent('#banner-text'), /expires at/);
    assert.equal(await p.page.isVisible('#renew-form'), true);

    // A token of another user is refused, and the page says so.
    await p.page.fill('#renew-token', sign({ sub: 'someone-else', exp: exp + 3600 }, secret));
    await p.page.click('#renew-submit');
    await p.page.waitForSelector('#renew-error[data-code="already_logged_in"]:not([hidden])');

    await p.page.fill('#renew-token', sign({ sub: 'u-7', name: 'Rena', exp: exp + 3600 }, secret));
    await p.page.click('#renew-submit');
    await p.page.waitForSelector('#banner', { state: 'hidden' });
    assert.ok(Date.now() < exp * 1000, 'renewed before the old token ended');

    // Past the old token's end: not kicked, still connected, messages acknowledged.
    await eventually(() => assert.ok(Date.now() > exp * 1000 + 1500), { timeout: 30000, interval: 250 });
    assert.equal(await p.page.isVisible('#banner'), false, 'no kicked banner');
    assert.equal(await p.page.getAttribute('#conn-status', 'data-state'), 'connected');
    await send(p.page, 'still here');
    await eventually(async () => {
      const [m] = await messages(p.page);
      assert.equal(m.text, 'still here');
      assert.equal(m.state, null, 'acknowledged');
    });
    assertNoPageErrors(p);
  } finally {
    await p.close();
    await tokenServer.stop();
  }
});
test('server stop: shutdown notice, disconnected state, then reconnect and rejoin', async () => {
  const own = await startServer();
  let again = null;
  const a = await openChat(browser, own.url, 'Sam', 'ops');
  try {
    await send(a.page, 'before the stop');
    await eventually(async () => assert.equal((await messages(a.page))[0]?.state, null));

    await own.stop('SIGTERM');
    await a.page.waitForSelector('#banner[data-kind="shutdown"]:not([hidden])');
    assert.match(await a.page.textContent('#banner-text'), /server_stopping/);
    await eventually(async () =>
      assert.ok(
        ['disconnected', 'reconnecting'].includes(await a.page.getAttribute('#conn-status', 'data-state')),
      ),
    );
    assert.equal(await a.page.isDisabled('#message-input'), true);
    await screenshot(a.page, 'shutdown');
    // It keeps trying (our backoff, then socket.io-client's own reconnection).
    await a.page.waitForSelector('#conn-status[data-state="reconnecting"]', { timeout: 6000 });

    // A server comes back on the same port: the page reconnects, signs in again from
    // the handshake auth and rejoins its room.
    again = await startServerOnPort(new URL(own.url).port);
    await a.page.waitForSelector('#conn-status[data-state="connected"]', { timeout: 15000 });
    await a.page.waitForSelector('#banner', { state: 'hidden' });
    assert.equal(await a.page.textContent('#me-name'), 'Sam');

    const other = await connect(again.url, { auth: { name: 'Ops bot' } });
    try {
      const ack = await other.emitWithAck('join', { room: 'ops' });
      assert.ok(ack.members.some((m) => m.name === 'Sam'), 'the page rejoined "ops"');
      const heard = nextEvent(other, 'message', (m) => m.kind === 'chat');
      await send(a.page, 'after the restart');
      assert.equal((await heard).text, 'after the restart');
      await other.emitWithAck('message', { room: 'ops', text: 'welcome back' });
      await eventually(async () =>
        assert.deepEqual(
          (await messages(a.page)).map((m) => [m.user, m.text]),
          [
            ['Sam', 'before the stop'],
            ['Sam', 'after the restart'],
            ['Ops bot', 'welcome back'],
          ],
        ),
      );
      // The restarted server's history has a new epoch: the rejoin's `since` could not
      // be recovered, so a gap marker separates the old message from the new ones.
      assert.deepEqual(await timeline(a.page), [
        'Sam: before the stop',
        'gap(epoch)',
        'Sam: after the restart',
        'Ops bot: welcome back',
      ]);
      assert.match((await notices(a.page)).find((n) => n.kind === 'gap').text, /restarted/);
    } finally {
      other.close();
    }
    await screenshot(a.page, 'reconnected');
    assertNoPageErrors(a);
  } finally {
    await a.close();
    if (again) await again.stop();
    await own.stop();
  }
});

// A server for the recovery tests: limits that let a writer send 30 messages at once.
function recoveryServer(history = {}) {
  return startServer({
    config: {
      history: { storage: 'memory', ...history },
      limits: { messages_per_second: 1000, message_burst: 1000 },
    },
  });
}

test('missed messages: offline while 30 are sent, back online they appear once, in order', async () => {
  const own = await recoveryServer();
  const writer = await connect(own.url, { auth: { name: 'Writer' } });
  const p = await openChat(browser, own.url, 'Olive', 'recover');
  try {
    assert.equal((await writer.emitWithAck('join', { room: 'recover' })).ok, true);
    await sendAll(writer, 'recover', ['before 1', 'before 2', 'before 3']);
    await eventually(async () =>
      assert.deepEqual((await messages(p.page)).map((m) => m.text), ['before 1', 'before 2', 'before 3']),
    );
    assert.deepEqual(await offsets(p.page), [1, 2, 3]);
    const saved = await savedSession(p.page);
    assert.equal(saved.rooms[0].room, 'recover');
    assert.equal(saved.rooms[0].offset, 3);

    await goOffline(p, writer, 'recover', 'Olive');
    const missed = range(1, 30, (i) => `missed ${i}`);
    await sendAll(writer, 'recover', missed);
    // Nothing arrives while offline.
    assert.equal((await messages(p.page)).length, 3);

    const back = nextEvent(writer, 'presence', (e) => e.action === 'join' && e.user.id === 'Olive', 20000);
    await p.context.setOffline(false);
    await p.page.waitForSelector('#conn-status[data-state="connected"]', { timeout: 20000 });
    await back;
    await eventually(async () => assert.equal((await messages(p.page)).length, 33));
    // A live message after the recovery follows it, and nothing was shown twice.
    await sendAll(writer, 'recover', ['after']);
    const expected = ['before 1', 'before 2', 'before 3', ...missed, 'after'];
    await eventually(async () =>
      assert.deepEqual((await messages(p.page)).map((m) => m.text), expected),
    );
    assert.deepEqual(await offsets(p.page), range(1, 34, (i) => i));
    const ids = (await messages(p.page)).map((m) => m.id);
    assert.equal(new Set(ids).size, 34, 'each message once');
    assert.deepEqual((await notices(p.page)).filter((n) => n.kind === 'gap'), []);
    await eventually(async () => assert.equal((await savedSession(p.page)).rooms[0].offset, 34));
    await screenshot(p.page, 'recovered');
    assertNoPageErrors(p);
  } finally {
    writer.close();
    await p.close();
    await own.stop();
  }
});

test('missed messages that cannot be recovered: a gap marker, the newest page, then "load older"', async () => {
  // At most 10 missed messages are recovered; the newest page on join is 5.
  const own = await recoveryServer({ recovery_max: 10, on_join: 5 });
  const writer = await connect(own.url, { auth: { name: 'Writer' } });
  const p = await openChat(browser, own.url, 'Gus', 'gaps');
  try {
    assert.equal((await writer.emitWithAck('join', { room: 'gaps' })).ok, true);
    await sendAll(writer, 'gaps', ['before 1', 'before 2', 'before 3']);
    await eventually(async () => assert.equal((await messages(p.page)).length, 3));

    await goOffline(p, writer, 'gaps', 'Gus');
    const missed = range(1, 30, (i) => `missed ${i}`);
    await sendAll(writer, 'gaps', missed);
    await p.context.setOffline(false);
    await p.page.waitForSelector('#messages [data-testid=notice][data-kind="gap"]', { timeout: 20000 });
    await eventually(async () =>
      assert.deepEqual(await timeline(p.page), [
        'Writer: before 1',
        'Writer: before 2',
        'Writer: before 3',
        'gap(too_many)',
        ...range(26, 30, (i) => `Writer: missed ${i}`),
      ]),
    );
    assert.match(
      (await notices(p.page)).find((n) => n.kind === 'gap').text,
      /Too many messages were missed/,
    );
    await screenshot(p.page, 'gap-marker');

    // "Load older" fills the gap from below the marker; once it reaches the messages
    // shown before it, nothing is missing and the marker goes.
    await p.page.waitForSelector('#load-older:not([hidden])');
    await p.page.click('#load-older');
    await eventually(async () =>
      assert.deepEqual(await timeline(p.page), [
        'Writer: before 1',
        'Writer: before 2',
        'Writer: before 3',
        ...range(1, 30, (i) => `Writer: missed ${i}`),
      ]),
    );
    assert.deepEqual(await offsets(p.page), range(1, 33, (i) => i));

    // Live messages continue after the newest.
    await sendAll(writer, 'gaps', ['live']);
    await eventually(async () => assert.equal((await timeline(p.page)).at(-1), 'Writer: live'));
    assert.equal((await messages(p.page)).length, 34);
    await eventually(async () => assert.equal((await savedSession(p.page)).rooms[0].offset, 34));

    // Too many missed across a reload: the gap marker, then the newest page.
    const left = nextEvent(writer, 'presence', (e) => e.action === 'leave' && e.user.id === 'Gus');
    await p.page.goto('about:blank');
    await left;
    await sendAll(writer, 'gaps', range(1, 12, (i) => `later ${i}`));
    await p.page.goto(own.url + '/');
    await p.page.waitForSelector('#chat-title[data-room="gaps"]');
    await eventually(async () =>
      assert.deepEqual(await timeline(p.page), ['gap(too_many)', ...range(8, 12, (i) => `Writer: later ${i}`)]),
    );
    assert.equal(await p.page.isVisible('#load-older'), true);
    assertNoPageErrors(p);
  } finally {
    writer.close();
    await p.close();
    await own.stop();
  }
});

test('a reload rejoins from sessionStorage with `since` and marks where it left off', async () => {
  const own = await recoveryServer();
  const writer = await connect(own.url, { auth: { name: 'Writer' } });
  const p = await openChat(browser, own.url, 'Rita', 'reload');
  try {
    assert.equal((await writer.emitWithAck('join', { room: 'reload' })).ok, true);
    await sendAll(writer, 'reload', ['seen 1', 'seen 2']);
    await send(p.page, 'mine');
    await eventually(async () =>
      assert.deepEqual(await timeline(p.page), ['Writer: seen 1', 'Writer: seen 2', 'Rita: mine']),
    );
    await eventually(async () => assert.equal((await savedSession(p.page)).rooms[0].offset, 3));

    // The tab goes elsewhere (its session storage stays), messages come meanwhile.
    const left = nextEvent(writer, 'presence', (e) => e.action === 'leave' && e.user.id === 'Rita');
    await p.page.goto('about:blank');
    await left;
    await sendAll(writer, 'reload', ['new 1', 'new 2', 'new 3']);

    // Back: signed in as Rita again, in the room, the missed messages below the marker.
    const back = nextEvent(writer, 'presence', (e) => e.action === 'join' && e.user.id === 'Rita');
    await p.page.goto(own.url + '/');
    await p.page.waitForSelector('#chat-title[data-room="reload"]');
    await back;
    assert.equal(await p.page.textContent('#me-name'), 'Rita');
    await eventually(async () =>
      assert.deepEqual(await timeline(p.page), [
        'Writer: seen 1',
        'Writer: seen 2',
        'Rita: mine',
        'resume',
        'Writer: new 1',
        'Writer: new 2',
        'Writer: new 3',
      ]),
    );
    assert.deepEqual(await offsets(p.page), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(
      (await messages(p.page)).map((m) => m.own),
      [false, false, true, false, false, false],
    );
    await screenshot(p.page, 'reloaded');

    // A reload with nothing missed shows the conversation without the marker.
    await eventually(async () => assert.equal((await savedSession(p.page)).rooms[0].offset, 6));
    const left2 = nextEvent(writer, 'presence', (e) => e.action === 'leave' && e.user.id === 'Rita');
    await p.page.reload();
    await left2;
    await p.page.waitForSelector('#chat-title[data-room="reload"]');
    await eventually(async () =>
      assert.deepEqual(await timeline(p.page), [
        'Writer: seen 1',
        'Writer: seen 2',
        'Rita: mine',
        'Writer: new 1',
        'Writer: new 2',
        'Writer: new 3',
      ]),
    );
    // Signing out forgets the session: a reload shows the sign-in form.
    await p.page.click('#logout-btn');
    await p.page.reload();
    await p.page.waitForSelector('#login-view:not([hidden])');
    assert.equal(await savedSession(p.page), null);
    assertNoPageErrors(p);
  } finally {
    writer.close();
    await p.close();
    await own.stop();
  }
});

test('a live message past a gap: the page asks for the gap with `history {after}` and fills it in order', async () => {
  const own = await recoveryServer();
  const writer = await connect(own.url, { auth: { name: 'Writer' } });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // The page's WebSocket goes through the test, which loses the live `message` and
  // `private` frames of the texts in `drop` (a lossy link) and passes the rest on.
  let drop = null;
  const dropped = [];
  await context.routeWebSocket(/\/socket\.io\//, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((frame) => {
      const live = typeof frame === 'string' && /^42\["(message|private)"/.test(frame);
      if (drop && live && drop.some((text) => frame.includes(`"text":"${text}"`))) {
        dropped.push(frame);
        return;
      }
      ws.send(frame);
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  const errors = [];
  page.on('pageerror', (err) => errors.push(err));
  try {
    await page.goto(own.url + '/');
    await login(page, 'Lena', 'lossy');
    assert.equal((await writer.emitWithAck('join', { room: 'lossy' })).ok, true);
    await sendAll(writer, 'lossy', ['one', 'two']);
    await eventually(async () => assert.deepEqual((await messages(page)).map((m) => m.text), ['one', 'two']));

    drop = ['lost 1', 'lost 2', 'lost 3'];
    await sendAll(writer, 'lossy', drop);
    await eventually(() => assert.equal(dropped.length, 3));
    assert.deepEqual((await messages(page)).map((m) => m.text), ['one', 'two']);
    // The next message is offset 6 after 2: the page fetches 3 to 5.
    await sendAll(writer, 'lossy', ['after the loss']);
    await eventually(async () =>
      assert.deepEqual(await timeline(page), [
        'Writer: one',
        'Writer: two',
        'Writer: lost 1',
        'Writer: lost 2',
        'Writer: lost 3',
        'Writer: after the loss',
      ]),
    );
    assert.deepEqual(await offsets(page), [1, 2, 3, 4, 5, 6]);
    assert.equal(dropped.length, 3, 'the history answer carried them, not the live frames');
    await eventually(async () => assert.equal((await savedSession(page)).rooms[0].offset, 6));

    // The same for a private conversation: `history {with, after}`.
    const secret = async (text) => assert.equal((await writer.emitWithAck('private', { to: 'Lena', text })).ok, true);
    await secret('secret 1');
    const item = '#dm-list [data-testid=dm-item][data-user-id="Writer"]';
    await page.click(`${item} button`);
    await eventually(async () => assert.deepEqual(await timeline(page), ['Writer: secret 1']));
    drop = ['secret 2', 'secret 3'];
    await secret('secret 2');
    await secret('secret 3');
    await eventually(() => assert.equal(dropped.length, 5));
    await secret('secret 4');
    await eventually(async () =>
      assert.deepEqual(await timeline(page), ['Writer: secret 1', 'Writer: secret 2', 'Writer: secret 3', 'Writer: secret 4']),
    );
    assert.deepEqual(await offsets(page), [1, 2, 3, 4]);
    assert.equal(dropped.length, 5);
    assert.deepEqual(errors.map(String), []);
  } finally {
    writer.close();
    await context.close();
    await own.stop();
  }
});

test('a private conversation: what came while offline, and across a reload', async () => {
  const own = await recoveryServer();
  const writer = await connect(own.url, { auth: { name: 'Wes' } });
  const p = await openChat(browser, own.url, 'Pia', 'pm');
  const pm = async (text) => assert.equal((await writer.emitWithAck('private', { to: 'Pia', text })).ok, true);
  try {
    assert.equal((await writer.emitWithAck('join', { room: 'pm' })).ok, true);
    await pm('hello 1');
    const item = '#dm-list [data-testid=dm-item][data-user-id="Wes"]';
    await p.page.click(`${item} button`);
    await eventually(async () => assert.deepEqual(await timeline(p.page), ['Wes: hello 1']));

    // Offline: the server keeps what Wes sends for Pia's next connection, and the
    // page asks for what follows its position too; each shows once.
    await goOffline(p, writer, 'pm', 'Pia');
    const away = range(1, 5, (i) => `while away ${i}`);
    for (const text of away) await pm(text);
    await p.context.setOffline(false);
    await p.page.waitForSelector('#conn-status[data-state="connected"]', { timeout: 20000 });
    await send(p.page, 'back');
    const afterOffline = ['Wes: hello 1', ...away.map((t) => `Wes: ${t}`), 'Pia: back'];
    await eventually(async () => {
      assert.deepEqual(await timeline(p.page), afterOffline);
      // "back" is acknowledged: it has its place.
      assert.deepEqual(await offsets(p.page), [1, 2, 3, 4, 5, 6, 7]);
    });
    await eventually(async () => {
      const [dm] = (await savedSession(p.page)).dms;
      assert.deepEqual([dm.id, dm.name, dm.offset, typeof dm.epoch], ['Wes', 'Wes', 7, 'string']);
    });

    // A reload while Wes writes: the conversation is open again, with what came since
    // below the marker and what was there above it.
    const left = nextEvent(writer, 'presence', (e) => e.action === 'leave' && e.user.id === 'Pia');
    await p.page.goto('about:blank');
    await left;
    await pm('meanwhile 1');
    await pm('meanwhile 2');
    await p.page.goto(own.url + '/');
    await p.page.waitForSelector('#chat-view:not([hidden])');
    await eventually(async () => {
      assert.equal(await p.page.textContent('#chat-title'), 'Wes');
      assert.deepEqual(await timeline(p.page), [...afterOffline, 'resume', 'Wes: meanwhile 1', 'Wes: meanwhile 2']);
    });
    assert.deepEqual(await offsets(p.page), range(1, 9, (i) => i));
    // The room was rejoined too.
    await p.page.click('[data-testid=room-item][data-room="pm"] button');
    await eventually(async () => assert.deepEqual(await memberNames(p.page), ['Pia', 'Wes']));
    assertNoPageErrors(p);
  } finally {
    writer.close();
    await p.close();
    await own.stop();
  }
});

test('a cluster\'s Redis outage: messages shown without an offset keep the position and are not shown again', async (t) => {
  const c = await startCluster(t, { nodes: 1, name: 'pageoutage' });
  const url = c.nodes[0].url;
  const writer = await connect(url, { auth: { name: 'Writer' } });
  t.after(() => writer.close());
  const p = await openChat(browser, url, 'Una', 'outage');
  t.after(() => p.close());
  assert.equal((await writer.emitWithAck('join', { room: 'outage' })).ok, true);
  await sendAll(writer, 'outage', ['before 1', 'before 2']);
  await eventually(async () => assert.deepEqual(await offsets(p.page), [1, 2]));

  await c.redis.stop();
  await eventually(async () => assert.equal((await c.health(0)).cluster.redis_connected, false));
  // Journaled by the node and delivered at once, without an offset yet.
  await sendAll(writer, 'outage', ['during 1', 'during 2', 'during 3']);
  await eventually(async () =>
    assert.deepEqual((await messages(p.page)).map((m) => m.text), ['before 1', 'before 2', 'during 1', 'during 2', 'during 3']),
  );
  assert.deepEqual(await offsets(p.page), [1, 2, null, null, null]);
  assert.equal((await savedSession(p.page)).rooms[0].offset, 2, 'the position stays');

  await c.redis.restart();
  await eventually(async () => {
    const { cluster } = await c.health(0);
    assert.equal(cluster.redis_connected, true);
    assert.equal(cluster.journal_pending, 0);
  }, { timeout: 15000 });
  // Offset 6 after 2: the page asks for 3 to 5, which are the messages it showed
  // during the outage (Redis ids now): they take their offsets, shown once.
  await sendAll(writer, 'outage', ['after 1']);
  await eventually(async () => {
    assert.deepEqual(await timeline(p.page), [
      'Writer: before 1',
      'Writer: before 2',
      'Writer: during 1',
      'Writer: during 2',
      'Writer: during 3',
      'Writer: after 1',
    ]);
    assert.deepEqual(await offsets(p.page), [1, 2, 3, 4, 5, 6]);
  });
  await eventually(async () => assert.equal((await savedSession(p.page)).rooms[0].offset, 6));
  assertNoPageErrors(p);
});
