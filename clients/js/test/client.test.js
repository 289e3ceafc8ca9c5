// The client against a real ringcast node (build/ringcast, started here on a
// free port): subscribe and publish, reconnect with recovery of what was
// published meanwhile, request errors and timeouts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { freePort, jwt as signed, sleep, started, startNode } from './helpers.js';
import { Client, RingcastError } from '../ringcast.js';

const SECRET = 'js-client-test-secret';
const KEY = 'js-client-test-key';
let srv, port;

const jwt = (claims) => signed(SECRET, claims);

async function api(p, body) {
  const r = await fetch(`http://127.0.0.1:${port}${p}`, {
    method: 'POST', headers: { Authorization: 'Bearer ' + KEY }, body: JSON.stringify(body),
  });
  return r.status;
}

function next(emitter, name, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no ' + name)), ms);
    const off = emitter.on(name, (v) => { clearTimeout(t); off(); resolve(v); });
  });
}

async function until(fn, what, ms = 5000) {
  for (const end = Date.now() + ms; !fn();) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(20);
  }
}

before(async () => {
  port = await freePort();
  srv = startNode(['--listen', `127.0.0.1:${port}`, '--shards', '1',
    '--history', 'chat:* size=100 ttl=3600', '--history', 'user:* size=100 ttl=3600',
    '--public', 'chat:*', '--log-level', 'warn'],
  { RINGCAST_JWT_SECRET: SECRET, RINGCAST_API_KEY: KEY });
  await started(port);
});

after(() => { srv.kill('SIGTERM'); });

test('subscribe, publish, receive', async () => {
  const rc = new Client(`ws://127.0.0.1:${port}/ws`, { WebSocket,
    token: jwt({ sub: 'ann', subscribe: ['*'], publish: ['*'] }) });
  await next(rc, 'state');
  if (rc.state !== 'connected') await next(rc, 'state');
  const sub = rc.subscribe('chat:a');
  await next(sub, 'subscribed');
  const got = next(sub, 'message');
  const ack = await rc.publish('chat:a', { text: 'hi' });
  assert.equal(ack.type, 'published');
  const m = await got;
  assert.deepEqual(m.data, { text: 'hi' });
  assert.equal(m.from.user, 'ann');
  assert.equal(sub.offset, 1);
  rc.close();
});

test('reconnect and recover what was published meanwhile', async (t) => {
  const rc = new Client(`ws://127.0.0.1:${port}/ws`, { WebSocket, minDelay: 300, maxDelay: 600,
    token: jwt({ sub: 'bob', subscribe: ['*'] }) });
  t.after(() => rc.close()); // a failure must not leave it reconnecting
  const sub = rc.subscribe('chat:r');
  await next(sub, 'subscribed');
  const seen = [];
  sub.on('message', (m) => seen.push(m.data));
  await api('/api/publish', { channel: 'chat:r', data: 1 });
  await api('/api/publish', { channel: 'chat:r', data: 2 });
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 20));
  // The server drops the connection; three messages go by meanwhile.
  const gone = next(rc, 'disconnect');
  assert.equal(await api('/api/disconnect', { user: 'bob', code: 4100 }), 202);
  assert.equal((await gone).code, 4100);
  for (const n of [3, 4, 5]) await api('/api/publish', { channel: 'chat:r', data: n });
  const rec = await next(sub, 'recovered', 15000); // a reconnect under a sanitizer may be slow
  assert.deepEqual(rec, { recovered: true, reason: undefined, missed: 3 });
  await api('/api/publish', { channel: 'chat:r', data: 6 });
  while (seen.length < 6) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]); // in order, once each
  rc.close();
});

test('a user channel: what was sent while away is recovered, once, in order', async () => {
  // A socket whose subscribes leave late: what is published meanwhile comes
  // through the server's quiet join before the subscribe's answer.
  let slow = false;
  class SlowSubscribe extends WebSocket {
    send(data) {
      if (slow && data.includes('"subscribe"')) setTimeout(() => super.send(data), 300);
      else super.send(data);
    }
  }
  const rc = new Client(`ws://127.0.0.1:${port}/ws`, { WebSocket: SlowSubscribe, minDelay: 100,
    maxDelay: 200, token: jwt({ sub: 'kim', subscribe: ['user:{sub}'] }) });
  const sub = rc.subscribe('user:kim'); // the server joined us already: this gives the position
  const first = await next(sub, 'subscribed');
  assert.equal(first.offset, 0);
  const seen = [];
  sub.on('message', (m) => seen.push(m.data));
  await api('/api/publish', { channel: 'user:kim', data: 1 });
  await until(() => seen.length >= 1, 'the first');
  const gone = next(rc, 'disconnect');
  assert.equal(await api('/api/disconnect', { user: 'kim', code: 4100 }), 202);
  await gone;
  await api('/api/publish', { channel: 'user:kim', data: 2 });
  // Published as the client comes back: the node's quiet join delivers it
  // before the subscribe's answer, whose recovery holds it too.
  slow = true;
  const off = rc.on('state', (st) => {
    if (st === 'connected') api('/api/publish', { channel: 'user:kim', data: 3 });
  });
  const rec = await next(sub, 'recovered');
  off();
  assert.equal(rec.recovered, true);
  await api('/api/publish', { channel: 'user:kim', data: 4 });
  await until(() => seen.includes(4), 'the live one after the recovery');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seen, [1, 2, 3, 4]);
  rc.close();
});

test('errors and timeouts are rejections', async () => {
  const rc = new Client(`ws://127.0.0.1:${port}/ws`, { WebSocket, timeout: 300 });
  await next(rc, 'state');
  if (rc.state !== 'connected') await next(rc, 'state');
  await assert.rejects(rc.publish('chat:x', 1), (e) => e instanceof RingcastError &&
    e.code === 'forbidden');
  // No backend here: the event cannot be stored.
  await assert.rejects(rc.rpc('seat:x', 1), (e) => e.code === 'events_unavailable');
  const sub = rc.subscribe('secret:1');
  const err = await next(sub, 'error');
  assert.equal(err.code, 'forbidden');
  rc.close();
  await assert.rejects(rc.publish('chat:x', 1), (e) => e.code === 'disconnected');
});

test('an RPC that nobody answers times out', async () => {
  // A peer that greets and then never answers: the client's timer decides.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  wss.on('connection', (ws) => ws.send(JSON.stringify({ type: 'welcome', conn: '1', node: 'x' })));
  const rc = new Client(`ws://127.0.0.1:${wss.address().port}/ws`, { WebSocket });
  await next(rc, 'state');
  if (rc.state !== 'connected') await next(rc, 'state');
  await assert.rejects(rc.rpc('seat:x', 1, { timeout: 200 }), (e) => e.code === 'timeout');
  rc.close();
  wss.close();
});
