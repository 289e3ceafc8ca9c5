// What the client's tests share: the binary under test, free ports, tokens,
// and ringcast nodes started (and stopped) by the tests.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.RINGCAST_BIN ||
  path.join(here, '..', '..', '..', 'build', 'ringcast');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** A JWT (HS256) with these claims, signed with secret. */
export function jwt(secret, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(claims);
  return body + '.' + createHmac('sha256', secret).update(body).digest('base64url');
}

/** Waits until the node on port answers /healthz. */
export async function started(port) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error('ringcast did not start on ' + port);
}

/** Waits until the node on port says it is ready (/readyz): with --redis,
 * once its command and subscriber connections are up, so that nothing
 * published to Redis from then on goes by unheard. */
export async function ready(port) {
  let last = '';
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      last = `${r.status} ${(await r.text()).trim()}`;
      if (r.status === 200) return;
    } catch (e) { last = String(e); }
    await sleep(50);
  }
  throw new Error(`ringcast on ${port} not ready: ${last}`);
}

/** Starts build/ringcast with args and the given secrets (env). */
export function startNode(args, env) {
  return spawn(BIN, args, { env: { ...process.env, ...env }, stdio: 'inherit' });
}

/** A redis-server on port, without persistence. */
export function startRedis(port) {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no'], { stdio: 'ignore' });
}
