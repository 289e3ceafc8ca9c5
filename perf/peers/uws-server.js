'use strict';
// Benchmark peer: uWebSockets (through its Node.js binding, uWebSockets.js, as
// the npm registry carries it) speaking ringcast's dialect (see
// perf/peers/README.md). Subscriptions are uWebSockets topics and a publish is
// one app.publish(): the fan-out to the topic's subscribers runs in
// uWebSockets' own C++ code, which frames the message once per publish and
// coalesces the frames bound for each socket. One process, one event loop.
//   node uws-server.js [--host 127.0.0.1] [--port 8081] [--path /ws]
// Prints `listening on PORT` when ready; exits 0 on SIGTERM or SIGINT. Exits 3
// with a line on stderr when the uWebSockets.js package is not installed.

let uWS;
try {
    uWS = require('@trufflesuite/uws-js-unofficial');
} catch (e) {
    process.stderr.write('uws-server: uWebSockets.js is not installed (cd perf/peers && npm ci): '
                         + String(e.message).split('\n')[0] + '\n');
    process.exit(3);
}

function parseArgs(argv) {
    const o = { host: '127.0.0.1', port: 8081, path: '/ws' };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        if (a === '--host' && v !== undefined) { o.host = v; i++; }
        else if (a === '--port' && v !== undefined) { o.port = parseInt(v, 10); i++; }
        else if (a === '--path' && v !== undefined) { o.path = v; i++; }
        else {
            process.stderr.write('usage: node uws-server.js [--host H] [--port P] [--path /ws]\n');
            process.exit(2);
        }
    }
    return o;
}

const opts = parseArgs(process.argv);
let seq = 0;

const { NAME_RE, rawData } = require('./dialect');

const app = uWS.App();
const sockets = new Set();

function sendError(ws, id, code) {
    const idPart = id === undefined ? '' : `,"id":${JSON.stringify(id)}`;
    ws.send(`{"type":"error"${idPart},"code":"${code}"}`, false);
}

function onMessage(ws, buf, isBinary) {
    if (isBinary) return sendError(ws, undefined, 'binary_unsupported');
    const text = Buffer.from(buf).toString('utf8'); // buf is only valid during the call
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
        ws.send(`{"type":"pong"${idPart},"time":${Date.now()}}`, false);
        return;
    }
    if (m.type !== 'subscribe' && m.type !== 'unsubscribe' && m.type !== 'publish') {
        return sendError(ws, id, 'unknown_type');
    }
    if (typeof ch !== 'string' || !NAME_RE.test(ch)) return sendError(ws, id, 'invalid_channel');
    if (m.type === 'subscribe') {
        ws.subscribe(ch);
        ws.send(`{"type":"subscribed"${idPart},"channel":"${ch}"}`, false);
    } else if (m.type === 'unsubscribe') {
        if (!ws.unsubscribe(ch)) return sendError(ws, id, 'not_subscribed');
        ws.send(`{"type":"unsubscribed"${idPart},"channel":"${ch}"}`, false);
    } else {
        const data = rawData(text);
        if (data === null || !('data' in m)) return sendError(ws, id, 'bad_request');
        const ev = typeof m.event === 'string' && NAME_RE.test(m.event) ? m.event : 'message';
        const s = ++seq;
        app.publish(ch, `{"type":"message","channel":"${ch}","event":"${ev}","seq":${s},"data":${data}}`,
                    false);
    }
}

app.ws(opts.path, {
    compression: uWS.DISABLED,
    maxPayloadLength: 1 << 20,
    // Loss-free like the other servers: a subscriber's unsent bytes may grow to 64 MiB
    // before uWebSockets would skip it, and the socket is never closed for it.
    maxBackpressure: 64 << 20,
    closeOnBackpressureLimit: false,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    open: (ws) => { sockets.add(ws); },
    message: onMessage,
    close: (ws) => { sockets.delete(ws); },
});
app.any('/*', (res) => { res.writeStatus('404 Not Found').end('not found\n'); });

let token = null;
app.listen(opts.host, opts.port, (t) => {
    if (!t) {
        process.stderr.write(`uws-server: cannot listen on ${opts.host}:${opts.port}\n`);
        process.exit(1);
    }
    token = t;
    console.log(`listening on ${uWS.us_socket_local_port(t)}`);
});

function shutdown() {
    if (token) uWS.us_listen_socket_close(token);
    for (const ws of sockets) ws.close();
    setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
