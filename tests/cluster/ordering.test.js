'use strict';
// Cluster mode: a connection's messages reach every node's members after its
// join notice and before its leave notice (or the one of its disconnect). The
// notices travel on the channel of the stored messages, which each node reads in
// one order; through the adapter's channel they could overtake the messages.

const assert = require('node:assert/strict');
const { before, after } = require('node:test');
const { startRedis } = require('../support/redis.js');
const { startCluster } = require('../support/cluster.js');
const { bothTransports } = require('../support/e2e.js');

const BURST = 40;
const WS = { transports: ['websocket'] };

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis && redis.stop('SIGKILL'));

/**
 * The chat texts and leave notices seen in `room` since `from`, as `text` or
 * `<leave>`. Join notices are left out: the other node's observer joined last, and
 * its notice may reach this node after the mark.
 */
function seen(observer, room, from) {
  return observer
    .of('message', from)
    .filter((m) => m.room === room && m.kind !== 'join')
    .map((m) => (m.kind === 'chat' ? m.text : `<${m.kind}>`));
}

for (const ending of ['leave', 'disconnect']) {
  bothTransports(`messages then ${ending}: observers on both nodes see every message before the leave notice`, async (t, transport, tn) => {
    const c = await startCluster(t, { redis, nodes: 2, name: `order-${ending}` });
    const room = `words-${ending}-${tn}`;
    const ada = await c.clients[0].member(`ada-${ending}-${tn}`, [room], transport);
    const near = await c.clients[0].member(`near-${ending}-${tn}`, [room], WS);
    const far = await c.clients[1].member(`far-${ending}-${tn}`, [room], WS);
    const marks = [near.mark(), far.mark()];
    const sent = Array.from({ length: BURST }, (_, i) => `${ending} ${tn} ${i}`);
    for (const text of sent) ada.send('message', { room, text });
    if (ending === 'leave') ada.send('leave', { room });
    else ada.socket.disconnect();
    for (const [i, observer] of [near, far].entries()) {
      await observer.wait('message', (m) => m.room === room && m.kind === 'leave', { from: marks[i], timeout: 30000 });
      assert.deepEqual(seen(observer, room, marks[i]), [...sent, '<leave>'], i === 0 ? 'same node' : 'other node');
    }
    const history = await far.request('history', { room, limit: 200 });
    assert.deepEqual(history.messages.map((m) => m.text), sent);
  });
}

bothTransports('join then messages: observers on the other node see the join notice first', async (t, transport, tn) => {
  const c = await startCluster(t, { redis, nodes: 2, name: 'order-join' });
  const room = `greetings-${tn}`;
  const far = await c.clients[1].member(`far-join-${tn}`, [room], WS);
  const mark = far.mark();
  const ada = await c.clients[0].member(`ada-join-${tn}`, [room], transport);
  const sent = Array.from({ length: BURST }, (_, i) => `join ${tn} ${i}`);
  for (const text of sent) ada.send('message', { room, text });
  await far.wait('message', (m) => m.room === room && m.text === sent.at(-1), { from: mark, timeout: 30000 });
  const seenHere = far
    .of('message', mark)
    .filter((m) => m.room === room)
    .map((m) => (m.kind === 'chat' ? m.text : `<${m.kind}>`));
  assert.deepEqual(seenHere, ['<join>', ...sent]);
  const presence = far.of('presence', mark).filter((p) => p.room === room);
  assert.deepEqual(
    presence.map((p) => [p.action, p.user.name, p.count]),
    [['join', `ada-join-${tn}`, 2]],
  );
});
