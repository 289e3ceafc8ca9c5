// The five examples in a real browser: Debian's chromium, driven by
// puppeteer-core, against everything `make demo` starts (a redis-server,
// three ringcast nodes, the backends, the web server), on free ports.
// Each test does what a person would and checks what the page shows.
// Screenshots of every page go to build/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const SHOTS = path.join(root, 'build', 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
let demo, site, browser;

before(async () => {
  const ready = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rc-demo-')), 'ready.json');
  demo = spawn(process.env.PYTHON || '/usr/bin/python3',
    [path.join(root, 'examples', 'demo.py'), '--free-ports', '--ready', ready],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 400 && !fs.existsSync(ready); i++) await sleep(50);
  site = JSON.parse(fs.readFileSync(ready)); // throws if the demo never came up
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await puppeteer.launch({ executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  demo?.kill('SIGTERM');
});

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** A page in a browser of its own (its own cookies and storage), as a
 * second person on another machine would have. */
async function open(appPath, { width = 900, height = 560 } = {}) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width, height });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(site.site + appPath);
  await page.waitForFunction(() => document.querySelector('#status')?.dataset.state === 'connected',
    { timeout: 10000 });
  page.ctx = ctx;
  return page;
}

async function close(page) {
  assert.deepEqual(page.errors, [], 'no script errors on the page');
  await page.ctx.close();
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());

async function until(page, fn, arg, what) {
  try {
    await page.waitForFunction(fn, { timeout: 10000, polling: 50 }, arg);
  } catch (e) {
    const body = await page.$eval('main', (m) => m.innerText).catch(() => '?');
    throw new Error(`timed out: ${what}\n--- the page shows:\n${body}`);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name + '.png') });
}

async function api(method, p, body) {
  const r = await fetch(site.api[0] + p, { method, body: body && JSON.stringify(body),
    headers: { Authorization: 'Bearer ' + site.api_key } });
  return r.json();
}

test('voting: two browsers see each other\'s votes and the online count', async () => {
  const alice = await open('/voting/?user=alice');
  const bob = await open('/voting/?user=bob');
  await alice.click('button[data-option=rust]');
  await bob.click('button[data-option=uring]');
  for (const p of [alice, bob]) {
    await until(p, () => document.querySelector('[data-count=rust]').textContent === '1' &&
      document.querySelector('[data-count=uring]').textContent === '1' &&
      document.querySelector('#online').textContent === '2', null, 'both votes and 2 online');
  }
  assert.equal(await text(alice, '#mine'), 'Rust at the edge');
  assert.equal(await text(bob, '#mine'), 'io_uring in practice');
  // Changing one's vote moves it: still one vote per person.
  await bob.click('button[data-option=rust]');
  await until(alice, () => document.querySelector('[data-count=rust]').textContent === '2' &&
    document.querySelector('#total').textContent === '2', null, 'bob changed his vote');
  await shot(alice, 'voting');
  await close(bob);
  await until(alice, () => document.querySelector('#online').textContent === '1', null,
    'bob left: 1 online');
  await close(alice);
});

test('ticketing: wait in line, get in, see seats held and stock change when another buys', async () => {
  await api('PUT', '/api/queues/sale', { state: 'paused' });
  const ann = await open('/ticketing/?user=ann');
  await until(ann, () => /^\d+$/.test(document.querySelector('#position').textContent), null,
    'a place in line');
  assert.equal(await ann.$eval('#event', (e) => e.hidden), true, 'not in yet');
  await shot(ann, 'ticketing-line');
  await api('PUT', '/api/queues/sale', { state: 'open' });
  await until(ann, () => !document.querySelector('#event').hidden, null, 'admitted');
  const ben = await open('/ticketing/?user=ben');
  await until(ben, () => !document.querySelector('#event').hidden, null, 'ben admitted');
  const left = Number(await text(ben, '#left'));
  assert.ok(left > 0);
  // ann holds A1: ben sees it held and cannot take it.
  await ann.click('[data-seat=A1]');
  await until(ben, () => document.querySelector('[data-seat=A1]').dataset.state === 'held', null,
    'A1 held for ben');
  await until(ann, () => document.querySelector('[data-seat=A1]').dataset.state === 'mine', null,
    'A1 mine for ann');
  // ann buys: ben sees the stock go down, and who bought.
  await ann.click('#buy');
  await until(ben, (n) => document.querySelector('#left').textContent === String(n - 1), left,
    'stock down by one');
  assert.match(await text(ben, '#lastbuy'), /ann just bought A1/);
  assert.equal(await ben.$eval('[data-seat=A1]', (e) => e.dataset.state), 'sold');
  // ben holds B2 and closes the tab: the backend releases it.
  await ben.click('[data-seat=B2]');
  await until(ann, () => document.querySelector('[data-seat=B2]').dataset.state === 'held', null,
    'B2 held by ben');
  await shot(ann, 'ticketing');
  await close(ben);
  await until(ann, () => document.querySelector('[data-seat=B2]').dataset.state === 'free', null,
    'B2 released when ben left');
  await close(ann);
});

