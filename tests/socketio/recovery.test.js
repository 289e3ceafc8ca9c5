// Connection state recovery (Socket.IO 4.6's pid and offset) with an
// unmodified socket.io-client 4: the ticketing flow loses its connection,
// tickets are updated meanwhile, and the client comes back (to the same
// node, or to the other one) with everything it missed, in order, once,
// and socket.recovered true. Two ringcast nodes and a redis-server on free
// ports; the backend publishes through the HTTP API (kept in history).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { io } from 'socket.io-client';
import { freePort, jwt, started, startNode, startRedis, sleep } from
  '../../clients/js/test/helpers.js';

const require = createRequire(import.meta.url);
const { Emitter } = require('@socket.io/redis-emitter');
const { createClient } = require('redis');

const SECRET = 'sio-recovery-secret';
const API_KEY = 'sio-recovery-api-key';
const token = (sub) => jwt(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 3600 });
let redisPort, redis, nodes = [], ports = [], rc, emitter;

function nodeArgs(port, extra = []) {
  return ['--listen', `127.0.0.1:${port}`, '--shards', '2', '--log-level', 'warn',
    '--no-anonymous', '--public', 'event:*,lobby:*',
    '--socketio-map', 'join:event subscribe event:',
    '--socketio-map', 'join:lobby subscribe lobby:',
    '--history', 'event:* size=100 ttl=300',
    '--socketio-recovery', '30', '--api-key', API_KEY, '--socketio-emitter', 'socket.io',
    ...extra];
}

before(async () => {
  redisPort = await freePort();
  redis = startRedis(redisPort);
  ports = [await freePort(), await freePort(), await freePort()];
  const redisArgs = ['--redis-url', `redis://127.0.0.1:${redisPort}`];
  nodes.push(startNode(nodeArgs(ports[0], redisArgs), { RINGCAST_JWT_SECRET: SECRET }));
  nodes.push(startNode(nodeArgs(ports[1], redisArgs), { RINGCAST_JWT_SECRET: SECRET }));
  // A single node without Redis keeps its sessions in memory.
  nodes.push(startNode(nodeArgs(ports[2]), { RINGCAST_JWT_SECRET: SECRET }));
  await Promise.all(ports.map(started));
  // Both Redis links of the Redis nodes up: no publication goes by unheard.
  for (const i of [0, 1])
    await until(async () => await metric(i, 'ringcast_redis_up{conn="subscriber"}') === 1 &&
      await metric(i, 'ringcast_redis_up{conn="command"}') === 1, 'Redis links');
  rc = createClient({ url: `redis://127.0.0.1:${redisPort}` });
  await rc.connect();
  emitter = new Emitter(rc);
});

after(async () => {
  await rc?.quit();
  for (const n of nodes) n.kill('SIGTERM');
  redis?.kill('SIGTERM');
});

const url = (i) => `http://127.0.0.1:${ports[i]}`;

async function publish(i, channel, data, event = 'ticket:updated') {
  const r = await fetch(url(i) + '/api/publish', {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify({ channel, event, data }),
  });
  assert.equal(r.status, 202, await r.text());
}

function once(sock, ev, ms = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no ' + ev)), ms);
    sock.once(ev, (...a) => { clearTimeout(t); resolve(a); });
  });
}

