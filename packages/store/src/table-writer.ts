import pRetry, { AbortError } from 'p-retry';
import { classifyClickHouseError, type ErrorClass } from './clickhouse-errors.js';

export interface TableWriterOptions<T> {
  insert(rows: T[]): Promise<void>;
  /** Rows per insert, at most: a larger queue goes in several inserts, in order. */
  maxRows: number;
  /** Transient failures are retried this long before the writers are told. */
  maxRetryMs: number;
  backoff: { initialMs: number; maxMs: number };
  onInsert?(rows: number, seconds: number): void;
  onError?(error: unknown, errorClass: ErrorClass, attempt: number): void;
}

interface PendingWrite<T> {
  rows: readonly T[];
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * One table's writes, by group commit: ClickHouse wants few large inserts, not many small
 * ones, yet a write should not wait for a timer. So a write to an idle writer is inserted at
 * once (with whatever else is written in the same turn of the event loop), and whatever
 * arrives while an insert runs goes into the next one. `write` resolves once ClickHouse
 * acknowledged the insert holding the rows and rejects if it failed, so its caller commits
 * nothing it cannot prove stored. Rows are never dropped: a failed insert hands them back.
 */
export class TableWriter<T> {
  private pending: PendingWrite<T>[] = [];
  private flushing: Promise<void> | undefined;
  private closing = false;

  constructor(private readonly options: TableWriterOptions<T>) {}

  write(rows: readonly T[]): Promise<void> {
    if (this.closing) return Promise.reject(new Error('the writer is closed'));
    if (rows.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pending.push({ rows, resolve, reject });
      // Idle: insert after this turn, so writes made together go in together. Busy: the
      // running drain takes these rows when its insert is done.
      this.flushing ??= new Promise(setImmediate).then(() => this.drain());
    });
  }

  /** Inserts what waits, stops retrying, and refuses new rows. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    while (this.flushing) await this.flushing;
  }

  /** One insert at a time, of whole writes up to maxRows rows; later writes wait for it. */
  private async drain() {
    try {
      while (this.pending.length > 0) {
        let count = 0;
        let taken = 0;
        for (const write of this.pending) {
          if (taken > 0 && count + write.rows.length > this.options.maxRows) break;
          count += write.rows.length;
          taken++;
        }
        const writes = this.pending.splice(0, taken);
        try {
          await this.insertWithRetry(writes.flatMap((w) => w.rows));
          for (const w of writes) w.resolve();
        } catch (error) {
          for (const w of writes) w.reject(error);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async insertWithRetry(rows: T[]) {
    const { initialMs, maxMs } = this.options.backoff;
    await pRetry(
      async (attempt) => {
        const started = performance.now();
        try {
          await this.options.insert(rows);
        } catch (error) {
          const errorClass = classifyClickHouseError(error);
          this.options.onError?.(error, errorClass, attempt);
          // Only a busy, slow or unreachable server is worth asking again as it is.
          if (errorClass === 'permanent' || this.closing) throw new AbortError(error as Error);
          throw error;
        }
        this.options.onInsert?.(rows.length, (performance.now() - started) / 1000);
      },
      {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: initialMs,
        maxTimeout: maxMs,
        maxRetryTime: this.options.maxRetryMs,
      },
    );
  }
}
