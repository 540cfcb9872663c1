import type { DropoffResponse, Journey, Touchpoint } from '@touchstream/contracts';
import { toEngineJourney } from '@touchstream/engine';
import { expect } from 'vitest';
import { seededRandom } from '../../apps/cli/src/simulate/random.js';
import {
  referenceDropoffs,
  referenceInstances,
} from '../../packages/engine/src/reference-model.js';
import { eventually } from './wait.js';

const SEC = 1000;
const MIN = 60 * SEC;

/** A multi-channel purchase journey with a five-minute step timeout. */
export const PURCHASE: Journey = {
  id: 'online-purchase',
  name: 'Online purchase',
  steps: [
    { name: 'viewed', event_type: 'product_viewed', owner: 'web team' },
    // Out of reach (some always drop): below target once 20 are decided.
    { name: 'carted', event_type: 'cart_added', owner: 'web team', target_conversion: 0.99 },
    // Met by any traffic that continues at all.
    { name: 'checkout', event_type: 'checkout_started', target_conversion: 0.05 },
    { name: 'paid', event_type: 'payment_submitted', owner: 'payments' },
    { name: 'ordered', event_type: 'order_placed', where: { currency: 'EUR' } },
  ],
  step_timeout: '5m',
  failure_event_types: ['payment_failed', 'checkout_error'],
  value_property: 'cart_value',
  currency: 'EUR',
  feedback_event_types: ['csat_submitted'],
};

/** The purchase journey's steps as funnel steps: matchers and names, no owners or targets. */
export const purchaseFunnelSteps = () =>
  PURCHASE.steps.map(({ owner: _owner, target_conversion: _target, ...step }) => step);

/** The same journey as a journeys file holds it. */
export const PURCHASE_FILE = JSON.stringify({
  journeys: { [PURCHASE.id]: { ...PURCHASE, id: undefined } },
});

const HANDOFF: Record<string, readonly string[]> = {
  web: ['mobile', 'call_center'],
  mobile: ['web', 'store'],
  store: ['call_center'],
  call_center: ['web', 'email'],
  email: ['web'],
};

/**
 * Customers walking the purchase journey across channels from `start` (epoch ms): most
 * continue within the timeout, some stop (some after a failure event), some come back too
 * late, some switch channel at a step, some start again; noise events in between. Sorted
 * in event-time order, as channel services would send them live.
 */
export function purchaseTraffic(options: { customers: number; start: number; seed: number }) {
  const rnd = seededRandom(options.seed);
  const events: Touchpoint[] = [];
  let id = 0;
  const emit = (
    customer: string,
    type: string,
    channel: string,
    time: number,
    properties?: Touchpoint['properties'],
  ) => {
    id += 1;
    events.push({
      event_id: `${options.seed}-${id}`,
      customer_id: customer,
      type,
      channel,
      timestamp: time,
      ...(properties ? { properties } : {}),
    });
  };
  for (let c = 0; c < options.customers; c++) {
    const customer = `cust-${options.seed}-${c}`;
    let time = options.start + rnd.int(0, 20 * MIN);
    const attempts = rnd.chance(0.2) ? 2 : 1;
    for (let attempt = 0; attempt < attempts; attempt++) {
      let channel = rnd.pick(['web', 'mobile', 'store', 'call_center', 'email']);
      // The cart: a value from the second step on, growing now and then; sometimes sent
      // as text, which is no value.
      let cart = rnd.int(1_000, 40_000) / 100;
      // A rating after the instance ended, within the window or (some) after it.
      const rate = (at: number, low: number, high: number) => {
        if (!rnd.chance(0.5)) return;
        const score = rnd.chance(0.05) ? 'great' : rnd.int(low, high);
        emit(customer, 'csat_submitted', channel, at, { score });
      };
      for (let step = 0; step < PURCHASE.steps.length; step++) {
        const type = PURCHASE.steps[step]?.event_type ?? '';
        if (rnd.chance(0.2)) cart += rnd.int(100, 5_000) / 100;
        const value = rnd.chance(0.05) ? String(cart) : Math.round(cart * 100) / 100;
        const properties: Touchpoint['properties'] =
          step === 0
            ? undefined
            : step === 4
              ? { cart_value: value, currency: rnd.chance(0.9) ? 'EUR' : 'USD' }
              : { cart_value: value };
        emit(customer, type, channel, time, properties);
        if (step === PURCHASE.steps.length - 1) rate(time + rnd.int(0, 6) * MIN, 3, 5);
        if (rnd.chance(0.3)) emit(customer, 'page_viewed', channel, time + rnd.int(1, 30) * SEC);
        // Another look at a product while in progress: does not start a second instance.
        if (step > 0 && rnd.chance(0.1)) emit(customer, 'product_viewed', channel, time + SEC);
        if (step === PURCHASE.steps.length - 1) break;
        const stops = rnd.chance(0.22);
        if (stops && rnd.chance(0.4)) {
          emit(customer, rnd.pick(['payment_failed', 'checkout_error']), channel, time + 20 * SEC);
        }
        if (rnd.chance(0.25)) channel = rnd.pick(HANDOFF[channel] ?? ['web']);
        if (stops) {
          rate(time + 5 * MIN + rnd.int(0, 6) * MIN, 1, 3);
          // Some come back after the timeout: too late to continue the instance.
          if (rnd.chance(0.3)) {
            const late = time + rnd.int(6, 9) * MIN;
            emit(customer, PURCHASE.steps[step + 1]?.event_type ?? '', channel, late);
          }
          break;
        }
        time += rnd.chance(0.1) ? 5 * MIN : rnd.int(5, 240) * SEC;
      }
      time += rnd.int(15, 30) * MIN;
    }
  }
  // Stable: a customer's events at one time keep their order.
  return events.sort((a, b) => a.timestamp - b.timestamp);
}

