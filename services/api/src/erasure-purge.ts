import {
  type ErasureRow,
  erasurePasses,
  pendingErasures,
  purgeErasures,
  type Store,
  writeErasure,
} from '@touchstream/store';
import type { Logger } from 'pino';
import { type ErasureBus, eraseRecords } from './erasure.js';

export interface ErasurePurgeDeps {
  store: Store;
  bus: ErasureBus;
  topics: { touchpoints: string };
  logger: Logger;
  /** How often pending erasures are looked for. */
  intervalMs?: number;
  /**
   * An id whose pass has not run this long after the request gets its erase message
   * again: the in-process bus keeps nothing on disk, so a process that stopped between
   * storing the request and publishing lost the message. A repeated message is harmless
   * (each pass runs once per erasure and id).
   */
  republishAfterMs?: number;
  now?: () => number;
}

/**
 * Makes pending erasures done (API.md: within an hour, here within seconds of their last
 * pass): once the processor passed every id of an erasure, its rows are removed from
 * disk and checked with the deleted-row mask off; then it is marked done. Its state is in
 * the erasures table, so a restart resumes where it stopped. Every process running the
 * API runs it; two running at once do the same work twice, nothing worse.
 */
export function buildErasurePurge(deps: ErasurePurgeDeps) {
  const now = deps.now ?? Date.now;
  const republishAfterMs = deps.republishAfterMs ?? 60_000;
  const republishedAt = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const republish = async (erasure: ErasureRow, missing: string[]) => {
    const last = republishedAt.get(erasure.erasure_id) ?? erasure.requested_at;
    if (now() - last < republishAfterMs) return;
    republishedAt.set(erasure.erasure_id, now());
    deps.logger.warn(
      { erasure_id: erasure.erasure_id, ids: missing.length },
      'erasure_pass_missing_republished',
    );
    try {
      await deps.bus.publish(deps.topics.touchpoints, eraseRecords(erasure, missing));
    } catch (error) {
      // Still unreachable: asked again after the same wait; other erasures go on meanwhile.
      deps.logger.warn({ err: error, erasure_id: erasure.erasure_id }, 'erasure_publish_failed');
    }
  };

  /** One round: returns the erasures it made done. */
  const round = async (): Promise<string[]> => {
    // Passes first, then the requests: a customer's pass stores the ids its erasure gained
    // (links that were in flight) before it is recorded, so requests read after it hold them.
    const passes = await erasurePasses(deps.store);
    const pending = await pendingErasures(deps.store);
    if (pending.length === 0) return [];
    const ready: ErasureRow[] = [];
    for (const erasure of pending) {
      const passed = passes.get(erasure.erasure_id) ?? new Set();
      const missing = erasure.ids.filter((id) => !passed.has(id));
      if (missing.length === 0) ready.push(erasure);
      else await republish(erasure, missing);
    }
    if (ready.length === 0) return [];
    const { done, timings } = await purgeErasures(deps.store, ready);
    const finished = now();
    for (const erasure of ready.filter((e) => done.includes(e.erasure_id))) {
      await writeErasure(deps.store, { ...erasure, state: 'done', done_at: finished });
      republishedAt.delete(erasure.erasure_id);
    }
    deps.logger.info(
      {
        erasures: ready.length,
        done: done.length,
        redelete_ms: Math.round(timings.redelete),
        apply_ms: Math.round(timings.apply),
        verify_ms: Math.round(timings.verify),
      },
      'erasures_purged',
    );
    return done;
  };

  return {
    round,
    start() {
      timer = setInterval(() => {
        if (running) return;
        running = round()
          .then(() => undefined)
          .catch((error) => deps.logger.warn({ err: error }, 'erasure_purge_failed'))
          .finally(() => {
            running = undefined;
          });
      }, deps.intervalMs ?? 2_000);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
