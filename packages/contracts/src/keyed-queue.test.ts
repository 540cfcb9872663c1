import { describe, expect, it } from 'vitest';
import { KeyedQueue } from './keyed-queue.js';

/** A promise settled from outside, so that a test decides when each piece of work ends. */
function gate<T = void>() {
  let open!: (value: T) => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

const ticks = async (n = 5) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

describe('KeyedQueue', () => {
  it('runs the work of one key one item at a time, in the order it was queued', async () => {
    const queue = new KeyedQueue<string>();
    const log: string[] = [];
    const first = gate();
    const done = [
      queue.run('a', async () => {
        log.push('1 starts');
        await first.promise;
        log.push('1 ends');
        return 1;
      }),
      queue.run('a', async () => {
        log.push('2 runs');
        return 2;
      }),
      queue.run('a', async () => {
        log.push('3 runs');
        return 3;
      }),
    ];
    await ticks();
    expect(log).toEqual(['1 starts']);
    first.open();
    expect(await Promise.all(done)).toEqual([1, 2, 3]);
    expect(log).toEqual(['1 starts', '1 ends', '2 runs', '3 runs']);
  });

  it('starts the work on a later tick, never inside the caller', async () => {
    const queue = new KeyedQueue<string>();
    let ran = false;
    const done = queue.run('a', async () => {
      ran = true;
    });
    expect(ran).toBe(false);
    await done;
    expect(ran).toBe(true);
  });

  it('runs the work of different keys side by side', async () => {
    const queue = new KeyedQueue<number>();
    const slow = gate();
    const running: number[] = [];
    const a = queue.run(1, async () => {
      running.push(1);
      await slow.promise;
    });
    const b = queue.run(2, async () => {
      running.push(2);
      return 'b';
    });
    // Key 2 finishes while key 1 still waits.
    expect(await b).toBe('b');
    expect(running).toEqual([1, 2]);
    expect(queue.size).toBe(1);
    slow.open();
    await a;
  });

  it('lets the next item of a key run after one failed, and gives the failure to its caller', async () => {
    const queue = new KeyedQueue<string>();
    const failing = queue.run('a', async () => {
      throw new Error('boom');
    });
    const throwingAtOnce = queue.run('a', () => {
      throw new Error('sync boom');
    });
    const next = queue.run('a', async () => 'next');
    await expect(failing).rejects.toThrow('boom');
    await expect(throwingAtOnce).rejects.toThrow('sync boom');
    await expect(next).resolves.toBe('next');
  });

  it('forgets a key once its work has settled, failed or not', async () => {
    const queue = new KeyedQueue<string>();
    const work = Array.from({ length: 100 }, (_, i) =>
      queue.run(`key-${i}`, async () => {
        if (i % 2) throw new Error('odd');
        return i;
      }),
    );
    expect(queue.size).toBe(100);
    await Promise.allSettled(work);
    await queue.idle();
    expect(queue.size).toBe(0);
    // A key queued again after it was forgotten starts afresh.
    await expect(queue.run('key-1', async () => 'again')).resolves.toBe('again');
    await ticks();
    expect(queue.size).toBe(0);
  });

  it('is idle once everything queued so far has settled, failures included', async () => {
    const queue = new KeyedQueue<string>();
    await queue.idle();
    const a = gate();
    const b = gate();
    const settled: string[] = [];
    void queue.run('a', () => a.promise).then(() => settled.push('a'));
    void queue
      .run('b', () => b.promise)
      .catch(() => {
        settled.push('b');
      });
    void queue.run('a', async () => {
      settled.push('a again');
    });
    let idle = false;
    const waiting = queue.idle().then(() => {
      idle = true;
    });
    a.open();
    await ticks(10);
    expect(idle).toBe(false);
    b.fail(new Error('b failed'));
    await waiting;
    expect(settled.sort()).toEqual(['a', 'a again', 'b']);
    expect(queue.size).toBe(0);
  });
});
