/**
 * The funnel API against a plain reference of API.md's counting rules, on many generated
 * datasets: equal timestamps, repeated entries, steps after `to`, events sent out of order
 * and twice, channel and property conditions, filters, breakdowns and medians.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FunnelFilter, PropertyValue } from '@touchstream/contracts';
import { insertEvents } from '@touchstream/store';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { queryFunnel, roundMedians } from '../support/funnel-client.js';
import {
  type RefEvent,
  type RefQuery,
  type RefStep,
  referenceFunnel,
} from '../support/funnel-reference.js';
import { startTestRuntime } from '../support/runtime.js';

/** Each dataset lives in an hour of its own: queries of one never see another's events. */
const T0 = Date.UTC(2026, 4, 1);
const HOUR = 3_600_000;

const TYPES = ['a', 'b', 'c'] as const;
const WINDOWS = ['1500ms', '3s', '5s', '10s', '1m'];

const eventArb = fc.record({
  customer: fc.integer({ min: 0, max: 3 }),
  type: fc.constantFrom(...TYPES, ...TYPES, 'x'),
  channel: fc.constantFrom('web', 'mobile'),
  // Few distinct times, so equal timestamps are common.
  seconds: fc.integer({ min: 0, max: 12 }),
  millis: fc.constantFrom(0, 0, 0, 500),
  plan: fc.constantFrom<PropertyValue | undefined>('pro', 'free', 'Pro plus', null, undefined),
  n: fc.constantFrom<number | boolean | undefined>(1, 5, 10, 2.5, true, undefined),
});

// Conditions on a step are the exception, so that most funnels convert somewhat.
const stepArb = fc
  .record({
    event_type: fc.constantFrom(...TYPES),
    channel: fc.constantFrom(undefined, undefined, undefined, 'web', 'mobile'),
    where: fc.constantFrom<Record<string, PropertyValue> | undefined>(
      ...Array<undefined>(6).fill(undefined),
      { plan: 'pro' },
      { plan: null },
      { n: 5 },
    ),
  })
  .map((s) => JSON.parse(JSON.stringify(s)) as Omit<RefStep, 'name'>);

const filterArb: fc.Arbitrary<FunnelFilter> = fc.constantFrom<FunnelFilter>(
  { property: 'plan', op: 'eq', value: 'pro' },
  { property: 'plan', op: 'neq', value: 'free' },
  { property: 'plan', op: 'eq', value: null },
  { property: 'n', op: 'eq', value: true },
  { property: 'plan', op: 'in', value: ['pro', 'free'] },
  { property: 'n', op: 'in', value: [1, 10, true] },
  { property: 'plan', op: 'contains', value: 'PRO' },
  { property: 'n', op: 'gt', value: 2 },
  { property: 'n', op: 'lt', value: 6 },
);

// Steps of one event type each take a shorter path in the query (an event matches at most
// one step), so half the funnels are made that way and half may repeat a type.
const distinctStepsArb: fc.Arbitrary<Omit<RefStep, 'name'>[]> = fc
  .shuffledSubarray([...TYPES], { minLength: 2 })
  .chain((types) => fc.tuple(...types.map((t) => stepArb.map((s) => ({ ...s, event_type: t })))));

const queryArb = fc.record({
  steps: fc.oneof(fc.array(stepArb, { minLength: 2, maxLength: 4 }), distinctStepsArb),
  fromSeconds: fc.integer({ min: 0, max: 8 }),
  lengthSeconds: fc.integer({ min: 3, max: 15 }),
  window: fc.constantFrom(...WINDOWS),
  breakdown: fc.option(fc.constantFrom('channel', 'property:plan', 'property:n'), {
    nil: undefined,
  }),
  filters: fc.oneof(
    fc.constant<FunnelFilter[]>([]),
    fc.constant<FunnelFilter[]>([]),
    fc.array(filterArb, { maxLength: 2 }),
  ),
});

