import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { topicNames } from '@touchstream/contracts';
import { readDeadLetters } from '@touchstream/store';
import { afterEach, describe, expect, it } from 'vitest';
import { putJourney } from '../support/http.js';
import { KAFKA_CODECS, produceWithJava } from '../support/java-producer.js';
import {
  batchesWithRetries,
  dropoffsAt,
  expectDropoffsToMatch,
  PURCHASE,
  purchaseTraffic,
} from '../support/journey-traffic.js';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Short, so the last instances are decided soon after the records are in; far longer than
// the Java producer takes to write them all, so no partition counts as idle in between.
const IDLE = '3s';

describe('a producer service on the Java Kafka client', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  // One after the other, each with a data directory of its own: the embedded ClickHouse
  // engine holds one directory at a time, and journey figures must not mix codecs.
  it.each(KAFKA_CODECS.map((codec, i) => ({ codec, seed: 31 + i })))(
    'compressed with $codec: every event stored once, exact drop-offs, dead letters traced',
    async ({ codec, seed }) => {
      const prefix = `${uniqueName(`java-${codec}`)}.`;
      const topics = topicNames(prefix);
      const runtime = await startTestRuntime(
        {
          TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), `touchstream-java-${codec}-`)),
          TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
          TOUCHSTREAM_TOPIC_PREFIX: prefix,
          TOUCHSTREAM_IDLE_WATERMARK: IDLE,
        },
        // No collector: the producer service writes to the touchpoints topic itself.
        ['processor', 'api'],
      );
      cleanup.push(() => runtime.stop());
      await putJourney(runtime.address, PURCHASE);

      const start = Date.now() - 3 * HOUR;
      const events = purchaseTraffic({ customers: 200, start, seed });
      // The fields of POST /v1/events, keyed by customer: a producer service may give the
      // time as ISO 8601 or as epoch milliseconds, so half the records carry each.
      const asWritten = events.map((e, i) =>
        i % 2 === 0 ? e : { ...e, timestamp: new Date(e.timestamp).toISOString() },
      );
      // Batches sent again, as a service retrying after a timeout would: the same event ids.
      const valid = batchesWithRetries(asWritten, 100)
        .flat()
        .map((e) => ({ key: e.customer_id, value: JSON.stringify(e) }));
      expect(valid.length).toBeGreaterThan(events.length);

      // One customer, so one partition, in this order: the dead letters come back in it.
      const customer = `java-bad-${seed}`;
      const bad = (n: number) => ({
        event_id: `java-bad-${seed}-${n}`,
        customer_id: customer,
        type: 'page_viewed',
        channel: 'web',
        timestamp: start,
      });
      const { type: _missing, ...untyped } = bad(2);
      const invalid = [
        { value: '<touchpoint id="1">not JSON</touchpoint>\té', reason: /^not_json$/ },
        { value: JSON.stringify(untyped), reason: /^invalid_event: type / },
        {
          value: JSON.stringify({ ...bad(3), timestamp: Date.now() + 2 * DAY }),
          reason: /^future_timestamp/,
        },
      ].map((r) => ({ ...r, key: customer }));

      // Last: a future time that is let through would move its partition's event time on.
      const { acknowledged, metrics } = await produceWithJava({
        brokers: kafkaBrokers(),
        topic: topics.touchpoints,
        codec,
        records: [...valid, ...invalid],
      });
      // The records went in shared batches, compressed with the codec: the client's own
      // figures, compressed size over raw size.
      expect(metrics['records-per-request-avg']).toBeGreaterThan(1);
      if (codec === 'none') expect(metrics['compression-rate-avg']).toBe(1);
      else expect(metrics['compression-rate-avg']).toBeLessThan(0.9);

      const ids = events.map((e) => e.event_id);
      const countStored = async (eventIds: string[]) => {
        const [row] = await (
          await runtime.store.query({
            query: `SELECT count() AS n, uniqExact(event_id) AS distinct_ids
                    FROM events FINAL WHERE event_id IN {ids:Array(String)}`,
            query_params: { ids: eventIds },
            format: 'JSONEachRow',
          })
        ).json<{ n: string; distinct_ids: string }>();
        return { n: Number(row?.n), distinct: Number(row?.distinct_ids) };
      };
      await eventually(async () =>
        expect(await countStored(ids)).toEqual({ n: ids.length, distinct: ids.length }),
      );
      // Committed by the processor and by the dead-letter copier: nothing more will come.
      await eventually(async () => {
        expect(await runtime.bus.lag(`${prefix}processor`, topics.touchpoints)).toBe(0);
        expect(await runtime.bus.lag(`${prefix}dead-letters`, topics.touchpointsDlq)).toBe(0);
      });
      expect(await countStored(ids)).toEqual({ n: ids.length, distinct: ids.length });

      const dropoffs = dropoffsAt(runtime.address);
      await expectDropoffsToMatch(dropoffs, PURCHASE, events, start);

      const provenance = acknowledged.slice(valid.length);
      expect(await readDeadLetters(runtime.store, topics.touchpoints)).toEqual(
        invalid.map((r, i) => ({
          topic: topics.touchpoints,
          partition: provenance[i]?.partition,
          offset: provenance[i]?.offset,
          reason: expect.stringMatching(r.reason),
          record_key: r.key,
          value: r.value,
        })),
      );
      expect(await countStored([2, 3].map((n) => bad(n).event_id))).toEqual({
        n: 0,
        distinct: 0,
      });
    },
  );
});
