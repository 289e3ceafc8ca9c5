'use strict';
// Benchmark peer: the Node `ws` library speaking ringcast's dialect
// (see notes in perf/peers/README.md). One process, one event loop.
//   node ws-server.js [--host 127.0.0.1] [--port 8081] [--path /ws]

const http = require('http');
const { WebSocketServer } = require('ws');

function parseArgs(argv) {
    const o = { host: '127.0.0.1', port: 8081, path: '/ws' };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        if (a === '--host' && v !== undefined) { o.host = v; i++; }
        else if (a === '--port' && v !== undefined) { o.port = parseInt(v, 10); i++; }
        else if (a === '--path' && v !== undefined) { o.path = v; i++; }
        else {
            process.stderr.write(`usage: node ws-server.js [--host H] [--port P] [--path /ws]\n`);
            process.exit(2);
        }
    }
    return o;
}

const opts = parseArgs(process.argv);
const channels = new Map(); // channel -> Set of sockets
let seq = 0;

const { NAME_RE, rawData } = require('./dialect');

function sendError(ws, id, code) {
    const idPart = id === undefined ? '' : `,"id":${JSON.stringify(id)}`;
    ws.send(`{"type":"error"${idPart},"code":"${code}"}`);
}

function onMessage(ws, buf, isBinary) {
    if (isBinary) return sendError(ws, undefined, 'binary_unsupported');
    const text = buf.toString('utf8');
    let m;
    try {
        m = JSON.parse(text);
    } catch (e) {
        return sendError(ws, undefined, 'bad_json');
    }
    if (m === null || typeof m !== 'object') return sendError(ws, undefined, 'bad_request');
    const id = m.id;
    const idPart = id === undefined ? '' : `,"id":${JSON.stringify(id)}`;
    const ch = m.channel;
    if (m.type === 'ping') {
        ws.send(`{"type":"pong"${idPart},"time":${Date.now()}}`);
        return;
    }
    if (m.type !== 'subscribe' && m.type !== 'unsubscribe' && m.type !== 'publish') {
        return sendError(ws, id, 'unknown_type');
    }
    if (typeof ch !== 'string' || !NAME_RE.test(ch)) return sendError(ws, id, 'invalid_channel');

    if (m.type === 'subscribe') {
        let set = channels.get(ch);
        if (!set) {
            set = new Set();
            channels.set(ch, set);
        }
        set.add(ws);
        ws.subs.add(ch);
        ws.send(`{"type":"subscribed"${idPart},"channel":"${ch}"}`);
    } else if (m.type === 'unsubscribe') {
        const set = channels.get(ch);
        if (!set || !set.has(ws)) return sendError(ws, id, 'not_subscribed');
        set.delete(ws);
        if (set.size === 0) channels.delete(ch);
        ws.subs.delete(ch);
        ws.send(`{"type":"unsubscribed"${idPart},"channel":"${ch}"}`);
    } else {
        const data = rawData(text);
        if (data === null || !('data' in m)) return sendError(ws, id, 'bad_request');
        const ev = typeof m.event === 'string' && NAME_RE.test(m.event) ? m.event : 'message';
        const s = ++seq;
        // Built once per publish; ws frames it once per recipient.
        const out = `{"type":"message","channel":"${ch}","event":"${ev}","seq":${s},"data":${data}}`;
        const set = channels.get(ch);
        if (set) {
            for (const peer of set) {
                if (peer.readyState === 1) peer.send(out);
            }
        }
    }
}

const server = http.createServer((req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
});
const wss = new WebSocketServer({ server, path: opts.path, perMessageDeflate: false,
                                  clientTracking: true });

wss.on('connection', (ws) => {
    ws.subs = new Set();
    ws.on('message', (buf, isBinary) => onMessage(ws, buf, isBinary));
    ws.on('close', () => {
        for (const ch of ws.subs) {
            const set = channels.get(ch);
            if (set) {
                set.delete(ws);
                if (set.size === 0) channels.delete(ch);
            }
        }
        ws.subs.clear();
    });
    ws.on('error', () => {});
});

server.listen(opts.port, opts.host, () => {
    console.log(`listening on ${server.address().port}`);
});

function shutdown() {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
