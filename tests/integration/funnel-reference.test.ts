/**
 * The funnel API against a plain reference of API.md's counting rules, on many generated
 * datasets: equal timestamps, repeated entries, steps after `to`, events sent out of order
 * and twice, channel and property conditions, filters, breakdowns and medians; and the
 * funnel options (any order, optional steps, exclusions, hold-constant, attribution) with
 * time to convert, alone and combined.
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
  isPlain,
  type RefEvent,
  type RefExclusion,
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

const matcherArb = fc
  .record({
    event_type: fc.constantFrom(...TYPES, 'x', 'x'),
    channel: fc.constantFrom(undefined, undefined, 'web'),
    where: fc.constantFrom<Record<string, PropertyValue> | undefined>(undefined, undefined, {
      plan: 'pro',
    }),
  })
  .map((m) => JSON.parse(JSON.stringify(m)) as Omit<RefExclusion, 'after_step' | 'before_step'>);

/** The options for a funnel of `n` steps: each often absent, so that they also come alone. */
const optionsArb = (n: number) =>
  fc.record({
    order: fc.constantFrom(undefined, undefined, 'strict' as const, 'any' as const, 'any' as const),
    // Never the first or the last step.
    optional: fc
      .array(fc.boolean(), { minLength: n, maxLength: n })
      .map((flags) => flags.map((f, k) => f && k > 0 && k < n - 1)),
    exclusions: fc.oneof(
      fc.constant<RefExclusion[]>([]),
      fc.array(
        fc
          .tuple(matcherArb, fc.integer({ min: 0, max: n - 2 }), fc.nat())
          .map(([m, a, r]) => ({ ...m, after_step: a, before_step: a + 1 + (r % (n - 1 - a)) })),
        { minLength: 1, maxLength: 2 },
      ),
    ),
    hold_constant: fc.constantFrom<string[] | undefined>(
      undefined,
      undefined,
      ['plan'],
      ['n'],
      ['plan', 'n'],
    ),
    attribution: fc.constantFrom(
      undefined,
      'first_touch',
      'last_touch',
      'last_touch',
      ...Array.from({ length: n }, (_, k) => `step:${k}`),
    ),
    /** Most queries take options; some stay plain, the other path of the query. */
    plain: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
  });

const queryArb = fc.record({
  steps: fc
    .oneof(
      fc.array(stepArb, { minLength: 2, maxLength: 4 }),
      // Three steps or more, so that a middle step can be optional.
      fc.array(stepArb, { minLength: 3, maxLength: 4 }),
      distinctStepsArb,
    )
    .chain((steps) => fc.tuple(fc.constant(steps), optionsArb(steps.length))),
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
  /**
   * Events of another id at the same millisecond as one of the others, on another channel
   * or plan: several events that could each be a chain's step, whose values differ.
   */
  twins: fc.array(
    fc.record({
      of: fc.nat(),
      channel: fc.constantFrom('web', 'mobile', 'store'),
      plan: fc.constantFrom<PropertyValue | undefined>('pro', 'free', undefined),
    }),
    { maxLength: 20 },
  ),
  /** Sent in this order, not in time order. */
  shuffle: fc.array(fc.nat(), { minLength: 90, maxLength: 90 }),
  queries: fc.array(queryArb, { minLength: 1, maxLength: 3 }),
});

const durationMs = (text: string) =>
  text.endsWith('ms')
    ? Number(text.slice(0, -2))
    : Number(text.slice(0, -1)) * { s: 1000, m: 60_000 }[text.slice(-1) as 's' | 'm'];

