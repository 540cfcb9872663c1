import { setTimeout as sleep } from 'node:timers/promises';
import type { Batch, BatchHandler } from './bus.js';

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 100, maxMs: 5_000 };

/**
 * Runs the handler until it succeeds or the batch stops being ours. Retrying in place keeps
 * the partition's order and holds its later records back: that is the backpressure, rather
 * than a buffer. Returns whether the batch was handled, i.e. whether to commit it.
 */
export async function handleUntilDone(
  handler: BatchHandler,
  batch: Batch,
  backoff: Backoff,
  onError?: (error: unknown, batch: Batch, attempt: number) => void,
): Promise<boolean> {
  for (let attempt = 1; batch.isActive(); attempt++) {
    try {
      await handler(batch);
      return true;
    } catch (error) {
      onError?.(error, batch, attempt);
    }
    const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (attempt - 1));
    // Wait in short slices so a stop or a rebalance is noticed promptly.
    for (let waited = 0; waited < delay && batch.isActive(); waited += 100) {
      await sleep(Math.min(100, delay - waited));
      await batch.heartbeat();
    }
  }
  return false;
}
