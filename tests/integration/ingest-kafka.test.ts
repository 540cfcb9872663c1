import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Bus, type BusRecord, createKafkaBus } from '@touchstream/bus';
import { DLQ_HEADERS, encodeTouchpoint, topicNames } from '@touchstream/contracts';
import { buildProcessor } from '@touchstream/processor';
import { readDeadLetters } from '@touchstream/store';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { asTouchpoint, makeEvent, postEvents } from '../support/events.js';
import { faultyStore } from '../support/faulty-store.js';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

describe('ingest through real Kafka', () => {
  let runtime: Runtime;
  let bus: Bus;
  const prefix = `${uniqueName('ingest')}.`;
  const topics = topicNames(prefix);

  beforeAll(async () => {
    runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-ingest-kafka-')),
      TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
      TOUCHSTREAM_TOPIC_PREFIX: prefix,
    });
    bus = createKafkaBus({ brokers: kafkaBrokers() });
  });
  afterAll(async () => {
    await bus?.close();
    await runtime?.stop();
  });

  const countStored = async (ids: string[]) => {
    const [row] = await (
      await runtime.store.query({
        query: `SELECT count() AS n, uniqExact(event_id) AS distinct_ids
                FROM events FINAL WHERE event_id IN {ids:Array(String)}`,
        query_params: { ids },
        format: 'JSONEachRow',
      })
    ).json<{ n: string; distinct_ids: string }>();
    return { n: Number(row?.n), distinct: Number(row?.distinct_ids) };
  };

  it('stores what got a 202 once, even when the batch is posted twice', async () => {
    const events = Array.from({ length: 200 }, () => makeEvent());
    const first = await postEvents(runtime.address, events);
    const second = await postEvents(runtime.address, events);
    expect([first.status, second.status]).toEqual([202, 202]);
    const ids = events.map((e) => e.event_id);
    await eventually(async () => expect(await countStored(ids)).toEqual({ n: 200, distinct: 200 }));
    await eventually(async () =>
      expect(await runtime.bus.lag(`${prefix}processor`, topics.touchpoints)).toBe(0),
    );
    expect(await countStored(ids)).toEqual({ n: 200, distinct: 200 });
  });

  it('dead-letters garbage and invalid records with provenance, and keeps going', async () => {
    const dlq: BusRecord[] = [];
    const watcher = await bus.consume({
      groupId: uniqueName('dlq-watch'),
      topic: topics.touchpointsDlq,
      handler: async (batch) => {
        dlq.push(...batch.records);
      },
    });
    const valid = Array.from({ length: 20 }, () =>
      asTouchpoint(makeEvent({ customer_id: 'dlq-c' })),
    );
    await bus.publish(topics.touchpoints, [
      { key: 'dlq-c', value: Buffer.from([0xde, 0xad, 0xbe, 0xef]) },
      { key: 'dlq-c', value: '{"event_id": "x", "customer_id": "dlq-c"}' },
      { key: 'dlq-c', value: JSON.stringify({ ...valid[0], timestamp: 'not a time' }) },
      ...valid.map(encodeTouchpoint),
    ]);

    await eventually(async () => expect(dlq).toHaveLength(3));
    const reasons = dlq.map((r) => r.headers[DLQ_HEADERS.reason]);
    expect(reasons[0]).toBe('not_json');
    expect(reasons[1]).toMatch(/^invalid_event: /);
    expect(reasons[2]).toMatch(/^invalid_event: timestamp/);
    for (const record of dlq) {
      expect(record.headers[DLQ_HEADERS.topic]).toBe(topics.touchpoints);
      expect(Number(record.headers[DLQ_HEADERS.partition])).toBeGreaterThanOrEqual(0);
      expect(record.headers[DLQ_HEADERS.offset]).toMatch(/^\d+$/);
      expect(record.key).toBe('dlq-c');
    }
    expect(dlq[0]?.value).toEqual(Buffer.from([0xde, 0xad, 0xbe, 0xef]));

    // The processor went on: the valid records after the garbage are stored.
    await eventually(async () =>
      expect(await countStored(valid.map((e) => e.event_id))).toEqual({ n: 20, distinct: 20 }),
    );
    // And the dead letters are queryable in ClickHouse.
    await eventually(async () => {
      const stored = await readDeadLetters(runtime.store, topics.touchpoints);
      expect(stored.map((d) => d.reason.split(':')[0]).sort()).toEqual([
        'invalid_event',
        'invalid_event',
        'not_json',
      ]);
    });
    await watcher.stop();
  });

  it('commits nothing while ClickHouse refuses inserts, and recovers by itself', async () => {
    let failing = true;
    const faulty = faultyStore(runtime.store, () => failing);
    const faultPrefix = `${uniqueName('faults')}.`;
    const faultTopics = topicNames(faultPrefix);
    await bus.ensureTopics([faultTopics.touchpoints, faultTopics.touchpointsDlq], 3);
    const processor = buildProcessor({
      bus,
      store: faulty.store,
      topics: faultTopics,
      metrics: new Registry(),
      logger: pino({ level: 'silent' }),
      groupPrefix: faultPrefix,
      writer: { maxRetryMs: 1_000 },
      journeys: { allowedLatenessMs: 0, idleWatermarkMs: 10_000 },
    });
    await processor.start();
    const events = Array.from({ length: 300 }, () => asTouchpoint(makeEvent()));
    await bus.publish(faultTopics.touchpoints, events.map(encodeTouchpoint));
    const ids = events.map((e) => e.event_id);

    await eventually(async () => expect(faulty.refused()).toBeGreaterThanOrEqual(5));
    expect(await bus.lag(`${faultPrefix}processor`, faultTopics.touchpoints)).toBe(300);
    expect(await countStored(ids)).toEqual({ n: 0, distinct: 0 });

    failing = false;
    await eventually(async () => expect(await countStored(ids)).toEqual({ n: 300, distinct: 300 }));
    await eventually(async () =>
      expect(await bus.lag(`${faultPrefix}processor`, faultTopics.touchpoints)).toBe(0),
    );
    await processor.stop();
  });
});
