// The waiting-room helper and the list of nodes, against a real redis-server
// and two real ringcast nodes (started here on free ports): positions that
// only go down, the admission token (checked by the node), a place kept
// across a reconnect to the other node, leaving the line, and the one tick
// frame that every waiter shares and derives its own exact place from.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { freePort, jwt as signed, started, startNode, startRedis } from './helpers.js';
import { Client } from '../ringcast.js';

const SECRET = 'js-queue-test-secret';
const KEY = 'js-queue-test-key';
const procs = [];
let ports = [];

const jwt = (claims) => signed(SECRET, claims);

async function api(method, p, body) {
  const r = await fetch(`http://127.0.0.1:${ports[0]}${p}`, {
    method, headers: { Authorization: 'Bearer ' + KEY }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

function next(emitter, name, ms = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no ' + name)), ms);
    const off = emitter.on(name, (v) => { clearTimeout(t); off(); resolve(v); });
  });
}

before(async () => {
  const redisPort = await freePort();
  procs.push(startRedis(redisPort));
  ports = [await freePort(), await freePort()];
  for (const [i, port] of ports.entries()) {
    procs.push(startNode(['--listen', `127.0.0.1:${port}`, '--shards', '1', '--node-id',
      'n' + i, '--redis', `redis://127.0.0.1:${redisPort}`, '--admission-tick-ms', '200',
      '--log-level', 'warn'],
    { RINGCAST_JWT_SECRET: SECRET, RINGCAST_API_KEY: KEY,
      RINGCAST_ADMISSION_SECRET: 'js-queue-admission' }));
  }
  await Promise.all(ports.map(started));
  for (let i = 0; i < 100; i++) {
    const r = await api('PUT', '/api/queues/sale', { rate: 1, max_active: 100,
      state: 'paused' });
    if (r.status === 200) return;
    await new Promise((res) => setTimeout(res, 100)); // Redis not reached yet
  }
  throw new Error('the queue could not be created');
});

after(() => { for (const p of procs.reverse()) p.kill('SIGTERM'); });

const url = (i) => `ws://127.0.0.1:${ports[i]}/ws`;

test('wait in line, see the place shrink, get a token the node accepts', async () => {
  const users = ['ann', 'bob', 'cat'];
  const clients = [];
  const queues = [];
  for (const u of users) {
    const rc = new Client(url(0), { WebSocket, token: jwt({ sub: u }) });
    clients.push(rc);
    const q = rc.queue('sale');
    queues.push(q);
    await next(q, 'position'); // joined one after another: places 1, 2, 3
  }
  assert.deepEqual(queues.map((q) => q.position), [1, 2, 3]);
  assert.ok(queues.every((q) => q.state === 'waiting'));
  const seen = [];
  queues[2].on('position', (p) => seen.push(p.position));
  assert.equal((await api('PUT', '/api/queues/sale', { state: 'open' })).status, 200);
  const got = await queues[2].admitted;
  assert.equal(queues[0].state, 'admitted');
  assert.equal(queues[2].state, 'admitted');
  assert.ok(seen.length >= 1, 'positions came while waiting');
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] <= seen[i - 1], 'never goes up');
  assert.ok(got.expires > Date.now());
  const v = await api('POST', '/api/queues/verify', { token: got.token });
  assert.equal(v.body.valid, true);
  assert.equal(v.body.user, 'cat');
  assert.equal(v.body.queue, 'sale');
  for (const rc of clients) rc.close();
});

