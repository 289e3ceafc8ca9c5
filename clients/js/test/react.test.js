// The React hooks (react.js) against a real ringcast node (build/ringcast,
// started here on a free port) and real clients, rendered with
// react-test-renderer: messages in order, presence that follows another
// client, subscriptions let go on unmount (and kept while another hook or
// the application holds them), the connection's state, the waiting room.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { act, createElement as h } from 'react';
import { create } from 'react-test-renderer';
import { freePort, jwt as signed, sleep, started, startNode, startRedis } from './helpers.js';
import { Client } from '../ringcast.js';
import { useChannel, usePresence, useQueue, useConnectionState } from '../react.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const SECRET = 'js-react-test-secret';
const KEY = 'js-react-test-key';
const procs = [];
let port;

// React's complaints (an update outside act, a bad hook) fail the test that
// caused them; the renderer's notice that it is deprecated is not one.
const complaints = [];
const consoleError = console.error;
console.error = (...args) => {
  if (String(args[0]).includes('react-test-renderer is deprecated')) return;
  complaints.push(args.map(String).join(' '));
  consoleError(...args);
};

const jwt = (claims) => signed(SECRET, claims);

async function api(method, p, body, at = port) {
  const r = await fetch(`http://127.0.0.1:${at}${p}`, {
    method, headers: { Authorization: 'Bearer ' + KEY }, body: body && JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

// Everything that may make a hook update runs inside act, which renders
// what it did when it ends.
async function inAct(fn) {
  let out;
  await act(async () => { out = await fn(); });
  return out;
}

async function until(what, ok, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await inAct(ok))) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await inAct(() => sleep(20));
  }
}

async function publish(channel, data) {
  const r = await inAct(() => api('POST', '/api/publish', { channel, data }));
  assert.ok(r.status >= 200 && r.status < 300, 'published: ' + r.status);
}

async function connections(channel) {
  const r = await inAct(() => api('GET', `/api/channels/${channel}/presence-stats`));
  assert.equal(r.status, 200);
  return r.body.connections;
}

async function connected(claims, opts = {}) {
  const rc = new Client(`ws://127.0.0.1:${opts.port || port}/ws`, { WebSocket,
    token: jwt(claims), ...opts });
  await until('connected', () => rc.state === 'connected');
  return rc;
}

// A component that renders nothing and keeps what the hook gave, and how
// many times it rendered.
function probe(hook) {
  const seen = { renders: 0, value: null };
  function Probe(props) {
    seen.value = hook(props);
    seen.renders++;
    return null;
  }
  return [Probe, seen];
}

// What a test rendered is unmounted at its end, passed or failed (a
// mounted usePresence has a timer that would keep the process alive).
const mounted = [];

async function render(el) {
  let r;
  await act(() => { r = create(el); });
  mounted.push(r);
  return r;
}

async function cleanup(...clients) {
  for (const r of mounted.splice(0)) await act(() => r.unmount());
  for (const c of clients) c?.close();
}

function node(args, env = {}) {
  const p = startNode(args, { RINGCAST_JWT_SECRET: SECRET, RINGCAST_API_KEY: KEY, ...env });
  procs.push(p);
  return p;
}

before(async () => {
  port = await freePort();
  node(['--listen', `127.0.0.1:${port}`, '--shards', '1', '--history',
    'chat:* size=100 ttl=3600', '--public', 'chat:*', '--presence', 'chat:* join_leave',
    '--log-level', 'warn']);
  await started(port);
});

after(() => {
  for (const p of procs.reverse()) p.kill('SIGTERM');
  console.error = consoleError;
});

