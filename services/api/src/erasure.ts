import { randomUUID } from 'node:crypto';
import { type EraseMessage, type ErasureResponse, IDENTITY_HEADERS } from '@touchstream/contracts';
import {
  type ErasureRow,
  eraseRows,
  erasurePasses,
  resolveErasureIds,
  type Store,
  writeErasure,
} from '@touchstream/store';
import type { Logger } from 'pino';

/**
 * What erasure needs of the bus: the API publishes one erase message per id on the
 * touchpoints topic (kafkajs stays behind packages/bus; this is the shape its `Bus` has).
 */
export interface ErasureBus {
  readonly kind: 'kafka' | 'embedded';
  publish(
    topic: string,
    records: Array<{ key: string; value: string; headers: Record<string, string> }>,
  ): Promise<void>;
}

export interface ErasureDeps {
  store: Store;
  logger: Logger;
  bus: ErasureBus;
  topics: { touchpoints: string };
  /** How long a request waits for the processor's passes before answering anyway. */
  passWaitMs?: number;
  now?: () => number;
}

export function erasureResponse(erasure: ErasureRow): ErasureResponse {
  return {
    erasure_id: erasure.erasure_id,
    customer_id: erasure.customer_id,
    state: erasure.state,
    requested_at: new Date(erasure.requested_at).toISOString(),
    ...(erasure.done_at === null ? {} : { done_at: new Date(erasure.done_at).toISOString() }),
  };
}

/** The erase messages of an erasure, one per id, each keyed by its id. */
export function eraseRecords(
  erasure: Pick<ErasureRow, 'erasure_id' | 'customer_id' | 'ids'>,
  only?: readonly string[],
) {
  return (only ?? erasure.ids).map((id) => {
    const message: EraseMessage = {
      kind: 'erase',
      erasure_id: erasure.erasure_id,
      id,
      customer_id: erasure.customer_id,
      ids: erasure.ids,
    };
    return {
      key: id,
      value: JSON.stringify(message),
      headers: { [IDENTITY_HEADERS.control]: 'erase' },
    };
  });
}

/**
 * Erases a customer (API.md, "Erasure and retention"): stores the request first (it
 * survives a restart), erases and hides what is stored of its ids, then sends each id's
 * partition an erase message, behind every record of that id already on the topic, so
 * records that were in flight are erased there too. Waits (boundedly) for those passes,
 * so that from the answer on nothing of the customer counts, on Kafka as on the
 * in-process bus (whose publish returns once they ran).
 */
export async function requestErasure(deps: ErasureDeps, customerId: string): Promise<ErasureRow> {
  const now = deps.now ?? Date.now;
  const erasure: ErasureRow = {
    erasure_id: randomUUID(),
    customer_id: customerId,
    ids: await resolveErasureIds(deps.store, customerId),
    requested_at: now(),
    state: 'pending',
    done_at: null,
  };
  await writeErasure(deps.store, erasure);
  await eraseRows(deps.store, erasure);
  try {
    await deps.bus.publish(deps.topics.touchpoints, eraseRecords(erasure));
  } catch (error) {
    // The request is stored and what was stored of the customer is gone: it is accepted.
    // The purge sends the messages again (see erasure-purge.ts) once the bus is back.
    deps.logger.warn({ err: error, erasure_id: erasure.erasure_id }, 'erasure_publish_failed');
    return erasure;
  }
  await passesDone(deps, erasure, deps.passWaitMs ?? 10_000);
  return erasure;
}

/** Waits until every id's pass ran, for at most `limitMs`. */
async function passesDone(deps: ErasureDeps, erasure: ErasureRow, limitMs: number) {
  const until = Date.now() + limitMs;
  for (let wait = 20; ; wait = Math.min(wait * 2, 500)) {
    const passed = (await erasurePasses(deps.store, [erasure.erasure_id])).get(erasure.erasure_id);
    if (erasure.ids.every((id) => passed?.has(id))) return;
    if (Date.now() + wait > until) return;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
