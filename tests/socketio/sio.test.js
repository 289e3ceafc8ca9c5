// Unmodified Socket.IO clients (socket.io-client 4, in Node and in Debian's
// chromium) and an unmodified backend (@socket.io/redis-emitter, a stream
// worker on npm redis) against two ringcast nodes and a redis-server, all
// on free ports. The ticketing flow as Socket.IO apps write it, then bad
// input, each answered as a Socket.IO server answers it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { freePort, jwt, ready, started, startNode, startRedis, sleep } from
  '../../clients/js/test/helpers.js';

const require = createRequire(import.meta.url);
const { Emitter } = require('@socket.io/redis-emitter');
const { createClient } = require('redis');
const here = path.dirname(fileURLToPath(import.meta.url));

const SECRET = 'sio-test-secret';
const token = (sub) => jwt(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 3600 });
let redisPort, redis, nodes = [], ports = [], rc, emitter, pagePort, pageServer;

before(async () => {
  redisPort = await freePort();
  redis = startRedis(redisPort);
  ports = [await freePort(), await freePort()];
  pagePort = await freePort();
  for (const p of ports) {
    nodes.push(startNode(['--listen', `127.0.0.1:${p}`, '--shards', '2', '--log-level', 'warn',
      '--redis-url', `redis://127.0.0.1:${redisPort}`, '--no-anonymous', '--public', 'event:*,admin/event:*',
      '--socketio-namespace', '/admin', '--socketio-emitter', 'socket.io',
      '--socketio-map', 'join:event subscribe event:',
      '--socketio-map', 'leave:event unsubscribe event:',
      '--event-stream', 'ticket:* tickets', '--max-body-bytes', '4096',
      '--allowed-origin', `http://127.0.0.1:${pagePort}`,
      '--ping-interval-ms', '1500', '--pong-timeout-ms', '1500'],
    { RINGCAST_JWT_SECRET: SECRET }));
  }
  await Promise.all(ports.map(started));
  // Both Redis links up: the emitter's first message must not go by unheard.
  await Promise.all(ports.map(ready));
  rc = createClient({ url: `redis://127.0.0.1:${redisPort}` });
  await rc.connect();
  emitter = new Emitter(rc);
});

after(async () => {
  await rc?.quit();
  pageServer?.close();
  for (const n of nodes) n.kill('SIGTERM');
  redis?.kill('SIGTERM');
});

const url = (i) => `http://127.0.0.1:${ports[i]}`;

/** A client as an app makes it: the token in auth. */
function client(i, opts = {}, nsp = '') {
  return io(url(i) + nsp, { auth: { token: token(opts.user || 'u1') }, reconnection: false,
    forceNew: true, ...opts });
}

function once(sock, ev, ms = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no ' + ev)), ms);
    sock.once(ev, (...a) => { clearTimeout(t); resolve(a.length > 1 ? a : a[0]); });
  });
}

/** Emits with an ack and waits for the ack's arguments. */
function ask(sock, ev, ...args) {
  return sock.timeout(8000).emitWithAck(ev, ...args);
}

async function metric(i, name) {
  const text = await (await fetch(url(i) + '/metrics')).text();
  const m = text.match(new RegExp('^' + name + ' (\\d+)$', 'm'));
  return m ? Number(m[1]) : NaN;
}

