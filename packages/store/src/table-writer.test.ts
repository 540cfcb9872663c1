import { describe, expect, it } from 'vitest';
import { classifyClickHouseError } from './clickhouse-errors.js';
import { TableWriter } from './table-writer.js';

const transient = () => Object.assign(new Error('busy'), { type: 'TOO_MANY_PARTS' });
const permanent = () => Object.assign(new Error('bad'), { type: 'TYPE_MISMATCH' });

function writer(insert: (rows: number[]) => Promise<void>, options: { maxRows?: number } = {}) {
  return new TableWriter<number>({
    insert,
    maxRows: options.maxRows ?? 100,
    maxRetryMs: 200,
    backoff: { initialMs: 5, maxMs: 20 },
  });
}

/** An insert that takes until it is released, recording what it was given. */
function gatedInsert() {
  const inserts: number[][] = [];
  const gates: Array<() => void> = [];
  const insert = (rows: number[]) =>
    new Promise<void>((resolve) => {
      inserts.push(rows);
      gates.push(resolve);
    });
  const release = () => gates.shift()?.();
  return { inserts, insert, release };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('TableWriter', () => {
  it('inserts a write to an idle writer at once, waiting for no timer', async () => {
    const inserts: number[][] = [];
    const w = writer(async (rows) => {
      inserts.push(rows);
    });
    const started = performance.now();
    await w.write([1, 2]);
    expect(inserts).toEqual([[1, 2]]);
    // A linger of even 10 ms would show here; an idle insert starts on the next turn.
    expect(performance.now() - started).toBeLessThan(10);
  });

  it('coalesces writes made together, and those made during an insert into the next', async () => {
    const { inserts, insert, release } = gatedInsert();
    const w = writer(insert);
    const first = [w.write([1, 2]), w.write([3])];
    await tick();
    expect(inserts).toEqual([[1, 2, 3]]);
    // Concurrent writers while the insert runs: they wait for it, then go in together.
    const second = [w.write([4]), w.write([5, 6]), w.write([7])];
    await tick();
    expect(inserts).toHaveLength(1);
    release();
    await Promise.all(first);
    await tick();
    expect(inserts).toEqual([
      [1, 2, 3],
      [4, 5, 6, 7],
    ]);
    release();
    await Promise.all(second);
  });

  it('splits a queue larger than maxRows at whole writes, in order', async () => {
    const inserts: number[][] = [];
    const w = writer(
      async (rows) => {
        inserts.push(rows);
      },
      { maxRows: 3 },
    );
    await Promise.all([w.write([1, 2]), w.write([3, 4]), w.write([5]), w.write([6, 7, 8, 9])]);
    expect(inserts).toEqual([
      [1, 2],
      [3, 4, 5],
      [6, 7, 8, 9],
    ]);
  });

  it('does not resolve a write before the insert holding it is acknowledged', async () => {
    const { insert, release } = gatedInsert();
    const w = writer(insert);
    let done = false;
    const pending = w.write([1]).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(done).toBe(false);
    release();
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

  it('hands a permanent failure back to every writer of the insert at once, rows intact', async () => {
    let calls = 0;
    const w = writer(async () => {
      calls++;
      throw permanent();
    });
    const results = await Promise.allSettled([w.write([1]), w.write([2])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(results.map((r) => r.status === 'rejected' && r.reason.type)).toEqual([
      'TYPE_MISMATCH',
      'TYPE_MISMATCH',
    ]);
    expect(calls).toBe(1);
    // Nothing is lost: the same rows written again go in once the store takes them.
  });

  it('gives transient failures up after maxRetryMs, and loses nothing written after', async () => {
    let failing = true;
    const inserted: number[] = [];
    const w = writer(async (rows) => {
      if (failing) throw transient();
      inserted.push(...rows);
    });
    await expect(w.write([1])).rejects.toThrow('busy');
    failing = false;
    await w.write([1, 2]);
    expect(inserted).toEqual([1, 2]);
  });

  it('flushes waiting rows on close and refuses new ones', async () => {
    const { inserts, insert, release } = gatedInsert();
    const w = writer(insert);
    const first = w.write([1, 2]);
    await tick();
    const second = w.write([3]);
    const closed = w.close();
    release();
    await first;
    await tick();
    release();
    await Promise.all([second, closed]);
    expect(inserts).toEqual([[1, 2], [3]]);
    await expect(w.write([4])).rejects.toThrow(/closed/);
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
