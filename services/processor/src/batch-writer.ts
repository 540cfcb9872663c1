import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorClass } from './clickhouse-errors.js';

export interface BatchWriterOptions<T> {
  insert(rows: T[]): Promise<void>;
  /** Insert as soon as this many rows wait. */
  maxRows: number;
  /** Insert rows at the latest this long after the first of them arrived. */
  maxDelayMs: number;
  classify(error: unknown): ErrorClass;
  backoff: { initialMs: number; maxMs: number };
  /** Transient failures are retried this long before the writers are told. */
  maxRetryMs: number;
  onInsert?(rows: number, seconds: number): void;
  onError?(error: unknown, errorClass: ErrorClass, attempt: number): void;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Coalesces concurrent writes into few large inserts: ClickHouse wants thousands of rows
 * per insert, not one. `write` resolves once ClickHouse acknowledged the insert holding
 * the rows, and rejects if it failed, so its caller commits nothing it cannot prove
 * stored. Rows are never dropped: a failed insert hands them back to their writers.
 */
export class BatchWriter<T> {
  private rows: T[] = [];
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closing = false;

  constructor(private readonly options: BatchWriterOptions<T>) {}

  write(rows: readonly T[]): Promise<void> {
    if (this.closing) return Promise.reject(new Error('the writer is closed'));
    if (rows.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.rows.push(...rows);
      this.waiters.push({ resolve, reject });
      if (this.rows.length >= this.options.maxRows) this.flushSoon();
      else this.timer ??= setTimeout(() => this.flushSoon(), this.options.maxDelayMs);
    });
  }

  /** Inserts what waits, stops retrying, and refuses new rows. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    this.flushSoon();
    // A drain that ends may start another for rows that came in as it ended.
    while (this.flushing) await this.flushing;
  }

  private flushSoon() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
      // Rows written after drain's last look but before this line found a drain still
      // running, so their flushSoon did nothing; without a timer nobody would insert them.
      if (this.rows.length > 0 && this.timer === undefined) this.flushSoon();
    });
  }

  /** One insert at a time; rows arriving meanwhile form the next one. */
  private async drain() {
    while (this.rows.length > 0) {
      const rows = this.rows;
      const waiters = this.waiters;
      this.rows = [];
      this.waiters = [];
      clearTimeout(this.timer);
      this.timer = undefined;
      try {
        await this.insertWithRetry(rows);
        for (const w of waiters) w.resolve();
      } catch (error) {
        for (const w of waiters) w.reject(error);
      }
    }
  }

  private async insertWithRetry(rows: T[]) {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      const t0 = performance.now();
      try {
        await this.options.insert(rows);
        this.options.onInsert?.(rows.length, (performance.now() - t0) / 1000);
        return;
      } catch (error) {
        const errorClass = this.options.classify(error);
        this.options.onError?.(error, errorClass, attempt);
        const { initialMs, maxMs } = this.options.backoff;
        const delay = Math.min(maxMs, initialMs * 2 ** (attempt - 1));
        const giveUp =
          errorClass === 'permanent' ||
          this.closing ||
          Date.now() - started + delay > this.options.maxRetryMs;
        if (giveUp) throw error;
        await sleep(delay);
      }
    }
  }
}