async function metric(i, name) {
  const text = await (await fetch(url(i) + '/metrics')).text();
  const m = text.match(new RegExp('^' + name.replace(/[{}"]/g, '\\$&') + ' (\\d+)$', 'm'));
  return m ? Number(m[1]) : NaN;
}

/** Waits until cond() holds (bounded). */
async function until(cond, what, ms = 8000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(25);
  }
}

/** A ticketing client: the token in auth, recovery as Socket.IO apps get it. */
function client(i, user, opts = {}) {
  const s = io(url(i), { auth: { token: token(user) }, forceNew: true,
    reconnectionDelay: 300, reconnectionDelayMax: 300, randomizationFactor: 0, ...opts });
  s.got = [];
  s.on('ticket:updated', (d, offset) => s.got.push({ d, offset }));
  return s;
}

/** Ends the client's transport as a lost network does (no DISCONNECT, no
 * close packet), so that the client reconnects by itself. */
function loseConnection(s) {
  s.io.engine.transport.ws ? s.io.engine.transport.ws.close() : s.io.engine.close();
}

for (const transports of [['websocket'], ['polling', 'websocket']]) {
  test(`reconnect with recovery (${transports.join(' then ')}): the missed updates, in order, once`, async () => {
    const s = client(0, 'fan-' + transports.length, { transports });
    const upgraded = transports.length > 1 ? once(s.io.engine, 'upgrade') : null;
    await once(s, 'connect');
    assert.equal(s.recovered, false);
    if (upgraded) await upgraded;
    assert.deepEqual(await s.timeout(8000).emitWithAck('join:event', 41),
      { ok: true, channel: 'event:41' });
    await publish(1, 'event:41', { left: 10 });
    await until(() => s.got.length === 1, 'the first update');
    assert.equal(typeof s.got[0].offset, 'string', 'updates carry their offset');
    const before = await metric(0, 'ringcast_socketio_recoveries_total{outcome="recovered"}');
    const reconnected = once(s, 'connect');
    loseConnection(s);
    await once(s, 'disconnect');
    for (const left of [9, 8, 7]) await publish(1, 'event:41', { left });
    await reconnected;
    assert.equal(s.recovered, true, 'the session was recovered');
    await until(() => s.got.length >= 4, 'the missed updates');
    await publish(0, 'event:41', { left: 6 });
    await until(() => s.got.length >= 5, 'a live update after the recovery');
    await sleep(100);
    assert.deepEqual(s.got.map((g) => g.d.left), [10, 9, 8, 7, 6]);
    assert.equal(await metric(0, 'ringcast_socketio_recoveries_total{outcome="recovered"}'), before + 1);
    s.close();
  });
}

test('the backend emits with @socket.io/redis-emitter: each update once on every node, and recovered', async () => {
  // Two fans on two nodes in the same room: the emitter's message reaches
  // both nodes, one of them keeps it, both deliver it once.
  const a = client(0, 'fan-a', { transports: ['websocket'] });
  const b = client(1, 'fan-b');
  await Promise.all([once(a, 'connect'), once(b, 'connect')]);
  await a.timeout(8000).emitWithAck('join:event', 47);
  await b.timeout(8000).emitWithAck('join:event', 47);
  emitter.to('event:47').emit('ticket:updated', { left: 3 });
  emitter.to('event:47').emit('ticket:updated', { left: 3 }); // the same twice: two updates
  await until(() => a.got.length === 2 && b.got.length === 2, 'two updates on both nodes');
  assert.notEqual(a.got[0].offset, a.got[1].offset, 'each kept with its own offset');
  const pos = (g) => g.offset.split('-').slice(0, 2).join('-'); // epoch-offset; the rest is the shard's
  assert.deepEqual(a.got.map(pos), b.got.map(pos), 'the same positions on both nodes');
  const reconnected = once(a, 'connect');
  loseConnection(a);
  await once(a, 'disconnect');
  emitter.to('event:47').emit('ticket:updated', { left: 2 });
  emitter.to('event:47').emit('ticket:updated', { left: 1 });
  await until(() => b.got.length === 4, 'b, still connected, gets the two');
  await reconnected;
  assert.equal(a.recovered, true);
  await until(() => a.got.length === 4, 'a recovers the two it missed');
  emitter.to('event:47').emit('ticket:updated', { left: 0 });
  await until(() => a.got.length === 5 && b.got.length === 5, 'a live update');
  await sleep(150);
  assert.deepEqual(a.got.map((g) => g.d.left), [3, 3, 2, 1, 0]);
  assert.deepEqual(b.got.map((g) => g.d.left), [3, 3, 2, 1, 0]);
  a.close();
  b.close();
});

test('identical emits, a node that joins the room late: each reaches everyone once', async () => {
  const a = client(0, 'tick-a', { transports: ['websocket'] });
  await once(a, 'connect');
  await a.timeout(8000).emitWithAck('join:event', 48);
  for (let i = 0; i < 3; i++) {
    emitter.to('event:48').emit('ticket:updated', { tick: true });
    await sleep(50);
  }
  await until(() => a.got.length === 3, 'three ticks on node 0');
  // Node 1's first member of the room comes now: it starts hearing the
  // emitter's channel in the middle of the identical ticks.
  const b = client(1, 'tick-b', { transports: ['websocket'] });
  await once(b, 'connect');
  await b.timeout(8000).emitWithAck('join:event', 48);
  for (let i = 0; i < 3; i++) {
    emitter.to('event:48').emit('ticket:updated', { tick: true });
    await sleep(50);
  }
  await until(() => a.got.length >= 6 && b.got.length >= 3, 'three more ticks on both nodes');
  await sleep(300);
  assert.equal(a.got.length, 6, 'node 0 got each tick once');
  assert.equal(b.got.length, 3, 'node 1 got each tick since it joined once');
  const offs = a.got.map((g) => g.offset.split('-')[1]);
  assert.equal(new Set(offs).size, 6, 'each tick kept once, with its own offset');
  a.close();
  b.close();
});

test('reconnect with recovery on the other node; twice in a row', async () => {
  const s = client(0, 'mover', { transports: ['websocket'] });
  await once(s, 'connect');
  await s.timeout(8000).emitWithAck('join:event', 42);
  await publish(0, 'event:42', { left: 1 });
  await until(() => s.got.length === 1, 'the first update');
  let reconnected = once(s, 'connect');
  s.io.uri = url(1); // as a balancer sending it elsewhere
  loseConnection(s);
  await once(s, 'disconnect');
  await publish(0, 'event:42', { left: 2 });
  await reconnected;
  assert.equal(s.recovered, true);
  await until(() => s.got.length === 2, 'the missed update, from node 1');
  // Idle this time: nothing missed, still recovered, then live again.
  reconnected = once(s, 'connect');
  s.io.uri = url(0);
  loseConnection(s);
  await once(s, 'disconnect');
  await reconnected;
  assert.equal(s.recovered, true);
  await publish(1, 'event:42', { left: 3 });
  await until(() => s.got.length === 3, 'a live update');
  await sleep(100);
  assert.deepEqual(s.got.map((g) => g.d.left), [1, 2, 3]);
  s.close();
});

test('reconnect with recovery in two rooms: each from where the client stands', async () => {
  const s = client(0, 'two-rooms', { transports: ['websocket'] });
  await once(s, 'connect');
  await s.timeout(8000).emitWithAck('join:event', 45);
  await s.timeout(8000).emitWithAck('join:event', 46);
  await publish(0, 'event:45', { left: 45 });
  await publish(1, 'event:46', { left: 46 });
  await until(() => s.got.length === 2, 'one update in each room');
  const reconnected = once(s, 'connect');
  loseConnection(s);
  await once(s, 'disconnect');
  await publish(1, 'event:46', { left: 460 });
  await publish(0, 'event:45', { left: 450 });
  await publish(1, 'event:46', { left: 461 });
  await reconnected;
  assert.equal(s.recovered, true);
  await until(() => s.got.length >= 5, 'the missed updates of both rooms');
  await sleep(100);
  const left = s.got.map((g) => g.d.left);
  assert.deepEqual(left.slice(0, 2).sort(), [45, 46]);
  assert.deepEqual(left.slice(2).filter((x) => x >= 460), [460, 461], 'room 46 in order');
  assert.deepEqual(left.slice(2).filter((x) => x < 460), [450]);
  s.close();
});

test('without Redis: the node keeps the session in memory', async () => {
  const s = client(2, 'solo', { transports: ['websocket'] });
  await once(s, 'connect');
  await s.timeout(8000).emitWithAck('join:event', 43);
  await publish(2, 'event:43', { left: 5 });
  await until(() => s.got.length === 1, 'the first update');
  const reconnected = once(s, 'connect');
  loseConnection(s);
  await once(s, 'disconnect');
  await publish(2, 'event:43', { left: 4 });
  await reconnected;
  assert.equal(s.recovered, true);
  await until(() => s.got.length === 2, 'the missed update');
  assert.deepEqual(s.got.map((g) => g.d.left), [5, 4]);
  assert.ok(await metric(2, 'ringcast_socketio_sessions_kept_total') >= 1);
  s.close();
});

test('not recovered, and told so: a room without history, another user, a deliberate leave', async () => {
  // A room without history: what it missed is not kept.
  const a = client(0, 'lobbyist', { transports: ['websocket'] });
  await once(a, 'connect');
  await a.timeout(8000).emitWithAck('join:lobby', 1);
  const noHist = await metric(0, 'ringcast_socketio_recoveries_total{outcome="no_history"}');
  let back = once(a, 'connect');
  loseConnection(a);
  await back;
  assert.equal(a.recovered, false);
  assert.equal(await metric(0, 'ringcast_socketio_recoveries_total{outcome="no_history"}'), noHist + 1);
  a.close();

  // Another user's token with a stolen pid recovers nothing.
  const b = client(0, 'owner', { transports: ['websocket'], reconnection: false });
  await once(b, 'connect');
  await b.timeout(8000).emitWithAck('join:event', 44);
  const pid = b._pid;
  assert.equal(typeof pid, 'string');
  loseConnection(b);
  await once(b, 'disconnect');
  const other = await metric(0, 'ringcast_socketio_recoveries_total{outcome="other_user"}');
  const thief = io(url(0), { auth: { token: token('thief'), pid, offset: null },
    transports: ['websocket'], forceNew: true, reconnection: false });
  // socket.io-client sends auth as given: pid with the thief's token.
  await once(thief, 'connect');
  assert.equal(thief.recovered, false);
  assert.notEqual(thief._pid, pid);
  assert.equal(await metric(0, 'ringcast_socketio_recoveries_total{outcome="other_user"}'), other + 1);
  thief.close();

  // socket.disconnect() ends the session for good: its pid recovers nothing.
  const c = client(0, 'leaver', { transports: ['websocket'], reconnection: false });
  await once(c, 'connect');
  const cpid = c._pid;
  c.disconnect();
  await sleep(200);
  const unknown = await metric(0, 'ringcast_socketio_recoveries_total{outcome="unknown"}');
  const again = io(url(0), { auth: { token: token('leaver'), pid: cpid },
    transports: ['websocket'], forceNew: true, reconnection: false });
  await once(again, 'connect');
  assert.equal(again.recovered, false);
  assert.equal(await metric(0, 'ringcast_socketio_recoveries_total{outcome="unknown"}'), unknown + 1);
  again.close();
});
