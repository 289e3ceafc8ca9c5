// Types of react.js.
import type { Client, Message, Queue, Recovery, RingcastError, State } from './ringcast.js';

export interface ChannelOptions {
  /** How many of the last messages to keep (default 100). */
  limit?: number;
  /** Called with each message; may be a new function at each render. */
  onMessage?: (m: Message) => void;
}

export interface ChannelState {
  /** The last `limit` messages, oldest first. */
  messages: Message[];
  last: Message | null;
  /** The last 'recovered' event: if `recovered` is false, reload what you show. */
  recovery: Recovery | null;
  error: RingcastError | null;
}

export interface PresenceMember {
  user: string | null;
  conn: string;
  node: string;
  info?: unknown;
}

export interface PresenceState {
  /** null until the first answer. */
  connections: number | null;
  users: number | null;
  /** The first page of members (at most the node's --presence-page-max). */
  members: PresenceMember[] | null;
  error: RingcastError | null;
}

export interface QueueState {
  /** null while no queue id is given. */
  state: Queue['state'] | null;
  position: number | null;
  eta: number | null;
  token: string | null;
  expires: number | null;
  error: RingcastError | null;
  /** Gives up the place (resolves at once when not joined). */
  leave(): Promise<void>;
}

export function useChannel(client: Client | null | undefined, channel: string | null | undefined,
  opts?: ChannelOptions): ChannelState;
export function usePresence(client: Client | null | undefined, channel: string | null | undefined,
  opts?: { refreshMs?: number }): PresenceState;
export function useQueue(client: Client | null | undefined,
  queueId: string | null | undefined): QueueState;
/** 'disconnected' for a null client. */
export function useConnectionState(client: Client | null | undefined): State;
