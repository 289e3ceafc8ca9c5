// ringcast's JavaScript client: one ES module, no runtime dependencies.
// Works in browsers and in Node 18+ (pass a WebSocket implementation, such
// as the `ws` package, where there is no global WebSocket).
//
//   import { Client } from './ringcast.js';
//   const rc = new Client('wss://edge.example/ws', { token, getToken });
//   const sub = rc.subscribe('chat:1');
//   sub.on('message', (m) => render(m.data));
//   sub.on('recovered', ({ recovered, reason }) => { if (!recovered) reload(); });
//   await rc.publish('chat:1', { text: 'hi' });
//   const answer = await rc.rpc('seat:select', { seat: 'A1' }, { timeout: 5000 });
//
// The client reconnects with exponential backoff and full jitter, keeps the
// offset and epoch of each channel with history, and resubscribes with them:
// each subscription then says whether what was missed followed
// ('recovered') or not (reload your state). Requests are promises with
// timeouts. The protocol is docs/PROTOCOL.md.

class Emitter {
  constructor() { this._h = new Map(); }
  on(name, fn) {
    if (!this._h.has(name)) this._h.set(name, new Set());
    this._h.get(name).add(fn);
    return () => this.off(name, fn);
  }
  off(name, fn) { this._h.get(name)?.delete(fn); }
  emit(name, arg) {
    for (const fn of [...(this._h.get(name) || [])]) {
      try { fn(arg); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }
}

/** A request the server refused: code is the protocol's error code. */
export class RingcastError extends Error {
  constructor(code, message, reply) {
    super(message || code);
    this.name = 'RingcastError';
    this.code = code;
    this.reply = reply;
  }
}

/** One channel: 'message', 'recovered', 'subscribed', 'error' events. */
export class Subscription extends Emitter {
  constructor(client, channel) {
    super();
    this.client = client;
    this.channel = channel;
    this.offset = null; // the last publication's offset and epoch (history)
    this.epoch = null;
    this.active = true;
    this._asking = null; // the id of a subscribe not yet answered
  }
  unsubscribe() {
    if (!this.active) return Promise.resolve();
    this.active = false;
    this.client._subs.delete(this.channel);
    if (this.client.state !== 'connected') return Promise.resolve();
    return this.client._request({ type: 'unsubscribe', channel: this.channel }).catch(() => {});
  }
  history(opts = {}) {
    return this.client._request({ type: 'history', channel: this.channel, ...opts });
  }
}

/** A place in a waiting room: 'position', 'admitted', 'left', 'error'
 * events, and `admitted`, a promise of the admission token. The client joins
 * again after every reconnect, which keeps the place (or gives the token). */
export class Queue extends Emitter {
  constructor(client, id) {
    super();
    this.client = client;
    this.id = id;
    this.state = 'joining'; // waiting, admitted, left
    this.ticket = null;
    this.position = null;
    this.eta = null;
    this.token = null;
    this.expires = null;
    this.admitted = new Promise((resolve, reject) => {
      this._resolve = resolve;
      this._reject = reject;
    });
    this.admitted.catch(() => {}); // a queue left unheard is not an unhandled rejection
  }
  /** Gives up the place, for every tab and node of the user. */
  leave() {
    if (this.state === 'admitted' || this.state === 'left') return Promise.resolve();
    const req = this.client.state === 'connected'
      ? this.client._request({ type: 'queue.leave', queue: this.id }) : Promise.resolve();
    this._left({ reason: 'left' });
    return req.then(() => {});
  }
  // queue.joined: the place as the server counted it, and the ticket that
  // every later tick counts from.
  _position(m) {
    this.ticket = m.ticket;
    this._place(m.position, m.eta ?? null);
  }
  // queue.tick, the same for every waiter: the place is ticket - head (at
  // least 1), the wait that many places at ewma places per tick of `tick` ms.
  _tick(m) {
    if (this.ticket === null) return;
    const position = Math.max(this.ticket - m.head, 1);
    this._place(position, m.ewma >= 0.01 ? Math.ceil(position / m.ewma * m.tick / 1000) : null);
  }
  _place(position, eta) {
    this.state = 'waiting';
    this.position = position;
    this.eta = eta;
    this.emit('position', { position, eta, ticket: this.ticket });
  }
  _admit(m) {
    if (this.state === 'admitted') return;
    this.state = 'admitted';
    this.token = m.token;
    this.expires = m.expires;
    this.client._queues.delete(this.id);
    const a = { token: m.token, expires: m.expires };
    this.emit('admitted', a);
    this._resolve(a);
  }
  _left(m) {
    if (this.state === 'left') return;
    this.state = 'left';
    this.client._queues.delete(this.id);
    this.emit('left', { reason: m.reason });
    this._reject(new RingcastError('queue_left', 'out of the line: ' + m.reason, m));
  }
}

export class Client extends Emitter {
  /**
   * @param {string|string[]} url ws:// or wss:// URL of a node's WebSocket
   *   path, or several nodes' URLs: each attempt tries the next, from a
   *   random first one
   * @param {object} [opts]
   */
  constructor(url, opts = {}) {
    super();
    this.urls = Array.isArray(url) ? url.slice() : [url];
    this._urlIndex = Math.floor(Math.random() * this.urls.length);
    this.url = this.urls[this._urlIndex];
    this.token = opts.token || null;
    this.getToken = opts.getToken || null; // async () => a new token
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.minDelay = opts.minDelay ?? 250;
    this.maxDelay = opts.maxDelay ?? 15000;
    this.timeout = opts.timeout ?? 10000;
    this.state = 'disconnected'; // connecting, connected, disconnected, closed
    this.welcome = null;
    this._subs = new Map();
    this._queues = new Map();
    this._pending = new Map();
    this._nextId = 1;
    this._attempt = 0;
    this._ws = null;
    this._timer = null;
    // In a browser, the network going away silences an open WebSocket
    // without closing it: leave at once, and come back as soon as the
    // browser is online again (recovering what went by meanwhile).
    this._offline = false;
    const win = typeof window !== 'undefined' && window.addEventListener ? window : null;
    if (win && opts.watchNetwork !== false) {
      win.addEventListener('offline', () => this._goOffline());
      win.addEventListener('online', () => this._goOnline());
    }
    if (opts.autoConnect !== false) this.connect();
  }

  connect() {
    if (this.state === 'connecting' || this.state === 'connected') return;
    clearTimeout(this._timer);
    this._setState('connecting');
    this.url = this.urls[this._urlIndex++ % this.urls.length];
    const url = this.token ? this.url + (this.url.includes('?') ? '&' : '?') + 'token=' +
      encodeURIComponent(this.token) : this.url;
    const ws = new this.WebSocket(url);
    this._ws = ws;
    ws.onmessage = (ev) => this._onMessage(typeof ev.data === 'string' ? ev.data : String(ev.data));
    ws.onclose = (ev) => this._onClose(ev.code, ev.reason);
    ws.onerror = () => {};
  }

  /** Closes for good (no reconnect). */
  close() {
    clearTimeout(this._timer);
    this._setState('closed');
    this._failPending(new RingcastError('closed', 'the client was closed'));
    if (this._ws) this._ws.close(1000, 'bye');
  }

  subscribe(channel) {
    let sub = this._subs.get(channel);
    if (sub) return sub;
    sub = new Subscription(this, channel);
    this._subs.set(channel, sub);
    if (this.state === 'connected') this._resubscribe(sub);
    return sub;
  }

  publish(channel, data, event) {
    const m = { type: 'publish', channel, data };
    if (event) m.event = event;
    return this._request(m);
  }

  /** A client event with a backend's reply (docs/BACKENDS.md): resolves
   * with the reply's data, rejects with its error, or on timeout. */
  rpc(event, data, opts = {}) {
    return this._request({ type: 'event', event, data }, { reply: true, timeout: opts.timeout });
  }

  /** Joins the waiting room `id` (the token needs a `sub`): a Queue. */
  queue(id) {
    let q = this._queues.get(id);
    if (q) return q;
    q = new Queue(this, id);
    this._queues.set(id, q);
    if (this.state === 'connected') this._join(q);
    return q;
  }

  presence(channel, opts = {}) {
    return this._request({ type: 'presence', channel, ...opts });
  }

  presenceStats(channel) {
    return this._request({ type: 'presence_stats', channel });
  }

  // ---- inside ------------------------------------------------------------

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  _send(obj) {
    if (this._ws && this.state === 'connected') this._ws.send(JSON.stringify(obj));
  }

  _request(obj, opts = {}) {
    if (this.state !== 'connected')
      return Promise.reject(new RingcastError('disconnected', 'not connected'));
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const ms = opts.timeout ?? this.timeout;
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new RingcastError('timeout', `no answer in ${ms} ms`));
      }, ms);
      this._pending.set(id, { resolve, reject, timer, reply: !!opts.reply });
      this._send({ ...obj, id });
    });
  }

  _settle(id, fn, arg) {
    const p = this._pending.get(id);
    if (!p) return null;
    this._pending.delete(id);
    clearTimeout(p.timer);
    p[fn](arg);
    return p;
  }

  _failPending(err) {
    for (const [id, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this._pending.delete(id);
    }
  }

  _resubscribe(sub) {
    const m = { type: 'subscribe', channel: sub.channel };
    if (sub.epoch !== null) m.since = { offset: sub.offset, epoch: sub.epoch };
    const id = this._nextId;
    const req = this._request(m);
    // Until the answer, messages of the channel are not taken: a channel the
    // server joined us to (user:<sub>) may deliver some before it, and what
    // the answer recovers includes them.
    sub._asking = id;
    req.catch((e) => {
      if (sub._asking === id) sub._asking = null;
      sub.emit('error', e);
    });
  }

  // The answer to a subscribe, taken as it arrives (before any message
  // behind it in the same read): the position, then what was recovered.
  _subscribed(m) {
    const sub = this._subs.get(m.channel);
    if (!sub || sub._asking !== m.id) return;
    sub._asking = null;
    if (m.recovered === false || (m.epoch !== undefined && sub.epoch === null)) {
      sub.offset = m.offset ?? null;
      sub.epoch = m.epoch ?? null;
    }
    if (m.recovered !== undefined)
      sub.emit('recovered', { recovered: m.recovered, reason: m.reason, missed: m.missed });
    sub.emit('subscribed', m);
  }

  _join(q) {
    this._request({ type: 'queue.join', queue: q.id }).then((r) => {
      if (r.type === 'admitted') q._admit(r);
      else q._position(r);
    }, (e) => {
      if (e.code === 'disconnected') return; // joins again on the next welcome
      q.emit('error', e);
      if (e.code !== 'queue_unavailable') q._left({ reason: e.code });
    });
  }

  _onMessage(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    switch (m.type) {
    case 'welcome':
      this.welcome = m;
      this._attempt = 0;
      this._setState('connected');
      for (const sub of this._subs.values()) this._resubscribe(sub);
      for (const q of this._queues.values()) this._join(q);
      return;
    case 'subscribed':
      this._subscribed(m);
      this._answer(m);
      return;
    case 'message': {
      const sub = this._subs.get(m.channel);
      if (!sub || sub._asking != null) return;
      if (m.offset !== undefined) {
        if (sub.epoch === m.epoch && sub.offset !== null && m.offset <= sub.offset) return;
        sub.offset = m.offset;
        sub.epoch = m.epoch;
      }
      sub.emit('message', m);
      return;
    }
    case 'join': case 'leave':
      this._subs.get(m.channel)?.emit(m.type, m.member);
      return;
    case 'queue.tick':
      this._queues.get(m.queue)?._tick(m);
      return;
    case 'admitted':
    case 'queue.left':
      if (m.id === undefined) {
        const q = this._queues.get(m.queue);
        if (q) m.type === 'admitted' ? q._admit(m) : q._left(m);
        return;
      }
      this._answer(m);
      return;
    case 'refresh':
      if (this.getToken) {
        Promise.resolve(this.getToken()).then((t) => {
          this.token = t;
          return this._request({ type: 'refresh', token: t });
        }).catch((e) => this.emit('error', e));
      }
      return;
    case 'reply': {
      if (m.error !== undefined)
        this._settle(m.id, 'reject', new RingcastError(m.error?.code || 'error',
          m.error?.message, m));
      else
        this._settle(m.id, 'resolve', m.data);
      return;
    }
    case 'event_ack': {
      const p = this._pending.get(m.id);
      if (p && !p.reply) this._settle(m.id, 'resolve', m);
      return; // an rpc waits for its reply
    }
    case 'error':
      if (m.id !== undefined && this._settle(m.id, 'reject',
        new RingcastError(m.code, m.message, m))) return;
      if (m.channel && this._subs.has(m.channel)) {
        this._subs.get(m.channel).emit('error', new RingcastError(m.code, m.message, m));
        return;
      }
      this.emit('error', new RingcastError(m.code, m.message, m));
      return;
    default:
      this._answer(m);
    }
  }

  _answer(m) {
    if (m.id !== undefined) this._settle(m.id, 'resolve', m);
    else this.emit('server', m);
  }

  _onClose(code, reason) {
    this._ws = null;
    this._failPending(new RingcastError('disconnected', `connection closed (${code})`));
    this.emit('disconnect', { code, reason });
    if (this.state === 'closed') return;
    this._setState('disconnected');
    if (code === 4001 && this.getToken) {
      Promise.resolve(this.getToken()).then((t) => { this.token = t; this._reconnect(); },
        () => this._reconnect());
      return;
    }
    this._reconnect();
  }

  _goOffline() {
    this._offline = true;
    clearTimeout(this._timer);
    const ws = this._ws;
    if (!ws || this.state === 'closed') return;
    ws.onclose = ws.onmessage = null;
    try { ws.close(); } catch { /* already closing */ }
    this._onClose(1006, 'offline');
  }

  _goOnline() {
    this._offline = false;
    if (this.state !== 'disconnected') return;
    clearTimeout(this._timer);
    this._attempt = 0;
    this.connect();
  }

  _reconnect() {
    if (this._offline) return; // the 'online' event brings it back
    // Exponential backoff with full jitter: a random wait up to the cap.
    const cap = Math.min(this.maxDelay, this.minDelay * 2 ** this._attempt++);
    const wait = Math.random() * cap;
    this._timer = setTimeout(() => this.connect(), wait);
  }
}
