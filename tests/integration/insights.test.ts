import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InsightsResponse, Touchpoint } from '@touchstream/contracts';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { seededRandom } from '../../apps/cli/src/simulate/random.js';
import { postAll } from '../support/events.js';
import { callJson, putJourney } from '../support/http.js';
import { referenceInsights } from '../support/insights-reference.js';
import { PURCHASE } from '../support/journey-traffic.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

/**
 * GET /v1/journeys/{id}/dropoffs/{from_step}/insights against a plain computation of
 * API.md's words (tests/support/insights-reference.ts) on generated traffic: what the
 * dropped did next (window edges included), returns and their completion, odds ratios
 * with the 0.5 correction, the 10-instance floor, the ordering and its ties.
 */

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
/** PURCHASE's step timeout. */
const TIMEOUT = 5 * MIN;
const IDLE = '3s';

const SIDE_TYPES = ['page_viewed', 'coupon_applied', 'checkout_error', 'help_opened'];
const AFTER_TYPES = ['email_opened', 'page_viewed', 'call_received', 'store_visit'];
const CHANNELS = ['web', 'mobile', 'store', 'call_center', 'email'];

/**
 * Customers walking the purchase journey with events between the steps that make dropping
 * more or less likely (a `checkout_error`, the free plan), events after dropping (some at
 * exactly the deadline and a timeout after it, some later), returns that complete or not,
 * side events at the very millisecond of a step, and some events sent twice.
 */
function insightTraffic(seed: number, customers: number, start: number): Touchpoint[] {
  const rnd = seededRandom(seed);
  const events: Touchpoint[] = [];
  let id = 0;
  const emit = (
    customer: string,
    type: string,
    channel: string,
    timestamp: number,
    properties?: Touchpoint['properties'],
  ) => {
    id += 1;
    const event = {
      event_id: `ins-${seed}-${id}`,
      customer_id: customer,
      type,
      channel,
      timestamp,
      ...(properties ? { properties } : {}),
    };
    events.push(event);
    if (rnd.chance(0.05)) events.push({ ...event });
  };
  const walk = (customer: string, time: number, plan: string, firstStep: number) => {
    let channel = rnd.pick(CHANNELS);
    for (let step = firstStep; step < PURCHASE.steps.length; step++) {
      const type = PURCHASE.steps[step]?.event_type ?? '';
      const properties: Touchpoint['properties'] =
        step === 4 ? { currency: 'EUR', plan } : { plan, amount: rnd.int(1, 3) };
      emit(customer, type, channel, time, properties);
      if (step === PURCHASE.steps.length - 1) return;
      // At the step's own millisecond: outside every window.
      if (rnd.chance(0.1)) emit(customer, 'page_viewed', channel, time);
      let risk = plan === 'free' ? 0.3 : 0.15;
      const sides = rnd.int(0, 2);
      for (let i = 0; i < sides; i++) {
        const side = rnd.pick(SIDE_TYPES);
        if (side === 'checkout_error') risk += 0.4;
        if (side === 'coupon_applied') risk -= 0.1;
        emit(customer, side, rnd.pick(CHANNELS), time + rnd.int(1, 60) * SEC, {
          coupon: rnd.chance(0.5),
          note: null,
          source: rnd.pick(['ad', 'mail', 'search']),
        });
      }
      if (rnd.chance(0.2)) channel = rnd.pick(CHANNELS);
      if (rnd.chance(risk)) {
        const deadline = time + TIMEOUT;
        // On the deadline: still the correlation window (the instance could have continued).
        if (rnd.chance(0.2)) emit(customer, 'help_opened', channel, deadline);
        const after = rnd.int(0, 3);
        for (let i = 0; i < after; i++) {
          const at = rnd.pick([deadline + 1, deadline + TIMEOUT, deadline + rnd.int(1, 299) * SEC]);
          emit(customer, rnd.pick(AFTER_TYPES), rnd.pick(CHANNELS), at);
        }
        // Too late to be "next".
        if (rnd.chance(0.3)) emit(customer, 'email_opened', 'email', deadline + TIMEOUT + 1);
        if (rnd.chance(0.35)) {
          const back = deadline + rnd.pick([1, rnd.int(1, 299) * SEC, TIMEOUT, TIMEOUT + 1]);
          walk(customer, back, plan, 0);
        }
        return;
      }
      // The next step, now and then at the same millisecond as a side event.
      const gap = rnd.chance(0.1) ? TIMEOUT : rnd.int(70, 240) * SEC;
      if (rnd.chance(0.1)) emit(customer, 'coupon_applied', channel, time + gap, { coupon: true });
      time += gap;
    }
  };
  for (let c = 0; c < customers; c++) {
    const plan = rnd.pick(['free', 'pro', 'pro']);
    walk(`ins-${seed}-c${c}`, start + rnd.int(0, 40 * MIN), plan, 0);
  }
  return events.sort((a, b) => a.timestamp - b.timestamp);
}

