// Chat rooms: a room's recent history when it opens, live messages, unread
// counts for the rooms not open, who is here (presence, kept fresh by join
// and leave events), and @mentions as notifications on user:<you>.
import { $, el, user, connect } from '/common/app.js';

const ROOMS = ['general', 'random', 'help'];
const rc = await connect();
const rooms = new Map(); // name -> { sub, messages: Map(offset -> message), unread, loaded }
let open = null;

function drawRooms() {
  $('#rooms').replaceChildren(...ROOMS.map((name) => {
    const r = rooms.get(name);
    return el('button', { 'data-room': name, class: name === open ? 'open' : '',
      onclick: () => openRoom(name) }, '#' + name + ' ',
    ...(r.unread ? [el('span', { class: 'badge', 'data-unread': name }, String(r.unread))] : []));
  }));
}

function drawMessages() {
  const r = rooms.get(open);
  const list = [...r.messages.values()].sort((a, b) => a.offset - b.offset);
  $('#messages').replaceChildren(...list.map((m) => el('li', { 'data-offset': m.offset },
    el('b', {}, m.data.user), ': ' + m.data.text)));
  $('#messages').scrollTop = 1e9;
}

async function drawHere() {
  if (!open) return;
  try {
    const p = await rc.presence('chat:' + open);
    const users = [...new Set(p.members.map((m) => m.user))].sort();
    $('#here').replaceChildren(...users.map((u) => el('li', { 'data-user': u }, u)));
  } catch { /* reconnecting: the next join or leave redraws */ }
}

async function openRoom(name) {
  open = name;
  const r = rooms.get(name);
  r.unread = 0;
  $('#title').textContent = '#' + name;
  if (!r.loaded) { // the room's history, the first time it opens
    const h = await r.sub.history({ limit: 50 });
    for (const m of h.publications) r.messages.set(m.offset, m);
    r.loaded = true;
  }
  drawRooms();
  drawMessages();
  drawHere();
}

for (const name of ROOMS) {
  const sub = rc.subscribe('chat:' + name);
  const r = { sub, messages: new Map(), unread: 0, loaded: false };
  rooms.set(name, r);
  sub.on('message', (m) => {
    r.messages.set(m.offset, m);
    if (name === open) drawMessages();
    else { r.unread++; drawRooms(); }
  });
  sub.on('recovered', (x) => { if (!x.recovered) { r.loaded = false; if (name === open) openRoom(name); } });
  sub.on('join', () => name === open && drawHere());
  sub.on('leave', () => name === open && drawHere());
}

rc.subscribe('user:' + user).on('message', (m) => {
  if (m.event !== 'mention') return;
  $('#toasts').prepend(el('li', { class: 'mention' }, `${m.data.from} in #${m.data.room}: ${m.data.text}`));
});

async function send() {
  const text = $('#text').value;
  if (!text.trim()) return;
  try {
    await rc.rpc('chat:send', { room: open, text });
    $('#text').value = '';
  } catch (e) {
    $('#text').placeholder = e.message;
  }
}
$('#send').onclick = send;
$('#text').onkeydown = (e) => { if (e.key === 'Enter') send(); };
await openRoom(new URLSearchParams(location.search).get('room') || 'general');