test('a reconnect to another node keeps the place; leaving gives it up', async () => {
  assert.equal((await api('PUT', '/api/queues/sale', { state: 'paused' })).status, 200);
  // A node that is down first, then the two live ones: the client moves on.
  const dead = await freePort();
  const first = new Client(url(0), { WebSocket, token: jwt({ sub: 'dan' }) });
  const q0 = first.queue('sale');
  const joined = await next(q0, 'position');
  const rc = new Client([url(1), `ws://127.0.0.1:${dead}/ws`], { WebSocket, minDelay: 50,
    maxDelay: 200, token: jwt({ sub: 'eve' }) });
  const q = rc.queue('sale');
  const before = await next(q, 'position');
  assert.equal(before.position, 1 + joined.position);
  // Dropped by the server: it comes back (on whichever node answers) and joins again.
  const gone = next(rc, 'disconnect');
  assert.equal((await api('POST', '/api/disconnect', { user: 'eve', code: 4100 })).status, 202);
  await gone;
  const again = await next(q, 'position');
  assert.equal(again.ticket, before.ticket, 'the same place in line');
  assert.equal(rc.url, url(1), 'the dead node was skipped');
  // Leaving: the place goes, the promise says so, and dan hears nothing of eve.
  const left = next(q, 'left');
  await q.leave();
  assert.deepEqual(await left, { reason: 'left' });
  await assert.rejects(q.admitted, (e) => e.code === 'queue_left');
  const st = await api('GET', '/api/queues/sale');
  assert.equal(st.body.waiting, 1);
  // dan's other tab leaves: this connection is told (news, not an answer).
  const tab = new Client(url(1), { WebSocket, token: jwt({ sub: 'dan' }) });
  const q2 = tab.queue('sale');
  await next(q2, 'position');
  const news = next(q0, 'left');
  await q2.leave();
  assert.equal((await news).reason, 'left_elsewhere');
  assert.equal(q0.state, 'left');
  for (const c of [first, rc, tab]) c.close();
});

test('one tick frame for every waiter on both nodes; each derives its exact place', async () => {
  assert.equal((await api('PUT', '/api/queues/line', { rate: 1, max_active: 100,
    state: 'paused' })).status, 200);
  const waiters = [];
  try {
    const users = ['fay', 'gil', 'hal', 'ivy', 'jon', 'kit'];
    for (const [i, u] of users.entries()) {
      const rc = new Client(url(i % 2), { WebSocket, token: jwt({ sub: u }) });
      const w = { rc, raw: [], seen: [] };
      waiters.push(w);
      // What the server sent, before the client reads it.
      const take = rc._onMessage.bind(rc);
      rc._onMessage = (text) => { w.raw.push(text); take(text); };
      w.q = rc.queue('line');
      w.q.on('position', (p) => w.seen.push(p));
      await next(w.q, 'position'); // joined one after another: tickets in order
    }
    const tickets = waiters.map((w) => w.q.ticket);
    for (let i = 1; i < tickets.length; i++) assert.equal(tickets[i], tickets[i - 1] + 1);
    // Every one hears a paused tick: no estimate.
    await Promise.all(waiters.map((w) => next(w.q, 'position')));
    for (const w of waiters) assert.equal(w.q.eta, null);
    assert.equal((await api('PUT', '/api/queues/line', { state: 'open' })).status, 200);
    await Promise.all(waiters.map((w) => w.q.admitted));
    const byTime = new Map(); // tick time -> the frame's text, and each waiter's place in it
    for (const [i, w] of waiters.entries()) {
      const frames = w.raw.filter((t) => JSON.parse(t).type === 'queue.tick');
      assert.ok(frames.length >= 1 + i, 'a tick per place while waiting');
      // joined, then one place per tick frame, as the client told them
      assert.equal(w.seen.length, 1 + frames.length);
      for (const [k, text] of frames.entries()) {
        const m = JSON.parse(text);
        assert.deepEqual(Object.keys(m).sort(),
          ['ewma', 'head', 'paused', 'queue', 'tick', 'time', 'type']);
        const place = Math.max(tickets[i] - m.head, 1);
        const eta = m.ewma >= 0.01 ? Math.ceil(place / m.ewma * m.tick / 1000) : null;
        assert.deepEqual(w.seen[1 + k], { position: place, eta, ticket: tickets[i] });
        const e = byTime.get(m.time) ?? { text, places: [] };
        assert.equal(text, e.text, 'the same bytes for every waiter');
        e.places.push(place);
        byTime.set(m.time, e);
      }
      for (let k = 1; k < w.seen.length; k++)
        assert.ok(w.seen[k].position <= w.seen[k - 1].position, 'never goes up');
    }
    // Exact: the waiters a tick reached hold places 1, 2, ... n between them.
    for (const { places } of byTime.values())
      assert.deepEqual(places.sort((a, b) => a - b), places.map((_, k) => k + 1));
    assert.ok([...byTime.values()].some((e) => e.places.length === users.length));
  } finally {
    for (const w of waiters) w.rc.close();
  }
});
