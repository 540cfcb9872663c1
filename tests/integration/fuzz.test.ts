/**
 * Hostile requests against `touchstream start`, for every route, on the embedded defaults
 * and on Kafka (tests/support/hostile.ts makes them). Every answer: never a 5xx, every 4xx
 * the error object. After every route: still ready, a fresh valid event still taken, and
 * every event answered 202 stored.
 *
 *   FUZZ_RUNS=200 npx vitest run tests/integration/fuzz.test.ts   # more requests per route
 *   bench/fuzz.ts runs thousands and reports instead of stopping at the first failure.
 *
 * The seed is random; a failure prints it with the counterexample, to replay with
 * fc.assert's `seed` and `path`.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import {
  acceptedEventIds,
  fuzzRoutes,
  putFixtures,
  responseProblems,
  send,
  servingProblems,
} from '../support/hostile.js';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { startTestRuntime } from '../support/runtime.js';

/** Requests per route: 100 keeps the file under a minute on two cores while nothing fails. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 100);
/** Longer than any sane answer, shorter than the embedded bus's 30 s publish timeout. */
const REQUEST_TIMEOUT_MS = Number(process.env.FUZZ_TIMEOUT_MS ?? 10_000);
/** A failing route shrinks its counterexample for at most this long. */
const ROUTE_TIME_LIMIT_MS = Number(process.env.FUZZ_ROUTE_TIME_LIMIT_MS ?? 30_000);
/** On Kafka a 202 means on the topic: how long the events table may take to show it. */
const STORE_WAIT_MS = 30_000;

const KEYS = { ingest: 'fuzz-ingest-key', query: 'fuzz-query-key', admin: 'fuzz-admin-key' };

const setups: Array<[string, () => Record<string, string>]> = [
  [
    'Kafka',
    () => ({
      TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
      TOUCHSTREAM_TOPIC_PREFIX: `${uniqueName('fuzz')}.`,
    }),
  ],
  // Last: an embedded bus a hostile event stalled may not stop cleanly.
  ['the embedded defaults', () => ({})],
];

describe.each(setups)('hostile requests to touchstream start on %s', (_name, env) => {
  let runtime: Runtime;
  /** Ids of every event answered 202: all must end up stored. */
  const accepted = new Set<string>();

  beforeAll(async () => {
    runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-fuzz-')),
      TOUCHSTREAM_INGEST_KEYS: KEYS.ingest,
      TOUCHSTREAM_QUERY_KEYS: KEYS.query,
      TOUCHSTREAM_ADMIN_KEYS: KEYS.admin,
      // The alerter judges the rules the fuzz stored while it runs, not after.
      TOUCHSTREAM_ALERT_INTERVAL: '2s',
      ...env(),
    });
  });
  afterAll(async () => {
    // A stalled partition may keep a drain waiting: the run must end anyway.
    await Promise.race([
      runtime?.stop(),
      new Promise((resolve) => setTimeout(resolve, 20_000).unref()),
    ]);
  });

  for (const route of fuzzRoutes(KEYS)) {
    it(`answers ${route.name} with no 5xx and the error object for every 4xx`, async () => {
      await putFixtures(runtime.address, KEYS);
      await fc.assert(
        fc.asyncProperty(route.request, async (request) => {
          const response = await send(runtime.address, request, REQUEST_TIMEOUT_MS);
          for (const id of acceptedEventIds(request, response)) accepted.add(id);
          const problems = responseProblems(request, response);
          if (problems.length > 0) throw new Error(problems.join('\n'));
        }),
        {
          numRuns: RUNS,
          // Lists every failure met while shrinking: the first is the one the fuzz hit.
          verbose: fc.VerbosityLevel.Verbose,
          plugins: [fc.interruptAfterTimeLimit(ROUTE_TIME_LIMIT_MS)],
        },
      );
    });

    it(`is ready, takes a valid event and stored all it accepted, after ${route.name}`, async () => {
      const problems = await servingProblems(runtime.address, runtime.store, KEYS, accepted, {
        waitMs: runtime.config.kafka.brokers ? STORE_WAIT_MS : 0,
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      expect(problems).toEqual([]);
    });
  }
});