/** The query's options in the request's words; none when the generator made it plain. */
function withOptions(
  steps: Omit<RefStep, 'name'>[],
  options: ReturnType<typeof optionsArb> extends fc.Arbitrary<infer O> ? O : never,
  breakdown: string | undefined,
): Pick<RefQuery, 'steps' | 'order' | 'exclusions' | 'hold_constant' | 'breakdown_attribution'> {
  const named: RefStep[] = steps.map((s, k) => ({
    ...s,
    name: `step ${k}`,
    ...(!options.plain && options.optional[k] ? { optional: true } : {}),
  }));
  if (options.plain) return { steps: named };
  return {
    steps: named,
    ...(options.order ? { order: options.order } : {}),
    ...(options.exclusions.length > 0 ? { exclusions: options.exclusions } : {}),
    ...(options.hold_constant ? { hold_constant: options.hold_constant } : {}),
    ...(breakdown && options.attribution
      ? { breakdown_attribution: options.attribution as RefQuery['breakdown_attribution'] }
      : {}),
  };
}

/** The edge cases the options must meet, counted over the run so that each is known met. */
function edgesOf(query: RefQuery, events: RefEvent[], answer: ReturnType<typeof referenceFunnel>) {
  const inRange = (e: RefEvent) => e.timestamp >= query.from && e.timestamp < query.to;
  const matchesType = (m: { event_type: string }, e: RefEvent) => e.type === m.event_type;
  const entries = events.filter((e) => inRange(e) && matchesType(query.steps[0] as RefStep, e));
  const edges: string[] = [];
  for (const x of query.exclusions ?? []) {
    const excluded = events.filter((e) => matchesType(x, e));
    if (
      excluded.some((e) =>
        events.some(
          (s) =>
            s !== e &&
            s.customer_id === e.customer_id &&
            s.timestamp === e.timestamp &&
            query.steps.some((step) => matchesType(step, s)),
        ),
      )
    )
      edges.push('exclusion at the millisecond of a step');
    if (
      excluded.some((e) =>
        entries.some(
          (n) => n.customer_id === e.customer_id && e.timestamp > n.timestamp + query.windowMs,
        ),
      )
    )
      edges.push('exclusion after the window');
  }
  query.steps.forEach((step, k) => {
    if (!step.optional) return;
    const taken = answer.steps[k]?.customers ?? 0;
    const after = answer.steps.slice(k + 1).find((s) => !s.optional)?.customers ?? 0;
    // Counted per customer: a funnel where any customer takes the optional step is rarer.
    for (let c = 0; c < taken; c++) edges.push('optional step taken');
    if (after > taken || (answer.steps[k - 1]?.customers ?? 0) > taken)
      edges.push('optional step skipped');
  });
  if (
    query.order === 'any' &&
    new Set(query.steps.map((s) => s.event_type)).size < query.steps.length
  )
    edges.push('any order with repeated types');
  if (query.hold_constant?.some((p) => entries.some((e) => e.properties?.[p] === undefined)))
    edges.push('hold-constant with a missing property');
  if (query.breakdown)
    edges.push(`attribution ${(query.breakdown_attribution ?? 'first_touch').replace(/:\d+/, '')}`);
  return edges;
}

