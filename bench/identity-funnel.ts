/**
 * Funnels over stitched identities. The funnel benchmark's 10 million events of 1 million
 * customers, where the first 30% of every customer's events carried only an anonymous id
 * and the link came later, against the same events with their customer id from the start:
 *
 * - known from the start: every event carries its customer id (the funnel benchmark's data);
 * - links joined at query time, before stitching: the anonymous events as stored when they
 *   arrived, a links table joined in the funnel query, grouped by the resolved customer
 *   (PostHog's "overrides"; measured to explain the choice, not used);
 * - stitched by Touchstream, just after: the anonymous events filed under their customers
 *   by the processor's own code (`fileUnderCustomers`, BENCH_IDS_PER_CALL anonymous ids per
 *   call), with the moved rows still lightweight-deleted in their
 *   parts;
 * - stitched, after merges: the same once ClickHouse merged the parts.
 *
 * Every variant must give the same funnel; the target is within 1.3x of the first. The time
 * to stitch is reported too.
 *
 *   npx tsx bench/identity-funnel.ts
 * Env: BENCH_EVENTS (10,000,000), BENCH_CUSTOMERS (1,000,000), BENCH_ROUNDS (5),
 * BENCH_IDS_PER_CALL (10,000).
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@touchstream/config';
import { createStore, fileUnderCustomers, migrate, type Store } from '@touchstream/store';
import { generateSql, range, STEPS } from './support/funnel-data.js';
import { fmt, median, table } from './support/output.js';
import { onCleanup, runMain, tempDir } from './support/run.js';

const env = process.env;
const EVENTS = Number(env.BENCH_EVENTS ?? 10_000_000);
const CUSTOMERS = Number(env.BENCH_CUSTOMERS ?? 1_000_000);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);
/** Of each customer's events (10 by default), the first ANONYMOUS_EVENTS are anonymous. */
const ANONYMOUS_EVENTS = Math.round(0.3 * Math.max(1, Math.floor(EVENTS / CUSTOMERS)));
const IDS_PER_CALL = Number(env.BENCH_IDS_PER_CALL ?? 10_000);

const inRange = `timestamp >= parseDateTime64BestEffort('${range.from}', 3)
      AND timestamp < parseDateTime64BestEffort('${range.to}', 3) + INTERVAL 1 HOUR
      AND type IN (${STEPS.map((s) => `'${s}'`).join(', ')})`;
const levels = `windowFunnel(3600000, 'strict_increase')(toUInt64(toUnixTimestamp64Milli(timestamp)),
             ${STEPS.map((s) => `type = '${s}'`).join(', ')}) AS level`;
const funnel = (source: string, person: string) => `
  SELECT level, count() AS customers FROM (
    SELECT ${person} AS person, ${levels}
    FROM ${source} WHERE ${inRange} GROUP BY person)
  GROUP BY level ORDER BY level`;

const KNOWN = funnel('events_known', 'customer_id');
const STITCHED = funnel('events', 'customer_id');
const JOINED = funnel(
  `events AS e LEFT JOIN (SELECT anonymous_id, argMin(customer_id, (linked_at, event_id)) AS customer_id
                          FROM identity_links GROUP BY anonymous_id) AS l
     ON e.customer_id = l.anonymous_id`,
  `if(l.customer_id = '', e.customer_id, l.customer_id)`,
);

/** Interleaved rounds of the queries; every answer must be the baseline's. */
async function measure(store: Store, queries: Record<string, string>, expected: string) {
  const answer = async (query: string) =>
    JSON.stringify(await (await store.query({ query, format: 'JSONEachRow' })).json());
  const times: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, query] of Object.entries(queries)) {
      const t = performance.now();
      const got = await answer(query);
      const elapsed = performance.now() - t;
      times[name] = [...(times[name] ?? []), elapsed];
      if (got !== expected) throw new Error(`${name} disagrees: ${got} vs ${expected}`);
    }
  }
  return times;
}

