// React hooks over ringcast.js (React 18 or later, a peer dependency).
//
//   import { useChannel, usePresence, useConnectionState } from '@ringcast/client/react';
//   const { messages, recovery } = useChannel(rc, 'chat:1', { limit: 50 });
//   const { connections, members } = usePresence(rc, 'chat:1');
//   const { state, position, token, leave } = useQueue(rc, 'sale');
//   const online = useConnectionState(rc) === 'connected';
//
// The hooks take a Client made once, outside the render (module scope or a
// context): they never close it. A null client, channel or queue id means
// nothing to do. Hooks on the same channel share one Subscription; the last
// of them to unmount unsubscribes, unless the application had subscribed
// to the channel itself before them (then the subscription is its own).
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';

const holders = new WeakMap(); // Subscription -> how many hooks hold it

// Subscribes (or takes the client's subscription to the channel); the
// returned function lets it go.
function hold(client, channel) {
  const ours = !client._subs?.has(channel);
  const sub = client.subscribe(channel);
  const n = holders.get(sub);
  holders.set(sub, n === undefined ? (ours ? 1 : Infinity) : n + 1);
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    const left = holders.get(sub) - 1;
    holders.set(sub, left);
    if (left === 0) sub.unsubscribe();
  };
  return [sub, release];
}

/** The last `limit` messages of `channel`, the last recovery and error. */
export function useChannel(client, channel, { limit = 100, onMessage } = {}) {
  const [state, setState] = useState(null);
  // Read through refs: a new closure or limit at each render does not resubscribe.
  const onMessageRef = useRef(onMessage);
  const limitRef = useRef(limit);
  useEffect(() => { onMessageRef.current = onMessage; limitRef.current = limit; });

  useEffect(() => {
    if (!client || !channel) return undefined;
    const [sub, release] = hold(client, channel);
    // State is kept with the client and channel it is about: after a
    // change of channel the old one's state is not shown, nor updated.
    const update = (fn) => setState((s) => fn(s && s.sub === sub ? s :
      { sub, messages: [], last: null, recovery: null, error: null }));
    const offs = [
      sub.on('message', (m) => {
        update((s) => ({ ...s, messages: s.messages.concat(m).slice(-limitRef.current), last: m }));
        onMessageRef.current?.(m);
      }),
      sub.on('recovered', (r) => update((s) => ({ ...s, recovery: r }))),
      sub.on('error', (e) => update((s) => ({ ...s, error: e }))),
    ];
    return () => { for (const off of offs) off(); release(); };
  }, [client, channel]);

  const s = state && state.sub.client === client && state.sub.channel === channel ? state : null;
  return { messages: s ? s.messages : [], last: s ? s.last : null,
    recovery: s ? s.recovery : null, error: s ? s.error : null };
}

/** Who is on `channel` (subscribed by the hook): counts and the first page
 * of members, asked when connected, on each join and leave, and every
 * refreshMs. */
export function usePresence(client, channel, { refreshMs = 5000 } = {}) {
  const [state, setState] = useState(null);

  useEffect(() => {
    if (!client || !channel) return undefined;
    const [sub, release] = hold(client, channel);
    const key = { client, channel };
    let live = true;
    let busy = false; // one question in flight; joins meanwhile ask once more after it
    let again = false;
    const refresh = () => {
      if (client.state !== 'connected') return;
      if (busy) { again = true; return; }
      busy = true;
      Promise.all([client.presenceStats(channel), client.presence(channel)]).then(
        ([st, page]) => live && setState({ key, connections: st.connections, users: st.users,
          members: page.members, error: null }),
        (e) => live && setState((s) => ({ ...(s && s.key === key ? s : { key }), error: e })),
      ).finally(() => {
        busy = false;
        if (again && live) { again = false; refresh(); }
      });
    };
    const offs = [
      client.on('state', (st) => { if (st === 'connected') refresh(); }),
      sub.on('subscribed', refresh), // now counted ourselves
      sub.on('join', refresh),
      sub.on('leave', refresh),
    ];
    const timer = setInterval(refresh, refreshMs);
    refresh();
    return () => {
      live = false;
      clearInterval(timer);
      for (const off of offs) off();
      release();
    };
  }, [client, channel, refreshMs]);

  const s = state && state.key.client === client && state.key.channel === channel ? state : null;
  return { connections: s?.connections ?? null, users: s?.users ?? null,
    members: s?.members ?? null, error: s?.error ?? null };
}

/** A place in the waiting room `queueId` (null: not joined). Unmounting
 * does not leave the line (the client keeps the place): call leave(). */
export function useQueue(client, queueId) {
  const [state, setState] = useState(null);
  const queueRef = useRef(null);

  useEffect(() => {
    if (!client || queueId == null) return undefined;
    const q = client.queue(queueId);
    queueRef.current = q;
    const take = (error) => setState((s) => ({ q, state: q.state, position: q.position,
      eta: q.eta, token: q.token, expires: q.expires,
      error: error ?? (s && s.q === q ? s.error : null) }));
    const offs = ['position', 'admitted', 'left'].map((n) => q.on(n, () => take()));
    offs.push(q.on('error', (e) => take(e)));
    take(); // what happened before this render, and 'joining'
    return () => {
      for (const off of offs) off();
      if (queueRef.current === q) queueRef.current = null;
    };
  }, [client, queueId]);

  const leave = useCallback(() => queueRef.current?.leave() ?? Promise.resolve(), []);
  const s = state && state.q.client === client && state.q.id === queueId ? state : null;
  return { state: s?.state ?? null, position: s?.position ?? null, eta: s?.eta ?? null,
    token: s?.token ?? null, expires: s?.expires ?? null, error: s?.error ?? null, leave };
}

/** The client's state: 'connecting', 'connected', 'disconnected', 'closed'. */
export function useConnectionState(client) {
  const subscribe = useCallback((fn) => (client ? client.on('state', fn) : () => {}), [client]);
  const get = () => (client ? client.state : 'disconnected');
  return useSyncExternalStore(subscribe, get, get);
}
