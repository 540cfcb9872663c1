import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { topicNames } from '@touchstream/contracts';
import { afterAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { makeEvent, postEvents } from '../support/events.js';
import { privateBroker } from '../support/kafka.js';
import { freePortPair } from '../support/ports.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

describe('the Kafka broker stopped and started during ingest', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => {});
  });

  it('stores every event that got a 202 exactly once', async () => {
    // A broker of this test's own: stopping the shared one would break other suites.
    const kafkaDir = await mkdtemp(join(tmpdir(), 'touchstream-restart-kafka-'));
    const broker = await privateBroker(await freePortPair(), kafkaDir);
    cleanup.push(
      () => rm(kafkaDir, { recursive: true, force: true }),
      () => broker.stop(),
    );
    const prefix = 'restart.';
    const runtime: Runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-restart-ch-')),
      TOUCHSTREAM_KAFKA_BROKERS: broker.brokers.join(','),
      TOUCHSTREAM_TOPIC_PREFIX: prefix,
      TOUCHSTREAM_LOG_LEVEL: 'warn',
    });
    cleanup.push(() => runtime.stop());

    const accepted: string[] = [];
    const statuses = new Map<number, number>();
    let posting = true;
    const post = async () => {
      while (posting) {
        const events = Array.from({ length: 50 }, () => makeEvent());
        const response = await postEvents(runtime.address, events).catch(() => ({ status: 0 }));
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status === 202) accepted.push(...events.map((e) => e.event_id));
        else await sleep(200);
      }
    };
    // Clients post concurrently, as real ones do: a publish that fails must not take
    // another one's records down with it.
    const posters = Promise.all([post(), post(), post()]);

    await eventually(async () => expect(accepted.length).toBeGreaterThanOrEqual(1_000));
    await broker.stop();
    await sleep(3_000);
    await broker.start();
    const beforeRecovery = accepted.length;
    await eventually(
      async () => expect(accepted.length).toBeGreaterThan(beforeRecovery + 1_000),
      90_000,
    );
    posting = false;
    await posters;

    // While the broker was away, requests were refused rather than acknowledged.
    expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
    expect([...statuses.keys()].every((s) => s === 202 || s === 503)).toBe(true);

    const topics = topicNames(prefix);
    await eventually(
      async () => expect(await runtime.bus.lag(`${prefix}processor`, topics.touchpoints)).toBe(0),
      90_000,
    );
    const [row] = await (
      await runtime.store.query({
        query: `SELECT count() AS n, uniqExact(event_id) AS ids,
                       countIf(event_id IN {accepted:Array(String)}) AS acknowledged
                FROM events FINAL`,
        query_params: { accepted },
        format: 'JSONEachRow',
      })
    ).json<{ n: string; ids: string; acknowledged: string }>();
    // Every acknowledged event is stored, once; a refused batch may be stored too (the
    // broker can take it after the client was told 503), but never twice.
    expect(Number(row?.acknowledged)).toBe(accepted.length);
    expect(Number(row?.n)).toBe(Number(row?.ids));
  });
});