test('useChannel: messages in order, the last `limit`, let go on unmount', async () => {
  complaints.length = 0;
  const rc = await connected({ sub: 'ann' });
  try {
    const heard = [];
    // A new onMessage at each render: it must not resubscribe.
    const [Probe, seen] = probe(({ tag }) => useChannel(rc, 'chat:m', { limit: 3,
      onMessage: (m) => heard.push(tag + m.data) }));
    const r = await render(h(Probe, { tag: 'a' }));
    assert.deepEqual(seen.value, { messages: [], last: null, recovery: null, error: null });
    await until('subscribed', async () => (await connections('chat:m')) === 1);
    const sub = rc._subs.get('chat:m');
    // The node counts the member before the client has read its answer.
    await until('the answer read', () => sub.epoch !== null);
    let resubscribed = 0;
    sub.on('subscribed', () => resubscribed++);
    for (const n of [1, 2, 3, 4, 5]) await publish('chat:m', n);
    await until('five messages', () => seen.value.last?.data === 5);
    assert.deepEqual(seen.value.messages.map((m) => m.data), [3, 4, 5]);
    assert.deepEqual(seen.value.messages.map((m) => m.offset), [3, 4, 5]);
    assert.deepEqual(heard, ['a1', 'a2', 'a3', 'a4', 'a5']);

    await act(() => r.update(h(Probe, { tag: 'b' })));
    await publish('chat:m', 6);
    await until('the sixth', () => seen.value.last?.data === 6);
    assert.deepEqual(heard.slice(5), ['b6'], 'the newest onMessage, once');
    assert.equal(rc._subs.get('chat:m'), sub, 'the same subscription');
    assert.equal(resubscribed, 0);

    await act(() => r.unmount());
    assert.equal(rc._subs.has('chat:m'), false);
    await until('unsubscribed', async () => (await connections('chat:m')) === 0);
    const renders = seen.renders;
    await publish('chat:m', 7);
    await inAct(() => sleep(200));
    assert.equal(seen.renders, renders, 'no render after unmount');
    assert.equal(sub._h.get('message').size, 0, 'the hook took its listener away');
    assert.deepEqual(complaints, []);
  } finally {
    await cleanup(rc);
  }
});

test('useChannel: another channel, a recovery, an error', async () => {
  complaints.length = 0;
  const rc = await connected({ sub: 'bob' }, { minDelay: 50, maxDelay: 100 });
  try {
    const [Probe, seen] = probe(({ channel }) => useChannel(rc, channel));
    const r = await render(h(Probe, { channel: 'chat:c1' }));
    await until('subscribed to c1', async () => (await connections('chat:c1')) === 1);
    await publish('chat:c1', 'x');
    await until('x', () => seen.value.messages.length === 1);

    await act(() => r.update(h(Probe, { channel: 'chat:c2' })));
    assert.deepEqual(seen.value.messages, [], 'nothing of c1 shown on c2');
    await until('subscribed to c2', async () => (await connections('chat:c2')) === 1);
    assert.equal(await connections('chat:c1'), 0);
    await publish('chat:c1', 'not shown');
    await publish('chat:c2', 1);
    await until('1 on c2', () => seen.value.messages.length === 1);
    assert.deepEqual(seen.value.messages.map((m) => [m.channel, m.data]), [['chat:c2', 1]]);

    // Dropped by the server; one message goes by; the client comes back.
    const gone = new Promise((res) => rc.on('disconnect', res));
    assert.equal((await inAct(() => api('POST', '/api/disconnect',
      { user: 'bob', code: 4100 }))).status, 202);
    await inAct(() => gone);
    await publish('chat:c2', 2);
    await until('the recovery', () => seen.value.recovery !== null);
    assert.deepEqual(seen.value.recovery, { recovered: true, reason: undefined, missed: 1 });
    await until('2 on c2', () => seen.value.messages.length === 2);
    assert.deepEqual(seen.value.messages.map((m) => m.data), [1, 2]);

    await act(() => r.update(h(Probe, { channel: 'secret:1' })));
    await until('an error', () => seen.value.error !== null);
    assert.equal(seen.value.error.code, 'forbidden');
    await act(() => r.unmount());
    assert.deepEqual(complaints, []);
  } finally {
    await cleanup(rc);
  }
});