describe('funnels against the reference counting rules', () => {
  let runtime: Runtime;
  let run = 0;
  // How often the generated funnels were not trivial, so the comparison means something.
  const stats = { queries: 0, converted: 0, deepest: 0, distinct: 0, repeated: 0, options: 0 };
  const edges = new Map<string, number>();

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-funnel-ref-'));
    // `plan` is stored as a column of its own and `n` is not: funnels holding or broken down
    // by either, or both, read both ways of getting a property.
    runtime = await startTestRuntime(
      { TOUCHSTREAM_DATA_DIR: join(dir, 'data'), TOUCHSTREAM_PROPERTY_COLUMNS: 'plan' },
      ['collector', 'processor', 'api'],
    );
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
        events.push(
          ...dataset.twins.map(({ of, channel, plan }, j) => {
            const twin = events[of % events.length] as RefEvent;
            return {
              ...twin,
              event_id: `r${run}-twin-${j}`,
              channel,
              properties: { ...twin.properties, ...(plan === undefined ? {} : { plan }) },
            };
          }),
        );
        const sent = [...events, ...dataset.resend.map((i) => events[i % events.length])];
        // A deterministic shuffle driven by the generated numbers.
        const order = sent.map((e, i) => ({ e, key: dataset.shuffle[i % 90] ?? 0 }));
        order.sort((a, b) => a.key - b.key);
        // Straight into the store, in two inserts (two parts, as replays would make): the
        // collector's path is covered by the API suite, and this keeps many runs fast.
        const shuffled = order.map(({ e }) => e as RefEvent);
        const half = Math.ceil(shuffled.length / 2);
        await insertEvents(runtime.store, shuffled.slice(0, half));
        await insertEvents(runtime.store, shuffled.slice(half));

        for (const q of dataset.queries) {
          const [stepsOnly, options] = q.steps;
          const { steps, ...chosen } = withOptions(stepsOnly, options, q.breakdown);
          const query: RefQuery = {
            steps,
            from: base + q.fromSeconds * 1000,
            to: base + (q.fromSeconds + q.lengthSeconds) * 1000,
            windowMs: durationMs(q.window),
            breakdown: q.breakdown as RefQuery['breakdown'],
            filters: q.filters,
            ...chosen,
          };
          const { status, body } = await queryFunnel(runtime.address, {
            steps,
            from: new Date(query.from).toISOString(),
            to: new Date(query.to).toISOString(),
            window: q.window,
            ...(q.breakdown ? { breakdown: q.breakdown } : {}),
            ...(q.filters.length > 0 ? { filters: q.filters } : {}),
            ...chosen,
          });
          expect(status, JSON.stringify(body)).toBe(200);
          const expected = referenceFunnel(query, events);
          if (!isPlain(query)) stats.options += 1;
          for (const edge of edgesOf(query, events, expected)) {
            edges.set(edge, (edges.get(edge) ?? 0) + 1);
          }
          stats.queries += 1;
          if (new Set(steps.map((s) => s.event_type)).size === steps.length) stats.distinct += 1;
          else stats.repeated += 1;
          if (body.steps.at(-1).customers > 0) stats.deepest += 1;
          // Past the entry (step 1 may be optional and skipped).
          if (body.steps.slice(1).some((st: { customers: number }) => st.customers > 0)) {
            stats.converted += 1;
          }
          expect(roundMedians(body), JSON.stringify({ ...chosen, breakdown: q.breakdown })).toEqual(
            roundMedians(expected),
          );
        }
      }),
      // Shrinking a dataset costs a round trip per candidate and would outlast the test's
      // time limit: the first counterexample is reported as found. One seed unless told
      // otherwise (FUNNEL_SEED=random, or a number): the edge cases counted below are
      // then met on every run, not on most; other seeds explore more.
      {
        numRuns: Number(process.env.FUNNEL_RUNS ?? 60),
        endOnFailure: true,
        ...(process.env.FUNNEL_SEED === 'random'
          ? {}
          : { seed: Number(process.env.FUNNEL_SEED ?? 20261206) }),
      },
    );
    expect(stats.converted).toBeGreaterThan(stats.queries / 6);
    expect(stats.deepest).toBeGreaterThan(stats.queries / 25);
    expect(stats.distinct).toBeGreaterThan(stats.queries / 4);
    expect(stats.repeated).toBeGreaterThan(stats.queries / 4);
    expect(stats.options).toBeGreaterThan(stats.queries / 2);
    // Every edge case the options must meet came up a few times.
    for (const edge of [
      'exclusion at the millisecond of a step',
      'exclusion after the window',
      'optional step taken',
      'optional step skipped',
      'any order with repeated types',
      'hold-constant with a missing property',
      'attribution first_touch',
      'attribution last_touch',
      'attribution step',
    ]) {
      expect(edges.get(edge) ?? 0, edge).toBeGreaterThan(2);
    }
  });
});