test('default transports upgrade from polling; WebSocket-only; emitter reaches both nodes', async () => {
  const a = client(0); // polling first, then the upgrade
  const b = client(1, { transports: ['websocket'] });
  const upgraded = once(a.io.engine, 'upgrade');
  await Promise.all([once(a, 'connect'), once(b, 'connect')]);
  assert.equal((await upgraded).name, 'websocket');
  assert.equal(b.io.engine.transport.name, 'websocket');
  assert.deepEqual(await ask(a, 'join:event', 7), { ok: true, channel: 'event:7' });
  assert.deepEqual(await ask(b, 'join:event', '7'), { ok: true, channel: 'event:7' });
  const got = [once(a, 'ticket:updated'), once(b, 'ticket:updated')];
  emitter.to('event:7').emit('ticket:updated', { id: 7, left: 41 });
  assert.deepEqual(await Promise.all(got), [{ id: 7, left: 41 }, { id: 7, left: 41 }]);
  // Several arguments arrive as several, as from a Socket.IO server; an
  // array stays one argument; a room nobody joined reaches nobody.
  const args = (s) => new Promise((resolve) => s.once('ticket:updated', (...x) => resolve(x)));
  let second = [args(a), args(b)];
  emitter.to('event:8').emit('ticket:updated', { id: 8 });
  emitter.to('event:7').emit('ticket:updated', 1, 'two', { three: 3 });
  assert.deepEqual(await Promise.all(second), [[1, 'two', { three: 3 }], [1, 'two', { three: 3 }]]);
  second = [args(a), args(b)];
  emitter.to('event:7').emit('ticket:updated', [1, 'two']);
  assert.deepEqual(await Promise.all(second), [[[1, 'two']], [[1, 'two']]]);
  // leave:event stops the messages.
  assert.deepEqual(await ask(b, 'leave:event', 7), { ok: true, channel: 'event:7' });
  const late = once(a, 'ticket:updated');
  let bGot = 0;
  b.on('ticket:updated', () => bGot++);
  emitter.to('event:7').emit('ticket:updated', { id: 7, left: 40 });
  assert.deepEqual(await late, { id: 7, left: 40 });
  await sleep(200);
  assert.equal(bGot, 0);
  a.close();
  b.close();
});

test('polling only: GETs and POSTs reach the session on whichever shard holds it', async () => {
  const moved = await metric(0, 'ringcast_connections_moved_total');
  const socks = [];
  for (let i = 0; i < 6; i++) socks.push(client(0, { transports: ['polling'], user: 'p' + i }));
  await Promise.all(socks.map((s) => once(s, 'connect')));
  for (const s of socks) assert.deepEqual(await ask(s, 'join:event', 'p'), { ok: true, channel: 'event:p' });
  const got = socks.map((s) => once(s, 'ticket:updated'));
  emitter.to('event:p').emit('ticket:updated', { n: 1 });
  assert.deepEqual(await Promise.all(got), socks.map(() => ({ n: 1 })));
  // Pings go out every 1.5 s: sessions that answer them stay.
  await sleep(3500);
  for (const s of socks) assert.ok(s.connected);
  assert.ok(await metric(0, 'ringcast_connections_moved_total') > moved,
    'requests that reached the other shard were moved there');
  for (const s of socks) s.close();
});

test('events go to the backend stream and its reply answers the ack', async () => {
  const worker = createClient({ url: `redis://127.0.0.1:${redisPort}` });
  await worker.connect();
  const stream = 'rc:ev:tickets';
  await worker.xGroupCreate(stream, 'w', '0', { MKSTREAM: true }).catch(() => {});
  let stop = false;
  const served = (async () => {
    const seen = [];
    while (!stop) {
      const r = await worker.xReadGroup('w', 'w1', { key: stream, id: '>' }, { COUNT: 10, BLOCK: 200 });
      for (const e of r?.[0]?.messages || []) {
        const f = e.message;
        seen.push(f);
        const data = JSON.parse(f.data);
        await worker.publish(f.reply_channel, JSON.stringify({ to: f.reply, id: JSON.parse(f.id),
          data: data.seat > 0 ? { held: data.seat, by: f.user } : undefined,
          error: data.seat > 0 ? undefined : 'no such seat' }));
      }
    }
    return seen;
  })();
  const a = client(1, { user: 'alice' });
  await once(a, 'connect');
  assert.deepEqual(await ask(a, 'ticket:buy', { seat: 3 }), { held: 3, by: 'alice' });
  assert.deepEqual(await ask(a, 'ticket:buy', { seat: -1 }), { error: 'no such seat' });
  // An event no stream takes: refused with its code, to the ack.
  const r = await ask(a, 'other:thing', 1);
  assert.equal(r.error, 'unknown_event');
  stop = true;
  const seen = await served;
  assert.equal(seen.length, 2);
  assert.equal(seen[0].event, 'ticket:buy');
  assert.equal(seen[0].user, 'alice');
  a.close();
  await worker.quit();
});

