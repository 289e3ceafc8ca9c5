// A ringcast backend worker in Node (the npm package "redis", 4.x): reads
// client events from a stream with a consumer group, claims what a dead
// worker left, answers each event's connection, and calls the server-side
// control API. The same demo as worker.py:
//
//   node worker.js --redis redis://127.0.0.1:6379 --stream seats \
//       --api http://127.0.0.1:8080 --api-key KEY --name js-1
'use strict';
const { createClient } = require('redis');

function option(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const cfg = {
  redis: option('redis', 'redis://127.0.0.1:6379'),
  prefix: option('prefix', 'rc:'),
  stream: option('stream', 'seats'),
  group: option('group', 'workers'),
  name: option('name', 'js-1'),
  api: option('api', 'http://127.0.0.1:8080'),
  apiKey: option('api-key', ''),
  claimIdleMs: Number(option('claim-idle-ms', '5000')),
};

async function apiCall(path, body) {
  const res = await fetch(cfg.api + path, {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + cfg.apiKey, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return res.status;
}

// Answers the event's connection, on whatever node it is.
async function reply(r, f, data, error) {
  const msg = { to: f.reply };
  if (f.id) msg.id = JSON.parse(f.id);
  if (error !== undefined) msg.error = error;
  else msg.data = data;
  await r.publish(f.reply_channel, JSON.stringify(msg));
}

async function handle(r, f) {
  const data = JSON.parse(f.data);
  if (f.event === 'seat:select') {
    await reply(r, f, { ok: true, seat: data.seat, by: cfg.name, user: f.user });
  } else if (f.event === 'seat:kick') {
    const status = await apiCall('/api/disconnect',
      { user: data.user, code: 4100, reason: 'kicked by ' + cfg.name });
    await reply(r, f, { ok: status === 202, by: cfg.name });
  } else {
    await reply(r, f, undefined, { code: 'unknown', message: 'no handler for ' + f.event });
  }
}

async function main() {
  const r = createClient({ url: cfg.redis });
  await r.connect();
  const key = cfg.prefix + 'ev:' + cfg.stream;
  try {
    await r.xGroupCreate(key, cfg.group, '0', { MKSTREAM: true });
  } catch (e) {
    if (!String(e.message).includes('BUSYGROUP')) throw e;
  }
  process.on('SIGTERM', () => process.exit(0));
  console.log(`worker ${cfg.name} reading ${key}`);
  for (;;) {
    // First what a dead worker left, then new events.
    const claimed = await r.xAutoClaim(key, cfg.group, cfg.name, cfg.claimIdleMs, '0-0',
      { COUNT: 100 });
    let entries = claimed.messages.filter(Boolean);
    if (!entries.length) {
      const got = await r.xReadGroup(cfg.group, cfg.name, { key, id: '>' },
        { COUNT: 100, BLOCK: 1000 });
      entries = got ? got[0].messages : [];
    }
    for (const e of entries) {
      await handle(r, e.message);
      await r.xAck(key, cfg.group, e.id);
      await r.xDel(key, e.id);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
