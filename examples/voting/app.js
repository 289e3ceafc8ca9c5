// Live voting: a vote is a client event to the backend, which counts it
// (one vote per user) and publishes the tally on votes:talks to every viewer.
// The online count is presence, updated on each join and leave.
import { $, el, connect, follow } from '/common/app.js';

const OPTIONS = { rust: 'Rust at the edge', uring: 'io_uring in practice', redis: 'Redis streams' };
const rc = await connect();
const sub = rc.subscribe('votes:talks');

// The buttons are made once; a tally only moves the bars and the counts.
$('#options').append(...Object.entries(OPTIONS).map(([key, label]) => el('div', { class: 'row' },
  el('button', { 'data-option': key, onclick: () => vote(key) }, label),
  el('div', { class: 'bar', id: 'bar-' + key }),
  el('span', { 'data-count': key }, '0'))));

function render(tally) {
  const counts = tally?.counts || {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  $('#total').textContent = total;
  for (const key of Object.keys(OPTIONS)) {
    $(`[data-count=${key}]`).textContent = counts[key] || 0;
    $('#bar-' + key).style.width = `${total ? (300 * (counts[key] || 0)) / total : 0}px`;
  }
}

async function vote(option) {
  try {
    const r = await rc.rpc('vote:cast', { option }, { timeout: 5000 });
    $('#mine').textContent = OPTIONS[r.option];
  } catch (e) {
    $('#mine').textContent = 'not counted: ' + e.code;
  }
}

async function online() {
  try { $('#online').textContent = (await rc.presenceStats('votes:talks')).connections; } catch { /* offline */ }
}

follow(sub, render);
sub.on('subscribed', online);
sub.on('join', online);
sub.on('leave', online);
render(null);