describe('GET /v1/journeys/{id}/dropoffs/{from_step}/insights', () => {
  let runtime: Runtime;
  const get = (path: string) => callJson(runtime.address, 'GET', path);
  const insights = (step: string, from: number, to: number) =>
    get(
      `/v1/journeys/${PURCHASE.id}/dropoffs/${encodeURIComponent(step)}/insights?${new URLSearchParams(
        { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
      )}`,
    );

  beforeAll(async () => {
    runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-insights-')),
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
      TOUCHSTREAM_LOG_LEVEL: 'warn',
    });
    await putJourney(runtime.address, PURCHASE);
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it('matches the reference on generated traffic, for every transition and range', async () => {
    let run = 0;
    const seen = { floor: false, returnedCompleted: false, tiedAfter: false, boundary: false };
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), async (seed) => {
        // Each run in a day of its own: its windows never see another run's events.
        run += 1;
        const start = Date.now() - (run * 24 + 6) * HOUR;
        const events = insightTraffic(seed, 160, start);
        await postAll(
          runtime.address,
          Array.from({ length: Math.ceil(events.length / 200) }, (_, i) =>
            events.slice(i * 200, (i + 1) * 200),
          ),
        );
        const ranges = [
          { from: start - HOUR, to: start + 3 * HOUR },
          { from: start + 5 * MIN, to: start + 20 * MIN },
        ];
        for (const { from, to } of ranges) {
          for (const step of PURCHASE.steps.slice(0, -1)) {
            const expected = referenceInsights(PURCHASE, events, step.name, from, to);
            await eventually(async () => {
              const { status, body } = await insights(step.name, from, to);
              expect(status).toBe(200);
              expect(body as InsightsResponse).toEqual(expected);
            }, 60_000);
            const full = to - from > HOUR;
            if (full && step.name === 'viewed') {
              // The traffic shows what the figures describe.
              expect(expected.after_drop.length).toBeGreaterThan(0);
              expect(expected.correlations.length).toBeGreaterThan(0);
              expect(expected.correlations.some((c) => c.kind === 'property')).toBe(true);
              expect(expected.returned.customers).toBeGreaterThan(0);
            }
            seen.returnedCompleted ||= expected.returned.completed > 0;
            seen.tiedAfter ||= expected.after_drop.some(
              (a, i) => expected.after_drop[i + 1]?.customers === a.customers,
            );
            seen.floor ||= expected.correlations.length < 20 && expected.dropped > 10;
            seen.boundary ||= expected.after_drop.length > 0 && !full;
          }
        }
      }),
      { numRuns: Number(process.env.INSIGHTS_RUNS ?? 3), endOnFailure: true },
    );
    expect(seen).toEqual({ floor: true, returnedCompleted: true, tiedAfter: true, boundary: true });
  });

  it('computes the odds ratio with 0.5 in every cell and lists only items of 10 or more instances', async () => {
    // Twelve customers drop at `viewed` after a `checkout_error`, ten continue without one;
    // one more customer sees a `help_opened` (under the floor), and each of 8 continued
    // sees a `coupon_applied`.
    const start = Date.now() - 3 * HOUR;
    const events: Touchpoint[] = [];
    const add = (customer: string, type: string, at: number, channel = 'web') =>
      events.push({
        event_id: `fixed-${events.length}`,
        customer_id: customer,
        type,
        channel,
        timestamp: start + at,
      });
    for (let i = 0; i < 12; i++) {
      add(`drop-${i}`, 'product_viewed', i * SEC);
      add(`drop-${i}`, 'checkout_error', i * SEC + 10 * SEC);
    }
    add('drop-0', 'help_opened', 20 * SEC);
    for (let i = 0; i < 10; i++) {
      add(`go-${i}`, 'product_viewed', i * SEC, 'mobile');
      if (i < 8) add(`go-${i}`, 'coupon_applied', i * SEC + 5 * SEC, 'mobile');
      add(`go-${i}`, 'cart_added', i * SEC + MIN, 'mobile');
    }
    await postAll(runtime.address, [events]);
    const from = start - MIN;
    const to = start + MIN;
    await eventually(async () => {
      const { status, body } = await insights('viewed', from, to);
      expect(status).toBe(200);
      expect(body).toMatchObject({ dropped: 12, continued: 10 });
      const answer = body as InsightsResponse;
      const ratio = (a: number, b: number, c: number, d: number) =>
        Number((((a + 0.5) * (d + 0.5)) / ((b + 0.5) * (c + 0.5))).toPrecision(4));
      // All three at |ln 525|: equal strength, so by kind (event types first), then value.
      expect(answer.correlations).toEqual([
        {
          kind: 'event_type',
          name: 'type',
          value: 'checkout_error',
          dropped: 12,
          continued: 0,
          odds_ratio: ratio(12, 0, 0, 10),
        },
        {
          kind: 'channel',
          name: 'channel',
          value: 'mobile',
          dropped: 0,
          continued: 10,
          odds_ratio: ratio(0, 12, 10, 0),
        },
        {
          kind: 'channel',
          name: 'channel',
          value: 'web',
          dropped: 12,
          continued: 0,
          odds_ratio: ratio(12, 0, 0, 10),
        },
      ]);
      expect(ratio(12, 0, 0, 10)).toBe(525);
      expect(answer.correlations.map((c) => c.value)).not.toContain('help_opened');
      expect(answer.correlations.map((c) => c.value)).not.toContain('coupon_applied');
    }, 60_000);
  });

  it('answers 404 for an unknown journey and 400 naming the parameter for bad input', async () => {
    const range = '?from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z';
    const unknown = await get(`/v1/journeys/nope/dropoffs/viewed/insights${range}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    for (const step of ['nope', 'ordered', '']) {
      const { status, body } = await get(
        `/v1/journeys/${PURCHASE.id}/dropoffs/${encodeURIComponent(step)}/insights${range}`,
      );
      expect(status).toBe(400);
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.details).toEqual([
        { path: 'from_step', message: expect.stringContaining('viewed, carted, checkout, paid') },
      ]);
    }
    for (const [query, path] of [
      ['?from=yesterday', 'from'],
      ['?to=2026-10-01', 'to'],
      ['?from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z', 'from'],
    ]) {
      const { status, body } = await get(
        `/v1/journeys/${PURCHASE.id}/dropoffs/viewed/insights${query}`,
      );
      expect(status).toBe(400);
      expect(body.error.details.map((d: { path: string }) => d.path)).toEqual([path]);
    }
  });
});
