import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BusLogger, createKafkaBus } from '@touchstream/bus';
import { topicNames } from '@touchstream/contracts';
import { buildProcessor } from '@touchstream/processor';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { postAll } from '../support/events.js';
import { putJourney } from '../support/http.js';
import {
  batchesWithRetries,
  dropoffsAt,
  expectDropoffsToMatch,
  PURCHASE,
  PURCHASE_FILE,
  purchaseTraffic,
} from '../support/journey-traffic.js';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { spawnTouchstream, startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const HOUR = 3_600_000;
// Longer than a rebalance takes, so no partition counts as idle while a processor takes
// another's partitions over; short enough that the last instances are decided soon.
const IDLE = '10s';
const IDLE_MS = 10_000;

/** A bus logger that remembers the partitions its consumer group member was given. */
function assignmentWatcher(groupId: string, topic: string) {
  const watcher = { partitions: [] as number[] };
  const quiet = () => {};
  const logger: BusLogger = {
    error: quiet,
    warn: quiet,
    debug: quiet,
    info(obj: { groupId?: string; memberAssignment?: Record<string, number[]> }, msg: string) {
      if (msg === 'Consumer has joined the group' && obj.groupId === groupId) {
        watcher.partitions = obj.memberAssignment?.[topic] ?? [];
      }
    },
  };
  return { watcher, logger };
}

describe('journey drop-offs on Kafka', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  it('two processors share the partitions, one stops mid-stream, the figures stay exact', async () => {
    const prefix = `${uniqueName('journeys')}.`;
    const topics = topicNames(prefix);
    const runtime = await startTestRuntime(
      {
        TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-journeys-kafka-')),
        TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
        TOUCHSTREAM_TOPIC_PREFIX: prefix,
        TOUCHSTREAM_IDLE_WATERMARK: IDLE,
      },
      ['collector', 'api'],
    );
    cleanup.push(() => runtime.stop());
    await putJourney(runtime.address, PURCHASE);

    // Two processors of one consumer group, as two processes would run them, sharing the
    // ClickHouse store.
    const members = ['a', 'b'].map((name) => {
      const { watcher, logger } = assignmentWatcher(`${prefix}processor`, topics.touchpoints);
      const bus = createKafkaBus({ brokers: kafkaBrokers(), clientId: name, logger });
      const metrics = new Registry();
      const processor = buildProcessor({
        bus,
        store: runtime.store,
        topics,
        metrics,
        logger: pino({ level: 'silent' }),
        groupPrefix: prefix,
        journeys: { allowedLatenessMs: 0, idleWatermarkMs: IDLE_MS },
      });
      return { watcher, bus, metrics, processor };
    });
    for (const member of members) {
      await member.processor.start();
      cleanup.push(async () => {
        await member.processor.stop();
        await member.bus.close();
      });
    }
    await eventually(async () => {
      const [a, b] = members.map((m) => m.watcher.partitions.length);
      expect(a).toBeGreaterThan(0);
      expect(b).toBeGreaterThan(0);
      expect((a ?? 0) + (b ?? 0)).toBe(12);
    });

    const start = Date.now() - 3 * HOUR;
    const events = purchaseTraffic({ customers: 250, start, seed: 3 });
    const batches = batchesWithRetries(events, 200);
    const half = Math.floor(batches.length / 2);
    await postAll(runtime.address, batches.slice(0, half));

    // b stops while a's share of the first half may still be in flight; a takes b's
    // partitions over with the state b checkpointed.
    const [a, b] = members as [(typeof members)[0], (typeof members)[0]];
    await b.processor.stop();
    await b.bus.close();
    await postAll(runtime.address, batches.slice(half));
    await eventually(async () => expect(a.watcher.partitions).toHaveLength(12));

    const consumedBy = async (m: typeof a) =>
      (await m.metrics.getSingleMetric('touchstream_processor_records_consumed_total')?.get())
        ?.values[0]?.value ?? 0;
    expect(await consumedBy(b)).toBeGreaterThan(0);
    await expectDropoffsToMatch(dropoffsAt(runtime.address), PURCHASE, events, start);
    expect(await runtime.bus.lag(`${prefix}processor`, topics.touchpoints)).toBe(0);
  });

  it('a processor killed and replayed declares the same figures, nothing twice', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-journeys-crash-'));
    const journeysFile = join(dir, 'journeys.json');
    await writeFile(journeysFile, PURCHASE_FILE);
    const env = {
      TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
      TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
      TOUCHSTREAM_TOPIC_PREFIX: `${uniqueName('journeys-crash')}.`,
      TOUCHSTREAM_JOURNEYS_FILE: journeysFile,
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
    };
    const only = ['start', '--only', 'collector,processor,api'];
    const start = Date.now() - 3 * HOUR;
    const events = purchaseTraffic({ customers: 250, start, seed: 4 });
    const batches = batchesWithRetries(events, 200);
    const half = Math.floor(batches.length / 2);

    const first = await spawnTouchstream(only, env);
    cleanup.push(() => first.kill('SIGKILL'));
    await postAll(first.address, batches.slice(0, half));
    // Killed while the processor may be between a write and its commit: what it had not
    // committed is consumed again by the next one.
    await first.kill('SIGKILL');

    const second = await spawnTouchstream(only, env);
    cleanup.push(() => second.kill('SIGTERM'));
    await postAll(second.address, batches.slice(half));
    await expectDropoffsToMatch(dropoffsAt(second.address), PURCHASE, events, start);
  });
});
