import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKafkaBus } from '@touchstream/bus';
import { loadConfig } from '@touchstream/config';
import { type DropoffResponse, topicNames } from '@touchstream/contracts';
import { buildProcessor } from '@touchstream/processor';
import { readDeadLetters, type Store } from '@touchstream/store';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type Runtime, startRuntime } from '../../apps/cli/src/runtime.js';
import { FACTORIES } from '../../apps/cli/src/services.js';
import { makeEvent, postEvents } from '../support/events.js';
import { poisonedStore } from '../support/faulty-store.js';
import { putJourney } from '../support/http.js';
import { kafkaBrokers, privateBroker, uniqueName } from '../support/kafka.js';
import { freePortPair } from '../support/ports.js';
import { spawnTouchstream } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const JOURNEY = {
  id: 'view-cart',
  name: 'View to cart',
  steps: [
    { name: 'viewed', event_type: 'product_viewed' },
    { name: 'carted', event_type: 'cart_added' },
  ],
  step_timeout: '30m',
};

/**
 * Collector, processor and API on the shared test broker, the processor reporting a stuck
 * partition after `stallAfterMs` rather than the default 30 s, so the test need not wait.
 */
async function startOnKafka(
  name: string,
  stallAfterMs: number,
  processorStore: (store: Store) => Store = (store) => store,
): Promise<Runtime> {
  const config = loadConfig({
    TOUCHSTREAM_PORT: '0',
    TOUCHSTREAM_LOG_LEVEL: 'silent',
    TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), `touchstream-${name}-`)),
    TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
    TOUCHSTREAM_TOPIC_PREFIX: `${uniqueName(name)}.`,
    TOUCHSTREAM_IDLE_WATERMARK: '1s',
  });
  return startRuntime(config, pino({ level: 'silent' }), {
    collector: FACTORIES.collector,
    api: FACTORIES.api,
    processor: async ({ bus, store, topics, metrics, logger }) =>
      buildProcessor({
        bus,
        store: processorStore(store),
        topics,
        metrics,
        logger,
        groupPrefix: config.kafka.topicPrefix,
        journeys: { allowedLatenessMs: 0, idleWatermarkMs: config.idleWatermarkMs },
        stallAfterMs,
      }),
  });
}

async function readiness(address: string) {
  const response = await fetch(`${address}/readyz`);
  return { status: response.status, body: (await response.json()) as { checks: object } };
}

async function countEvents(runtime: Runtime, customers: string[]) {
  const [row] = await (
    await runtime.store.query({
      query: 'SELECT count() AS n FROM events FINAL WHERE customer_id IN {c:Array(String)}',
      query_params: { c: customers },
      format: 'JSONEachRow',
    })
  ).json<{ n: string }>();
  return Number(row?.n);
}

