// The ticketing sale's stock on three nodes: the client knows all of them
// and reconnects to any. stock:show keeps its history, so after a network
// drop the board gets every change it missed, once, in order; or, if too
// much went by, it is told and reloads the recent ones.
import { $, el, connect } from '/common/app.js';

const rc = await connect({ all: true });
const sub = rc.subscribe('stock:show');
const seen = new Set(); // offsets shown: nothing twice

function add(m) {
  if (seen.has(m.offset)) return;
  seen.add(m.offset);
  $('#left').textContent = m.data.left;
  const what = m.data.last ? `${m.data.last.user} bought ${m.data.last.seats.join(', ')}` : 'stock';
  $('#log').prepend(el('li', { 'data-offset': m.offset },
    `#${m.offset} · ${m.data.left} left · ${what} · via ${rc.welcome.node}`));
}

async function reload() {
  seen.clear();
  $('#log').replaceChildren();
  const h = await sub.history({ limit: 50 });
  h.publications.forEach(add);
}

sub.on('message', add);
sub.on('recovered', (r) => {
  $('#recovery').textContent = r.recovered ? `recovered ${r.missed} missed on ${rc.welcome.node}`
    : `gap (${r.reason}): reloaded`;
  $('#recovery').dataset.recovered = r.recovered;
  if (!r.recovered) reload();
});
sub.on('subscribed', (r) => { if (r.recovered === undefined) reload(); });