test('CONNECT_ERROR for a bad token, a missing one and an unknown namespace', async () => {
  const bad = io(url(0), { auth: { token: 'x.y.z' }, reconnection: false, forceNew: true });
  assert.match((await once(bad, 'connect_error')).message, /token/);
  bad.close();
  const none = io(url(0), { reconnection: false, forceNew: true });
  assert.equal((await once(none, 'connect_error')).message, 'a token is required');
  none.close();
  const nsp = client(0, { transports: ['websocket'] }, '/nope');
  assert.equal((await once(nsp, 'connect_error')).message, 'Invalid namespace');
  nsp.close();
  assert.ok(await metric(0, 'ringcast_socketio_connect_errors_total') >= 3);
});

test('namespaces: /admin rooms are their own', async () => {
  const admin = client(0, { transports: ['websocket'] }, '/admin');
  const root = client(1, { transports: ['websocket'] });
  await Promise.all([once(admin, 'connect'), once(root, 'connect')]);
  assert.deepEqual(await ask(admin, 'join:event', 1), { ok: true, channel: 'admin/event:1' });
  assert.deepEqual(await ask(root, 'join:event', 1), { ok: true, channel: 'event:1' });
  let rootGot = 0;
  root.on('stats', () => rootGot++);
  const got = once(admin, 'stats');
  emitter.of('/admin').to('event:1').emit('stats', { sold: 5 });
  assert.deepEqual(await got, { sold: 5 });
  await sleep(200);
  assert.equal(rootGot, 0);
  admin.close();
  root.close();
});

test('bad input: each answered as a Socket.IO server does, nobody else disturbed', async () => {
  const bystander = client(0, { transports: ['websocket'], user: 'bystander' });
  await once(bystander, 'connect');
  await ask(bystander, 'join:event', 'calm');
  const base = url(0) + '/socket.io/?EIO=4&transport=polling';
  const j = async (r) => [r.status, await r.json()];
  assert.deepEqual(await j(await fetch(base + '&sid=00000001000001AAAAAAAAAAAAAAAA')),
    [400, { code: 1, message: 'Session ID unknown' }]);
  assert.deepEqual(await j(await fetch(base + '&sid=nope')), [400, { code: 1, message: 'Session ID unknown' }]);
  assert.deepEqual(await j(await fetch(url(0) + '/socket.io/?EIO=3&transport=polling')),
    [400, { code: 5, message: 'Unsupported protocol version' }]);
  assert.deepEqual(await j(await fetch(url(0) + '/socket.io/?EIO=4&transport=flash')),
    [400, { code: 0, message: 'Transport unknown' }]);
  assert.deepEqual(await j(await fetch(base, { method: 'POST', body: '40' })),
    [400, { code: 2, message: 'Bad handshake method' }]);
  assert.deepEqual(await j(await fetch(base, { headers: { Origin: 'https://evil.example' } })),
    [403, { code: 4, message: 'Forbidden' }]);
  // A session: its open packet, then an oversized body and an empty packet.
  const open = await (await fetch(base)).text();
  assert.equal(open[0], '0');
  const { sid, upgrades, maxPayload } = JSON.parse(open.slice(1));
  assert.deepEqual(upgrades, ['websocket']);
  assert.equal(maxPayload, 4096);
  const big = await fetch(base + '&sid=' + sid, { method: 'POST', body: '4' + 'x'.repeat(5000) });
  assert.equal(big.status, 413);
  const empty = await fetch(base + '&sid=' + sid, { method: 'POST', body: '40\x1e' });
  assert.deepEqual(await j(empty), [400, { code: 3, message: 'Bad request' }]);
  assert.deepEqual(await j(await fetch(base + '&sid=' + sid)), [400, { code: 1, message: 'Session ID unknown' }],
    'the session ended with its parse error');
  // Malformed packets over WebSocket: the connection is closed with the reason.
  for (const bad of ['4x', '9', '42["unclosed"', '451-["bin",{"_placeholder":true,"num":0}]']) {
    const ws = new WebSocket(`ws://127.0.0.1:${ports[0]}/socket.io/?EIO=4&transport=websocket`);
    await new Promise((r) => ws.once('message', r)); // the open packet
    ws.send('40{"token":"' + token('raw') + '"}');
    await new Promise((r) => ws.once('message', r)); // CONNECT's answer
    ws.send(bad);
    if (bad.startsWith('451-')) {
      const m = await new Promise((r) => ws.once('message', (d) => r(String(d))));
      assert.match(m, /^42\["ringcast:error",\{"error":"binary_unsupported"/);
      ws.close();
      continue;
    }
    const [code, reason] = await new Promise((r) => ws.once('close', (c, why) => r([c, String(why)])));
    assert.equal(code, 1008);
    assert.match(reason, /^parse error/);
  }
  assert.ok(await metric(0, 'ringcast_socketio_bad_packets_total') >= 4);
  // The bystander still gets its messages.
  const got = once(bystander, 'note');
  emitter.to('event:calm').emit('note', 'still here');
  assert.equal(await got, 'still here');
  bystander.close();
});

/** A polling session made by hand: its sid, and its URL with the sid. */
async function pollingSession(i, user, tok = token(user)) {
  const base = url(i) + '/socket.io/?EIO=4&transport=polling';
  const { sid } = JSON.parse((await (await fetch(base)).text()).slice(1));
  const q = base + '&sid=' + sid;
  const posted = await fetch(q, { method: 'POST', body: '40{"token":"' + tok + '"}' });
  assert.equal(await posted.text(), 'ok');
  assert.match(await (await fetch(q)).text(), /^40\{/);
  return { sid, q };
}

/** Polls q, answering pings, until stop() or a refusal: the session stays. */
function keepPolling(q) {
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const r = await fetch(q);
      const body = await r.text();
      if (r.status !== 200) return r.status;
      if (body.split('\x1e').includes('2')) await fetch(q, { method: 'POST', body: '3' });
    }
    return 200;
  })().catch(() => 0); // the node went away: the test that polls says what failed
  return { stop: () => { stopped = true; return done; }, done };
}

