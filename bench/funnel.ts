/**
 * Funnel query speed: a 5-step funnel over 10 million events of 1 million customers on the
 * embedded engine, through the API (HTTP, exact chains and medians), against the bare
 * `windowFunnel` SQL on the same data and a plain scan of the columns a funnel reads.
 * Measured twice: as inserted (several parts per month) and merged, as a month is at rest.
 *
 *   npx tsx bench/funnel.ts
 *   BENCH_DATA_DIR=/tmp/funnel-bench npx tsx bench/funnel.ts   # keep the data between runs
 *
 * Env: BENCH_EVENTS (10,000,000), BENCH_CUSTOMERS (1,000,000), BENCH_ROUNDS (5).
 * The process's CPU time is reported too: the engine runs in this process, and on a busy
 * machine CPU time is steadier than wall time.
 */
import { availableParallelism, loadavg } from 'node:os';
import type { Store } from '@touchstream/store';
import { startFunnelApi } from './support/funnel-api.js';
import { BARE, range, STEPS, WINDOW } from './support/funnel-data.js';
import { fmt, median, table } from './support/output.js';
import { runMain } from './support/run.js';

const env = process.env;
const EVENTS = Number(env.BENCH_EVENTS ?? 10_000_000);
const CUSTOMERS = Number(env.BENCH_CUSTOMERS ?? 1_000_000);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);
const SCAN = `
  SELECT count(), uniq(customer_id), max(timestamp) FROM events
  WHERE timestamp >= parseDateTime64BestEffort('${range.from}', 3)
    AND type IN (${STEPS.map((s) => `'${s}'`).join(', ')})`;

interface Timing {
  ms: number;
  cpuMs: number;
}

async function timed(fn: () => Promise<unknown>): Promise<Timing & { result: unknown }> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const result = await fn();
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, result };
}

const sql = (store: Store, query: string) => async () =>
  (await store.query({ query, format: 'JSONEachRow' })).json();

async function main() {
  const { runtime, store, rows } = await startFunnelApi('funnel', EVENTS, CUSTOMERS);
  const parts = async () =>
    Number(
      (
        (await sql(
          store,
          "SELECT count() AS n FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active",
        )()) as { n: string }[]
      )[0]?.n ?? 0,
    );

  const body = JSON.stringify({
    steps: STEPS.map((event_type) => ({ event_type })),
    window: WINDOW,
    ...range,
  });
  const viaApi = async () => {
    const response = await fetch(`${runtime.address}/v1/funnels/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    if (response.status !== 200)
      throw new Error(`API answered ${response.status}: ${await response.text()}`);
    return response.json();
  };
  const variants = {
    'API, POST /v1/funnels/query (exact, medians)': viaApi,
    'bare windowFunnel SQL': sql(store, BARE),
    'plain scan (count, uniq)': sql(store, SCAN),
  };

  const measure = async (state: string) => {
    // Warm-up: the page cache, the engine's caches, the HTTP connection.
    const results: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(variants)) results[name] = await fn();
    const timings: Record<string, Timing[]> = Object.fromEntries(
      Object.keys(variants).map((n) => [n, []]),
    );
    const load = loadavg()[0] ?? 0;
    // Interleaved rounds, so a busy moment weighs on every variant alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, fn] of Object.entries(variants)) {
        const { ms, cpuMs } = await timed(fn);
        timings[name]?.push({ ms, cpuMs });
      }
    }
    const loadAfter = loadavg()[0] ?? 0;

    const summary = Object.entries(timings).map(([name, ts]) => ({
      name,
      ms: median(ts.map((t) => t.ms)),
      best: Math.min(...ts.map((t) => t.ms)),
      cpuMs: median(ts.map((t) => t.cpuMs)),
    }));
    const [viaApiRow, bare] = summary;
    console.log(
      `\n${state}: ${fmt(rows)} events, ${fmt(CUSTOMERS)} customers, ${await parts()} parts; 5 steps, window ${WINDOW}; ` +
        `${ROUNDS} interleaved rounds after warm-up; ${availableParallelism()} cores, load ${load.toFixed(1)} before, ${loadAfter.toFixed(1)} after`,
    );
    console.log(
      table(
        ['query', 'median ms', 'best ms', 'CPU ms (median)', 'median vs bare', 'CPU vs bare'],
        summary.map((s) => [
          s.name,
          fmt(s.ms),
          fmt(s.best),
          fmt(s.cpuMs),
          `${(s.ms / (bare?.ms ?? 1)).toFixed(2)}x`,
          `${(s.cpuMs / (bare?.cpuMs ?? 1)).toFixed(2)}x`,
        ]),
      ),
    );
    const steps = (
      results[Object.keys(variants)[0] as string] as {
        steps: { name: string; customers: number }[];
      }
    ).steps;
    const levels = results['bare windowFunnel SQL'] as { level: number; customers: string }[];
    const atLeast = (k: number) =>
      levels.filter((l) => Number(l.level) > k).reduce((sum, l) => sum + Number(l.customers), 0);
    console.log(
      table(
        ['step', 'API customers', 'windowFunnel customers'],
        steps.map((s, k) => [s.name, fmt(s.customers), fmt(atLeast(k))]),
      ),
    );
    console.log(
      `API median ${fmt(viaApiRow?.ms ?? 0)} ms (target < 1,000); API / bare = ${((viaApiRow?.ms ?? 0) / (bare?.ms ?? 1)).toFixed(2)}x (target <= 1.5x)`,
    );
  };

  if ((await parts()) > 1) await measure('As inserted');
  // The state the events table's settings bring a month partition to an hour after its
  // last insert (min_age_to_force_merge_seconds): one part. Forced here, not waited for.
  const merged = await timed(() => store.command({ query: 'OPTIMIZE TABLE events FINAL' }));
  console.error(`merged into one part per month in ${fmt(merged.ms / 1000, 1)} s`);
  await measure('Merged (at rest)');
}

runMain(main);
