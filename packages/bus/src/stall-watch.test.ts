import { describe, expect, it } from 'vitest';
import { StallWatch } from './stall-watch.js';

function watchAt(start: number) {
  const clock = { now: start };
  const watch = new StallWatch('touchpoints', 30_000, () => clock.now);
  return { clock, watch };
}

const at = (committed: number, end: number) => ({
  committed: BigInt(committed),
  end: BigInt(end),
});

describe('StallWatch', () => {
  it('calls a partition stuck once its batch has failed for longer than the bound', () => {
    const { clock, watch } = watchAt(1_000);
    watch.failed(3, new Error('insert refused'));
    clock.now += 29_999;
    watch.failed(3, new TypeError('still refused'));
    expect(watch.stalls()).toEqual([]);
    clock.now += 1;
    expect(watch.stalls()).toEqual([
      { topic: 'touchpoints', partition: 3, since: 1_000, reason: 'TypeError: still refused' },
    ]);
    watch.succeeded(3);
    expect(watch.stalls()).toEqual([]);
  });

  it('calls a partition stuck when records wait behind an offset that does not move', () => {
    const { clock, watch } = watchAt(0);
    watch.observe(new Map([[1, at(10, 20)]]));
    clock.now = 20_000;
    // Moving on restarts the clock.
    watch.observe(new Map([[1, at(15, 30)]]));
    watch.clientFailed(new Error('Snappy compression not implemented'));
    clock.now = 49_999;
    watch.observe(new Map([[1, at(15, 30)]]));
    expect(watch.stalls()).toEqual([]);
    clock.now = 50_000;
    expect(watch.stalls()).toEqual([
      {
        topic: 'touchpoints',
        partition: 1,
        since: 20_000,
        reason: 'Error: Snappy compression not implemented',
      },
    ]);
    // Caught up, or no longer ours: not stuck.
    watch.observe(new Map([[1, at(30, 30)]]));
    expect(watch.stalls()).toEqual([]);
    watch.observe(new Map([[2, at(0, 5)]]));
    watch.clientFailed(new Error('Snappy compression not implemented'));
    clock.now = 90_000;
    expect(watch.stalls().map((s) => [s.partition, s.reason])).toEqual([
      [2, 'Error: Snappy compression not implemented'],
    ]);
  });

  it('says so when nothing failed since the partition stopped, yet no record moves', () => {
    const { clock, watch } = watchAt(0);
    watch.clientFailed(new Error('an error before the partition stopped'));
    clock.now = 1;
    watch.observe(new Map([[0, at(0, 1)]]));
    clock.now = 30_001;
    expect(watch.stalls()[0]?.reason).toBe('records are waiting and none was handled');
  });
});
