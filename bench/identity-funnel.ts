/**
 * Funnels over stitched identities (issue: one customer across channels), measured before
 * the design is chosen. The same 10 million events of 1 million customers three ways:
 *
 * - known from the start: every event carries its customer id (the funnel benchmark's data);
 * - look-up table joined at query time: the first 30% of every customer's events carry an
 *   anonymous id instead (linked later), and a links table (anonymous id -> customer) is
 *   joined in the funnel query, which groups by the resolved customer (PostHog's
 *   "overrides");
 * - squashed: the same anonymous events rewritten with their customer id, as a background
 *   job would leave them; the sort key is by customer again.
 *
 * Every variant must give the same funnel; the target is within 1.3x of the first.
 *
 *   npx tsx bench/identity-funnel.ts
 * Env: BENCH_EVENTS (10,000,000), BENCH_CUSTOMERS (1,000,000), BENCH_ROUNDS (5).
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@touchstream/config';
import { createStore, migrate } from '@touchstream/store';
import { generateSql, range, STEPS } from './support/funnel-data.js';
import { fmt, table } from './support/output.js';
import { onCleanup, runMain, tempDir } from './support/run.js';

const env = process.env;
const EVENTS = Number(env.BENCH_EVENTS ?? 10_000_000);
const CUSTOMERS = Number(env.BENCH_CUSTOMERS ?? 1_000_000);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);
/** Of each customer's events (10 by default), the first ANONYMOUS_EVENTS are anonymous. */
const ANONYMOUS_EVENTS = Math.round(0.3 * Math.max(1, Math.floor(EVENTS / CUSTOMERS)));

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

const QUERIES = {
  'known from the start': funnel('events', 'customer_id'),
  'links joined at query time': funnel(
    `events_anonymous AS e LEFT JOIN identity_links AS l ON e.customer_id = l.anonymous_id`,
    `if(l.customer_id = '', e.customer_id, l.customer_id)`,
  ),
  'squashed into the events': funnel('events_squashed', 'customer_id'),
};

async function main() {
  const dir = await tempDir('touchstream-bench-identity-');
  const config = loadConfig({ TOUCHSTREAM_DATA_DIR: join(dir, 'data') });
  const store = await createStore(config);
  onCleanup(() => store.close());
  await migrate(store);
  const run = (query: string) => store.command({ query });
  const started = performance.now();
  await run(generateSql(EVENTS, CUSTOMERS));
  for (const name of ['events_anonymous', 'events_squashed']) {
    await run(`CREATE TABLE ${name} AS events`);
  }
  // The anonymous id of customer cus_X is anon_X; its first events carry it alone.
  const position = `toUInt64(substring(event_id, 5)) DIV ${CUSTOMERS}`;
  await run(`INSERT INTO events_anonymous
    SELECT event_id,
           if(${position} < ${ANONYMOUS_EVENTS}, concat('anon_', substring(customer_id, 5)), customer_id),
           type, channel, timestamp, properties, received_at
    FROM events ORDER BY timestamp`);
  await run(`CREATE TABLE identity_links (anonymous_id String, customer_id String)
             ENGINE = ReplacingMergeTree ORDER BY anonymous_id`);
  await run(`INSERT INTO identity_links
    SELECT DISTINCT customer_id, concat('cus_', substring(customer_id, 6))
    FROM events_anonymous WHERE startsWith(customer_id, 'anon_')`);
  await run(`INSERT INTO events_squashed
    SELECT e.event_id, if(l.customer_id = '', e.customer_id, l.customer_id), e.type, e.channel,
           e.timestamp, e.properties, e.received_at
    FROM events_anonymous AS e LEFT JOIN identity_links AS l ON e.customer_id = l.anonymous_id`);
  for (const name of ['events', 'events_anonymous', 'events_squashed']) {
    await run(`OPTIMIZE TABLE ${name} FINAL`);
  }
  console.error(`data ready in ${fmt((performance.now() - started) / 1000, 1)} s`);

  const shares = await (
    await store.query({
      query: `SELECT countIf(startsWith(customer_id, 'anon_')) / count() AS share FROM events_anonymous`,
      format: 'JSONEachRow',
    })
  ).json<{ share: number }>();
  const answer = async (query: string) =>
    JSON.stringify(await (await store.query({ query, format: 'JSONEachRow' })).json());
  const answers = await Promise.all(Object.values(QUERIES).map(answer));
  if (new Set(answers).size !== 1) throw new Error(`the variants disagree: ${answers.join(' | ')}`);

  const times: Record<string, number[]> = Object.fromEntries(
    Object.keys(QUERIES).map((name) => [name, []]),
  );
  const load = loadavg()[0] ?? 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, query] of Object.entries(QUERIES)) {
      const t = performance.now();
      await answer(query);
      times[name]?.push(performance.now() - t);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const base = median(times['known from the start'] ?? []);
  console.log(
    `\n${fmt(EVENTS)} events, ${fmt(CUSTOMERS)} customers, ${((shares[0]?.share ?? 0) * 100).toFixed(1)}% of events anonymous and linked; ` +
      `${ROUNDS} interleaved rounds; load ${load.toFixed(1)} before, ${(loadavg()[0] ?? 0).toFixed(1)} after`,
  );
  console.log(
    table(
      ['funnel over', 'median ms', 'best ms', 'vs known from the start'],
      Object.entries(times).map(([name, ts]) => [
        name,
        fmt(median(ts)),
        fmt(Math.min(...ts)),
        `${(median(ts) / base).toFixed(2)}x`,
      ]),
    ),
  );
  console.log(`same answer in all three: ${answers[0]}`);
}

runMain(main);