test('three nodes: a tab offline while tickets sell comes back with every change, once', async () => {
  const board = await open('/three-nodes/?user=cleo');
  await until(board, () => document.querySelectorAll('#log li').length > 0, null, 'the log');
  const buyer = await open('/ticketing/?user=dora&node=2');
  await until(buyer, () => !document.querySelector('#event').hidden, null, 'dora admitted');
  const cdp = await board.createCDPSession();
  const offline = (on) => cdp.send('Network.emulateNetworkConditions',
    { offline: on, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await offline(true);
  await until(board, () => document.querySelector('#status').dataset.state === 'disconnected',
    null, 'the board knows it is offline');
  const before = await board.$$eval('#log li', (l) => l.map((e) => Number(e.dataset.offset)));
  // Three purchases while the board is away, each a change of stock.
  for (const seat of ['C1', 'C2', 'C3']) {
    await buyer.click(`[data-seat=${seat}]`);
    await until(buyer, (s) => document.querySelector(`[data-seat=${s}]`).dataset.state === 'mine',
      seat, 'held ' + seat);
    await buyer.click('#buy');
    await until(buyer, (s) => document.querySelector(`[data-seat=${s}]`).dataset.state === 'sold',
      seat, 'sold ' + seat);
  }
  const want = Number(await text(buyer, '#left'));
  assert.equal(await text(board, '#left'), String(want + 3), 'nothing reached it offline');
  await offline(false);
  await until(board, (n) => document.querySelector('#left').textContent === String(n), want,
    'the board caught up');
  await until(board, () => document.querySelector('#recovery').dataset.recovered === 'true', null,
    'recovered');
  const offsets = await board.$$eval('#log li', (l) => l.map((e) => Number(e.dataset.offset)));
  assert.equal(new Set(offsets).size, offsets.length, 'no change shown twice');
  const top = Math.max(...offsets);
  for (let o = Math.min(...before); o <= top; o++) assert.ok(offsets.includes(o), 'missing ' + o);
  const sold = await board.$$eval('#log li', (l) => l.map((e) => e.textContent)
    .filter((t) => /dora bought C\d/.test(t)).length);
  assert.equal(sold, 3, 'the three purchases, once each');
  assert.match(await text(board, '#recovery'), /recovered \d+ missed/);
  await shot(board, 'three-nodes');
  await close(buyer);
  await close(board);
});

test('notifications: sent from one node, received on the user\'s node', async () => {
  const erin = await open('/notifications/?user=erin&node=1');
  const finn = await open('/notifications/?user=finn&node=3');
  await erin.type('#to', 'finn');
  await erin.type('#text', 'your seats are confirmed');
  await erin.click('#send');
  await until(erin, () => document.querySelector('#sent').textContent === 'sent', null, 'sent');
  await until(finn, () => document.querySelectorAll('#notes li').length === 1, null, 'one note');
  const note = await text(finn, '#notes li');
  assert.match(note, /^erin: your seats are confirmed/);
  assert.match(note, /sent via edge-1, received on edge-3/);
  assert.equal(await text(finn, '#unread'), '1');
  // One sent while finn is away is there when he comes back (history).
  await close(finn);
  await erin.$eval('#text', (e) => { e.value = 'doors open at 7'; });
  await erin.click('#send');
  await until(erin, () => document.querySelector('#sent').textContent === 'sent', null, 'sent 2');
  const again = await open('/notifications/?user=finn&node=2');
  await until(again, () => document.querySelectorAll('#notes li').length === 2, null, 'both notes');
  assert.match(await text(again, '#notes li'), /^erin: doors open at 7/);
  await shot(again, 'notifications');
  await close(again);
  await close(erin);
});

test('chat: history on opening a room, unread counts, who is here, mentions', async () => {
  const gus = await open('/chat/?user=gus&node=1');
  const hal = await open('/chat/?user=hal&node=2');
  for (const p of [gus, hal]) {
    await until(p, () => ['gus', 'hal'].every((u) => document.querySelector(`#here [data-user=${u}]`)),
      null, 'both here');
  }
  const say = async (page, words) => {
    await page.$eval('#text', (e, w) => { e.value = w; }, words);
    await page.click('#send');
    await until(page, (w) => [...document.querySelectorAll('#messages li')]
      .some((li) => li.textContent.endsWith(w)), words, 'own message shown');
  };
  await say(gus, 'hello all');
  await until(hal, () => document.querySelector('#messages').textContent.includes('gus: hello all'),
    null, 'hal sees it');
  // hal looks at #random; two messages in #general are unread there.
  await hal.click('[data-room=random]');
  await say(gus, 'anyone for lunch?');
  await say(gus, '@hal the tickets are out');
  await until(hal, () => document.querySelector('[data-unread=general]')?.textContent === '2', null,
    'two unread in general');
  await until(hal, () => document.querySelector('#toasts').textContent
    .includes('gus in #general: @hal the tickets are out'), null, 'the mention');
  await hal.click('[data-room=general]');
  await until(hal, () => !document.querySelector('[data-unread=general]') &&
    document.querySelectorAll('#messages li').length === 3, null, 'read, all three shown');
  await shot(hal, 'chat');
  // A newcomer gets the room's history on opening it.
  const ida = await open('/chat/?user=ida&node=3');
  await until(ida, () => document.querySelectorAll('#messages li').length === 3, null, 'history');
  const lines = await ida.$$eval('#messages li', (l) => l.map((e) => e.textContent));
  assert.deepEqual(lines, ['gus: hello all', 'gus: anyone for lunch?', 'gus: @hal the tickets are out']);
  await until(gus, () => document.querySelector('#here [data-user=ida]'), null, 'ida is here');
  for (const p of [ida, hal, gus]) await close(p);
});

// Chromium offers permessage-deflate on every WebSocket; the pages above ran
// on compressed publications (the seat map, history, chat) and showed them
// right. Here: every node negotiated it with the browser and sent it
// compressed frames, which the pages read without an error.
test('chromium negotiates permessage-deflate and reads compressed publications', async () => {
  let negotiated = 0, frames = 0, refused = 0;
  for (const base of site.api) {
    const text = await (await fetch(base + '/metrics')).text();
    const val = (name) => text.split('\n').filter((l) => l.startsWith(name + ' ') ||
      l.startsWith(name + '{')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    negotiated += val('ringcast_deflate_negotiated_total');
    frames += val('ringcast_deflate_frames_total');
    refused += val('ringcast_inflate_refused_total');
  }
  assert.ok(negotiated > 0, 'some upgrade negotiated permessage-deflate');
  assert.ok(frames > 0, 'compressed frames were sent to the pages');
  assert.equal(refused, 0, 'nothing the browser sent compressed was refused');
  // And in a page: the extension the browser's WebSocket reports.
  const page = await open('/voting/?user=carol');
  const ext = await page.evaluate((url) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => { resolve(ws.extensions); ws.close(); };
    ws.onerror = () => resolve('error');
  }), site.nodes[0]);
  assert.match(ext, /^permessage-deflate; server_no_context_takeover; client_no_context_takeover/);
  await close(page);
});
