/**
 * The fuzz of tests/integration/fuzz.test.ts with many more requests, reported rather than
 * stopped at the first failure. `touchstream start` (every service, keys on) on a broker of
 * its own gets FUZZ_RUNS hostile requests per route from tests/support/hostile.ts, a few at
 * a time; after each route it must still be ready, take a valid event and have stored every
 * event it answered 202 for. Prints, per route, the requests and the statuses seen, then
 * every distinct problem with how often it came and the first request that caused it.
 *
 *   npx tsx bench/fuzz.ts
 *   FUZZ_RUNS=20000 FUZZ_SEED=7 npx tsx bench/fuzz.ts
 *   BENCH_KAFKA=none npx tsx bench/fuzz.ts   # the embedded bus
 */
import { join } from 'node:path';
import { loadConfig } from '@touchstream/config';
import fc from 'fast-check';
import pino from 'pino';
import { startRuntime } from '../apps/cli/src/runtime.js';
import { FACTORIES } from '../apps/cli/src/services.js';
import {
  acceptedEventIds,
  describeRequest,
  type FuzzRequest,
  fuzzRoutes,
  putFixtures,
  responseProblems,
  send,
  servingProblems,
} from '../tests/support/hostile.js';
import { startKafka } from './support/bus.js';
import { fmt, table } from './support/output.js';
import { onCleanup, runMain, tempDir } from './support/run.js';

const env = process.env;
const RUNS = Number(env.FUZZ_RUNS ?? 5_000);
const SEED = Number(env.FUZZ_SEED ?? Date.now() % 2 ** 31);
/** Requests in flight at once: enough to keep the server busy, few enough to read failures. */
const CONCURRENCY = Number(env.FUZZ_CONCURRENCY ?? 4);
const TIMEOUT_MS = Number(env.FUZZ_TIMEOUT_MS ?? 10_000);
/** Requests generated at a time: oversized bodies make a whole route's worth too big to hold. */
const CHUNK = 100;
const KEYS = { ingest: 'fuzz-ingest-key', query: 'fuzz-query-key', admin: 'fuzz-admin-key' };

interface Problem {
  route: string;
  what: string;
  count: number;
  request?: string;
  answer?: string;
}

async function main() {
  const brokers = env.BENCH_KAFKA === 'none' ? undefined : (await startKafka()).brokers;
  const config = loadConfig({
    TOUCHSTREAM_PORT: '0',
    TOUCHSTREAM_DATA_DIR: join(await tempDir('touchstream-bench-fuzz-'), 'data'),
    TOUCHSTREAM_LOG_LEVEL: 'fatal',
    TOUCHSTREAM_INGEST_KEYS: KEYS.ingest,
    TOUCHSTREAM_QUERY_KEYS: KEYS.query,
    TOUCHSTREAM_ADMIN_KEYS: KEYS.admin,
    TOUCHSTREAM_ALERT_INTERVAL: '2s',
    ...(brokers ? { TOUCHSTREAM_KAFKA_BROKERS: brokers, TOUCHSTREAM_TOPIC_PREFIX: 'fuzz.' } : {}),
  });
  const runtime = await startRuntime(config, pino({ level: 'fatal' }), FACTORIES);
  onCleanup(() => runtime.stop());
  console.error(
    `fuzzing ${runtime.address} on ${brokers ? `Kafka ${brokers}` : 'the embedded bus'}: ${fmt(RUNS)} requests per route, seed ${SEED}`,
  );

  const accepted = new Set<string>();
  const problems = new Map<string, Problem>();
  const note = (route: string, what: string, request?: FuzzRequest, answer?: string) => {
    const key = `${route}\u0000${what}`;
    const seen = problems.get(key);
    if (seen) seen.count += 1;
    else {
      problems.set(key, {
        route,
        what,
        count: 1,
        request: request && describeRequest(request),
        answer,
      });
    }
  };
  const rows: string[][] = [];

  for (const [index, route] of fuzzRoutes(KEYS).entries()) {
    await putFixtures(runtime.address, KEYS);
    const statuses = new Map<string, number>();
    const started = performance.now();
    const one = async (request: FuzzRequest) => {
      try {
        const response = await send(runtime.address, request, TIMEOUT_MS);
        const status = String(response.status);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        for (const id of acceptedEventIds(request, response)) accepted.add(id);
        const answer = response.body.toString('utf8').slice(0, 500);
        for (const problem of responseProblems(request, response)) {
          note(route.name, signature(problem, answer), request, `${status} ${answer}`);
        }
      } catch (error) {
        statuses.set('none', (statuses.get('none') ?? 0) + 1);
        note(route.name, (error as Error).message, request);
      }
    };
    for (let done = 0; done < RUNS; done += CHUNK) {
      const requests = fc.sample(route.request, {
        numRuns: Math.min(CHUNK, RUNS - done),
        seed: SEED + index * 1_000_003 + done,
      });
      // A few workers drain the chunk: requests in flight at once, in no fixed order.
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let r = requests.shift(); r; r = requests.shift()) await one(r);
        }),
      );
    }
    const after = await servingProblems(runtime.address, runtime.store, KEYS, accepted, {
      waitMs: brokers ? 30_000 : 0,
      timeoutMs: TIMEOUT_MS,
    });
    for (const problem of after) note(route.name, `after the route: ${problem}`);
    const seconds = (performance.now() - started) / 1000;
    rows.push([
      route.name,
      fmt(RUNS),
      fmt(RUNS / seconds),
      [...statuses]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([status, n]) => `${status}×${n}`)
        .join(' '),
      fmt([...problems.values()].filter((p) => p.route === route.name).length),
    ]);
    console.error(`${route.name}: ${rows.at(-1)?.slice(3).join(', problems ')}`);
  }

  console.log(`\nseed ${SEED}, ${fmt(RUNS)} requests per route\n`);
  console.log(table(['route', 'requests', 'req/s', 'statuses', 'distinct problems'], rows));
  if (problems.size === 0) {
    console.log('\nno problems');
    return;
  }
  console.log(`\n${problems.size} distinct problems:`);
  for (const p of problems.values()) {
    console.log(`\n- ${p.route}: ${p.what} (${fmt(p.count)}×)`);
    if (p.request) console.log(`  request: ${p.request}`);
    if (p.answer) console.log(`  answer: ${p.answer}`);
  }
  throw new Error(`${problems.size} distinct problems (seed ${SEED})`);
}

/**
 * A problem without what varies between requests (bodies, lengths, ids), so one cause is
 * counted once: the text before its first colon, and for an error body its code.
 */
function signature(problem: string, answer: string): string {
  const head = problem.split(': ')[0] ?? problem;
  const code = /"code":"([^"]+)"/.exec(answer)?.[1];
  const message = /"message":"([^"'\\]{0,80})/.exec(answer)?.[1];
  return code ? `${head} (${code}: ${message ?? ''})` : head;
}

runMain(main);
