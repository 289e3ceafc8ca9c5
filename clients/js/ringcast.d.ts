// Types of ringcast.js.
export type State = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface ClientOptions {
  token?: string;
  /** Called for a new token: on the server's refresh notice, and after a 4001 close. */
  getToken?: () => string | Promise<string>;
  /** A WebSocket implementation where there is no global one (Node: the `ws` package). */
  WebSocket?: unknown;
  minDelay?: number;
  maxDelay?: number;
  /** Request timeout, ms (default 10000). */
  timeout?: number;
  autoConnect?: boolean;
  /** In a browser: leave when it goes offline, come back when it is online (default true). */
  watchNetwork?: boolean;
}

export interface Message {
  type: 'message';
  channel: string;
  event: string;
  seq: number;
  offset?: number;
  epoch?: string;
  from?: { user: string | null; conn: string } | { backend: true };
  data: unknown;
}

export interface Recovery {
  recovered: boolean;
  reason?: string;
  missed?: number;
}

export class RingcastError extends Error {
  code: string;
  reply: unknown;
}

export class Subscription {
  readonly channel: string;
  offset: number | null;
  epoch: string | null;
  on(name: 'message', fn: (m: Message) => void): () => void;
  on(name: 'recovered', fn: (r: Recovery) => void): () => void;
  on(name: 'subscribed', fn: (reply: object) => void): () => void;
  on(name: 'join' | 'leave', fn: (member: object) => void): () => void;
  on(name: 'error', fn: (e: RingcastError) => void): () => void;
  unsubscribe(): Promise<void>;
  history(opts?: { limit?: number; since?: { offset: number; epoch: string } }): Promise<object>;
}

export interface QueuePosition {
  /** The place in line (1 is next): from the join's answer, then from each tick (ticket - head). */
  position: number;
  /** Estimated wait, seconds; null while the queue is paused. */
  eta: number | null;
  /** The ticket the join gave (it keeps the place across tabs and reconnects). */
  ticket: number;
}

export interface Admission {
  /** The admission token to give the ticketing backend. */
  token: string;
  /** When it expires, ms since the epoch. */
  expires: number;
}

export class Queue {
  readonly id: string;
  readonly state: 'joining' | 'waiting' | 'admitted' | 'left';
  readonly ticket: number | null;
  readonly position: number | null;
  readonly eta: number | null;
  readonly token: string | null;
  readonly expires: number | null;
  /** Resolves once admitted; rejects with code 'queue_left' when out of the line (`reply.reason`: left, left_elsewhere, removed, or the join's error code). */
  readonly admitted: Promise<Admission>;
  on(name: 'position', fn: (p: QueuePosition) => void): () => void;
  on(name: 'admitted', fn: (a: Admission) => void): () => void;
  on(name: 'left', fn: (e: { reason: string }) => void): () => void;
  on(name: 'error', fn: (e: RingcastError) => void): () => void;
  leave(): Promise<void>;
}

export class Client {
  /** One node's URL, or several: each connection attempt tries the next. */
  constructor(url: string | string[], opts?: ClientOptions);
  readonly url: string;
  readonly state: State;
  readonly welcome: { conn: string; node: string; user: string | null } | null;
  connect(): void;
  close(): void;
  subscribe(channel: string): Subscription;
  publish(channel: string, data: unknown, event?: string): Promise<object>;
  rpc(event: string, data?: unknown, opts?: { timeout?: number }): Promise<unknown>;
  /** Joins a waiting room (the token needs a `sub`); joins again after every reconnect. */
  queue(id: string): Queue;
  presence(channel: string, opts?: { limit?: number; cursor?: string }): Promise<object>;
  presenceStats(channel: string): Promise<{ connections: number; users: number }>;
  on(name: 'state', fn: (s: State) => void): () => void;
  on(name: 'disconnect', fn: (e: { code: number; reason: string }) => void): () => void;
  on(name: 'error', fn: (e: RingcastError) => void): () => void;
}
