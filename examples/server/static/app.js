/*
 * Palaver web client (plain JavaScript, no build step, no framework).
 *
 * Talks the protocol of docs/PROTOCOL.md through the socket.io-client bundle the
 * server serves at /socket.io/socket.io.js. Every piece of text that comes from a user
 * or from the server (names, room names, message text, error messages) is put into the
 * page with textContent / createTextNode, never as HTML.
 *
 * Stable hooks (tests/browser/page.test.js relies on them; keep them stable):
 *
 *   #conn-status[data-state]     connecting | connected | reconnecting | disconnected
 *   #conn-label                  human text of the connection state
 *   #banner[data-kind]           shutdown | kicked | token_expiring | info; #banner-text,
 *                                #banner-action; token_expiring: #renew-form, #renew-token,
 *                                #renew-submit, #renew-error[data-code]
 *   #toasts > [data-testid=toast][data-code]   errors and notices (auto-dismissed)
 *
 *   login:  #login-view, #login-form, #login-name, #login-token (token mode only,
 *           #login-token-field), #login-room, #login-submit,
 *           #login-error[data-code] (refusals such as invalid_name, auth_expired)
 *   header: #me-name, #logout-btn
 *
 *   chat:   #chat-view
 *           #join-form, #room-input, #join-btn, #join-error[data-code]
 *           #joined-list, #room-list: [data-testid=room-item][data-room][data-joined]
 *              containing [data-testid=room-name], [data-testid=room-count],
 *              [data-testid=unread]
 *           #dm-list: [data-testid=dm-item][data-user-id] (with [data-testid=unread])
 *           #chat-title, #chat-subtitle, #leave-btn, #close-dm-btn
 *           #messages: the viewport; #load-older; the open conversation's list is
 *              ol.msg-list[data-conv] ("room:<name>" or "dm:<user id>") with
 *              [data-testid=message][data-id][data-user-id][data-kind=chat|private]
 *                [data-offset][data-epoch] (its place in the history, when it has one)
 *                (.own for your own, [data-state=pending|failed] until acknowledged)
 *                containing [data-testid=message-user], [data-testid=message-time],
 *                [data-testid=message-text];
 *              [data-testid=notice][data-kind=join|leave|error|info] for notices;
 *              [data-testid=notice][data-kind=gap][data-reason] where missed messages
 *                could not be recovered (reason: epoch, trimmed, too_many, unavailable);
 *              [data-testid=notice][data-kind=resume] after a reload, above what came
 *                since the tab left
 *   sessionStorage "palaver.session": {v, mode, user, rooms: [{room, offset?, epoch?}],
 *           dms: [{id, name, offset?, epoch?}], current}; a reload signs in again
 *           (open mode) and rejoins with `since`
 *
 * Missed messages (docs/PROTOCOL.md): every room and private conversation keeps the
 * {offset, epoch} up to which it shows everything. A reconnect rejoins each room with
 * `join {room, since}` and asks each private conversation with `history {with, after}`;
 * a live message whose offset skips asks `history {…, after}` for the gap. What comes
 * back is shown once (same id or same offset: skipped), in offset order; what cannot
 * be recovered leaves a gap marker above the newest page.
 *           #typing-indicator           "Ada is typing…"
 *           #composer, #message-input, #send-btn
 *           #member-count, #member-list: [data-testid=member][data-user-id] (.is-me)
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ helpers

  const $ = (id) => document.getElementById(id);

  /** An element with a class and optional text (always set as textContent). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** Human explanations of the protocol's error codes (docs/PROTOCOL.md). */
  const CODE_TEXT = {
    invalid_payload: 'The server did not understand the request.',
    invalid_room: 'Room names are 1–64 letters, digits, spaces and _ - . # : +',
    invalid_name: "Names are 1–32 letters, digits, spaces and _ - . ' @ (\"system\" is reserved).",
    empty_text: 'The message is empty.',
    invalid_text: 'Messages may not contain control or text-direction override characters.',
    text_too_long: 'The message is too long.',
    not_logged_in: 'You are not signed in.',
    already_logged_in: 'You are already signed in.',
    not_member: 'You are not a member of that room.',
    too_many_rooms: 'You are in too many rooms; leave one first.',
    name_taken: 'That name and its numbered forms are taken; choose another name.',
    rate_limited: 'Slow down a little.',
    busy: 'Too many requests in progress.',
    user_offline: 'That user is not online.',
    invalid_recipient: 'You cannot send a private message to yourself.',
    invalid_cursor: 'Could not load older messages.',
    storage_failed: 'The server could not store the message.',
    storage_busy: 'The server is behind storing messages; this one was not sent. Try again shortly.',
    unknown_event: 'The server does not know that request.',
    host_timeout: 'The server did not answer in time.',
    shutting_down: 'The server is stopping.',
    unavailable: 'The chat backend is unavailable.',
    auth_required: 'This server requires an access token.',
    auth_invalid: 'The access token is not valid.',
    auth_expired: 'The access token has expired.',
    auth_not_yet_valid: 'The access token is not valid yet.',
    too_many_connections: 'Too many connections from your address.',
    internal: 'The server had an internal error.',
    timeout: 'The server did not answer.',
    offline: 'You are not connected.',
  };

  const LOGIN_REFUSALS = new Set(['invalid_name', 'auth_required', 'auth_invalid', 'auth_expired', 'auth_not_yet_valid']);
  const TYPING_SEND_INTERVAL_MS = 2000;
  const TYPING_SHOW_MS = 3000;
  const HISTORY_PAGE = 50;
  const REQUEST_TIMEOUT_MS = 10000;
  // A live message past the next offset waits this long for the ones before it
  // (already on their way) before the gap is asked for with `history {after}`.
  const GAP_FILL_DELAY_MS = 250;
  const SESSION_KEY = 'palaver.session';
  // A history that cannot be read now (`unavailable`) is asked again after 2 s, 4 s …
  const RETRY_FIRST_MS = 2000;
  const RETRY_MAX_MS = 30000;

  /** Gap markers: why missed messages could not be recovered (`reason`). */
  const GAP_TEXT = {
    epoch: 'The {what}’s history was reset (for example, the server restarted); earlier messages could not be recovered.',
    trimmed: 'Some messages could not be recovered: the history no longer reaches back that far.',
    too_many: 'Too many messages were missed to recover them all; the newest are below.',
    unavailable: 'Missed messages cannot be loaded right now (the message store is unreachable); trying again…',
    unknown: 'Some messages could not be recovered.',
  };
  const RESUME_TEXT = 'New since you left';

  function normalizeName(s) {
    return String(s || '').trim().replace(/\s+/g, ' ');
  }

  function formatTime(ts) {
    const d = new Date(typeof ts === 'number' ? ts : Date.now());
    const now = new Date();
    const time = d.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
    if (d.toDateString() === now.toDateString()) return time;
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + time;
  }

  function hue(s) {
    let h = 0;
    for (const ch of String(s)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return h % 360;
  }

  function avatar(name, id) {
    const a = el('span', 'avatar', (Array.from(normalizeName(name))[0] || '?').toUpperCase());
    a.style.setProperty('--hue', String(hue(id || name)));
    a.setAttribute('aria-hidden', 'true');
    return a;
  }

  // ------------------------------------------------------------------ state

  const state = {
    mode: null, // 'open' | 'token', once the server told us
    me: null, // {id, name}
    requestedName: null,
    pendingRoom: null, // room to join right after signing in
    loggingIn: false,
    everConnected: false,
    kicked: false,
    rooms: new Map(), // joined rooms: name → room conversation
    dms: new Map(), // private conversations: peer id → dm conversation
    publicRooms: [], // last `rooms` list [{room, count}]
    counts: new Map(), // room → member count (rooms list, join acks, presence)
    joining: new Set(),
    current: null, // the open conversation
    typingRoom: null, // room we told "typing: true"
    lastTypingSent: 0,
    retryTimer: null,
    retryTick: null,
    retryAttempt: 0,
    restore: null, // the tab's saved session, to rejoin after a reload
    restoring: false,
  };

  const socket = io({ autoConnect: false, auth: {} });

  // ------------------------------------------------------------------ UI: connection

  const CONN_TEXT = {
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    disconnected: 'Disconnected',
  };

  function setConn(st, label) {
    const box = $('conn-status');
    box.dataset.state = st;
    $('conn-label').textContent = label || CONN_TEXT[st];
    updateComposer();
  }

  function showBanner(kind, text, actionLabel) {
    const b = $('banner');
    b.dataset.kind = kind;
    $('banner-text').textContent = text;
    const action = $('banner-action');
    action.hidden = !actionLabel;
    if (actionLabel) action.textContent = actionLabel;
    $('renew-form').hidden = kind !== 'token_expiring';
    b.hidden = false;
  }

  function hideBanner(kind) {
    const b = $('banner');
    if (!kind || b.dataset.kind === kind) b.hidden = true;
  }

  function toast(code, message, extra) {
    const box = $('toasts');
    const t = el('div', 'toast');
    t.setAttribute('data-testid', 'toast');
    t.dataset.code = code || 'info';
    t.setAttribute('role', code ? 'alert' : 'status');
    if (code) t.appendChild(el('code', 'toast-code', code));
    t.appendChild(el('span', 'toast-text', message || CODE_TEXT[code] || ''));
    if (extra) t.appendChild(el('span', 'toast-extra', extra));
    t.addEventListener('click', () => t.remove());
    box.appendChild(t);
    while (box.children.length > 4) box.firstElementChild.remove();
    setTimeout(() => t.remove(), code ? 7000 : 4000);
  }

  function toastRefusal(res, what) {
    let extra = what ? `(${what})` : '';
    if (res && res.code === 'rate_limited' && res.retry_after_ms) {
      extra = `retry in ${Math.ceil(res.retry_after_ms / 100) / 10} s`;
    }
    toast(res && res.code, (res && res.message) || CODE_TEXT[res && res.code], extra);
  }

  // ------------------------------------------------------------------ UI: login

  function showLogin() {
    $('login-view').hidden = false;
    $('chat-view').hidden = true;
    $('me-box').hidden = true;
    updateLoginMode();
    updateLoginRooms();
    const submit = $('login-submit');
    submit.disabled = false;
    submit.textContent = 'Sign in';
  }

  function showChat() {
    $('login-view').hidden = true;
    $('chat-view').hidden = false;
    $('me-box').hidden = false;
    renderAll();
  }

  function updateLoginMode() {
    const token = state.mode === 'token';
    $('login-token-field').hidden = !token;
    $('login-name-field').hidden = token;
    $('login-hint').textContent = token
      ? 'This server requires an access token.'
      : 'Pick a display name and a room to start chatting.';
  }

  function updateLoginRooms() {
    const p = $('login-rooms');
    const rooms = state.publicRooms;
    if (!rooms.length) {
      p.textContent = state.mode === 'token' ? '' : 'No one is chatting right now. Start a room!';
      return;
    }
    const people = rooms.reduce((n, r) => n + (r.count || 0), 0);
    p.textContent = `${rooms.length} active room${rooms.length === 1 ? '' : 's'}, ` +
      `${people} member${people === 1 ? '' : 's'}: ` +
      rooms.slice(0, 5).map((r) => `${r.room} (${r.count})`).join(', ') +
      (rooms.length > 5 ? ', …' : '');
  }

  function showLoginError(code, attempted) {
    const p = $('login-error');
    p.textContent = '';
    p.dataset.code = code;
    p.appendChild(el('code', 'error-code', code));
    let text = ' ' + (CODE_TEXT[code] || 'The server refused the connection.');
    if (attempted) text = ` The name “${attempted}” was refused. ` + (CODE_TEXT[code] || '');
    p.appendChild(document.createTextNode(text));
    p.hidden = false;
  }

  function clearLoginError() {
    const p = $('login-error');
    p.hidden = true;
    p.textContent = '';
    delete p.dataset.code;
  }

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    clearLoginError();
    const room = normalizeName($('login-room').value);
    if (state.mode === 'token') {
      const token = $('login-token').value.trim();
      if (!token) return showLoginError('auth_required');
      socket.auth = { token };
      state.requestedName = null;
    } else {
      const name = $('login-name').value;
      if (!normalizeName(name)) {
        $('login-name').focus();
        return showLoginError('invalid_name');
      }
      socket.auth = { name };
      state.requestedName = name;
    }
    state.pendingRoom = room || null;
    state.loggingIn = true;
    const submit = $('login-submit');
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    // A new handshake carries the credentials, so every automatic reconnect signs in again.
    reconnectNow();
  });

  /** Closes the current connection (if any) and opens a new one with socket.auth. */
  function reconnectNow() {
    clearRetry();
    if (socket.connected || socket.active) socket.disconnect();
    setConn('connecting');
    socket.connect();
  }

  $('logout-btn').addEventListener('click', () => {
    stopTyping();
    socket.auth = {};
    state.pendingRoom = null;
    state.restore = null;
    clearSession();
    if (socket.connected) {
      socket.emit('logout', () => {}); // the session event (user: null) follows
    }
    resetChat();
    state.me = null;
    showLogin();
    if (!socket.connected) reconnectNow();
  });

  // ------------------------------------------------------------------ conversations

  /**
   * A conversation (room or private) and what the page knows of its history:
   *   ids      message ids shown (dedupe),
   *   epoch    the history epoch of the messages shown (docs/PROTOCOL.md, recovery),
   *   offsets  offsets shown in that epoch (dedupe),
   *   pos      the offset up to which everything is shown (null: not known yet),
   *   maxOffset the newest offset shown or announced.
   * A reconnect asks for what follows `pos`; a live message past pos + 1 is a gap.
   */
  function makeConversation(kind, key) {
    const list = el('ol', 'msg-list');
    list.dataset.conv = `${kind}:${key}`;
    return {
      kind, key, list, ids: new Set(), unread: 0,
      epoch: null, offsets: new Set(), pos: null, maxOffset: 0,
      syncing: null, gapTimer: null, retryTimer: null, retryDelay: 0, restored: false,
      hasMore: false, loadingOlder: false,
    };
  }

  function ensureRoom(name) {
    let room = state.rooms.get(name);
    if (!room) {
      room = makeConversation('room', name);
      room.name = name;
      room.members = new Map();
      room.count = 0;
      room.typing = new Map(); // user id → {name, timer}
      state.rooms.set(name, room);
    }
    return room;
  }

  function ensureDm(peer) {
    let dm = state.dms.get(peer.id);
    if (!dm) {
      dm = makeConversation('dm', peer.id);
      dm.peer = { id: peer.id, name: peer.name };
      state.dms.set(peer.id, dm);
    } else if (peer.name) {
      dm.peer.name = peer.name;
    }
    return dm;
  }

  function openConversation(conv) {
    if (state.current !== conv) stopTyping();
    state.current = conv;
    if (conv) conv.unread = 0;
    renderAll();
    const input = $('message-input');
    if (conv && !input.disabled) input.focus();
    scrollToBottom();
    saveSession();
  }

  function forget(conv) {
    clearTimeout(conv.gapTimer);
    clearTimeout(conv.retryTimer);
    conv.gapTimer = null;
    conv.retryTimer = null;
    conv.syncing = null;
  }

  function resetChat() {
    for (const room of state.rooms.values()) {
      clearAllTyping(room);
      forget(room);
    }
    for (const dm of state.dms.values()) forget(dm);
    state.rooms.clear();
    state.dms.clear();
    state.current = null;
    state.typingRoom = null;
    renderAll();
  }

  /** True while `conv` is still one of the page's conversations. */
  function isLive(conv) {
    return conv.kind === 'room' ? state.rooms.get(conv.name) === conv : state.dms.get(conv.key) === conv;
  }

  // ------------------------------------------------------------------ messages

  function isNearBottom() {
    const vp = $('messages');
    return vp.scrollHeight - vp.scrollTop - vp.clientHeight < 60;
  }

  function scrollToBottom() {
    const vp = $('messages');
    vp.scrollTop = vp.scrollHeight;
  }

  /**
   * A message as the page shows it, from a room message (`message` event, ack or
   * history) or a private one (`private` event, ack or history).
   */
  function normalize(m) {
    const from = m.from && typeof m.from === 'object' ? m.from : null;
    const hasOffset = Number.isInteger(m.offset) && m.offset >= 1 && typeof m.epoch === 'string';
    return {
      id: m.id === null || m.id === undefined ? null : String(m.id),
      user: from ? from.name : m.user,
      user_id: from ? from.id : m.user_id,
      text: m.text,
      ts: m.ts,
      kind: m.kind || 'chat',
      offset: hasOffset ? m.offset : null,
      epoch: hasOffset ? m.epoch : null,
    };
  }

  /** A chat or private message item. `m` = {id, user, user_id, text, ts, offset?, epoch?}. */
  function messageItem(m, kind, own) {
    const li = el('li', 'msg' + (own ? ' own' : ''));
    li.setAttribute('data-testid', 'message');
    li.dataset.kind = kind;
    setMessageKeys(li, m);
    if (typeof m.ts === 'number') li.dataset.ts = String(m.ts);
    if (m.user_id !== null && m.user_id !== undefined) li.dataset.userId = String(m.user_id);
    li.appendChild(avatar(m.user, m.user_id));
    const body = el('div', 'msg-body');
    const head = el('div', 'msg-head');
    const user = el('span', 'msg-user', m.user);
    user.setAttribute('data-testid', 'message-user');
    head.appendChild(user);
    if (own) head.appendChild(el('span', 'msg-you', 'you'));
    const time = el('time', 'msg-time', formatTime(m.ts));
    time.setAttribute('data-testid', 'message-time');
    if (typeof m.ts === 'number') {
      time.dateTime = new Date(m.ts).toISOString();
      time.title = new Date(m.ts).toLocaleString();
    }
    head.appendChild(time);
    body.appendChild(head);
    const text = el('div', 'msg-text', m.text);
    text.setAttribute('data-testid', 'message-text');
    body.appendChild(text);
    li.appendChild(body);
    return li;
  }

  function setMessageKeys(li, m) {
    if (m.id !== null && m.id !== undefined) li.dataset.id = String(m.id);
    if (m.offset !== null && m.offset !== undefined) {
      li.dataset.offset = String(m.offset);
      li.dataset.epoch = m.epoch;
    }
  }

  /** A join/leave notice, a gap marker or a local notice. */
  function noticeItem(kind, text, ts) {
    const li = el('li', `notice notice-${kind}`);
    li.setAttribute('data-testid', 'notice');
    li.dataset.kind = kind;
    li.appendChild(el('span', 'notice-text', text));
    li.appendChild(el('time', 'notice-time', formatTime(ts)));
    return li;
  }

  /**
   * Inserts a message with an offset where its offset belongs, among the messages of
   * its epoch after the last gap marker; messages without one (a cluster's Redis
   * outage, our own still pending) keep their place.
   */
  function placeByOffset(list, li, offset, epoch) {
    let before = null;
    for (let n = list.lastElementChild; n; n = n.previousElementSibling) {
      if (n.dataset.barrier) break;
      if (n.dataset.offset === undefined || n.dataset.epoch !== epoch) continue;
      if (Number(n.dataset.offset) > offset) before = n;
      else break;
    }
    list.insertBefore(li, before);
  }

  /** Records that offset `o` of the conversation's epoch is shown; moves `pos` on. */
  function markOffset(conv, o) {
    conv.offsets.add(o);
    if (o > conv.maxOffset) conv.maxOffset = o;
    if (conv.pos === null) conv.pos = o;
    while (conv.offsets.has(conv.pos + 1)) conv.pos += 1;
  }

  /** The position a reconnect or reload asks from: {offset, epoch}, or null. */
  function position(conv) {
    return conv.epoch !== null && conv.pos !== null ? { offset: conv.pos, epoch: conv.epoch } : null;
  }

  /** A pending message of ours with this text: the server stored it before our ack came. */
  function pendingOwn(conv, m) {
    if (!state.me || m.user_id !== state.me.id) return null;
    for (const li of conv.list.querySelectorAll('li[data-state="pending"]')) {
      if (li.dataset.id === undefined && li.querySelector('[data-testid=message-text]').textContent === m.text) return li;
    }
    return null;
  }

  /**
   * A message shown without an offset (delivered during a cluster's Redis outage) that
   * `m` is: once the node wrote it to Redis it comes back with an offset and a Redis
   * id, and the same sender, time and text (docs/PROTOCOL.md).
   */
  function unplacedTwin(conv, m) {
    if (m.offset === null) return null;
    for (const li of conv.list.querySelectorAll('li[data-testid=message][data-id]:not([data-offset])')) {
      if (li.dataset.ts === String(m.ts) && li.dataset.userId === String(m.user_id)
          && li.querySelector('[data-testid=message-text]').textContent === m.text) return li;
    }
    return null;
  }

  /**
   * Shows a message (live, acknowledged or from history) once: a message already shown
   * (same id, or same offset in the same epoch, or shown during an outage) is skipped,
   * or takes its place by offset. Returns true when shown.
   */
  function addMessage(conv, m, opts = {}) {
    const follow = opts.follow || isNearBottom();
    if (m.kind === 'join' || m.kind === 'leave') {
      conv.list.appendChild(noticeItem(m.kind, m.text, m.ts));
      if (state.current === conv && follow) scrollToBottom();
      return true;
    }
    if (m.offset !== null && conv.epoch !== null && m.epoch !== conv.epoch) {
      // The history was reset while we were connected: what came before is gone.
      resetEpoch(conv, m.epoch, 'epoch');
    }
    if (m.offset !== null && conv.epoch === null) conv.epoch = m.epoch;
    if (m.id !== null && conv.ids.has(m.id)) {
      // Shown before without an offset (a cluster's Redis outage): it has one now.
      if (m.offset !== null && !conv.offsets.has(m.offset)) {
        const li = conv.list.querySelector(`li[data-id="${CSS.escape(m.id)}"]`);
        if (li && li.dataset.offset === undefined) {
          setMessageKeys(li, m);
          markOffset(conv, m.offset);
        }
      }
      return false;
    }
    if (m.offset !== null && conv.offsets.has(m.offset)) return false;
    const twin = unplacedTwin(conv, m);
    if (twin) {
      setMessageKeys(twin, m);
      conv.ids.add(m.id);
      twin.remove();
      placeByOffset(conv.list, twin, m.offset, m.epoch);
      markOffset(conv, m.offset);
      return false;
    }
    let li = opts.adopt || pendingOwn(conv, m);
    if (li) {
      delete li.dataset.state;
      setMessageKeys(li, m);
      li.remove();
    } else {
      const own = !!(state.me && m.user_id === state.me.id);
      li = messageItem(m, conv.kind === 'room' ? 'chat' : 'private', own);
    }
    if (m.id !== null) conv.ids.add(m.id);
    if (m.offset !== null) {
      placeByOffset(conv.list, li, m.offset, m.epoch);
      markOffset(conv, m.offset);
    } else {
      conv.list.appendChild(li);
    }
    if (state.current === conv && follow) scrollToBottom();
    return true;
  }

  function addLocalNotice(conv, kind, text) {
    const follow = isNearBottom();
    conv.list.appendChild(noticeItem(kind, text, Date.now()));
    if (state.current === conv && follow) scrollToBottom();
  }

  /**
   * A visible gap: the messages between what is shown and what follows could not be
   * recovered. Messages already shown past `pos` move below it, and later messages are
   * placed below it.
   */
  function addGapMarker(conv, reason) {
    const follow = isNearBottom();
    const li = noticeItem('gap', gapText(conv, reason), Date.now());
    li.dataset.reason = reason || 'unknown';
    li.dataset.barrier = 'true';
    const after = [];
    if (conv.epoch !== null) {
      for (const n of conv.list.querySelectorAll('li[data-offset]')) {
        if (n.dataset.epoch === conv.epoch && Number(n.dataset.offset) > (conv.pos || 0)) after.push(n);
      }
    }
    conv.list.appendChild(li);
    for (const n of after) conv.list.appendChild(n);
    if (state.current === conv && follow) scrollToBottom();
  }

  function gapText(conv, reason) {
    const what = conv.kind === 'room' ? 'room' : 'conversation';
    return (GAP_TEXT[reason] || GAP_TEXT.unknown).replace('{what}', what);
  }

  /**
   * The history has a new epoch (reset, lost, or a server restarted with memory
   * history): the messages shown stay, above a gap marker, out of the new numbering.
   */
  function resetEpoch(conv, epoch, reason) {
    const hadAny = conv.offsets.size > 0 || conv.ids.size > 0 || (conv.pos || 0) > 0;
    for (const li of conv.list.querySelectorAll('li[data-id], li[data-offset]')) {
      if (li.dataset.id !== undefined) li.dataset.oldId = li.dataset.id;
      if (li.dataset.offset !== undefined) li.dataset.oldOffset = li.dataset.offset;
      delete li.dataset.id;
      delete li.dataset.offset;
      delete li.dataset.epoch;
    }
    conv.ids.clear();
    conv.offsets.clear();
    conv.epoch = epoch;
    conv.pos = 0;
    conv.maxOffset = 0;
    if (hadAny) addGapMarker(conv, reason);
  }

  /**
   * Applies an answer that could not recover (`recovered: false`): a gap marker, then
   * the newest page; what is missing is given up on.
   */
  function applyUnrecovered(conv, res, messages) {
    if (res.reason === 'unavailable') {
      // Nothing is lost yet: the store cannot be read now. Say so, keep the position,
      // and ask again with `history {after}` in a while.
      markUnavailable(conv);
      return 0;
    }
    const epoch = typeof res.epoch === 'string' ? res.epoch : null; // null: an empty history
    if (res.reason === 'epoch' || (epoch !== null && conv.epoch !== null && epoch !== conv.epoch)) {
      // Unless a live message of the new epoch came first and showed the reset already.
      if (epoch === null || epoch !== conv.epoch) resetEpoch(conv, epoch, 'epoch');
    } else {
      if (typeof res.epoch === 'string') conv.epoch = res.epoch;
      addGapMarker(conv, res.reason);
    }
    let added = 0;
    for (const m of messages) if (addMessage(conv, normalize(m))) added += 1;
    const newest = Number.isInteger(res.offset) && res.epoch === conv.epoch ? res.offset : 0;
    conv.pos = Math.max(conv.pos || 0, newest, conv.maxOffset);
    conv.maxOffset = Math.max(conv.maxOffset, conv.pos);
    conv.hasMore = !!res.has_more;
    return added;
  }

  function markUnavailable(conv) {
    if (!conv.list.querySelector('li[data-reason="unavailable"]')) {
      const follow = isNearBottom();
      const li = noticeItem('gap', gapText(conv, 'unavailable'), Date.now());
      li.dataset.reason = 'unavailable';
      conv.list.appendChild(li);
      if (state.current === conv && follow) scrollToBottom();
    }
    clearTimeout(conv.retryTimer);
    conv.retryDelay = Math.min(RETRY_MAX_MS, (conv.retryDelay || RETRY_FIRST_MS / 2) * 2);
    conv.retryTimer = setTimeout(() => {
      conv.retryTimer = null;
      fillGap(conv, { force: true });
    }, conv.retryDelay);
  }

  /** The history could be read again: the "unavailable" notice has had its answer. */
  function clearUnavailable(conv) {
    for (const li of conv.list.querySelectorAll('li[data-reason="unavailable"]')) li.remove();
    clearTimeout(conv.retryTimer);
    conv.retryTimer = null;
    conv.retryDelay = 0;
  }

  /** The history request for a conversation: `{room}` or `{with}`. */
  function historyTarget(conv) {
    return conv.kind === 'room' ? { room: conv.name } : { with: conv.peer.id };
  }

  function countUnread(conv, n) {
    if (n > 0 && state.current !== conv) conv.unread += n;
  }

  /** A live message past pos + 1: ask for the gap shortly (it may still arrive). */
  function scheduleGapFill(conv) {
    if (conv.gapTimer || conv.syncing || conv.pos === null || conv.maxOffset <= conv.pos) return;
    conv.gapTimer = setTimeout(() => {
      conv.gapTimer = null;
      fillGap(conv);
    }, GAP_FILL_DELAY_MS);
  }

  /**
   * Fetches the messages after `pos` with `history {…, after}`, page by page while
   * `has_more`. `force` asks even when no gap is known (a private conversation after
   * a reconnect: nothing tells what it missed).
   */
  async function fillGap(conv, { force = false } = {}) {
    if (conv.syncing || !socket.connected || !isLive(conv)) return;
    if (!force && (conv.pos === null || conv.maxOffset <= conv.pos)) return;
    const after = position(conv);
    if (!after) return;
    const token = {};
    conv.syncing = token;
    let added = 0;
    try {
      for (let page = 0; page < 1000; page++) {
        const res = await request('history', {
          ...historyTarget(conv),
          after: position(conv),
          limit: HISTORY_PAGE,
        });
        if (conv.syncing !== token || !isLive(conv)) return;
        if (!res.ok) {
          if (res.code === 'unavailable') markUnavailable(conv);
          else if (res.code !== 'offline' && res.code !== 'timeout') toastRefusal(res, 'history');
          break;
        }
        const msgs = Array.isArray(res.messages) ? res.messages : [];
        if (res.recovered === false) {
          added += applyUnrecovered(conv, res, msgs);
          break;
        }
        clearUnavailable(conv);
        const before = conv.pos;
        for (const m of msgs) if (addMessage(conv, normalize(m))) added += 1;
        if (conv.pos === before) {
          // No progress: a gap the server cannot fill is not asked for again.
          if (conv.maxOffset > conv.pos) conv.pos = conv.maxOffset;
          break;
        }
        if (!res.has_more && conv.maxOffset <= conv.pos) break;
      }
    } finally {
      if (conv.syncing === token) conv.syncing = null;
    }
    if (!isLive(conv)) return;
    countUnread(conv, added);
    renderAfterMessages(conv);
    saveSession();
    scheduleGapFill(conv);
  }

  function renderAfterMessages(conv) {
    if (conv.kind === 'room') renderRoomLists();
    else renderDmList();
    if (state.current === conv) renderOlderButton();
    updateTitle();
  }

  /**
   * The first element of the newest stretch of the conversation (after its last gap
   * marker) and the id of its first message: "load older" asks before that id and
   * inserts the page there.
   */
  function olderCursor(conv) {
    const barriers = conv.list.querySelectorAll('li[data-barrier]');
    const barrier = barriers.length ? barriers[barriers.length - 1] : null;
    const anchor = barrier ? barrier.nextElementSibling : conv.list.firstElementChild;
    let first = null;
    for (let n = anchor; n; n = n.nextElementSibling) {
      if (n.dataset.id !== undefined) {
        first = n.dataset.id;
        break;
      }
    }
    return { barrier, anchor, first };
  }

  async function loadOlder(conv = state.current) {
    if (!conv || conv.loadingOlder || !conv.hasMore) return;
    const start = olderCursor(conv);
    const { barrier, first } = start;
    conv.loadingOlder = true;
    if (state.current === conv) renderOlderButton();
    const req = { ...historyTarget(conv), limit: HISTORY_PAGE };
    if (first) req.before = first;
    const res = await request('history', req);
    conv.loadingOlder = false;
    if (!isLive(conv)) return;
    if (res.ok) {
      const vp = $('messages');
      const oldHeight = vp.scrollHeight;
      const frag = document.createDocumentFragment();
      let overlap = false;
      for (const raw of res.messages || []) {
        const m = normalize(raw);
        if (m.offset !== null && conv.epoch === null) conv.epoch = m.epoch;
        const sameEpoch = m.offset !== null && m.epoch === conv.epoch;
        if ((m.id !== null && conv.ids.has(m.id)) || (sameEpoch && conv.offsets.has(m.offset))) {
          overlap = true;
          continue;
        }
        const twin = sameEpoch ? unplacedTwin(conv, m) : null;
        if (twin) {
          setMessageKeys(twin, m);
          conv.ids.add(m.id);
          conv.offsets.add(m.offset);
          overlap = true;
          continue;
        }
        const li = messageItem(m, conv.kind === 'room' ? 'chat' : 'private', !!(state.me && m.user_id === state.me.id));
        if (m.id !== null) conv.ids.add(m.id);
        if (sameEpoch) {
          conv.offsets.add(m.offset);
        } else if (m.offset !== null) {
          // Older than a reset the page saw: shown, but out of the numbering.
          delete li.dataset.offset;
          delete li.dataset.epoch;
        }
        frag.appendChild(li);
      }
      const anchor = start.anchor && start.anchor.parentNode === conv.list ? start.anchor : olderCursor(conv).anchor;
      conv.list.insertBefore(frag, anchor);
      conv.hasMore = !!res.has_more;
      if (overlap && barrier && barrier.isConnected && barrier.dataset.reason !== 'epoch') {
        // The older page reached what was shown before the gap: nothing is missing.
        barrier.remove();
      }
      if (state.current === conv) vp.scrollTop += vp.scrollHeight - oldHeight;
    } else {
      toastRefusal(res, 'history');
    }
    if (state.current === conv) renderOlderButton();
  }

  $('load-older').addEventListener('click', () => loadOlder());

  // ------------------------------------------------------------------ session (reload)

  /**
   * The tab's session (sessionStorage, so per tab): the name (open mode), the rooms and
   * private conversations with their positions, and the open conversation. A reload
   * signs in again with the name and rejoins with `since`.
   */
  function saveSession() {
    if (!state.me || state.restoring) return;
    const data = {
      v: 1,
      mode: state.mode,
      user: state.me,
      rooms: Array.from(state.rooms.values()).map((r) => ({ room: r.name, ...(position(r) || {}) })),
      dms: Array.from(state.dms.values()).map((d) => ({ id: d.peer.id, name: d.peer.name, ...(position(d) || {}) })),
      current: state.current ? state.current.list.dataset.conv : null,
    };
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(data));
    } catch (_) { /* storage may be off */ }
  }

  function loadSession() {
    try {
      const data = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
      if (!data || data.v !== 1 || !data.user || !Array.isArray(data.rooms) || !Array.isArray(data.dms)) return null;
      return data;
    } catch (_) {
      return null;
    }
  }

  function clearSession() {
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch (_) { /* storage may be off */ }
  }

  function storedPosition(c) {
    return Number.isInteger(c.offset) && c.offset >= 0 && typeof c.epoch === 'string'
      ? { offset: c.offset, epoch: c.epoch } : null;
  }

  /**
   * Takes a saved position. Private messages kept for us while we had no connection
   * may have come first (as `private` events): they follow the saved position.
   */
  function applyStoredPosition(conv, pos) {
    if (!pos || (conv.epoch !== null && conv.epoch !== pos.epoch)) return false;
    conv.epoch = pos.epoch;
    conv.pos = pos.offset;
    while (conv.offsets.has(conv.pos + 1)) conv.pos += 1;
    conv.maxOffset = Math.max(conv.maxOffset, conv.pos);
    return true;
  }

  /**
   * After a reload: the page shows nothing yet. Rooms are joined with `since`: the
   * missed messages come below a "new since you left" marker and one page of older
   * messages above it; if they cannot be recovered, a gap marker and the newest page.
   */
  async function restoreSession(saved) {
    state.restoring = true;
    const jobs = [];
    for (const r of saved.rooms) {
      if (typeof r.room !== 'string') continue;
      const room = ensureRoom(r.room);
      applyStoredPosition(room, storedPosition(r));
      room.restored = true;
      jobs.push(rejoinRoom(room));
    }
    // Private conversations are the user's: only when signed in as the same user.
    if (state.me && saved.user.id === state.me.id) {
      for (const d of saved.dms) {
        if (typeof d.id !== 'string') continue;
        const dm = ensureDm({ id: d.id, name: typeof d.name === 'string' ? d.name : d.id });
        if (applyStoredPosition(dm, storedPosition(d))) {
          dm.restored = true;
          jobs.push(resumeDm(dm));
        }
      }
    }
    const current = saved.current || '';
    const conv = current.startsWith('room:') ? state.rooms.get(current.slice(5))
      : current.startsWith('dm:') ? state.dms.get(current.slice(3)) : null;
    openConversation(conv || state.rooms.values().next().value || null);
    await Promise.all(jobs);
    state.restoring = false;
    renderAll();
    saveSession();
  }

  /** A reloaded private conversation: what was missed, then one older page above. */
  async function resumeDm(dm) {
    const mark = resumeMark(dm);
    await fillGap(dm, { force: true });
    if (!isLive(dm)) return;
    if (finishResume(dm, mark)) {
      dm.hasMore = true;
      await loadOlder(dm);
    }
  }

  /** The "new since you left" marker, hidden until something new follows it. */
  function resumeMark(conv) {
    const mark = noticeItem('resume', RESUME_TEXT, Date.now());
    mark.hidden = true;
    conv.list.insertBefore(mark, conv.list.firstChild);
    return mark;
  }

  /**
   * Shows the marker when something new follows it; without a gap marker (which has
   * the newest page below it already) the caller loads one older page above it.
   */
  function finishResume(conv, mark) {
    conv.restored = false;
    if (!mark.isConnected) return false;
    if (conv.list.querySelector('li[data-barrier]')) {
      mark.remove();
      return false;
    }
    let n = mark.nextElementSibling;
    while (n && n.dataset.testid !== 'message') n = n.nextElementSibling;
    if (n) mark.hidden = false;
    else mark.remove();
    return true;
  }

  // ------------------------------------------------------------------ requests

  /** Emits with an ack; resolves with the answer, or {ok:false} on timeout/offline. */
  function request(event, data, timeoutMs = REQUEST_TIMEOUT_MS) {
    return new Promise((resolve) => {
      if (!socket.connected) {
        resolve({ ok: false, code: 'offline', message: CODE_TEXT.offline });
        return;
      }
      socket.timeout(timeoutMs).emit(event, data, (err, res) => {
        if (err) resolve({ ok: false, code: 'timeout', message: `No answer to “${event}”.` });
        else if (res && typeof res === 'object') resolve(res);
        else resolve({ ok: false, code: 'internal', message: 'Unexpected answer.' });
      });
    });
  }

  async function joinRoom(name, { switchTo = true, errorBox = null } = {}) {
    name = normalizeName(name);
    if (!name) return;
    const existing = state.rooms.get(name);
    if (existing) {
      if (switchTo) openConversation(existing);
      return;
    }
    if (state.joining.has(name)) return;
    state.joining.add(name);
    const res = await request('join', { room: name });
    state.joining.delete(name);
    if (!res.ok) {
      if (errorBox) {
        errorBox.textContent = '';
        errorBox.dataset.code = res.code || '';
        errorBox.appendChild(el('code', 'error-code', res.code || 'error'));
        errorBox.appendChild(document.createTextNode(' ' + (res.message || CODE_TEXT[res.code] || '')));
        errorBox.hidden = false;
      } else {
        toastRefusal(res, `join ${name}`);
      }
      return;
    }
    const room = ensureRoom(res.room || name);
    applyJoinAck(room, res, null);
    if (switchTo || !state.current) openConversation(room);
    else renderAll();
    saveSession();
    scheduleGapFill(room);
  }

  /**
   * A join answer. Without `since`: the newest page, and the room's newest offset is
   * where the page stands. With `since`: `recovered: true` brings exactly the messages
   * after it; `false` a gap marker and the newest page.
   */
  function applyJoinAck(room, res, since) {
    room.members.clear();
    for (const u of res.members || []) room.members.set(u.id, u);
    room.count = typeof res.count === 'number' ? res.count : room.members.size;
    state.counts.set(room.name, room.count);
    const msgs = Array.isArray(res.history) ? res.history : [];
    const newest = Number.isInteger(res.offset) ? res.offset : null;
    let added = 0;
    if (since && res.recovered === false) {
      added = applyUnrecovered(room, res, msgs);
    } else if (since && res.recovered === true) {
      clearUnavailable(room);
      for (const m of msgs) if (addMessage(room, normalize(m))) added += 1;
      if (newest !== null && res.epoch === room.epoch) room.maxOffset = Math.max(room.maxOffset, newest);
    } else {
      if (typeof res.epoch === 'string' && room.epoch !== null && res.epoch !== room.epoch) {
        resetEpoch(room, res.epoch, 'epoch');
      }
      if (typeof res.epoch === 'string') room.epoch = res.epoch;
      if (newest !== null && typeof res.epoch === 'string') {
        room.pos = Math.max(room.pos || 0, newest);
        room.maxOffset = Math.max(room.maxOffset, newest);
      }
      const empty = !room.list.querySelector('li[data-id], li[data-offset]');
      for (const m of msgs) if (addMessage(room, normalize(m))) added += 1;
      if (empty) room.hasMore = !!res.has_more;
    }
    return added;
  }

  /**
   * Joins a room the page already shows (after a reconnect, or restored after a
   * reload) with `since`, the position of the last message it has.
   */
  async function rejoinRoom(room) {
    forget(room);
    const token = {};
    room.syncing = token; // live messages wait for the answer before asking for gaps
    const since = position(room);
    const mark = room.restored && since ? resumeMark(room) : null;
    const res = await request('join', since ? { room: room.name, since } : { room: room.name });
    if (room.syncing === token) room.syncing = null;
    if (!isLive(room)) return;
    if (!res.ok) {
      if (mark) mark.remove();
      if (room.restored && ['not_logged_in', 'invalid_room', 'too_many_rooms'].includes(res.code)) {
        state.rooms.delete(room.name);
        return;
      }
      toastRefusal(res, `rejoin ${room.name}`);
      addLocalNotice(room, 'error', `Could not rejoin this room: ${res.code}`);
      return;
    }
    const added = applyJoinAck(room, res, since);
    if (mark) {
      if (finishResume(room, mark)) {
        room.hasMore = true;
        await loadOlder(room);
      }
    } else if (room.restored) {
      room.restored = false;
    } else {
      countUnread(room, added);
    }
    if (!isLive(room)) return;
    renderAfterMessages(room);
    if (state.current === room) renderConversation();
    scheduleGapFill(room);
  }

  /**
   * After a reconnect: the new connection is in no room, so join them all again, each
   * with its position; private conversations ask for what follows theirs.
   */
  async function rejoinAll() {
    const rooms = Array.from(state.rooms.values());
    const dms = Array.from(state.dms.values()).filter((dm) => position(dm));
    await Promise.all([
      ...rooms.map((room) => rejoinRoom(room)),
      ...dms.map((dm) => {
        forget(dm);
        return fillGap(dm, { force: true });
      }),
    ]);
    renderAll();
    saveSession();
  }

  async function leaveCurrentRoom() {
    const room = state.current;
    if (!room || room.kind !== 'room') return;
    stopTyping();
    const res = await request('leave', { room: room.name });
    if (!res.ok && res.code !== 'not_member') {
      toastRefusal(res, `leave ${room.name}`);
      return;
    }
    clearAllTyping(room);
    forget(room);
    state.rooms.delete(room.name);
    const next = state.rooms.values().next().value || null;
    openConversation(next);
  }

  $('leave-btn').addEventListener('click', leaveCurrentRoom);

  $('close-dm-btn').addEventListener('click', () => {
    const dm = state.current;
    if (!dm || dm.kind !== 'dm') return;
    forget(dm);
    state.dms.delete(dm.key);
    openConversation(state.rooms.values().next().value || null);
  });

  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('room-input');
    const box = $('join-error');
    box.hidden = true;
    const name = input.value;
    if (!normalizeName(name)) return;
    joinRoom(name, { errorBox: box }).then(() => {
      if (box.hidden) input.value = '';
    });
  });

  // ------------------------------------------------------------------ sending

  $('composer').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('message-input');
    const text = input.value;
    const conv = state.current;
    if (!conv || !text.trim()) return;
    if (!socket.connected) {
      toast('offline', CODE_TEXT.offline);
      return;
    }
    stopTyping();
    input.value = '';
    const me = state.me || { id: '', name: '' };
    const li = messageItem({ user: me.name, user_id: me.id, text, ts: Date.now() },
      conv.kind === 'room' ? 'chat' : 'private', true);
    li.dataset.state = 'pending';
    conv.list.appendChild(li);
    scrollToBottom();

    const res = conv.kind === 'room'
      ? await request('message', { room: conv.name, text })
      : await request('private', { to: conv.peer.id, text });

    if (res.ok) {
      delete li.dataset.state;
      const ts = res.ts;
      if (typeof ts === 'number') li.dataset.ts = String(ts);
      const time = li.querySelector('[data-testid=message-time]');
      time.textContent = formatTime(ts);
      if (typeof ts === 'number') {
        time.dateTime = new Date(ts).toISOString();
        time.title = new Date(ts).toLocaleString();
      }
      // Unless a recovery or the copy sent to our other connections showed it first,
      // the item takes its id and offset and moves to its place.
      if (li.dataset.id === undefined && isLive(conv)) {
        if (!addMessage(conv, normalize(res), { follow: true, adopt: li })) li.remove();
        saveSession();
        scheduleGapFill(conv);
      }
    } else if (li.dataset.id !== undefined) {
      // Shown from history meanwhile: it was stored after all.
    } else {
      li.dataset.state = 'failed';
      const why = el('div', 'msg-failed',
        `Not delivered — ${res.code}: ${res.message || CODE_TEXT[res.code] || ''}`);
      why.setAttribute('data-testid', 'message-error');
      li.querySelector('.msg-body').appendChild(why);
      toastRefusal(res, conv.kind === 'room' ? 'message' : 'private');
    }
    if (state.current === conv) scrollToBottom();
  });

  // Typing: at most one "active" notice per 2 s while typing; "inactive" when cleared/sent.
  $('message-input').addEventListener('input', () => {
    const conv = state.current;
    if (!conv || conv.kind !== 'room' || !socket.connected) return;
    if (!$('message-input').value.trim()) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (now - state.lastTypingSent >= TYPING_SEND_INTERVAL_MS) {
      state.lastTypingSent = now;
      state.typingRoom = conv.name;
      socket.emit('typing', { room: conv.name, active: true }, () => {});
    }
  });

  function stopTyping() {
    if (state.typingRoom && socket.connected) {
      socket.emit('typing', { room: state.typingRoom, active: false }, () => {});
    }
    state.typingRoom = null;
  }

  function clearTyping(room, userId) {
    const t = room.typing.get(userId);
    if (t) {
      clearTimeout(t.timer);
      room.typing.delete(userId);
    }
  }

  function clearAllTyping(room) {
    for (const t of room.typing.values()) clearTimeout(t.timer);
    room.typing.clear();
  }

  // ------------------------------------------------------------------ rendering

  function renderAll() {
    renderMe();
    renderRoomLists();
    renderDmList();
    renderConversation();
    renderMembers();
    renderTyping();
    updateComposer();
    updateTitle();
  }

  function renderMe() {
    $('me-name').textContent = state.me ? state.me.name : '';
  }

  function unreadBadge(n) {
    const b = el('span', 'badge', n > 99 ? '99+' : String(n));
    b.setAttribute('data-testid', 'unread');
    b.hidden = !n;
    return b;
  }

  function roomItem(name, count, joined, conv) {
    const li = el('li', 'nav-item');
    li.setAttribute('data-testid', 'room-item');
    li.dataset.room = name;
    li.dataset.joined = joined ? 'true' : 'false';
    if (conv && state.current === conv) li.classList.add('active');
    const btn = el('button', 'nav-button');
    btn.type = 'button';
    btn.title = joined ? `Open ${name}` : `Join ${name}`;
    btn.appendChild(el('span', 'nav-hash', '#'));
    const label = el('span', 'nav-label', name);
    label.setAttribute('data-testid', 'room-name');
    btn.appendChild(label);
    if (conv) btn.appendChild(unreadBadge(conv.unread));
    const c = el('span', 'count', typeof count === 'number' ? String(count) : '–');
    c.setAttribute('data-testid', 'room-count');
    c.title = 'members';
    btn.appendChild(c);
    btn.addEventListener('click', () => (conv ? openConversation(conv) : joinRoom(name)));
    li.appendChild(btn);
    return li;
  }

  function renderRoomLists() {
    const joinedList = $('joined-list');
    joinedList.textContent = '';
    for (const room of state.rooms.values()) {
      joinedList.appendChild(roomItem(room.name, state.counts.get(room.name), true, room));
    }
    $('joined-empty').hidden = state.rooms.size > 0;

    const others = $('room-list');
    others.textContent = '';
    for (const r of state.publicRooms) {
      if (state.rooms.has(r.room)) continue;
      others.appendChild(roomItem(r.room, r.count, false, null));
    }
    $('rooms-empty').hidden = others.children.length > 0;
  }

  function renderDmList() {
    const list = $('dm-list');
    list.textContent = '';
    for (const dm of state.dms.values()) {
      const li = el('li', 'nav-item');
      li.setAttribute('data-testid', 'dm-item');
      li.dataset.userId = dm.peer.id;
      if (state.current === dm) li.classList.add('active');
      const btn = el('button', 'nav-button');
      btn.type = 'button';
      btn.appendChild(avatar(dm.peer.name, dm.peer.id));
      btn.appendChild(el('span', 'nav-label', dm.peer.name));
      btn.appendChild(unreadBadge(dm.unread));
      btn.addEventListener('click', () => openConversation(dm));
      li.appendChild(btn);
      list.appendChild(li);
    }
    $('dms-empty').hidden = state.dms.size > 0;
  }

  function renderConversation() {
    const conv = state.current;
    const vp = $('messages');
    for (const l of vp.querySelectorAll('ol.msg-list')) {
      if (!conv || l !== conv.list) l.remove();
    }
    $('empty-state').hidden = !!conv;
    $('leave-btn').hidden = !conv || conv.kind !== 'room';
    $('close-dm-btn').hidden = !conv || conv.kind !== 'dm';
    const title = $('chat-title');
    const sub = $('chat-subtitle');
    if (!conv) {
      title.textContent = 'No conversation';
      sub.textContent = '';
    } else if (conv.kind === 'room') {
      title.textContent = '# ' + conv.name;
      title.dataset.room = conv.name;
      const n = state.counts.get(conv.name) || conv.count;
      sub.textContent = `${n} member${n === 1 ? '' : 's'}`;
    } else {
      title.textContent = conv.peer.name;
      delete title.dataset.room;
      sub.textContent = 'Private conversation';
    }
    if (conv && conv.list.parentNode !== vp) vp.appendChild(conv.list);
    $('message-input').placeholder = !conv ? 'Join a room to write'
      : conv.kind === 'room' ? `Message # ${conv.name}` : `Private message to ${conv.peer.name}`;
    renderOlderButton();
  }

  function renderOlderButton() {
    const conv = state.current;
    const btn = $('load-older');
    const show = !!(conv && conv.hasMore);
    btn.hidden = !show;
    btn.disabled = !!(conv && conv.loadingOlder);
    btn.textContent = conv && conv.loadingOlder ? 'Loading…' : 'Load older messages';
  }

  function renderMembers() {
    const conv = state.current;
    const list = $('member-list');
    list.textContent = '';
    const panel = $('members-panel');
    $('member-count').hidden = !conv || conv.kind !== 'room';
    if (!conv || conv.kind !== 'room') {
      $('member-count').textContent = '0';
      $('members-hint').textContent = conv ? 'This conversation is private.' : 'Open a room to see its members.';
      panel.dataset.empty = 'true';
      return;
    }
    delete panel.dataset.empty;
    const room = conv;
    const count = state.counts.get(room.name) || room.count;
    $('member-count').textContent = String(count);
    const members = Array.from(room.members.values());
    members.sort((a, b) => {
      const am = state.me && a.id === state.me.id ? 0 : 1;
      const bm = state.me && b.id === state.me.id ? 0 : 1;
      return am - bm || a.name.localeCompare(b.name);
    });
    for (const u of members) {
      const mine = !!(state.me && u.id === state.me.id);
      const li = el('li', 'member' + (mine ? ' is-me' : ''));
      li.setAttribute('data-testid', 'member');
      li.dataset.userId = u.id;
      const btn = el('button', 'member-button');
      btn.type = 'button';
      btn.disabled = mine;
      btn.title = mine ? 'You' : `Send a private message to ${u.name}`;
      btn.appendChild(avatar(u.name, u.id));
      const nm = el('span', 'member-name', u.name);
      nm.setAttribute('data-testid', 'member-name');
      btn.appendChild(nm);
      if (mine) btn.appendChild(el('span', 'member-you', 'you'));
      if (room.typing.has(u.id)) btn.appendChild(el('span', 'member-typing', 'typing…'));
      btn.addEventListener('click', () => {
        if (!mine) openConversation(ensureDm(u));
      });
      li.appendChild(btn);
      list.appendChild(li);
    }
    if (count > members.length) {
      list.appendChild(el('li', 'member-more', `and ${count - members.length} more`));
    }
    $('members-hint').textContent = members.length > 1 ? 'Click a member to send a private message.' : 'No one else is here yet.';
  }

  function renderTyping() {
    const box = $('typing-indicator');
    const conv = state.current;
    if (!conv || conv.kind !== 'room' || !conv.typing.size) {
      box.textContent = '';
      box.classList.remove('visible');
      return;
    }
    const names = Array.from(conv.typing.values()).map((t) => t.name);
    let text;
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else text = `${names[0]}, ${names[1]} and ${names.length - 2} more are typing…`;
    box.textContent = text;
    box.classList.add('visible');
  }

  function updateComposer() {
    const ok = !!(state.current && socket.connected && state.me);
    $('message-input').disabled = !ok;
    $('send-btn').disabled = !ok;
  }

  function updateTitle() {
    let unread = 0;
    for (const c of state.rooms.values()) unread += c.unread;
    for (const c of state.dms.values()) unread += c.unread;
    document.title = unread ? `(${unread}) Palaver` : 'Palaver';
  }

  // ------------------------------------------------------------------ reconnecting

  function clearRetry() {
    clearTimeout(state.retryTimer);
    clearInterval(state.retryTick);
    state.retryTimer = null;
    state.retryTick = null;
  }

  /**
   * After the server ended the connection ("io server disconnect", e.g. it stopped) or
   * refused it for a passing reason, socket.io-client does not retry by itself: retry
   * with an exponential backoff (1 s, 2 s, 4 s … 30 s, ±25 %).
   */
  function scheduleRetry() {
    if (state.retryTimer || state.kicked) return;
    const base = Math.min(30000, 1000 * 2 ** state.retryAttempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    state.retryAttempt += 1;
    const due = Date.now() + delay;
    const tick = () => {
      const s = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setConn('disconnected', `Disconnected · retrying in ${s} s`);
    };
    tick();
    state.retryTick = setInterval(tick, 1000);
    state.retryTimer = setTimeout(() => {
      clearRetry();
      setConn('reconnecting', `Reconnecting (attempt ${state.retryAttempt})…`);
      socket.connect();
    }, delay);
  }

  $('banner-action').addEventListener('click', () => {
    state.kicked = false;
    hideBanner();
    reconnectNow();
  });
  $('banner-close').addEventListener('click', () => hideBanner());

  // ------------------------------------------------------------------ socket events

  socket.on('connect', () => {
    const wasConnected = state.everConnected;
    state.everConnected = true;
    state.retryAttempt = 0;
    clearRetry();
    setConn('connected');
    for (const t of $('toasts').querySelectorAll('[data-code="shutdown"], [data-code="shutting_down"]')) t.remove();
    if ($('banner').dataset.kind === 'shutdown' && !$('banner').hidden) {
      hideBanner('shutdown');
      toast(null, 'Reconnected.');
    }
    // Credentials ride in the handshake, so the identity is back: rejoin our rooms.
    if (wasConnected && state.me && (state.rooms.size || state.dms.size)) rejoinAll();
  });

  socket.on('session', (s) => {
    if (!s || typeof s !== 'object') return;
    if (s.mode) state.mode = s.mode;
    if (s.user) {
      const first = !state.me;
      const before = state.me;
      state.me = { id: s.user.id, name: s.user.name };
      state.loggingIn = false;
      clearLoginError();
      if (first) {
        try {
          if (state.requestedName) localStorage.setItem('palaver.name', normalizeName(state.requestedName));
        } catch (_) { /* storage may be off */ }
        if (state.requestedName && normalizeName(state.requestedName) !== s.user.name) {
          toast(null, `“${normalizeName(state.requestedName)}” is taken; you are “${s.user.name}”.`);
        }
        showChat();
        const room = state.pendingRoom;
        state.pendingRoom = null;
        const saved = state.restore;
        state.restore = null;
        if (saved) restoreSession(saved);
        else if (room) joinRoom(room);
        saveSession();
      } else if (before.id !== s.user.id || before.name !== s.user.name) {
        toast(null, `You are now “${s.user.name}”.`);
        renderAll();
      }
    } else {
      if (state.me) {
        resetChat();
        state.me = null;
      }
      if (!state.loggingIn) showLogin();
      else updateLoginMode();
    }
  });

  socket.on('connect_error', (err) => {
    const code = (err && err.message) || 'error';
    if (LOGIN_REFUSALS.has(code)) {
      // The server refused the handshake's identity: back to the login form.
      state.mode = code === 'invalid_name' ? 'open' : 'token';
      const attempted = state.loggingIn && code === 'invalid_name' ? state.requestedName : null;
      const show = state.loggingIn || state.me || code !== 'auth_required';
      state.loggingIn = false;
      state.restore = null;
      socket.auth = {};
      if (state.me) {
        resetChat();
        state.me = null;
      }
      showLogin();
      if (show) showLoginError(code, attempted);
      if (state.mode === 'open') {
        // Stay connected without an identity: room list and the session event.
        setTimeout(() => { if (!socket.active) socket.connect(); }, 0);
        setConn('connecting');
      } else {
        setConn('disconnected', 'Not connected · sign in with a token');
      }
      return;
    }
    if (!socket.active) {
      // Refused by the server (shutting_down, too_many_connections, …): retry later.
      const stopping = code === 'shutting_down' && $('banner').dataset.kind === 'shutdown' && !$('banner').hidden;
      if (CODE_TEXT[code] && !stopping) toast(code, CODE_TEXT[code]);
      scheduleRetry();
      if (state.loggingIn) {
        $('login-submit').disabled = false;
        $('login-submit').textContent = 'Sign in';
      }
      return;
    }
    // Transport error: socket.io-client retries by itself.
    const st = $('conn-status').dataset.state;
    if (st !== 'reconnecting' && st !== 'connecting') setConn(state.everConnected ? 'reconnecting' : 'connecting');
  });

  socket.on('disconnect', (reason) => {
    for (const room of state.rooms.values()) clearAllTyping(room);
    state.typingRoom = null;
    renderTyping();
    if (reason === 'io client disconnect') {
      // Our own doing (signing in again); the caller reconnects.
      setConn('disconnected');
      return;
    }
    if (reason === 'io server disconnect') {
      if (state.kicked) {
        setConn('disconnected', 'Disconnected by the server');
        return;
      }
      scheduleRetry();
      return;
    }
    // Transport closed or ping timeout: socket.io-client reconnects by itself.
    setConn('reconnecting');
  });

  socket.io.on('reconnect_attempt', (n) => {
    if (!socket.connected) setConn('reconnecting', `Reconnecting (attempt ${n})…`);
  });
  socket.io.on('reconnect_failed', () => scheduleRetry());

  socket.on('rooms', (list) => {
    state.publicRooms = Array.isArray(list) ? list.filter((r) => r && typeof r.room === 'string') : [];
    for (const r of state.publicRooms) state.counts.set(r.room, r.count);
    if (!$('login-view').hidden) updateLoginRooms();
    renderRoomLists();
    if (state.current && state.current.kind === 'room') {
      renderConversation();
      renderMembers();
    }
  });

  socket.on('message', (m) => {
    if (!m || typeof m !== 'object') return;
    const room = state.rooms.get(m.room);
    if (!room) return;
    if (m.kind !== 'join' && m.kind !== 'leave' && m.user_id) clearTyping(room, m.user_id);
    const added = addMessage(room, normalize(m));
    if (added && m.kind === 'chat') countUnread(room, 1);
    if (added && m.kind === 'chat') {
      saveSession();
      scheduleGapFill(room);
    }
    renderRoomLists();
    renderTyping();
    renderMembers();
    updateTitle();
  });

  socket.on('presence', (p) => {
    if (!p || typeof p !== 'object' || !p.user) return;
    const room = state.rooms.get(p.room);
    if (!room) return;
    if (p.action === 'join') room.members.set(p.user.id, p.user);
    else if (p.action === 'leave') {
      room.members.delete(p.user.id);
      clearTyping(room, p.user.id);
    }
    if (typeof p.count === 'number') {
      room.count = p.count;
      state.counts.set(room.name, p.count);
    }
    renderRoomLists();
    if (state.current === room) {
      renderConversation();
      renderMembers();
      renderTyping();
    }
  });

  socket.on('typing', (t) => {
    if (!t || typeof t !== 'object') return;
    const room = state.rooms.get(t.room);
    if (!room || (state.me && t.user_id === state.me.id)) return;
    clearTyping(room, t.user_id);
    if (t.active !== false) {
      const timer = setTimeout(() => {
        room.typing.delete(t.user_id);
        if (state.current === room) {
          renderTyping();
          renderMembers();
        }
      }, TYPING_SHOW_MS);
      room.typing.set(t.user_id, { name: t.user, timer });
    }
    if (state.current === room) {
      renderTyping();
      renderMembers();
    }
  });

  socket.on('private', (pm) => {
    if (!pm || typeof pm !== 'object' || !pm.from || !pm.to) return;
    const mine = !!(state.me && pm.from.id === state.me.id);
    const dm = ensureDm(mine ? pm.to : pm.from);
    if (!addMessage(dm, normalize(pm))) return;
    if (!mine) countUnread(dm, 1);
    saveSession();
    scheduleGapFill(dm);
    renderDmList();
    updateTitle();
  });

  socket.on('error', (e) => {
    if (!e || typeof e !== 'object') return;
    toastRefusal(e, e.event);
  });

  socket.on('kicked', (k) => {
    state.kicked = true;
    const reason = k && k.reason ? String(k.reason) : 'no reason given';
    showBanner('kicked', `You were disconnected by the server: ${reason}`, 'Reconnect');
    toast('kicked', reason);
  });

  // Token mode: the token ends soon (docs/PROTOCOL.md); a fresh one pasted here is
  // sent with `login {token}`, which keeps the connection, its rooms and name.
  socket.on('token_expiring', (t) => {
    const at = t && Number.isFinite(t.expires_at) ? new Date(t.expires_at) : null;
    const when = at ? ` at ${at.toLocaleTimeString()}` : ' soon';
    showBanner('token_expiring', `Your access token expires${when}. Paste a fresh one to stay connected.`);
    $('renew-error').hidden = true;
    $('renew-token').value = '';
  });

  $('renew-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = $('renew-token').value.trim();
    if (!token) return;
    $('renew-submit').disabled = true;
    const res = await request('login', { token });
    $('renew-submit').disabled = false;
    if (!res.ok) {
      const p = $('renew-error');
      p.dataset.code = res.code || 'internal';
      p.textContent =
        res.code === 'already_logged_in' ? 'That token names another user.' : CODE_TEXT[res.code] || res.message || res.code;
      p.hidden = false;
      return;
    }
    // A reconnect after a network drop presents the fresh token too.
    socket.auth = { token };
    hideBanner('token_expiring');
    toast(null, 'Access token renewed.');
  });

  socket.on('shutdown', (s) => {
    const reason = s && s.reason ? String(s.reason) : 'server_stopping';
    showBanner('shutdown', `The server is stopping (${reason}). Reconnecting when it is back…`);
    toast('shutdown', `The server is stopping (${reason}).`);
  });

  // ------------------------------------------------------------------ start

  try {
    const saved = localStorage.getItem('palaver.name');
    if (saved && !$('login-name').value) $('login-name').value = saved;
  } catch (_) { /* storage may be off */ }
  const params = new URLSearchParams(location.search);
  if (params.get('room')) $('login-room').value = params.get('room');
  if (params.get('name')) $('login-name').value = params.get('name');

  // A reload of a signed-in tab (open mode) signs in again with the same name and
  // rejoins where it was; otherwise connect without an identity first: it tells the
  // mode (open/token) and the room list.
  const saved = loadSession();
  if (saved && saved.mode === 'open' && typeof saved.user.name === 'string') {
    state.restore = saved;
    state.requestedName = saved.user.name;
    state.loggingIn = true;
    socket.auth = { name: saved.user.name };
    $('login-name').value = saved.user.name;
  }
  window.addEventListener('pagehide', saveSession);

  showLogin();
  renderAll();
  setConn('connecting');
  socket.connect();
})();
