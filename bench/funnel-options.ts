/**
 * Funnel options speed: each option of POST /v1/funnels/query (API.md "Funnel options") on
 * the funnel benchmark's data (10 million events of 1 million customers, 5 steps, window
 * 1h), against the plain 5-step funnel measured in the same run, interleaved. Attribution
 * needs a breakdown, so it is also compared with the plain funnel broken down the same way.
 * The data is merged first (the state a month is in at rest), as in bench/funnel.ts.
 *
 *   npx tsx bench/funnel-options.ts
 *   BENCH_EVENTS=1000000 BENCH_CUSTOMERS=100000 npx tsx bench/funnel-options.ts   # smaller
 *   BENCH_DATA_DIR=/tmp/funnel-bench npx tsx bench/funnel-options.ts   # keep the data
 *
 * Env: BENCH_EVENTS (10,000,000), BENCH_CUSTOMERS (1,000,000), BENCH_ROUNDS (5).
 */
import { startFunnelApi } from './support/funnel-api.js';
import { range, STEPS, WINDOW } from './support/funnel-data.js';
import { fmt, machine, median, table } from './support/output.js';
import { runMain } from './support/run.js';

const env = process.env;
const EVENTS = Number(env.BENCH_EVENTS ?? 10_000_000);
const CUSTOMERS = Number(env.BENCH_CUSTOMERS ?? 1_000_000);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);

const PLAIN = {
  steps: STEPS.map((event_type) => ({ event_type })),
  window: WINDOW,
  ...range,
};

/** Each option alone, as a user would add it to the plain funnel. */
const VARIANTS: Record<string, Record<string, unknown>> = {
  plain: PLAIN,
  'order: any': { ...PLAIN, order: 'any' },
  'optional step 2': {
    ...PLAIN,
    steps: PLAIN.steps.map((s, k) => (k === 2 ? { ...s, optional: true } : s)),
  },
  // A failed payment between cart and order, a noise event of the data (about 5% of events).
  'exclusion (payment_failed, 1 to 4)': {
    ...PLAIN,
    exclusions: [{ event_type: 'payment_failed', after_step: 1, before_step: 4 }],
  },
  // One property held, of 3 values: the plan, stored as a column of its own
  // (TOUCHSTREAM_PROPERTY_COLUMNS), and the device, read from every event's JSON.
  'hold_constant: [plan], a property column': { ...PLAIN, hold_constant: ['plan'] },
  'hold_constant: [device], from the JSON': { ...PLAIN, hold_constant: ['device'] },
  'plain, breakdown channel': { ...PLAIN, breakdown: 'channel' },
  'last_touch, breakdown channel': {
    ...PLAIN,
    breakdown: 'channel',
    breakdown_attribution: 'last_touch',
  },
  'step:2, breakdown channel': { ...PLAIN, breakdown: 'channel', breakdown_attribution: 'step:2' },
  'all of them, breakdown channel': {
    ...PLAIN,
    order: 'any',
    steps: PLAIN.steps.map((s, k) => (k === 2 ? { ...s, optional: true } : s)),
    exclusions: [{ event_type: 'payment_failed', after_step: 1, before_step: 4 }],
    hold_constant: ['plan'],
    breakdown: 'channel',
    breakdown_attribution: 'last_touch',
  },
};

async function main() {
  const { runtime, store, rows, generatedMs } = await startFunnelApi(
    'funnel-options',
    EVENTS,
    CUSTOMERS,
    { TOUCHSTREAM_PROPERTY_COLUMNS: 'plan' },
  );
  // Merged, the state a month is in at rest (as bench/funnel.ts measures it).
  if (generatedMs > 0) await store.command({ query: 'OPTIMIZE TABLE events FINAL' });

  // A variant over the API's 10 s limit answers 503: reported as such, the others go on.
  const query = async (body: Record<string, unknown>) => {
    const response = await fetch(`${runtime.address}/v1/funnels/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.status === 503) return undefined;
    if (response.status !== 200) {
      throw new Error(`API answered ${response.status}: ${await response.text()}`);
    }
    return (await response.json()) as { steps: { customers: number }[] };
  };

  console.log(machine());
  // Warm-up, and the counts each variant gives (so a fast wrong answer shows).
  const counts: Record<string, number[] | undefined> = {};
  for (const [name, body] of Object.entries(VARIANTS)) {
    counts[name] = (await query(body))?.steps.map((s) => s.customers);
  }
  const times: Record<string, number[]> = Object.fromEntries(
    Object.keys(VARIANTS).map((n) => [n, []]),
  );
  // Interleaved rounds, so a busy moment weighs on every variant alike.
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, body] of Object.entries(VARIANTS)) {
      const started = performance.now();
      await query(body);
      times[name]?.push(performance.now() - started);
    }
  }
  const ms = Object.fromEntries(Object.entries(times).map(([n, ts]) => [n, median(ts)]));
  const plain = ms.plain ?? 1;
  const plainBroken = ms['plain, breakdown channel'] ?? 1;
  console.log(
    `\n${fmt(rows)} events, ${fmt(CUSTOMERS)} customers; 5 steps, window ${WINDOW}; ` +
      `${ROUNDS} interleaved rounds after warm-up; ${machine()} after`,
  );
  console.log(
    table(
      [
        'funnel',
        'median ms',
        'best ms',
        'vs plain',
        'vs plain with the breakdown',
        'customers per step',
      ],
      Object.entries(VARIANTS).map(([name, body]) => [
        name,
        fmt(ms[name] ?? 0),
        fmt(Math.min(...(times[name] ?? []))),
        `${((ms[name] ?? 0) / plain).toFixed(2)}x`,
        body.breakdown ? `${((ms[name] ?? 0) / plainBroken).toFixed(2)}x` : '',
        counts[name]?.map((c) => fmt(c)).join(' / ') ?? 'over the 10 s limit (503)',
      ]),
    ),
  );
  console.log('target: each option under 2x the plain funnel');
}

runMain(main);
