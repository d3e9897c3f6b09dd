/**
 * What a cluster worker tells its primary over the IPC channel (the primary stops workers with SIGTERM). The channel name
 * keeps these apart from rate-limiter-flexible's messages, which share the same channel.
 */
export const CHANNEL = 'custodian:cluster';

/** Worker → primary. */
export type WorkerMessage =
  /** Listening: from now on a death is a crash to restart, not a failed start. */
  | { channel: typeof CHANNEL; type: 'ready'; url: string }
  /** Start-up failed; the worker exits next. `reason` is what the primary reports if it gives up. */
  | { channel: typeof CHANNEL; type: 'failed'; reason: string };

export function isMessage<T extends { channel: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && (m as { channel?: unknown }).channel === CHANNEL;
}
