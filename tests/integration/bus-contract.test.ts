import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Batch,
  type Bus,
  type BusRecord,
  type Consumer,
  createEmbeddedBus,
  createKafkaBus,
} from '@touchstream/bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { eventually } from '../support/wait.js';

const fastBackoff = { initialMs: 20, maxMs: 200 };

const implementations: Array<[string, () => Bus]> = [
  ['embedded', () => createEmbeddedBus({ backoff: fastBackoff, maxBatchRecords: 50 })],
  ['kafka', () => createKafkaBus({ brokers: kafkaBrokers(), backoff: fastBackoff })],
];

/** Waits until the condition holds, looking every 25 ms; `what` names it when time is up. */
const waitFor = (condition: () => boolean, timeoutMs = 60_000, what = 'condition') =>
  eventually(
    async () => {
      if (!condition()) throw new Error(`timed out waiting for ${what}`);
    },
    timeoutMs,
    25,
  );

const records = (keys: string[], perKey: number, tag = '') =>
  keys.flatMap((key) =>
    Array.from({ length: perKey }, (_, i) => ({ key, value: `${key}:${tag}${i}` })),
  );

const values = (received: BusRecord[]) => received.map((r) => r.value.toString());

describe.each(implementations)('bus contract: %s', (_kind, createBus) => {
  let bus: Bus;
  beforeAll(() => {
    bus = createBus();
  });
  afterAll(async () => {
    await bus.close();
  });

  async function freshTopic(partitions = 4) {
    const topic = uniqueName('contract');
    await bus.ensureTopics([topic], partitions);
    return topic;
  }

  it('delivers every record of a key in publish order', async () => {
    const topic = await freshTopic();
    const received: BusRecord[] = [];
    const consumer = await bus.consume({
      groupId: uniqueName('order'),
      topic,
      handler: async (batch) => {
        received.push(...batch.records);
      },
    });
    const keys = ['alice', 'bob', 'carol', 'dave', 'erin'];
    for (let round = 0; round < 4; round++) {
      await bus.publish(topic, records(keys, 25, `r${round}-`));
    }
    await waitFor(() => received.length >= 500, 60_000, 'all records');
    for (const key of keys) {
      const got = values(received.filter((r) => r.key === key));
      const expected = [0, 1, 2, 3].flatMap((round) =>
        Array.from({ length: 25 }, (_, i) => `${key}:r${round}-${i}`),
      );
      expect(got).toEqual(expected);
    }
    await consumer.stop();
  });

  it('keeps publish order per key when many publishes are in flight at once', async () => {
    const topic = await freshTopic();
    const received: BusRecord[] = [];
    const consumer = await bus.consume({
      groupId: uniqueName('concurrent'),
      topic,
      handler: async (batch) => {
        received.push(...batch.records);
      },
    });
    const keys = ['alice', 'bob', 'carol', 'dave', 'erin'];
    // Not awaited one by one: the Kafka bus sends those that queue up as one request.
    await Promise.all(
      Array.from({ length: 200 }, (_, round) => bus.publish(topic, records(keys, 2, `r${round}-`))),
    );
    await waitFor(() => received.length >= 2_000, 60_000, 'all records');
    for (const key of keys) {
      const got = values(received.filter((r) => r.key === key));
      const expected = Array.from({ length: 200 }, (_, round) => [
        `${key}:r${round}-0`,
        `${key}:r${round}-1`,
      ]).flat();
      expect(got).toEqual(expected);
    }
    await consumer.stop();
  });

  it('hands a failed batch over again and commits nothing before success', async () => {
    const topic = await freshTopic(1);
    const attempts = new Map<string, number>();
    const handled: string[] = [];
    const consumer = await bus.consume({
      groupId: uniqueName('retry'),
      topic,
      handler: async (batch) => {
        const first = batch.records[0]?.value.toString() ?? '';
        const attempt = (attempts.get(first) ?? 0) + 1;
        attempts.set(first, attempt);
        if (attempt < 3) throw new Error(`failing attempt ${attempt}`);
        handled.push(...values(batch.records));
      },
    });
    await bus.publish(topic, records(['k'], 10));
    await waitFor(() => handled.length >= 10, 60_000, 'the retried batch');
    expect(handled).toEqual(Array.from({ length: 10 }, (_, i) => `k:${i}`));
    expect(Math.max(...attempts.values())).toBe(3);
    await consumer.stop();
  });

  it('gives uncommitted records to the next member after a failing one stops', async () => {
    const topic = await freshTopic(1);
    const groupId = uniqueName('uncommitted');
    let failures = 0;
    const failing = await bus.consume({
      groupId,
      topic,
      handler: async () => {
        failures++;
        throw new Error('never succeeds');
      },
    });
    // On the embedded bus a publish resolves only once handled: do not wait for it yet.
    const published = bus.publish(topic, records(['k'], 5));
    await waitFor(() => failures >= 2, 60_000, 'failed attempts');
    expect(await bus.lag(groupId, topic)).toBe(5);
    await failing.stop();
    expect(await bus.lag(groupId, topic)).toBe(5);

    const received: string[] = [];
    const healthy = await bus.consume({
      groupId,
      topic,
      handler: async (batch) => {
        received.push(...values(batch.records));
      },
    });
    await published;
    await waitFor(() => received.length >= 5, 60_000, 'redelivery to the next member');
    expect(received).toEqual(Array.from({ length: 5 }, (_, i) => `k:${i}`));
    await eventually(async () => expect(await bus.lag(groupId, topic)).toBe(0), 30_000);
    await healthy.stop();
  });

  it('shares partitions between two members and moves them when one leaves', async () => {
    const topic = await freshTopic(4);
    const groupId = uniqueName('shared');
    const seen = new Map<string, { member: string; value: string }[]>();
    const handlerOf =
      (member: string) =>
      async (batch: Batch): Promise<void> => {
        for (const r of batch.records) {
          const list = seen.get(r.value.toString()) ?? [];
          list.push({ member, value: r.value.toString() });
          seen.set(r.value.toString(), list);
        }
      };
    const consumers: Record<string, Consumer> = {
      a: await bus.consume({ groupId, topic, handler: handlerOf('a') }),
      b: await bus.consume({ groupId, topic, handler: handlerOf('b') }),
    };
    const keys = Array.from({ length: 40 }, (_, i) => `customer-${i}`);

    // Publish until both members have handled records: the group has settled with both.
    let round = 0;
    const members = () => new Set([...seen.values()].flat().map((s) => s.member));
    while (members().size < 2) {
      await bus.publish(topic, records(keys, 1, `p${round++}-`));
      await sleep(200);
      if (round > 200) throw new Error('the second member never received a partition');
    }
    const before = seen.size;

    await consumers.a?.stop();
    await bus.publish(topic, records(keys, 3, 'after-'));
    const expected = before + keys.length * 3;
    await waitFor(() => seen.size >= expected, 60_000, 'records after the leave');

    const after = [...seen.entries()].filter(([value]) => value.includes(':after-'));
    expect(after).toHaveLength(keys.length * 3);
    for (const [, deliveries] of after) {
      expect(deliveries.map((d) => d.member)).toEqual(['b']);
    }
    await consumers.b?.stop();
  });
});