test('usePresence: counts follow a second client; the timer ends on unmount', async () => {
  complaints.length = 0;
  const a = await connected({ sub: 'cat' });
  let b;
  try {
    let asked = 0;
    const stats = a.presenceStats;
    a.presenceStats = (ch) => { asked++; return stats.call(a, ch); };
    // No timer to speak of at first: joins and leaves must be heard.
    const [Probe, seen] = probe(({ ms }) => usePresence(a, 'chat:p', { refreshMs: ms }));
    const r = await render(h(Probe, { ms: 60000 }));
    await until('cat alone', () => seen.value.connections === 1);
    assert.equal(seen.value.users, 1);
    assert.deepEqual(seen.value.members.map((m) => m.user), ['cat']);
    assert.equal(seen.value.members[0].conn, a.welcome.conn);

    b = await inAct(() => connected({ sub: 'dan' }));
    await inAct(() => b.subscribe('chat:p'));
    await until('dan joins', () => seen.value.connections === 2);
    assert.equal(seen.value.users, 2);
    assert.deepEqual(seen.value.members.map((m) => m.user).sort(), ['cat', 'dan']);
    await inAct(() => b.close());
    await until('dan leaves', () => seen.value.connections === 1);
    assert.deepEqual(seen.value.members.map((m) => m.user), ['cat']);

    // Nothing happens on the channel: the timer still asks.
    await act(() => r.update(h(Probe, { ms: 100 })));
    let before = asked;
    await inAct(() => sleep(600));
    assert.ok(asked >= before + 3, `asked again every refreshMs (${asked - before})`);
    assert.equal(seen.value.connections, 1);
    assert.equal(seen.value.error, null);

    await act(() => r.unmount());
    await until('unsubscribed', async () => (await connections('chat:p')) === 0);
    before = asked;
    const renders = seen.renders;
    await inAct(() => sleep(400));
    assert.equal(asked, before, 'no timer after unmount');
    assert.equal(seen.renders, renders, 'no render after unmount');
    assert.equal(a._h.get('state')?.size ?? 0, 0, 'no listener left on the client');
    assert.deepEqual(complaints, []);
  } finally {
    await cleanup(a, b);
  }
});

test('usePresence waits for the connection; a channel without presence is an error', async () => {
  complaints.length = 0;
  const rc = new Client(`ws://127.0.0.1:${port}/ws`, { WebSocket, autoConnect: false,
    token: jwt({ sub: 'hal', subscribe: ['*'] }) });
  try {
    const [Probe, seen] = probe(({ channel }) => usePresence(rc, channel, { refreshMs: 60000 }));
    const r = await render(h(Probe, { channel: 'chat:w' }));
    await inAct(() => sleep(100));
    assert.deepEqual(seen.value, { connections: null, users: null, members: null, error: null });
    await act(() => rc.connect());
    await until('counted', () => seen.value.connections === 1);
    assert.deepEqual(seen.value.members.map((m) => m.user), ['hal']);
    await act(() => r.update(h(Probe, { channel: 'news:1' })));
    assert.equal(seen.value.connections, null, 'nothing of chat:w shown on news:1');
    await until('an error', () => seen.value.error !== null);
    assert.equal(seen.value.error.code, 'no_presence');
    assert.deepEqual(complaints, []);
  } finally {
    await cleanup(rc);
  }
});

test('hooks on one channel share a subscription; the application keeps its own', async () => {
  complaints.length = 0;
  const rc = await connected({ sub: 'eve' });
  try {
    const [Messages, chan] = probe(() => useChannel(rc, 'chat:s'));
    const [Who, who] = probe(() => usePresence(rc, 'chat:s', { refreshMs: 60000 }));
    const tree = (m, p) => h('div', null, m && h(Messages), p && h(Who));
    const r = await render(tree(true, true));
    await until('counted', () => who.value.connections === 1);

    await act(() => r.update(tree(false, true))); // the messages go; the presence stays
    await inAct(() => sleep(100));
    assert.equal(await connections('chat:s'), 1, 'still subscribed');
    await act(() => r.update(tree(true, true)));
    await publish('chat:s', 'still here');
    await until('a message', () => chan.value.messages.length === 1);
    await act(() => r.update(tree(true, false)));
    await publish('chat:s', 'and now');
    await until('another', () => chan.value.messages.length === 2);
    await act(() => r.update(tree(false, false)));
    await until('unsubscribed', async () => (await connections('chat:s')) === 0);

    // The application subscribed first: the hook leaves that subscription be.
    const own = rc.subscribe('chat:own');
    await act(() => r.update(h(probe(() => useChannel(rc, 'chat:own'))[0])));
    await act(() => r.unmount());
    assert.equal(rc._subs.get('chat:own'), own);
    await until('still subscribed', async () => (await connections('chat:own')) === 1);
    assert.deepEqual(complaints, []);
  } finally {
    await cleanup(rc);
  }
});

