/**
 * End to end: how long after its 202 an event can be seen by funnel queries, while the
 * pipeline takes a steady load. `touchstream start` on a broker of its own (collector,
 * processor with the sample journeys, API, alerter; ClickHouse embedded) is posted
 * BENCH_RATE events/s in batches of 100 for BENCH_DURATION seconds. Every 100 ms one of the
 * batches carries a probe event of a customer of its own; a reader polls `events` (what
 * funnel queries read) every 50 ms for the probes not yet seen. Latency = seen - 202.
 *
 *   npx tsx bench/end-to-end.ts
 *   BENCH_RATE=20000 BENCH_DURATION=60 npx tsx bench/end-to-end.ts
 *   BENCH_KAFKA=none npx tsx bench/end-to-end.ts   # the embedded bus (a 202 means stored)
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '@touchstream/config';
import pino from 'pino';
import { SAMPLE_JOURNEYS } from '../apps/cli/src/demo-command.js';
import { startRuntime } from '../apps/cli/src/runtime.js';
import { FACTORIES } from '../apps/cli/src/services.js';
import { startKafka } from './support/bus.js';
import { eventSource } from './support/events.js';
import { fmt, machine, table } from './support/output.js';
import { onCleanup, runMain, tempDir } from './support/run.js';

const env = process.env;
const RATE = Number(env.BENCH_RATE ?? 10_000);
const DURATION_S = Number(env.BENCH_DURATION ?? 30);
const BATCH = 100;
const PROBE_EVERY_MS = 100;
const POLL_MS = 50;

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

async function main() {
  const brokers = env.BENCH_KAFKA === 'none' ? undefined : (await startKafka()).brokers;
  const config = loadConfig({
    TOUCHSTREAM_PORT: '0',
    TOUCHSTREAM_DATA_DIR: join(await tempDir('touchstream-bench-e2e-'), 'data'),
    TOUCHSTREAM_JOURNEYS_FILE: SAMPLE_JOURNEYS,
    TOUCHSTREAM_LOG_LEVEL: 'warn',
    ...(brokers ? { TOUCHSTREAM_KAFKA_BROKERS: brokers, TOUCHSTREAM_TOPIC_PREFIX: 'e2e.' } : {}),
  });
  const runtime = await startRuntime(config, pino({ level: 'warn' }), FACTORIES);
  onCleanup(() => runtime.stop());
  const url = `${runtime.address}/v1/events`;
  const source = eventSource(100_000, 7);

  const posted = new Map<string, number>(); // probe customer -> time of its 202
  const latencies: number[] = [];
  let accepted = 0;
  let refused = 0;
  let probes = 0;
  let lastProbeAt = 0;
  const post = async () => {
    const events: Record<string, unknown>[] = Array.from({ length: BATCH }, () => ({
      ...source.next(),
      timestamp: new Date().toISOString(),
    }));
    let probe: string | undefined;
    if (performance.now() - lastProbeAt >= PROBE_EVERY_MS) {
      lastProbeAt = performance.now();
      probe = `probe_${probes++}`;
      events[0] = { ...events[0], event_id: `${probe}_event`, customer_id: probe };
    }
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    await response.body?.cancel();
    if (response.status !== 202) {
      refused += BATCH;
      return;
    }
    accepted += BATCH;
    if (probe) posted.set(probe, performance.now());
  };

  // The reader: one query for every probe still unseen.
  let reading = true;
  const reader = (async () => {
    while (reading || posted.size > 0) {
      const pending = [...posted.keys()];
      if (pending.length > 0) {
        const rows = await (
          await runtime.store.query({
            query:
              'SELECT DISTINCT customer_id FROM events WHERE customer_id IN {ids:Array(String)}',
            query_params: { ids: pending },
            format: 'JSONEachRow',
          })
        ).json<{ customer_id: string }>();
        const seenAt = performance.now();
        for (const { customer_id } of rows) {
          const at = posted.get(customer_id);
          if (at !== undefined) latencies.push(seenAt - at);
          posted.delete(customer_id);
        }
      }
      await sleep(POLL_MS);
    }
  })();

  // A paced open loop: a batch every BATCH/RATE seconds, whatever the answers take, with
  // at most 64 requests in flight (past that the pipeline is not keeping up).
  console.error(`posting ${fmt(RATE)} events/s for ${DURATION_S} s ...`);
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  let skipped = 0;
  for (let sent = 0; performance.now() - started < DURATION_S * 1000; sent++) {
    const due = started + (sent * BATCH * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (inFlight.size >= 64) {
      skipped += BATCH;
      continue;
    }
    const request = post().finally(() => inFlight.delete(request));
    inFlight.add(request);
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - started) / 1000;
  reading = false;
  const drainDeadline = Date.now() + 60_000;
  while (posted.size > 0 && Date.now() < drainDeadline) await sleep(POLL_MS);
  const unseen = posted.size;
  posted.clear();
  await reader;

  latencies.sort((a, b) => a - b);
  const ms = (q: number) => fmt(quantile(latencies, q));
  console.log(`${machine()}; bus: ${brokers ? 'Kafka (one broker)' : 'embedded'}`);
  console.log(
    `offered ${fmt(RATE)} events/s for ${DURATION_S} s: accepted ${fmt(accepted / elapsed)} events/s, refused ${fmt(refused)}, not sent (64 requests in flight) ${fmt(skipped)}`,
  );
  console.log();
  console.log(
    table(
      ['probes seen', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'unseen after 60 s'],
      [
        [
          fmt(latencies.length),
          ms(0.5),
          ms(0.95),
          ms(0.99),
          fmt(latencies.at(-1) ?? Number.NaN),
          fmt(unseen),
        ],
      ],
    ),
  );
}

runMain(main);