describe('operating on Kafka', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  it('a partition the processor cannot handle is reported, and nothing is lost once it can', async () => {
    const runtime = await startOnKafka('stuck', 3_000);
    cleanup.push(() => runtime.stop());
    const topic = topicNames(runtime.config.kafka.topicPrefix).touchpoints;
    // ClickHouse refuses every insert into events while the table is away.
    await runtime.store.command({ query: 'RENAME TABLE events TO events_away' });
    const events = Array.from({ length: 40 }, (_, i) => makeEvent({ customer_id: `stuck-${i}` }));
    expect((await postEvents(runtime.address, events)).status).toBe(202);

    const stuck = await eventually(async () => {
      const { status, body } = await readiness(runtime.address);
      expect(status).toBe(503);
      expect(body.checks).toMatchObject({
        bus: 'ok',
        clickhouse: 'ok',
        processor: expect.stringMatching(
          new RegExp(
            `^unavailable: partition ${topic.replaceAll('.', '\\.')}/\\d+ stuck for \\d+ s: .*events`,
          ),
        ),
      });
      return body;
    }, 30_000);
    const metrics = await (await fetch(`${runtime.address}/metrics`)).text();
    const gauge = [
      ...metrics.matchAll(
        /^touchstream_processor_partition_stuck_seconds\{topic="([^"]+)",partition="(\d+)"\} (\S+)$/gm,
      ),
    ];
    expect(gauge.length).toBeGreaterThan(0);
    for (const [, labelTopic, partition, seconds] of gauge) {
      expect(labelTopic).toBe(topic);
      expect(JSON.stringify(stuck)).toContain(`${topic}/${partition} stuck`);
      expect(Number(seconds)).toBeGreaterThanOrEqual(3);
    }

    await runtime.store.command({ query: 'RENAME TABLE events_away TO events' });
    await eventually(
      async () => expect((await readiness(runtime.address)).status).toBe(200),
      30_000,
    );
    // Partitions that were merely waiting their turn behind the stuck ones follow shortly.
    const customers = events.map((e) => e.customer_id);
    await eventually(async () => expect(await countEvents(runtime, customers)).toBe(40), 30_000);
    const group = `${runtime.config.kafka.topicPrefix}processor`;
    await eventually(async () => expect(await runtime.bus.lag(group, topic)).toBe(0));
    const after = await (await fetch(`${runtime.address}/metrics`)).text();
    expect(after).not.toMatch(/^touchstream_processor_partition_stuck_seconds\{/m);
  });

  it('a poison record between valid ones is dead-lettered; the rest are counted, all ready', async () => {
    const runtime = await startOnKafka('poison', 3_000);
    cleanup.push(() => runtime.stop());
    const topics = topicNames(runtime.config.kafka.topicPrefix);
    const producer = createKafkaBus({ brokers: kafkaBrokers(), clientId: 'poison' });
    cleanup.push(() => producer.close());
    // The reproduction: an unpaired surrogate, written by a producer service directly.
    const valid = Array.from({ length: 24 }, (_, i) => makeEvent({ customer_id: `poison-${i}` }));
    const poison = makeEvent({ event_id: 'lsc-2', customer_id: 'c-\ud83d' });
    const records = [...valid.slice(0, 12), poison, ...valid.slice(12)].map((e) => ({
      key: String(e.customer_id),
      value: JSON.stringify(e),
    }));
    await producer.publish(topics.touchpoints, records);
    let readyThroughout = true;
    await eventually(async () => {
      if ((await readiness(runtime.address)).status !== 200) readyThroughout = false;
      expect(
        await countEvents(
          runtime,
          valid.map((e) => e.customer_id),
        ),
      ).toBe(24);
      const dead = await readDeadLetters(runtime.store, topics.touchpoints);
      expect(dead).toHaveLength(1);
      expect(dead[0]?.reason).toMatch(/^invalid_event: customer_id must be valid Unicode/);
    });
    expect(readyThroughout).toBe(true);
  });

  it('a record ClickHouse refuses is found in its batch and dead-lettered, the rest stored', async () => {
    // ClickHouse refuses no valid event today; the store refuses this customer's rows as
    // it would refuse a row it cannot parse.
    const runtime = await startOnKafka('refused', 3_000, (store) =>
      poisonedStore(store, (row) => row.customer_id === 'refused-poison'),
    );
    cleanup.push(() => runtime.stop());
    const topics = topicNames(runtime.config.kafka.topicPrefix);
    const valid = Array.from({ length: 30 }, (_, i) => makeEvent({ customer_id: `refused-${i}` }));
    const poison = makeEvent({ customer_id: 'refused-poison' });
    expect((await postEvents(runtime.address, [...valid, poison])).status).toBe(202);
    await eventually(async () => {
      expect(
        await countEvents(
          runtime,
          valid.map((e) => e.customer_id),
        ),
      ).toBe(30);
      const dead = await readDeadLetters(runtime.store, topics.touchpoints);
      expect(dead.map((d) => [d.record_key, d.reason])).toEqual([
        ['refused-poison', expect.stringMatching(/^store_refused: CANNOT_PARSE_ESCAPE_SEQUENCE /)],
      ]);
    });
    expect(await countEvents(runtime, ['refused-poison'])).toBe(0);
    expect((await readiness(runtime.address)).status).toBe(200);
  });

  it('records from a wrong clock are dead-lettered and move no one else’s event time', async () => {
    const runtime = await startOnKafka('clock', 30_000);
    cleanup.push(() => runtime.stop());
    const topics = topicNames(runtime.config.kafka.topicPrefix);
    await putJourney(runtime.address, JOURNEY);
    const start = Date.now() - 60_000;
    const customers = Array.from({ length: 20 }, (_, i) => `clock-${i}`);
    const viewed = customers.map((c) =>
      makeEvent({ customer_id: c, type: 'product_viewed', timestamp: start }),
    );
    expect((await postEvents(runtime.address, viewed)).status).toBe(202);

    const dropoffs = async () => {
      const query = new URLSearchParams({
        from: new Date(start - 60_000).toISOString(),
        to: new Date(start + 60_000).toISOString(),
      });
      const response = await fetch(`${runtime.address}/v1/journeys/view-cart/dropoffs?${query}`);
      return ((await response.json()) as DropoffResponse).transitions[0];
    };
    await eventually(async () =>
      expect(await dropoffs()).toMatchObject({ reached: 20, in_progress: 20, dropped: 0 }),
    );

    // A producer service with a clock in 2150 writes to the topic directly, on the same
    // customers' keys, so the same partitions: refused there, as the collector refuses it.
    const producer = createKafkaBus({ brokers: kafkaBrokers(), clientId: 'wrong-clock' });
    cleanup.push(() => producer.close());
    await producer.publish(
      topics.touchpoints,
      customers.map((c) => ({
        key: c,
        value: JSON.stringify(
          makeEvent({ customer_id: c, type: 'page_viewed', timestamp: '2150-01-01T00:00:00Z' }),
        ),
      })),
    );
    await eventually(async () => {
      const dead = await readDeadLetters(runtime.store, topics.touchpoints);
      expect(dead).toHaveLength(20);
      for (const letter of dead) expect(letter.reason).toMatch(/^future_timestamp: timestamp is /);
    });
    // Event time follows the wall clock again after the idle watermark: nobody dropped.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(await dropoffs()).toMatchObject({ reached: 20, in_progress: 20, dropped: 0 });

    const carted = customers.map((c) =>
      makeEvent({ customer_id: c, type: 'cart_added', timestamp: start + 30_000 }),
    );
    expect((await postEvents(runtime.address, carted)).status).toBe(202);
    await eventually(async () =>
      expect(await dropoffs()).toMatchObject({ reached: 20, continued: 20, dropped: 0 }),
    );
  });

  it('gives up on a broker that never comes, after the wait, naming it', async () => {
    const port = await freePortPair();
    const config = loadConfig({
      TOUCHSTREAM_PORT: '0',
      TOUCHSTREAM_LOG_LEVEL: 'silent',
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-no-broker-')),
      TOUCHSTREAM_KAFKA_BROKERS: `127.0.0.1:${port}`,
    });
    const started = Date.now();
    await expect(
      startRuntime(config, pino({ level: 'silent' }), FACTORIES, { brokerWaitMs: 3_000 }),
    ).rejects.toThrow(/^Kafka was not reachable within 3 s: /);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
  });

  it('started before its broker, it answers 503 until the broker is up, then works', async () => {
    const port = await freePortPair();
    const kafkaDir = await mkdtemp(join(tmpdir(), 'touchstream-late-broker-'));
    cleanup.push(() => rm(kafkaDir, { recursive: true, force: true }));
    const touchstream = await spawnTouchstream(
      ['start'],
      {
        TOUCHSTREAM_DATA_DIR: join(kafkaDir, 'data'),
        TOUCHSTREAM_KAFKA_BROKERS: `127.0.0.1:${port}`,
      },
      'touchstream_listening',
    );
    cleanup.push(() => touchstream.kill('SIGTERM'));
    // A probe's usual timeout is a second: the answer comes before it, broker or not.
    const asked = Date.now();
    const waiting = await readiness(touchstream.address);
    expect(Date.now() - asked).toBeLessThan(1_000);
    expect(waiting.status).toBe(503);
    expect(waiting.body.checks).toMatchObject({ services: 'unavailable: starting' });

    const broker = await privateBroker(port, join(kafkaDir, 'kafka'));
    cleanup.push(() => broker.stop());
    await eventually(
      async () => expect((await readiness(touchstream.address)).status).toBe(200),
      60_000,
    );
    // It really found nobody there at first.
    expect(touchstream.output.join('\n')).toContain('ECONNREFUSED');
    const event = makeEvent({ customer_id: 'late-broker' });
    expect((await postEvents(touchstream.address, [event])).status).toBe(202);
  });
});