const datasetArb = fc.record({
  events: fc.array(eventArb, { minLength: 20, maxLength: 60 }),
  /** Events sent a second time (a client retry, a replay). */
  resend: fc.array(fc.nat(), { maxLength: 5 }),
  /** Sent in this order, not in time order. */
  shuffle: fc.array(fc.nat(), { minLength: 70, maxLength: 70 }),
  queries: fc.array(queryArb, { minLength: 1, maxLength: 3 }),
});

const durationMs = (text: string) =>
  text.endsWith('ms')
    ? Number(text.slice(0, -2))
    : Number(text.slice(0, -1)) * { s: 1000, m: 60_000 }[text.slice(-1) as 's' | 'm'];

describe('funnels against the reference counting rules', () => {
  let runtime: Runtime;
  let run = 0;
  // How often the generated funnels were not trivial, so the comparison means something.
  const stats = { queries: 0, converted: 0, deepest: 0, distinct: 0, repeated: 0 };

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-funnel-ref-'));
    runtime = await startTestRuntime({ TOUCHSTREAM_DATA_DIR: join(dir, 'data') }, [
      'collector',
      'processor',
      'api',
    ]);
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it('matches the reference on generated datasets and funnels', async () => {
    await fc.assert(
      fc.asyncProperty(datasetArb, async (dataset) => {
        run += 1;
        const base = T0 + run * HOUR;
        const events: RefEvent[] = dataset.events.map((e, i) => ({
          event_id: `r${run}-${i}`,
          customer_id: `c${run}-${e.customer}`,
          type: e.type,
          channel: e.channel,
          timestamp: base + e.seconds * 1000 + e.millis,
          properties: {
            ...(e.plan === undefined ? {} : { plan: e.plan }),
            ...(e.n === undefined ? {} : { n: e.n }),
          },
        }));
        const sent = [...events, ...dataset.resend.map((i) => events[i % events.length])];
        // A deterministic shuffle driven by the generated numbers.
        const order = sent.map((e, i) => ({ e, key: dataset.shuffle[i % 70] ?? 0 }));
        order.sort((a, b) => a.key - b.key);
        // Straight into the store, in two inserts (two parts, as replays would make): the
        // collector's path is covered by the API suite, and this keeps many runs fast.
        const shuffled = order.map(({ e }) => e as RefEvent);
        const half = Math.ceil(shuffled.length / 2);
        await insertEvents(runtime.store, shuffled.slice(0, half));
        await insertEvents(runtime.store, shuffled.slice(half));

        for (const q of dataset.queries) {
          const steps: RefStep[] = q.steps.map((s, k) => ({ ...s, name: `step ${k}` }));
          const query: RefQuery = {
            steps,
            from: base + q.fromSeconds * 1000,
            to: base + (q.fromSeconds + q.lengthSeconds) * 1000,
            windowMs: durationMs(q.window),
            breakdown: q.breakdown as RefQuery['breakdown'],
            filters: q.filters,
          };
          const { status, body } = await queryFunnel(runtime.address, {
            steps,
            from: new Date(query.from).toISOString(),
            to: new Date(query.to).toISOString(),
            window: q.window,
            ...(q.breakdown ? { breakdown: q.breakdown } : {}),
            ...(q.filters.length > 0 ? { filters: q.filters } : {}),
          });
          expect(status).toBe(200);
          stats.queries += 1;
          if (new Set(steps.map((s) => s.event_type)).size === steps.length) stats.distinct += 1;
          else stats.repeated += 1;
          if (body.steps.at(-1).customers > 0) stats.deepest += 1;
          if (body.steps[1].customers > 0) stats.converted += 1;
          expect(roundMedians(body)).toEqual(roundMedians(referenceFunnel(query, events)));
        }
      }),
      // Shrinking a dataset costs a round trip per candidate and would outlast the test's
      // time limit: the first counterexample is reported as found.
      { numRuns: Number(process.env.FUNNEL_RUNS ?? 60), endOnFailure: true },
    );
    expect(stats.converted).toBeGreaterThan(stats.queries / 6);
    expect(stats.deepest).toBeGreaterThan(stats.queries / 25);
    expect(stats.distinct).toBeGreaterThan(stats.queries / 4);
    expect(stats.repeated).toBeGreaterThan(stats.queries / 4);
  });
});