/** A WebSocket that upgrades the session sid (its carrier). */
function carrier(i, sid) {
  return new WebSocket(`ws://127.0.0.1:${ports[i]}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
}

const opened = (ws) => new Promise((resolve, reject) => {
  ws.once('open', resolve);
  ws.once('unexpected-response', (req, res) => reject(new Error('HTTP ' + res.statusCode)));
});
const refusedWith = (ws) => new Promise((resolve) => {
  ws.once('open', () => resolve('open'));
  ws.once('unexpected-response', (req, res) => resolve(res.statusCode));
});
const closedWith = (ws, ms = 8000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('not closed')), ms);
  ws.once('close', (code, why) => { clearTimeout(t); resolve([code, String(why)]); });
});
const nextText = (ws, ms = 5000) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('no message')), ms);
  ws.once('message', (d) => { clearTimeout(t); resolve(String(d)); });
});

async function metricLabel(i, name, label) {
  const text = await (await fetch(url(i) + '/metrics')).text();
  const m = text.match(new RegExp('^' + name + '\\{' + label + '\\} (\\d+)$', 'm'));
  return m ? Number(m[1]) : NaN;
}

test('upgrade: a silent carrier is closed at its deadline; one carrier at a time', async () => {
  const { sid, q } = await pollingSession(0, 'carrier');
  const poll = keepPolling(q);
  const timeouts = await metricLabel(0, 'ringcast_socketio_upgrades_total', 'outcome="timeout"');
  const refusedBefore = await metricLabel(0, 'ringcast_socketio_upgrades_total', 'outcome="refused"');
  // A carrier that never probes nor upgrades: closed after a ping interval and
  // timeout (3 s).
  const silent = carrier(0, sid);
  await opened(silent);
  const t0 = Date.now();
  const [code, reason] = await closedWith(silent, 8000);
  assert.equal(code, 1008);
  assert.match(reason, /^upgrade timeout/);
  assert.ok(Date.now() - t0 < 6000);
  assert.equal(await metricLabel(0, 'ringcast_socketio_upgrades_total', 'outcome="timeout"'), timeouts + 1);
  // Two carriers open; the first to probe has the session, the other is refused.
  const first = carrier(0, sid), extra = carrier(0, sid), late = carrier(0, sid);
  await Promise.all([opened(first), opened(extra), opened(late)]);
  first.send('2probe');
  assert.equal(await nextText(first), '3probe');
  extra.send('2probe');
  const [ecode, ereason] = await closedWith(extra);
  assert.equal(ecode, 1008);
  assert.match(ereason, /another upgrade of this session is under way/);
  // A third one asking now is refused at its handshake.
  assert.equal(await refusedWith(carrier(0, sid)), 400);
  first.on('message', (d) => { if (String(d) === '2') first.send('3'); });
  first.send('5');
  assert.equal(await poll.done, 400, 'polling ends with the upgrade');
  const posted = await fetch(q, { method: 'POST', body: '42["after"]' });
  assert.deepEqual([posted.status, await posted.json()], [400, { code: 3, message: 'Bad request' }],
    'nor does a POST reach an upgraded session');
  // A carrier opened before the upgrade cannot take the session from the first,
  // and its close leaves the session to the first.
  late.send('5');
  const [lcode, lreason] = await closedWith(late);
  assert.equal(lcode, 1008);
  assert.match(lreason, /has upgraded already/);
  assert.ok(await metricLabel(0, 'ringcast_socketio_upgrades_total', 'outcome="refused"') >= refusedBefore + 3);
  const pinged = nextText(first, 4000);
  assert.equal(await pinged, '2', 'the session pings through its carrier');
  await sleep(300);
  assert.equal(first.readyState, WebSocket.OPEN);
  first.send('41');
  first.close();
});

/** A client's text frame, masked with a zero key, as raw bytes. */
function clientFrame(text) {
  const p = Buffer.from(text);
  assert.ok(p.length < 126);
  return Buffer.concat([Buffer.from([0x81, 0x80 | p.length, 0, 0, 0, 0]), p]);
}

/** Upgrades a hand-made polling session; its carrier answers pings. */
async function upgraded(i, user, tok) {
  const { sid, q } = await pollingSession(i, user, tok);
  const poll = keepPolling(q);
  const ws = carrier(i, sid);
  await opened(ws);
  ws.send('2probe');
  assert.equal(await nextText(ws), '3probe');
  ws.send('5');
  assert.equal(await poll.done, 400);
  ws.on('message', (d) => { if (String(d) === '2') ws.send('3'); });
  return ws;
}

test('an upgraded session closes through its carrier: its last packets, then its close code', async () => {
  // A malformed packet right behind a ping (one read): the pong, then 1008 and why.
  const a = await upgraded(0, 'closer');
  const seen = [];
  a.on('message', (d) => seen.push(String(d)));
  const aClosed = closedWith(a);
  a._socket.write(Buffer.concat([clientFrame('2hello'), clientFrame('9')]));
  const [code, reason] = await aClosed;
  assert.equal(code, 1008);
  assert.match(reason, /^parse error: not an Engine.IO packet type/);
  assert.deepEqual(seen.filter((m) => m !== '2'), ['3hello'], 'the pong went out before the close');
  // A token that expires: 4001, as on a WebSocket session.
  const b = await upgraded(1, 'expiring',
    jwt(SECRET, { sub: 'expiring', exp: Math.floor(Date.now() / 1000) + 2 }));
  const [bcode, breason] = await closedWith(b, 6000);
  assert.equal(bcode, 4001);
  assert.match(breason, /^token expired/);
});

test('polling sessions hold virtual slots, not --max-connections; full and draining answer 503', async () => {
  // One shard of 68 socket slots, 4 of them for connections (--max-connections),
  // and 68 virtual slots for polling sessions.
  const port = await freePort();
  const node = startNode(['--listen', `127.0.0.1:${port}`, '--shards', '1', '--log-level', 'error',
    '--max-connections', '4', '--ping-interval-ms', '20000', '--pong-timeout-ms', '5000'], {});
  try {
    await started(port);
    const base = `http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`;
    const sids = [];
    for (let i = 0; i < 6; i++) {
      const r = await fetch(base);
      assert.equal(r.status, 200);
      sids.push(JSON.parse((await r.text()).slice(1)).sid);
    }
    // Six sessions, more than --max-connections: a WebSocket still gets in.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    await opened(ws);
    ws.close();
    // The virtual table full: 503, with Retry-After, counted as full.
    let ok = 6, refused;
    for (; ok < 200; ok++) {
      const r = await fetch(base);
      if (r.status !== 200) { refused = r; break; }
      await r.text();
    }
    assert.equal(ok, 68, 'as many sessions as virtual slots');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.match(await refused.text(), /no room for a polling session/);
    const full = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(full, /^ringcast_handshakes_total\{outcome="full"\} 1$/m);
    // The drain: a GET parked on its session is answered with the close packet.
    const parked = fetch(base + '&sid=' + sids[0]).then((r) => r.text());
    await sleep(300);
    node.kill('SIGTERM');
    assert.equal(await parked, '1');
  } finally {
    node.kill('SIGKILL');
  }
});

/** Sends text on a new connection and half-closes it; resolves to all it reads. */
function halfClosed(port, text) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.end(text));
    let got = '';
    sock.on('data', (d) => { got += d; });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
  });
}

test('a request that half-closes is answered, also when it moves to its session\'s shard', async () => {
  const { sid, q } = await pollingSession(0, 'half');
  const poll = keepPolling(q);
  const moved = await metric(0, 'ringcast_connections_moved_total');
  const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  for (let i = 0; i < 12; i++) {
    const res = await halfClosed(ports[0],
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\n6`);
    assert.match(res, /^HTTP\/1\.1 200 [^]*\r\n\r\nok$/, `request ${i}`);
  }
  assert.ok(await metric(0, 'ringcast_connections_moved_total') > moved, 'some went to the other shard');
  await poll.stop();
});

