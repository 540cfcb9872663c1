/**
 * Erasure (API.md, "Erasure and retention"): how long a customer takes to be hidden and
 * then physically gone, on the funnel benchmark's data (10 million events of 1 million
 * customers over a month) with a fact per step event, a link for a third of the customers
 * and a checkpoint row for a tenth. Measured with the store's own functions, as the API
 * and the purge run them:
 *
 * - request: the API's pass (erased event ids recorded, deletes of every table as patch parts);
 * - purge: deleting again what may have come since, `APPLY PATCHES` and `APPLY DELETED MASK`
 *   on every table, journey_state rewritten, then the check with the mask and patches off;
 * - one erasure alone, then BENCH_BATCH erasures purged in one round (the purge takes every
 *   pending erasure at once);
 * - the processor's no-resurrection check: one query for a batch of 1,000 event ids.
 *
 *   npx tsx bench/erasure.ts
 * Env: BENCH_EVENTS (10,000,000), BENCH_CUSTOMERS (1,000,000), BENCH_BATCH (100).
 */
import { join } from 'node:path';
import { loadConfig } from '@touchstream/config';
import {
  createStore,
  type ErasureRow,
  erasedAmong,
  eraseRows,
  migrate,
  purgeErasures,
  resolveErasureIds,
  type Store,
  writeErasure,
} from '@touchstream/store';
import { generateSql } from './support/funnel-data.js';
import { fmt, machine, table } from './support/output.js';
import { onCleanup, runMain, tempDir } from './support/run.js';

const env = process.env;
const EVENTS = Number(env.BENCH_EVENTS ?? 10_000_000);
const CUSTOMERS = Number(env.BENCH_CUSTOMERS ?? 1_000_000);
const BATCH = Number(env.BENCH_BATCH ?? 100);

const customer = (c: number) => `cus_${String(c).padStart(9, '0')}`;

async function seconds<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const result = await fn();
  return [result, (performance.now() - t0) / 1000];
}

async function count(store: Store, query: string) {
  const [row] = await (await store.query({ query, format: 'JSONEachRow' })).json<{ n: string }>();
  return Number(row?.n ?? 0);
}

/** Facts, links and checkpoints beside the events, shaped like the processor's. */
async function seed(store: Store) {
  await store.command({ query: generateSql(EVENTS, CUSTOMERS) });
  await store.command({
    query: `INSERT INTO facts (journey, customer_id, instance, kind, step, time, channel, version)
            SELECT 'purchase', customer_id, concat(customer_id, '-', toString(toDate(timestamp))),
                   'reached', indexOf(['product_viewed','cart_added','checkout_started',
                                       'payment_submitted','order_placed'], type) - 1,
                   timestamp, channel, 1
            FROM events
            WHERE type IN ('product_viewed','cart_added','checkout_started','payment_submitted','order_placed')`,
  });
  await store.command({
    query: `INSERT INTO identity_links (anonymous_id, customer_id, linked_at, event_id)
            SELECT concat('anon_', toString(number)), concat('cus_', leftPad(toString(number), 9, '0')),
                   toDateTime64('2026-10-01 00:00:00', 3, 'UTC'), concat('link_', toString(number))
            FROM numbers(${CUSTOMERS}) WHERE number % 3 = 0`,
  });
  await store.command({
    query: `INSERT INTO journey_state (group_id, partition, customer_id, state, version)
            SELECT 'touchstream.processor', number % 12, concat('cus_', leftPad(toString(number), 9, '0')),
                   concat('{"customer":"cus_', leftPad(toString(number), 9, '0'), '","instances":{}}'), 1
            FROM numbers(${CUSTOMERS}) WHERE number % 10 = 0`,
  });
  // At rest, as a month is after an hour without inserts: one part per partition.
  for (const t of ['events', 'facts', 'identity_links', 'journey_state']) {
    await store.command({ query: `OPTIMIZE TABLE ${t} FINAL` });
  }
}

async function request(store: Store, customers: number[]) {
  const erasures: ErasureRow[] = [];
  for (const c of customers) {
    const erasure: ErasureRow = {
      erasure_id: `bench-${c}`,
      customer_id: customer(c),
      ids: await resolveErasureIds(store, customer(c)),
      requested_at: Date.now(),
      state: 'pending',
      done_at: null,
    };
    await writeErasure(store, erasure);
    await eraseRows(store, erasure);
    erasures.push(erasure);
  }
  return erasures;
}

async function main() {
  const dir = await tempDir('touchstream-bench-erasure-');
  const store = await createStore(loadConfig({ TOUCHSTREAM_DATA_DIR: join(dir, 'data') }));
  onCleanup(() => store.close());
  await migrate(store);
  console.log(machine());
  const [, seeded] = await seconds(() => seed(store));
  const rows = {
    events: await count(store, 'SELECT count() AS n FROM events'),
    facts: await count(store, 'SELECT count() AS n FROM facts'),
    links: await count(store, 'SELECT count() AS n FROM identity_links'),
    state: await count(store, 'SELECT count() AS n FROM journey_state'),
  };
  console.log(
    `seeded in ${seeded.toFixed(1)} s: ${fmt(rows.events)} events, ${fmt(rows.facts)} facts, ${fmt(rows.links)} links, ${fmt(rows.state)} checkpoint rows`,
  );

  const results: string[][] = [];
  const run = async (label: string, customers: number[]) => {
    const [erasures, requested] = await seconds(() => request(store, customers));
    const [{ done, timings }, purged] = await seconds(() => purgeErasures(store, erasures));
    if (done.length !== erasures.length) throw new Error(`${label}: not everything purged`);
    results.push([
      label,
      fmt(requested / customers.length, 3),
      fmt(timings.redelete / 1000, 2),
      fmt(timings.apply / 1000, 2),
      fmt(timings.verify / 1000, 2),
      fmt(purged, 2),
    ]);
  };
  await run('1 customer', [30]);
  await run('1 customer, again', [60]);
  await run(
    `${BATCH} customers in one round`,
    Array.from({ length: BATCH }, (_, i) => 1_000 + i * Math.floor(CUSTOMERS / (BATCH + 1))),
  );
  console.log(
    table(
      [
        'erasure',
        'request s (each)',
        'purge: delete again s',
        'apply mask + rewrite s',
        'check (mask off) s',
        'purge total s',
      ],
      results,
    ),
  );

  // The processor's check: one query per batch once any erasure exists.
  const ids = Array.from({ length: 1_000 }, (_, i) => `evt_${i * 9_973}`);
  const timesMs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const [, s] = await seconds(() => erasedAmong(store, ids));
    timesMs.push(s * 1000);
  }
  timesMs.sort((a, b) => a - b);
  const erasedCount = await count(store, 'SELECT count() AS n FROM erased_events');
  console.log(
    `no-resurrection check of 1,000 event ids against ${fmt(erasedCount)} erased ids: median ${fmt(timesMs[10] ?? 0, 1)} ms`,
  );
}

runMain(main);
