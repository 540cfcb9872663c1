import type { Store } from './client.js';
import type { DeadLetter } from './dead-letters.js';
import type { toEventRow } from './events.js';
import type { FactRow } from './journey-facts.js';
import type { CheckpointRow } from './journey-state.js';
import { TableWriter, type TableWriterOptions } from './table-writer.js';

export type EventRow = ReturnType<typeof toEventRow>;

/** What every writer reports, with the table it writes. */
export interface WriterHooks {
  onInsert?(table: string, rows: number, seconds: number): void;
  onError?(table: string, error: unknown, errorClass: string, attempt: number): void;
}

/**
 * The one write path: a group-commit writer per table the pipeline writes. Whatever
 * writes concurrently to a table (the partitions a processor owns) shares its inserts.
 */
export function createWriters(
  store: Store,
  hooks: WriterHooks = {},
  limits: { maxRows?: number; maxRetryMs?: number } = {},
) {
  const writer = <T>(table: string, options: Partial<TableWriterOptions<T>> = {}) =>
    new TableWriter<T>({
      insert: async (rows) => {
        await store.insert({ table, values: rows, format: 'JSONEachRow' });
      },
      maxRows: limits.maxRows ?? 100_000,
      maxRetryMs: limits.maxRetryMs ?? 30_000,
      backoff: { initialMs: 100, maxMs: 5_000 },
      onInsert: (rows, seconds) => hooks.onInsert?.(table, rows, seconds),
      onError: (error, errorClass, attempt) => hooks.onError?.(table, error, errorClass, attempt),
      ...options,
    });
  const writers = {
    events: writer<EventRow>('events'),
    facts: writer<FactRow>('facts'),
    checkpoints: writer<CheckpointRow>('journey_state'),
    deadLetters: writer<DeadLetter>('dead_letters'),
  };
  return {
    ...writers,
    /** Flushes every writer; later writes are refused. */
    async close() {
      await Promise.all(Object.values(writers).map((w) => w.close()));
    },
  };
}
export type Writers = ReturnType<typeof createWriters>;