test('useConnectionState follows the client', async () => {
  complaints.length = 0;
  const rc = new Client(`ws://127.0.0.1:${port}/ws`, { WebSocket, autoConnect: false });
  try {
    const [Probe, seen] = probe(({ client }) => useConnectionState(client));
    const r = await render(h(Probe, { client: null }));
    assert.equal(seen.value, 'disconnected');
    await act(() => r.update(h(Probe, { client: rc })));
    assert.equal(seen.value, 'disconnected');
    await act(() => rc.connect());
    assert.equal(seen.value, 'connecting');
    await until('connected', () => seen.value === 'connected');
    await act(() => rc.close());
    assert.equal(seen.value, 'closed');
    await act(() => r.unmount());
    assert.equal(rc._h.get('state').size, 0);
    assert.deepEqual(complaints, []);
  } finally {
    await cleanup(rc);
  }
});

test('useQueue without Redis: not joined, the error, leaving', async () => {
  complaints.length = 0;
  const rc = await connected({ sub: 'fay' });
  try {
    const [Probe, seen] = probe(({ id }) => useQueue(rc, id));
    const r = await render(h(Probe, { id: null }));
    assert.equal(seen.value.state, null);
    await seen.value.leave(); // nothing to leave
    await act(() => r.update(h(Probe, { id: 'sale' })));
    assert.equal(seen.value.state, 'joining');
    await until('the error', () => seen.value.error !== null);
    assert.equal(seen.value.error.code, 'queue_unavailable');
    assert.equal(seen.value.state, 'joining', 'still in line for a retry');
    await inAct(() => seen.value.leave().catch((e) => assert.equal(e.code, 'queue_unavailable')));
    assert.equal(seen.value.state, 'left');
    await act(() => r.update(h(Probe, { id: null })));
    assert.equal(seen.value.state, null);
    await act(() => r.unmount());
    assert.deepEqual(complaints, []);
  } finally {
    await cleanup(rc);
  }
});

test('useQueue with Redis: a place, then the token', async () => {
  complaints.length = 0;
  const redisPort = await freePort();
  const at = await freePort();
  const own = [startRedis(redisPort)];
  procs.push(own[0]);
  own.push(node(['--listen', `127.0.0.1:${at}`, '--shards', '1', '--redis',
    `redis://127.0.0.1:${redisPort}`, '--admission-tick-ms', '100', '--log-level', 'warn'],
  { RINGCAST_ADMISSION_SECRET: 'js-react-admission' }));
  let rc;
  try {
    await started(at);
    for (let i = 0; ; i++) {
      const q = await api('PUT', '/api/queues/sale', { rate: 5, max_active: 10,
        state: 'paused' }, at);
      if (q.status === 200) break;
      if (i === 100) throw new Error('the queue could not be created');
      await sleep(100); // Redis not reached yet
    }
    rc = await connected({ sub: 'gus' }, { port: at });
    const [Probe, seen] = probe(() => useQueue(rc, 'sale'));
    const r = await render(h(Probe));
    await until('a place', () => seen.value.state === 'waiting');
    assert.equal(seen.value.position, 1);
    assert.equal(seen.value.token, null);
    assert.equal((await inAct(() => api('PUT', '/api/queues/sale', { state: 'open' }, at)))
      .status, 200);
    await until('admitted', () => seen.value.state === 'admitted');
    assert.ok(seen.value.expires > Date.now());
    const v = await api('POST', '/api/queues/verify', { token: seen.value.token }, at);
    assert.equal(v.body.valid, true);
    assert.equal(v.body.user, 'gus');
    await act(() => r.unmount());
    assert.deepEqual(complaints, []);
  } finally {
    await cleanup(rc);
    for (const p of own.reverse()) p.kill('SIGTERM');
  }
});
