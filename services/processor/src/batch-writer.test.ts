import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchWriter } from './batch-writer.js';
import { classifyClickHouseError } from './clickhouse-errors.js';

const transient = () => Object.assign(new Error('busy'), { type: 'TOO_MANY_PARTS' });
const permanent = () => Object.assign(new Error('bad'), { type: 'TYPE_MISMATCH' });

function writer(insert: (rows: number[]) => Promise<void>, options: { maxRows?: number } = {}) {
  return new BatchWriter<number>({
    insert,
    maxRows: options.maxRows ?? 100,
    maxDelayMs: 10,
    maxRetryMs: 200,
    backoff: { initialMs: 5, maxMs: 20 },
    classify: classifyClickHouseError,
  });
}

describe('BatchWriter', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('coalesces concurrent writes into one insert and resolves them after it', async () => {
    const inserts: number[][] = [];
    const w = writer(async (rows) => {
      inserts.push(rows);
    });
    await Promise.all([w.write([1, 2]), w.write([3]), w.write([4, 5])]);
    expect(inserts).toEqual([[1, 2, 3, 4, 5]]);
  });

  it('inserts at once when maxRows rows wait', async () => {
    const inserts: number[][] = [];
    const w = writer(
      async (rows) => {
        inserts.push(rows);
      },
      { maxRows: 3 },
    );
    const started = performance.now();
    await w.write([1, 2, 3]);
    expect(inserts).toEqual([[1, 2, 3]]);
    expect(performance.now() - started).toBeLessThan(10);
  });

  it('inserts maxRows rows written just as the previous insert is wrapped up', async () => {
    // No timer stands in for a missed flush: only the writer itself can insert them.
    vi.useFakeTimers();
    const inserts: number[][] = [];
    const w = writer(
      async (rows) => {
        inserts.push(rows);
      },
      { maxRows: 2 },
    );
    let second: Promise<void> | undefined;
    // Runs when the first insert is acknowledged, before the drain that made it has ended.
    await w.write([1, 2]).then(() => {
      second = w.write([3, 4]);
    });
    await vi.runAllTimersAsync();
    expect(inserts).toEqual([
      [1, 2],
      [3, 4],
    ]);
    await second;
  });

  it('does not resolve a write before the insert holding it is acknowledged', async () => {
    let acknowledge: () => void = () => {};
    const w = writer(() => new Promise<void>((resolve) => (acknowledge = resolve)));
    let done = false;
    const pending = w.write([1]).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    acknowledge();
    await pending;
    expect(done).toBe(true);
  });

  it('retries transient failures with the same rows', async () => {
    const attempts: number[][] = [];
    const w = writer(async (rows) => {
      attempts.push(rows);
      if (attempts.length < 3) throw transient();
    });
    await w.write([7, 8]);
    expect(attempts).toEqual([
      [7, 8],
      [7, 8],
      [7, 8],
    ]);
  });

  it('hands a permanent failure back to every writer of the insert, rows intact', async () => {
    let calls = 0;
    const w = writer(async () => {
      calls++;
      throw permanent();
    });
    const results = await Promise.allSettled([w.write([1]), w.write([2])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
  });

  it('gives transient failures up after maxRetryMs, so the caller can retry the batch', async () => {
    const w = writer(async () => {
      throw transient();
    });
    await expect(w.write([1])).rejects.toThrow('busy');
  });

  it('flushes waiting rows on close and refuses new ones', async () => {
    const inserts: number[][] = [];
    const w = new BatchWriter<number>({
      insert: async (rows) => {
        inserts.push(rows);
      },
      maxRows: 100,
      maxDelayMs: 60_000,
      maxRetryMs: 100,
      backoff: { initialMs: 5, maxMs: 5 },
      classify: classifyClickHouseError,
    });
    const pending = w.write([1, 2]);
    await w.close();
    await pending;
    expect(inserts).toEqual([[1, 2]]);
    await expect(w.write([3])).rejects.toThrow(/closed/);
  });
});

describe('classifyClickHouseError', () => {
  it('retries what a busy or unreachable server says, not what a bad query says', () => {
    expect(classifyClickHouseError(transient())).toBe('transient');
    expect(classifyClickHouseError(Object.assign(new Error(), { code: 'ECONNREFUSED' }))).toBe(
      'transient',
    );
    expect(classifyClickHouseError(permanent())).toBe('permanent');
    expect(classifyClickHouseError(Object.assign(new Error(), { type: 'UNKNOWN_TABLE' }))).toBe(
      'permanent',
    );
  });
});