test('headless chromium on another origin: polling with credentials, then WebSocket', async (t) => {
  let puppeteer;
  try {
    puppeteer = (await import('puppeteer-core')).default;
  } catch {
    t.skip('puppeteer-core is not installed (tests/deps.sh installs it)');
    return;
  }
  const bundle = fs.readFileSync(path.join(here, 'node_modules/socket.io-client/dist/socket.io.min.js'));
  pageServer = http.createServer((req, res) => {
    if (req.url === '/socket.io.min.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(bundle);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><script src="/socket.io.min.js"></script>');
  }).listen(pagePort, '127.0.0.1');
  const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${pagePort}/`);
    const result = page.evaluate((u, tok) => new Promise((resolve, reject) => {
      const s = io(u, { auth: { token: tok }, withCredentials: true });
      const seen = {};
      // The engine's first transport, when it opens (before any upgrade).
      s.io.on('open', () => { seen.first = s.io.engine.transport.name; });
      s.on('connect', () => {
        s.emit('join:event', 'web', (r) => { seen.join = r; window.joined = true; });
      });
      s.on('ticket:updated', async (d) => {
        seen.data = d;
        for (let i = 0; i < 100 && s.io.engine.transport.name !== 'websocket'; i++)
          await new Promise((r) => setTimeout(r, 50));
        seen.last = s.io.engine.transport.name;
        s.close();
        resolve(seen);
      });
      s.on('connect_error', (e) => reject(new Error(e.message)));
    }), url(1), token('browser'));
    await page.waitForFunction(() => window.joined === true, { timeout: 10000 });
    await sleep(300);
    emitter.to('event:web').emit('ticket:updated', { seat: 'A1' });
    const seen = await result;
    assert.deepEqual(seen.join, { ok: true, channel: 'event:web' });
    assert.deepEqual(seen.data, { seat: 'A1' });
    assert.equal(seen.first, 'polling');
    assert.equal(seen.last, 'websocket', 'upgraded');
  } finally {
    await browser.close();
  }
});

/** The value of a metric with labels (its full name as /metrics prints it). */
async function metricL(i, full) {
  const text = await (await fetch(url(i) + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(full + ' '));
  return line ? Number(line.slice(full.length + 1)) : NaN;
}

/** Waits (bounded) until cond() holds. */
async function until(cond, what, ms = 8000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(50);
  }
}

/** Waits until n subscribers hear Redis channel name. */
async function subscribers(name, n) {
  await until(async () => {
    const [, count] = await rc.sendCommand(['PUBSUB', 'NUMSUB', name]);
    return Number(count) === n;
  }, `${n} subscribers of ${name}`);
}

/** Counts the events ev each socket gets. */
function counting(socks, ev) {
  const got = socks.map(() => []);
  // One argument as itself; several as the list of them.
  socks.forEach((s, i) => s.on(ev, (...d) => got[i].push(d.length > 1 ? d : d[0])));
  return got;
}

/** A marker on room after what was sent before it: once each socket has it,
 * whatever came before it on the same node has come too (one Redis
 * connection per node, one queue per shard, in order). */
async function marker(room, socks) {
  const seen = socks.map((s) => once(s, 'marker'));
  emitter.to(room).emit('marker', 1);
  await Promise.all(seen);
}

test('emitter: several rooms, a namespace, except, each socket once, on both nodes', async () => {
  await subscribers('socket.io#/#', 2);
  await subscribers('socket.io#/admin#', 2);
  const ab = client(0, { transports: ['websocket'], user: 'ab' }); // in event:a and event:b
  const a = client(1, { user: 'a' }); // in event:a, polling then WebSocket
  const none = client(1, { transports: ['websocket'], user: 'none' }); // in no room
  const admin = client(0, { transports: ['websocket'], user: 'adm' }, '/admin');
  const all = [ab, a, none, admin];
  await Promise.all(all.map((s) => once(s, 'connect')));
  await ask(ab, 'join:event', 'a');
  await ask(ab, 'join:event', 'b');
  await ask(a, 'join:event', 'a');
  await ask(none, 'join:event', 'm'); // for the marker only
  await ask(admin, 'join:event', 'a'); // admin/event:a: another namespace's room
  const multi = counting(all, 'multi');
  const everyone = counting(all, 'everyone');
  const except = counting(all, 'except');
  const before = await metricL(0, 'ringcast_socketio_emitter_messages_total{kind="rooms",outcome="applied"}');

  emitter.to(['event:a', 'event:b']).emit('multi', { n: 1 });
  emitter.emit('everyone', 'hi');
  emitter.to('event:a').except('event:b').emit('except', 1, 2); // two arguments, as two
  emitter.to(['event:a', 'event:b']).except('event:a').emit('except', 'nobody');
  for (const room of ['event:a', 'event:m']) await marker(room, room === 'event:a' ? [ab, a] : [none]);
  emitter.of('/admin').to('event:a').emit('marker', 1);
  await once(admin, 'marker');

  assert.deepEqual(multi, [[{ n: 1 }], [{ n: 1 }], [], []], 'each member of a or b once, nobody else');
  assert.deepEqual(everyone, [['hi'], ['hi'], ['hi'], []], 'every socket of "/", none of /admin');
  assert.deepEqual(except, [[], [[1, 2]], [], []], 'a member of a and not b');
  assert.equal(await metricL(0, 'ringcast_socketio_emitter_messages_total{kind="rooms",outcome="applied"}'),
    before + 2);
  assert.ok(await metricL(1, 'ringcast_socketio_emitter_reached_total') >= 4);
  for (const s of all) s.close();
});

test('emitter: socketsJoin, socketsLeave, disconnectSockets, serverSideEmit', async () => {
  const ab = client(0, { transports: ['websocket'], user: 'j-ab' });
  const a = client(1, { transports: ['websocket'], user: 'j-a' });
  const other = client(1, { transports: ['websocket'], user: 'j-o' });
  const all = [ab, a, other];
  await Promise.all(all.map((s) => once(s, 'connect')));
  await ask(ab, 'join:event', 'ja');
  await ask(ab, 'join:event', 'jb');
  await ask(a, 'join:event', 'ja');
  await ask(other, 'join:event', 'jo');
  // Everybody in event:ja joins event:jc, on both nodes; the emit to it reaches them.
  emitter.in('event:ja').socketsJoin('event:jc');
  await subscribers('socket.io#/#event:jc#', 2);
  const jc = counting(all, 'jc');
  emitter.to('event:jc').emit('jc', 'joined');
  await marker('event:jc', [ab, a]);
  assert.deepEqual(jc, [['joined'], ['joined'], []]);
  // Everybody leaves it: no node listens for event:jc any more.
  emitter.in('event:jc').socketsLeave(['event:jc']);
  await subscribers('socket.io#/#event:jc#', 0);
  emitter.to(['event:jc', 'event:nobody']).emit('jc', 'left');
  await marker('event:ja', [ab, a]);
  assert.deepEqual(jc, [['joined'], ['joined'], []], 'nobody is in event:jc any more');
  // disconnectSockets: members of event:jb get a DISCONNECT (no reconnect);
  // with close, the connection closes.
  const gone = once(ab, 'disconnect');
  emitter.in('event:jb').disconnectSockets();
  assert.equal((await gone)[0], 'io server disconnect');
  const closed = once(a, 'disconnect');
  emitter.in('event:ja').except('event:jo').disconnectSockets(true);
  assert.equal((await closed)[0], 'transport close');
  assert.ok(other.connected, 'a socket in neither room stays');
  // serverSideEmit: the backends are the servers. Both nodes hear it; it
  // lands in the event stream that takes the event, once.
  const applied = 'ringcast_socketio_emitter_messages_total{kind="server_side_emit",outcome="applied"}';
  const refusedM = 'ringcast_socketio_emitter_messages_total{kind="server_side_emit",outcome="refused"}';
  const before = [await metricL(0, applied), await metricL(1, applied)];
  const stream = 'rc:ev:tickets';
  const last = (await rc.xRevRange(stream, '+', '-', { COUNT: 1 }))[0]?.id || '0-0';
  emitter.serverSideEmit('ticket:restock', { seats: 5 }, 'A');
  emitter.serverSideEmit('ticket:restock', { seats: 5 }, 'A'); // the same twice: two entries
  await until(async () => (await metricL(0, applied)) === before[0] + 2 &&
    (await metricL(1, applied)) === before[1] + 2, 'serverSideEmit heard on both nodes');
  await sleep(200);
  const entries = (await rc.xRange(stream, '(' + last, '+')).filter((x) => x.message.event === 'ticket:restock');
  assert.equal(entries.length, 2, 'each serverSideEmit once in the stream');
  assert.deepEqual(JSON.parse(entries[0].message.data), [{ seats: 5 }, 'A']);
  assert.equal(entries[0].message.source, 'server_side_emit');
  assert.equal(entries[0].message.user, '');
  // An event no stream takes is refused, counted on every node.
  const r0 = [await metricL(0, refusedM), await metricL(1, refusedM)];
  emitter.serverSideEmit('hello', 1);
  await until(async () => (await metricL(0, refusedM)) === r0[0] + 1 &&
    (await metricL(1, refusedM)) === r0[1] + 1, 'serverSideEmit of an unknown event refused on both nodes');
  const got = once(other, 'note');
  emitter.to('event:jo').emit('note', 'still here');
  assert.equal(await got, 'still here');
  for (const s of all) s.close();
});

test('a polling session the server closes: the next GET takes its last packets and the close', async () => {
  const base = url(0) + '/socket.io/?EIO=4&transport=polling';
  const open = await (await fetch(base)).text();
  const { sid } = JSON.parse(open.slice(1));
  const q = base + '&sid=' + sid;
  // A token that expires in two seconds: the node closes the session then
  // (4001), while no GET is waiting.
  const soon = jwt(SECRET, { sub: 'brief', exp: Math.floor(Date.now() / 1000) + 2 });
  assert.equal(await (await fetch(q, { method: 'POST', body: '40{"token":"' + soon + '"}' })).text(), 'ok');
  const first = await (await fetch(q)).text(); // the CONNECT answer, written for this GET
  assert.match(first, /^40\{"sid":"[^"]+"/);
  await sleep(3200);
  const last = await fetch(q);
  assert.equal(last.status, 200, 'the closing session is still there for its last GET');
  const packets = (await last.text()).split('\x1e');
  assert.equal(packets[packets.length - 1], '1', 'it ends with the close packet');
  // Then it is gone.
  await sleep(100);
  const after = await fetch(q);
  assert.equal(after.status, 400);
});
