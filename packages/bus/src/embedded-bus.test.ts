import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BusUnavailableError } from './bus.js';
import { createEmbeddedBus } from './embedded-bus.js';

const records = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, value: `${prefix}-${i}` }));

/** A consumer that stores what it is handed, and fails while `failing` says so. */
async function storing(bus: ReturnType<typeof createEmbeddedBus>, failing: (p: number) => boolean) {
  const stored: string[] = [];
  await bus.consume({
    groupId: 'g',
    topic: 't',
    handler: async (batch) => {
      if (failing(batch.partition)) throw new Error('the store is away');
      stored.push(...batch.records.map((r) => r.value.toString()));
    },
  });
  return stored;
}

describe('the embedded bus answers a publish whole', () => {
  it('refuses a publish none of which could be handled in time, and never handles it after', async () => {
    const bus = createEmbeddedBus({ publishTimeoutMs: 300, backoff: { initialMs: 20, maxMs: 50 } });
    let down = true;
    const stored = await storing(bus, () => down);
    const refused = bus.publish('t', records('early', 20));
    await expect(refused).rejects.toThrow(BusUnavailableError);
    await expect(refused).rejects.toThrow(/none was stored and none will be/);
    down = false;
    await bus.publish('t', records('late', 5));
    await sleep(100);
    expect(stored.sort()).toEqual(records('late', 5).map((r) => r.value));
    await bus.close();
  });

  it('waits past the timeout for a publish partly handled, to the last record', async () => {
    const bus = createEmbeddedBus({ publishTimeoutMs: 200, backoff: { initialMs: 20, maxMs: 50 } });
    const started = Date.now();
    // One partition fails for 600 ms while the others take their records at once.
    const stored = await storing(bus, (p) => p === 2 && Date.now() - started < 600);
    await bus.publish('t', records('mixed', 40));
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    expect(stored).toHaveLength(40);
    await bus.close();
  });
});
