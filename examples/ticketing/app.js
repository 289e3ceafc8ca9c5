// Ticketing: wait in line (the waiting room), then the event page: live
// stock and a seat map. Seats are selected, released and bought with client
// events that carry the admission token; the backend releases the seats of
// a connection that goes away.
import { $, el, user, connect, follow } from '/common/app.js';

const rc = await connect({ all: new URLSearchParams(location.search).has('all') });
let admission = null;
let taken = {};

const q = rc.queue(rc.config.queue);
q.on('position', ({ position, eta }) => {
  $('#position').textContent = position;
  $('#eta').textContent = eta ?? '–';
});
q.on('left', ({ reason }) => { $('#line h2').textContent = 'Out of the line: ' + reason; });
q.on('error', (e) => { $('#line h2').textContent = 'Waiting room: ' + e.code; });
admission = (await q.admitted).token;
$('#line').hidden = true;
$('#event').hidden = false;

const seats = [...'ABCD'].flatMap((r) => [1, 2, 3, 4, 5, 6, 7, 8].map((n) => r + n));
$('#grid').append(...seats.map((s) => el('button', { class: 'seat', 'data-seat': s,
  onclick: () => toggle(s) }, s)));

function drawSeats() {
  for (const s of seats) {
    const t = taken[s];
    const state = !t ? 'free' : t.state === 'sold' ? 'sold' : t.user === user ? 'mine' : 'held';
    const b = $(`[data-seat=${s}]`);
    b.dataset.state = state;
    b.disabled = state === 'sold' || state === 'held';
  }
}

function drawStock(stock) {
  if (!stock) return;
  $('#left').textContent = stock.left;
  if (stock.last) $('#lastbuy').textContent = `(${stock.last.user} just bought ${stock.last.seats.join(', ')})`;
}

async function toggle(seat) {
  const mine = taken[seat]?.user === user;
  try {
    await rc.rpc(mine ? 'seat:release' : 'seat:select', { seat, admission });
    $('#result').textContent = '';
  } catch (e) {
    $('#result').textContent = e.message;
  }
}

$('#buy').onclick = async () => {
  try {
    const r = await rc.rpc('seat:buy', { admission });
    $('#result').textContent = 'Bought ' + r.bought.join(', ');
  } catch (e) {
    $('#result').textContent = e.message;
  }
};

follow(rc.subscribe('seats:show'), (d) => { taken = d.seats; drawSeats(); });
follow(rc.subscribe('stock:show'), drawStock);
drawSeats();