/** Consecutive batches of at most `size` events, each sent again now and then (a retry). */
export function batchesWithRetries<T>(events: readonly T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < events.length; i += size) {
    const batch = events.slice(i, i + size);
    batches.push(batch);
    if ((i / size) % 4 === 1) batches.push(batch);
  }
  return batches;
}

/** What GET /v1/journeys/{id}/dropoffs must answer once every instance is decided. */
export function expectedDropoffs(
  journey: Journey,
  events: readonly Touchpoint[],
  from: number,
  to: number,
  stitchedCustomers: ReadonlySet<string> = new Set(),
): DropoffResponse {
  const engineJourney = toEngineJourney(journey);
  const instances = referenceInstances(engineJourney, events, Number.POSITIVE_INFINITY);
  return referenceDropoffs(engineJourney, instances, from, to, {
    stitchedCustomers,
    events,
    feedbackEventTypes: journey.feedback_event_types ?? [],
    currency: journey.currency ?? null,
  });
}

/** Ranges the drop-off figures are compared over: everything, and a slice of it. */
export function rangesOver(start: number) {
  return [
    { from: start - 60 * MIN, to: start + 3 * 60 * MIN },
    { from: start + 5 * MIN, to: start + 12 * MIN },
  ];
}

/**
 * Waits until the figures of every range equal the reference model's: the last instances
 * are decided once the idle watermark moved event time past their deadlines.
 */
export async function expectDropoffsToMatch(
  fetchDropoffs: (from: number, to: number) => Promise<DropoffResponse>,
  journey: Journey,
  events: readonly Touchpoint[],
  start: number,
  stitchedCustomers: ReadonlySet<string> = new Set(),
) {
  for (const { from, to } of rangesOver(start)) {
    const expected = expectedDropoffs(journey, events, from, to, stitchedCustomers);
    // Sanity: the traffic exercises every outcome the figures describe.
    if (to - from > 60 * MIN) {
      const first = expected.transitions[0];
      expect(expected.completed).toBeGreaterThan(0);
      expect(first?.dropped).toBeGreaterThan(0);
      expect(expected.transitions.some((t) => t.handoffs.length > 0)).toBe(true);
      expect(expected.transitions.some((t) => t.reasons.length > 1)).toBe(true);
      if (journey.steps.some((step) => step.target_conversion !== undefined)) {
        expect(expected.transitions.some((t) => t.below_target)).toBe(true);
        expect(
          expected.transitions.some((t) => t.target_conversion !== null && !t.below_target),
        ).toBe(true);
      }
      if (journey.value_property !== undefined) {
        expect(expected.value_dropped).toBeGreaterThan(0);
        expect(expected.value_completed).toBeGreaterThan(0);
      }
      if ((journey.feedback_event_types ?? []).length > 0) {
        expect(expected.transitions.every((t) => t.feedback.dropped.responses > 0)).toBe(true);
        expect(expected.transitions.every((t) => t.feedback.continued.responses > 0)).toBe(true);
      }
    }
    await eventually(async () => {
      const actual = await fetchDropoffs(from, to);
      expect({
        entered: actual.entered,
        completed: actual.completed,
        stitched: actual.stitched,
        currency: actual.currency,
        value_completed: actual.value_completed,
        value_dropped: actual.value_dropped,
        transitions: actual.transitions,
      }).toEqual({
        entered: expected.entered,
        completed: expected.completed,
        stitched: expected.stitched,
        currency: expected.currency,
        value_completed: expected.value_completed,
        value_dropped: expected.value_dropped,
        transitions: expected.transitions,
      });
    }, 60_000);
  }
}

/** The purchase journey's drop-offs of a running instance, for expectDropoffsToMatch. */
export function dropoffsAt(address: string) {
  return async (from: number, to: number): Promise<DropoffResponse> => {
    const query = new URLSearchParams({
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
    });
    const response = await fetch(`${address}/v1/journeys/${PURCHASE.id}/dropoffs?${query}`);
    expect(response.status).toBe(200);
    return (await response.json()) as DropoffResponse;
  };
}