async function main() {
  const dir = await tempDir('touchstream-bench-identity-');
  const config = loadConfig({ TOUCHSTREAM_DATA_DIR: join(dir, 'data') });
  const store = await createStore(config);
  onCleanup(() => store.close());
  await migrate(store);
  const run = (query: string) => store.command({ query });
  const started = performance.now();
  await run(generateSql(EVENTS, CUSTOMERS));
  await run('CREATE TABLE events_known AS events');
  await run('INSERT INTO events_known SELECT * FROM events');
  // As they arrived: customer cus_X's first events carry only its anonymous id anon_X
  // (stored under it), the later ones carry the customer id.
  const position = `toUInt64(substring(event_id, 5)) DIV ${CUSTOMERS}`;
  const anonymous = `concat('anon_', substring(customer_id, 5))`;
  await run('TRUNCATE TABLE events');
  await run(`INSERT INTO events (event_id, customer_id, anonymous_id, type, channel, timestamp,
                                 properties, received_at)
    SELECT event_id, if(${position} < ${ANONYMOUS_EVENTS}, ${anonymous}, customer_id),
           if(${position} < ${ANONYMOUS_EVENTS}, ${anonymous}, ''),
           type, channel, timestamp, properties, received_at
    FROM events_known ORDER BY timestamp`);
  // The link: the customer's first event that carried its id, which is later.
  await run(`INSERT INTO identity_links (anonymous_id, customer_id, linked_at, event_id)
    SELECT ${anonymous}, customer_id, min(timestamp), argMin(event_id, timestamp)
    FROM events_known WHERE ${position} = ${ANONYMOUS_EVENTS} GROUP BY customer_id`);
  for (const name of ['events', 'events_known', 'identity_links']) {
    await run(`OPTIMIZE TABLE ${name} FINAL`);
  }
  console.error(`data ready in ${fmt((performance.now() - started) / 1000, 1)} s`);

  const [{ share = 0, ids = 0 } = {}] = await (
    await store.query({
      query: `SELECT countIf(customer_id = anonymous_id) / count() AS share,
                     uniqExactIf(anonymous_id, anonymous_id != '') AS ids FROM events`,
      format: 'JSONEachRow',
    })
  ).json<{ share: number; ids: number }>();
  const expected = JSON.stringify(
    await (await store.query({ query: KNOWN, format: 'JSONEachRow' })).json(),
  );
  const load = loadavg()[0] ?? 0;
  console.error('measuring before stitching');
  const before = await measure(
    store,
    { 'known from the start': KNOWN, 'links joined at query time': JOINED },
    expected,
  );

  // Stitch with the processor's own code, as a processor would over its batches.
  const stitchStart = performance.now();
  const customers = Array.from(
    { length: CUSTOMERS },
    (_, c) => `cus_${String(c).padStart(9, '0')}`,
  );
  for (let i = 0; i < customers.length; i += IDS_PER_CALL) {
    console.error(
      `stitching ids ${fmt(i)}.., ${fmt((performance.now() - stitchStart) / 1000, 1)} s`,
    );
    await fileUnderCustomers(
      store,
      customers.slice(i, i + IDS_PER_CALL).map((c) => ({
        anonymous_id: `anon_${c.slice(4)}`,
        customer_id: c,
      })),
    );
  }
  const stitchSeconds = (performance.now() - stitchStart) / 1000;
  console.error(`stitched in ${fmt(stitchSeconds, 1)} s`);
  const after = await measure(
    store,
    { 'known from the start': KNOWN, 'stitched by Touchstream, just after': STITCHED },
    expected,
  );
  await run('OPTIMIZE TABLE events FINAL');
  const merged = await measure(
    store,
    { 'known from the start': KNOWN, 'stitched, after merges': STITCHED },
    expected,
  );

  const rows: string[][] = [];
  for (const times of [before, after, merged]) {
    const entries = Object.entries(times);
    const base = median(entries[0]?.[1] ?? []);
    for (const [name, ts] of entries) {
      rows.push([
        name,
        fmt(median(ts)),
        fmt(Math.min(...ts)),
        `${(median(ts) / base).toFixed(2)}x`,
      ]);
    }
  }
  console.log(
    `\n${fmt(EVENTS)} events, ${fmt(CUSTOMERS)} customers, ${(share * 100).toFixed(1)}% of events ` +
      `anonymous and linked later (${fmt(ids)} anonymous ids); ${ROUNDS} interleaved rounds per ` +
      `pair; load ${load.toFixed(1)} before, ${(loadavg()[0] ?? 0).toFixed(1)} after`,
  );
  console.log(
    table(['funnel over', 'median ms', 'best ms', 'vs known from the start, same rounds'], rows),
  );
  console.log(
    `stitching ${fmt(ids)} anonymous ids (${fmt(share * EVENTS)} events): ${fmt(stitchSeconds, 1)} s, ` +
      `${fmt(ids / stitchSeconds)} ids/s`,
  );
  console.log(`same answer in all: ${expected}`);
}

runMain(main);
