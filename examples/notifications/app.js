// Per-user notifications: the backend publishes on user:<you>, and every
// node joins each of your connections to it, so they arrive on whichever
// node you are. The channel keeps history: notifications sent while you
// were away are recovered when you come back.
import { $, el, user, connect } from '/common/app.js';

const rc = await connect();
const sub = rc.subscribe('user:' + user);
let unread = 0;

function show(m) {
  if (m.event !== 'notification') return;
  unread++;
  $('#unread').textContent = unread;
  $('#unread').hidden = false;
  const d = m.data;
  $('#notes').prepend(el('li', { class: 'note' }, el('b', {}, d.from), ': ' + d.text + ' ',
    el('span', { class: 'muted' }, `(sent via ${d.sent_via}, received on ${rc.welcome.node})`)));
}

sub.on('message', show);
sub.on('subscribed', async (r) => {
  if (r.recovered !== undefined) return; // a resubscription: what was missed follows
  const h = await sub.history({ limit: 20 });
  h.publications.filter((p) => p.offset <= r.offset).forEach(show);
});
$('#read').onclick = () => { unread = 0; $('#unread').hidden = true; };
$('#send').onclick = async () => {
  try {
    await rc.rpc('notify:send', { to: $('#to').value.trim(), text: $('#text').value });
    $('#sent').textContent = 'sent';
    $('#text').value = '';
  } catch (e) {
    $('#sent').textContent = e.message;
  }
};
