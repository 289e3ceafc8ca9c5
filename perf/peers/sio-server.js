'use strict';
// Benchmark peer: Socket.IO 4 with the Redis adapter, speaking the "socketio"
// dialect (see perf/peers/README.md). Every room emit goes through the adapter,
// as in a multi-node Socket.IO deployment.
//   node sio-server.js [--host 127.0.0.1] [--port 8082] [--redis redis://127.0.0.1:6379]
//                      [--ping-interval MS]   (Engine.IO's default, 25000; tests shorten it)
//                      [--polling]            (also serve HTTP long-polling; memory runs)

const http = require('http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

function parseArgs(argv) {
    const o = { host: '127.0.0.1', port: 8082, redis: 'redis://127.0.0.1:6379',
                pingInterval: 25000 };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        if (a === '--host' && v !== undefined) { o.host = v; i++; }
        else if (a === '--port' && v !== undefined) { o.port = parseInt(v, 10); i++; }
        else if (a === '--redis' && v !== undefined) { o.redis = v; i++; }
        else if (a === '--ping-interval' && v !== undefined) { o.pingInterval = parseInt(v, 10); i++; }
        else if (a === '--polling') { o.polling = true; }
        else {
            process.stderr.write('usage: node sio-server.js [--host H] [--port P] [--redis URL] [--ping-interval MS]\n');
            process.exit(2);
        }
    }
    return o;
}

async function main() {
    const opts = parseArgs(process.argv);
    const pub = createClient({ url: opts.redis });
    const sub = pub.duplicate();
    pub.on('error', (e) => console.error('redis pub:', e.message));
    sub.on('error', (e) => console.error('redis sub:', e.message));
    await Promise.all([pub.connect(), sub.connect()]);

    const httpServer = http.createServer();
    const io = new Server(httpServer, {
        transports: opts.polling ? ['polling', 'websocket'] : ['websocket'],
        serveClient: false,
        perMessageDeflate: false,
        pingInterval: opts.pingInterval,
        adapter: createAdapter(pub, sub),
    });

    io.on('connection', (socket) => {
        socket.on('subscribe', (room) => {
            if (typeof room !== 'string' || room.length === 0) return;
            socket.join(room);
            socket.emit('subscribed', room);
        });
        socket.on('unsubscribe', (room) => {
            if (typeof room !== 'string') return;
            socket.leave(room);
            socket.emit('unsubscribed', room);
        });
        // socket.emit('message', room, msg): the load generator's publish.
        socket.on('message', (room, msg) => {
            if (typeof room !== 'string') return;
            io.to(room).emit('message', msg);
        });
        socket.on('publish', (msg) => {
            if (!msg || typeof msg.channel !== 'string') return;
            io.to(msg.channel).emit('message', { channel: msg.channel, data: msg.data });
        });
    });

    httpServer.listen(opts.port, opts.host, () => {
        console.log(`listening on ${httpServer.address().port}`);
    });

    let stopping = false;
    const shutdown = () => {
        if (stopping) return;
        stopping = true;
        setTimeout(() => process.exit(0), 2000).unref();
        io.close(() => {
            Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
        });
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
}

main().catch((e) => {
    console.error('sio-server:', e && e.message ? e.message : e);
    process.exit(1);
});
