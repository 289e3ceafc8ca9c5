// What every example page does first: who am I, which nodes, a token from
// the site's login (here /api/token), and a client that refreshes it.
import { Client } from '/client/ringcast.js';

export const $ = (sel) => document.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

export const params = new URLSearchParams(location.search);
export const user = params.get('user') || 'guest' + Math.floor(Math.random() * 10000);

async function token() {
  const r = await fetch('/api/token?user=' + encodeURIComponent(user));
  if (!r.ok) throw new Error('no token: ' + (await r.text()));
  return (await r.json()).token;
}

/** A connected client. ?node=N (1..3) picks one node; otherwise, with
 * `all`, the client moves between all of them, else it takes one at random. */
export async function connect({ all = false } = {}) {
  const cfg = await (await fetch('/api/config')).json();
  const n = Number(params.get('node'));
  const urls = n >= 1 && n <= cfg.nodes.length ? [cfg.nodes[n - 1]]
    : all ? cfg.nodes : [cfg.nodes[Math.floor(Math.random() * cfg.nodes.length)]];
  const rc = new Client(urls, { token: await token(), getToken: token });
  rc.config = cfg;
  const bar = $('#status');
  if (bar) {
    const show = () => {
      bar.textContent = `${user} · ${rc.state}` + (rc.state === 'connected' ? ` to ${rc.welcome.node}` : '');
      bar.dataset.state = rc.state;
    };
    rc.on('state', show);
    show();
  }
  if (rc.state !== 'connected') {
    await new Promise((resolve) => {
      const off = rc.on('state', (s) => { if (s === 'connected') { off(); resolve(); } });
    });
  }
  return rc;
}

/** Follows a channel that publishes whole states (a tally, a seat map):
 * apply(data) with the latest one kept when (re)subscribing, unless what
 * was missed followed, and with each one published after it. Older states
 * arriving late are skipped (by offset). */
export function follow(sub, apply) {
  let shown = 0;
  const show = (m) => {
    if (!m || m.offset <= shown) return;
    shown = m.offset;
    apply(m.data);
  };
  sub.on('message', show);
  sub.on('subscribed', async (r) => {
    if (r.epoch !== undefined && r.recovered !== true) shown = 0; // a new run of offsets
    if (r.recovered === true) return;
    const h = await sub.history({ limit: 1 });
    show(h.publications[h.publications.length - 1]);
  });
}
