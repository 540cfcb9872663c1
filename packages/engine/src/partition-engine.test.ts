import type { Journey } from '@touchstream/contracts';
import { describe, expect, it } from 'vitest';
import { toEngineJourney } from './journey.js';
import { type PartitionChanges, PartitionEngine, type PartitionMeta } from './partition-engine.js';
import { sortFacts } from './reference-model.js';
import type { CustomerState, EngineEvent, EngineJourney, Fact } from './types.js';

const T0 = Date.UTC(2026, 9, 1, 12);
const SEC = 1000;
const MIN = 60 * SEC;
/** Epoch ms `m` minutes (and `s` seconds) after T0. */
const at = (m: number, s = 0) => T0 + m * MIN + s * SEC;

const purchaseDefinition: Journey = {
  id: 'purchase',
  name: 'Online purchase',
  steps: [
    { name: 'viewed', event_type: 'product_viewed' },
    { name: 'carted', event_type: 'cart_added' },
    { name: 'checkout', event_type: 'checkout_started' },
    { name: 'paid', event_type: 'payment_submitted', channel: 'web' },
    { name: 'ordered', event_type: 'order_placed', where: { currency: 'EUR' } },
  ],
  step_timeout: '30m',
  failure_event_types: ['payment_failed', 'checkout_error'],
};
const purchase = toEngineJourney(purchaseDefinition);
const DEADLINE = 30 * MIN;

let nextId = 0;
function ev(
  customer: string,
  type: string,
  timestamp: number,
  extra: Partial<EngineEvent> = {},
): EngineEvent {
  nextId += 1;
  return {
    event_id: `e${nextId}`,
    customer_id: customer,
    type,
    channel: 'web',
    timestamp,
    ...extra,
  };
}

function engine(journeys: EngineJourney[] = [purchase], allowedLatenessMs = 0) {
  return new PartitionEngine(journeys, { allowedLatenessMs });
}

/** Facts without the fields a test does not look at. */
const brief = (facts: Fact[]) =>
  facts.map((f) =>
    f.kind === 'dropped'
      ? { kind: f.kind, step: f.step, time: f.time, reason: f.reason }
      : { kind: f.kind, step: f.step, time: f.time },
  );

/** Runs the whole path of the purchase journey for `customer` from `start`; returns its events. */
function fullPath(customer: string, start: number): EngineEvent[] {
  return [
    ev(customer, 'product_viewed', start),
    ev(customer, 'cart_added', start + MIN),
    ev(customer, 'checkout_started', start + 2 * MIN),
    ev(customer, 'payment_submitted', start + 3 * MIN),
    ev(customer, 'order_placed', start + 4 * MIN, { properties: { currency: 'EUR' } }),
  ];
}

describe('PartitionEngine: entry (rule 1)', () => {
  it('starts an instance on a step-0 event, named by that event id', () => {
    const e = engine();
    const view = ev('c1', 'product_viewed', at(0), { channel: 'app' });
    expect(e.apply([view])).toEqual([
      {
        kind: 'reached',
        journey: 'purchase',
        customer: 'c1',
        instance: view.event_id,
        step: 0,
        time: at(0),
        channel: 'app',
        previousChannel: null,
        secondsFromPrevious: null,
      },
    ]);
    expect(e.inProgress()).toEqual([
      {
        customer: 'c1',
        journey: 'purchase',
        state: expect.objectContaining({ instance: view.event_id, step: 0, stepTime: at(0) }),
      },
    ]);
  });

  it('ignores events that match no step-0 when nothing is in progress', () => {
    const e = engine();
    expect(e.apply([ev('c1', 'cart_added', at(0)), ev('c1', 'payment_failed', at(1))])).toEqual([]);
    expect(e.inProgress()).toEqual([]);
  });

  it('ignores a step-0 event while an instance is in progress (no restart, deadline kept)', () => {
    const e = engine();
    const first = ev('c1', 'product_viewed', at(0));
    e.apply([first]);
    expect(e.apply([ev('c1', 'product_viewed', at(20))])).toEqual([]);
    expect(e.inProgress().map((p) => p.state.instance)).toEqual([first.event_id]);
    // The deadline is still the first entry's: it did not move to 20m + 30m.
    expect(brief(e.advanceTo(at(30) + 1))).toEqual([
      { kind: 'dropped', step: 0, time: at(0) + DEADLINE, reason: 'timeout' },
    ]);
  });
});

describe('PartitionEngine: advancing (rule 2)', () => {
  it('advances on the next step within the timeout', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0))]);
    expect(brief(e.apply([ev('c1', 'cart_added', at(10))]))).toEqual([
      { kind: 'reached', step: 1, time: at(10) },
    ]);
  });

  it('advances on an event exactly at (step time + timeout); event time there drops nothing', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0))]);
    expect(e.advanceTo(at(0) + DEADLINE)).toEqual([]);
    expect(brief(e.apply([ev('c1', 'cart_added', at(0) + DEADLINE)]))).toEqual([
      { kind: 'reached', step: 1, time: at(0) + DEADLINE },
    ]);
  });

  it('drops, and does not advance, on a next-step event 1 ms after the deadline', () => {
    const e = engine();
    const view = ev('c1', 'product_viewed', at(0));
    e.apply([view]);
    expect(e.apply([ev('c1', 'cart_added', at(0) + DEADLINE + 1)])).toEqual([
      {
        kind: 'dropped',
        journey: 'purchase',
        customer: 'c1',
        instance: view.event_id,
        step: 0,
        time: at(0) + DEADLINE,
        reason: 'timeout',
      },
    ]);
    expect(e.inProgress()).toEqual([]);
  });

  it('starts a new instance when the event after the deadline is itself a step-0 event', () => {
    const e = engine();
    const first = ev('c1', 'product_viewed', at(0));
    const second = ev('c1', 'product_viewed', at(0) + DEADLINE + 1);
    e.apply([first]);
    const facts = e.apply([second]);
    expect(facts.map((f) => [f.kind, f.instance, f.step])).toEqual([
      ['dropped', first.event_id, 0],
      ['reached', second.event_id, 0],
    ]);
  });

  it('ignores a skipped step, and a later correct step still advances', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0))]);
    // checkout_started is step 2: skipping step 1 is ignored.
    expect(e.apply([ev('c1', 'checkout_started', at(1))])).toEqual([]);
    expect(e.apply([ev('c1', 'payment_submitted', at(2))])).toEqual([]);
    expect(brief(e.apply([ev('c1', 'cart_added', at(3))]))).toEqual([
      { kind: 'reached', step: 1, time: at(3) },
    ]);
    // The earlier checkout_started did not count: a new one is needed.
    expect(brief(e.apply([ev('c1', 'checkout_started', at(4))]))).toEqual([
      { kind: 'reached', step: 2, time: at(4) },
    ]);
  });

  it('ignores events of earlier steps (no going back, no reset of the step time)', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c1', 'cart_added', at(1))]);
    expect(e.apply([ev('c1', 'product_viewed', at(5)), ev('c1', 'cart_added', at(10))])).toEqual(
      [],
    );
    expect(e.inProgress()[0]?.state).toEqual(expect.objectContaining({ step: 1, stepTime: at(1) }));
    // Still judged from the first cart_added.
    expect(brief(e.advanceTo(at(31) + 1))).toEqual([
      { kind: 'dropped', step: 1, time: at(1) + DEADLINE, reason: 'timeout' },
    ]);
  });

  it('does not advance on a next-step event earlier than the step time', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(10))]);
    // Arrives later but happened before the entry: it is late (event time is at 10m).
    expect(e.apply([ev('c1', 'cart_added', at(5))])).toEqual([]);
    expect(e.inProgress()[0]?.state.step).toBe(0);
  });

  it('advances on an event with the same timestamp as the step, when it arrives after it', () => {
    const e = engine();
    expect(
      brief(e.apply([ev('c1', 'product_viewed', at(0)), ev('c1', 'cart_added', at(0))])),
    ).toEqual([
      { kind: 'reached', step: 0, time: at(0) },
      { kind: 'reached', step: 1, time: at(0) },
    ]);
    // Same timestamp, reverse arrival order: the cart comes first and is ignored.
    const f = engine();
    expect(
      brief(f.apply([ev('c2', 'cart_added', at(0)), ev('c2', 'product_viewed', at(0))])),
    ).toEqual([{ kind: 'reached', step: 0, time: at(0) }]);
  });
});

describe('PartitionEngine: completion (rule 3)', () => {
  it('emits reached then completed at the last step, ends the instance and allows re-entry', () => {
    const e = engine();
    const path = fullPath('c1', at(0));
    const facts = e.apply(path);
    expect(brief(facts)).toEqual([
      { kind: 'reached', step: 0, time: at(0) },
      { kind: 'reached', step: 1, time: at(1) },
      { kind: 'reached', step: 2, time: at(2) },
      { kind: 'reached', step: 3, time: at(3) },
      { kind: 'reached', step: 4, time: at(4) },
      { kind: 'completed', step: 4, time: at(4) },
    ]);
    expect(new Set(facts.map((f) => f.instance))).toEqual(new Set([path[0]?.event_id]));
    expect(e.inProgress()).toEqual([]);
    // Nothing left to drop.
    expect(e.advanceTo(at(600))).toEqual([]);
    const again = ev('c1', 'product_viewed', at(601));
    expect(e.apply([again]).map((f) => [f.kind, f.step, f.instance])).toEqual([
      ['reached', 0, again.event_id],
    ]);
  });

  it('re-enters right after completing, even within the old timeout', () => {
    const e = engine();
    e.apply(fullPath('c1', at(0)));
    const again = ev('c1', 'product_viewed', at(5));
    expect(e.apply([again]).map((f) => [f.kind, f.step, f.instance])).toEqual([
      ['reached', 0, again.event_id],
    ]);
  });
});

describe('PartitionEngine: drop-off reasons (rule 4)', () => {
  it("is 'timeout' without a failure event", () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c1', 'cart_added', at(1))]);
    expect(brief(e.advanceTo(at(40)))).toEqual([
      { kind: 'dropped', step: 1, time: at(1) + DEADLINE, reason: 'timeout' },
    ]);
  });

  it('is the type of the last failure event sent while at the step', () => {
    const e = engine();
    e.apply([
      ev('c1', 'product_viewed', at(0)),
      ev('c1', 'cart_added', at(1)),
      ev('c1', 'checkout_started', at(2)),
      ev('c1', 'payment_failed', at(3)),
      ev('c1', 'unrelated', at(4)),
      ev('c1', 'checkout_error', at(5)),
      ev('c1', 'product_viewed', at(6)),
    ]);
    expect(brief(e.advanceTo(at(40)))).toEqual([
      { kind: 'dropped', step: 2, time: at(2) + DEADLINE, reason: 'checkout_error' },
    ]);
  });

  it('counts a failure event sent exactly at the deadline, not one after it', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c1', 'payment_failed', at(30))]);
    expect(brief(e.advanceTo(at(31)))).toEqual([
      { kind: 'dropped', step: 0, time: at(30), reason: 'payment_failed' },
    ]);
    const f = engine();
    f.apply([ev('c2', 'product_viewed', at(0)), ev('c2', 'checkout_error', at(0) + DEADLINE)]);
    expect(brief(f.apply([ev('c2', 'payment_failed', at(0) + DEADLINE + 1)]))).toEqual([
      { kind: 'dropped', step: 0, time: at(30), reason: 'checkout_error' },
    ]);
  });

  it('does not count failures sent before reaching the step', () => {
    const e = engine();
    e.apply([
      ev('c1', 'payment_failed', at(0)),
      ev('c1', 'product_viewed', at(1)),
      ev('c1', 'checkout_error', at(2)),
      ev('c1', 'cart_added', at(3)),
    ]);
    // checkout_error was sent at step 0; the instance then reached step 1 with no failure.
    expect(brief(e.advanceTo(at(60)))).toEqual([
      { kind: 'dropped', step: 1, time: at(3) + DEADLINE, reason: 'timeout' },
    ]);
  });

  it('does not count a failure event earlier than the step time (late arrival)', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(10))]);
    e.apply([ev('c1', 'payment_failed', at(5))]);
    expect(brief(e.advanceTo(at(60)))).toEqual([
      { kind: 'dropped', step: 0, time: at(40), reason: 'timeout' },
    ]);
  });

  it('does not count failure events of another customer', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c2', 'payment_failed', at(1))]);
    expect(brief(e.advanceTo(at(60)))).toEqual([
      { kind: 'dropped', step: 0, time: at(30), reason: 'timeout' },
    ]);
  });

  it('does not revive a dropped instance with a late next-step event', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c2', 'product_viewed', at(45))]);
    // Event time is 45m: c1 dropped at 30m. This cart_added happened at 10m but arrives now.
    expect(e.apply([ev('c1', 'cart_added', at(10))])).toEqual([]);
    expect(e.inProgress().map((p) => p.customer)).toEqual(['c2']);
  });
});

describe('PartitionEngine: hand-off', () => {
  it('carries the channel of the previous step and the seconds since it', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0), { channel: 'web' })]);
    expect(e.apply([ev('c1', 'cart_added', at(1, 30), { channel: 'call_center' })])).toEqual([
      expect.objectContaining({
        kind: 'reached',
        step: 1,
        channel: 'call_center',
        previousChannel: 'web',
        secondsFromPrevious: 90,
      }),
    ]);
    expect(e.apply([ev('c1', 'checkout_started', at(1, 30) + 2500, { channel: 'app' })])).toEqual([
      expect.objectContaining({
        step: 2,
        channel: 'app',
        previousChannel: 'call_center',
        secondsFromPrevious: 2.5,
      }),
    ]);
  });

  it('takes the previous channel from the event that reached the step, not later events', () => {
    const e = engine();
    e.apply([
      ev('c1', 'product_viewed', at(0), { channel: 'store' }),
      ev('c1', 'product_viewed', at(1), { channel: 'app' }),
      ev('c1', 'payment_failed', at(2), { channel: 'call_center' }),
    ]);
    expect(e.apply([ev('c1', 'cart_added', at(3), { channel: 'web' })])).toEqual([
      expect.objectContaining({ step: 1, previousChannel: 'store', secondsFromPrevious: 180 }),
    ]);
  });
});

describe('PartitionEngine: matching', () => {
  function atPaid(e: PartitionEngine) {
    e.apply([
      ev('c1', 'product_viewed', at(0)),
      ev('c1', 'cart_added', at(1)),
      ev('c1', 'checkout_started', at(2), { channel: 'app' }),
    ]);
  }

  it('requires the channel when the step names one, and any channel when it does not', () => {
    const e = engine();
    atPaid(e);
    expect(e.apply([ev('c1', 'payment_submitted', at(3), { channel: 'app' })])).toEqual([]);
    expect(brief(e.apply([ev('c1', 'payment_submitted', at(4), { channel: 'web' })]))).toEqual([
      { kind: 'reached', step: 3, time: at(4) },
    ]);
  });

  it('requires every where property, strictly equal', () => {
    const e = engine();
    atPaid(e);
    e.apply([ev('c1', 'payment_submitted', at(3))]);
    expect(e.apply([ev('c1', 'order_placed', at(4))])).toEqual([]);
    expect(e.apply([ev('c1', 'order_placed', at(5), { properties: {} })])).toEqual([]);
    expect(e.apply([ev('c1', 'order_placed', at(6), { properties: { currency: 'USD' } })])).toEqual(
      [],
    );
    expect(e.apply([ev('c1', 'order_placed', at(7), { properties: { currency: 'eur' } })])).toEqual(
      [],
    );
    expect(
      brief(
        e.apply([ev('c1', 'order_placed', at(8), { properties: { currency: 'EUR', total: 10 } })]),
      ),
    ).toEqual([
      { kind: 'reached', step: 4, time: at(8) },
      { kind: 'completed', step: 4, time: at(8) },
    ]);
  });

  it('compares where values with === (no coercion; null only matches null)', () => {
    const strict = toEngineJourney({
      id: 'strict',
      name: 'Strict',
      steps: [
        { name: 'a', event_type: 'a' },
        { name: 'b', event_type: 'b', where: { qty: 1, gift: true, coupon: null } },
      ],
      step_timeout: '1h',
      failure_event_types: [],
    });
    const e = engine([strict]);
    e.apply([ev('c1', 'a', at(0))]);
    const misses: Record<string, string | number | boolean | null>[] = [
      { qty: '1', gift: true, coupon: null },
      { qty: 1, gift: 'true', coupon: null },
      { qty: 1, gift: 1, coupon: null },
      { qty: 1, gift: true },
      { qty: 1, gift: true, coupon: '' },
      { qty: 1, gift: true, coupon: false },
      { qty: 1, gift: true, coupon: 0 },
      { qty: 1.5, gift: true, coupon: null },
    ];
    for (const [i, properties] of misses.entries()) {
      expect(
        e.apply([ev('c1', 'b', at(1 + i), { properties })]),
        JSON.stringify(properties),
      ).toEqual([]);
    }
    expect(
      brief(e.apply([ev('c1', 'b', at(20), { properties: { qty: 1, gift: true, coupon: null } })])),
    ).toEqual([
      { kind: 'reached', step: 1, time: at(20) },
      { kind: 'completed', step: 1, time: at(20) },
    ]);
  });

  it('applies channel and where to step 0 as well', () => {
    const picky = toEngineJourney({
      id: 'picky',
      name: 'Picky',
      steps: [
        { name: 'start', event_type: 'a', channel: 'app', where: { plan: 'pro' } },
        { name: 'end', event_type: 'b' },
      ],
      step_timeout: '1h',
      failure_event_types: [],
    });
    const e = engine([picky]);
    expect(e.apply([ev('c1', 'a', at(0), { channel: 'app' })])).toEqual([]);
    expect(e.apply([ev('c1', 'a', at(1), { properties: { plan: 'pro' } })])).toEqual([]);
    expect(
      brief(e.apply([ev('c1', 'a', at(2), { channel: 'app', properties: { plan: 'pro' } })])),
    ).toEqual([{ kind: 'reached', step: 0, time: at(2) }]);
  });
});

describe('PartitionEngine: repeated event ids', () => {
  it('ignores an event id the customer already sent, whatever its content', () => {
    const e = engine();
    const view = ev('c1', 'product_viewed', at(0));
    const cart = ev('c1', 'cart_added', at(1));
    e.apply([view, cart]);
    expect(e.apply([cart])).toEqual([]);
    expect(e.apply([{ ...cart, type: 'checkout_started', timestamp: at(2) }])).toEqual([]);
    expect(e.apply([{ ...view, type: 'payment_failed', timestamp: at(3) }])).toEqual([]);
    expect(e.inProgress()[0]?.state).toEqual(expect.objectContaining({ step: 1, stepTime: at(1) }));
    expect(brief(e.advanceTo(at(40)))).toEqual([
      { kind: 'dropped', step: 1, time: at(31), reason: 'timeout' },
    ]);
    // After the drop, the retried entry event still does not start a new instance.
    expect(e.apply([{ ...view, timestamp: at(41) }])).toEqual([]);
  });

  it('ignores a retry inside the same batch', () => {
    const e = engine();
    const view = ev('c1', 'product_viewed', at(0));
    const cart = ev('c1', 'cart_added', at(1));
    expect(brief(e.apply([view, view, cart, cart]))).toEqual([
      { kind: 'reached', step: 0, time: at(0) },
      { kind: 'reached', step: 1, time: at(1) },
    ]);
  });

  it('treats the same event id from another customer as a different event', () => {
    const e = engine();
    const view = ev('c1', 'product_viewed', at(0));
    e.apply([view]);
    expect(e.apply([{ ...view, customer_id: 'c2' }]).map((f) => [f.customer, f.instance])).toEqual([
      ['c2', view.event_id],
    ]);
  });
});

describe('PartitionEngine: event time and idle partitions', () => {
  it('is the newest event time minus the lateness, and never goes back', () => {
    const e = engine([purchase], 5 * MIN);
    expect(e.eventTime).toBeNull();
    e.apply([ev('c1', 'x', at(10))]);
    expect(e.eventTime).toBe(at(5));
    e.apply([ev('c1', 'x', at(7))]);
    expect(e.eventTime).toBe(at(5));
    e.advanceTo(at(3));
    expect(e.eventTime).toBe(at(5));
    e.advanceTo(at(20));
    expect(e.eventTime).toBe(at(20));
    e.apply([ev('c1', 'x', at(21))]);
    expect(e.eventTime).toBe(at(20));
  });

  it('fires deadlines strictly before the idle event time given to advanceTo', () => {
    const e = engine();
    e.apply([
      ev('c1', 'product_viewed', at(0)),
      ev('c2', 'product_viewed', at(5)),
      ev('c2', 'cart_added', at(6)),
    ]);
    expect(e.advanceTo(at(30))).toEqual([]);
    expect(brief(e.advanceTo(at(30) + 1))).toEqual([
      { kind: 'dropped', step: 0, time: at(30), reason: 'timeout' },
    ]);
    expect(e.advanceTo(at(36))).toEqual([]);
    expect(e.advanceTo(at(20))).toEqual([]);
    expect(e.apply([])).toEqual([]);
    expect(e.advanceTo(at(37)).map((f) => [f.kind, f.customer, f.step, f.time])).toEqual([
      ['dropped', 'c2', 1, at(36)],
    ]);
    expect(e.inProgress()).toEqual([]);
  });

  it('fires deadlines in time order before a later event of another customer', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c2', 'product_viewed', at(10))]);
    expect(
      e.apply([ev('c3', 'product_viewed', at(50))]).map((f) => [f.kind, f.customer, f.time]),
    ).toEqual([
      ['dropped', 'c1', at(30)],
      ['dropped', 'c2', at(40)],
      ['reached', 'c3', at(50)],
    ]);
  });
});

describe('PartitionEngine: allowed lateness', () => {
  it('applies out-of-order events within the lateness in event-time order', () => {
    const e = engine([purchase], 5 * MIN);
    const cart = ev('c1', 'cart_added', at(2));
    const view = ev('c1', 'product_viewed', at(1));
    // Event time is 2m - 5m: neither is applied yet.
    expect(e.apply([cart])).toEqual([]);
    expect(e.apply([view])).toEqual([]);
    expect(e.meta().pending).toEqual([cart, view]);
    // Event time moves to 5m: both are applied, view first.
    expect(brief(e.apply([ev('c2', 'x', at(10))]))).toEqual([
      { kind: 'reached', step: 0, time: at(1) },
      { kind: 'reached', step: 1, time: at(2) },
    ]);
    expect(e.meta().pending.map((p) => p.customer_id)).toEqual(['c2']);

    // Without lateness the view arrives after event time passed it: the fast path leaves
    // it to a correction (rule 7) instead of applying it after the cart.
    const strict = engine([purchase], 0);
    expect(brief(strict.apply([{ ...cart }]))).toEqual([]);
    expect(strict.apply([{ ...view }])).toEqual([]);
    expect(strict.takeCorrections()).toEqual(['c1']);
    expect(strict.seen.late).toBe(1);
  });

  it('keeps arrival order between events with the same timestamp', () => {
    const e = engine([purchase], 5 * MIN);
    e.apply([ev('c1', 'product_viewed', at(1)), ev('c1', 'cart_added', at(1))]);
    e.apply([ev('c2', 'cart_added', at(1)), ev('c2', 'product_viewed', at(1))]);
    const facts = e.advanceTo(at(10));
    expect(facts.map((f) => [f.customer, f.kind, f.step])).toEqual([
      ['c1', 'reached', 0],
      ['c1', 'reached', 1],
      ['c2', 'reached', 0],
    ]);
  });

  it('declares a drop only when event time (newest minus lateness) passes the deadline', () => {
    const e = engine([purchase], 5 * MIN);
    e.apply([ev('c1', 'product_viewed', at(0))]);
    // Event time moves to 30m: the entry is applied, its deadline (30m) has not passed.
    expect(brief(e.apply([ev('c2', 'x', at(35))]))).toEqual([
      { kind: 'reached', step: 0, time: at(0) },
    ]);
    // A cart within the timeout arrives 4m late: still in time.
    expect(brief(e.apply([ev('c1', 'cart_added', at(29))]))).toEqual([
      { kind: 'reached', step: 1, time: at(29) },
    ]);
    const f = engine([purchase], 5 * MIN);
    f.apply([ev('c1', 'product_viewed', at(0))]);
    expect(f.apply([ev('c2', 'x', at(35))])).toHaveLength(1);
    expect(brief(f.apply([ev('c2', 'x', at(35) + 1)]))).toEqual([
      { kind: 'dropped', step: 0, time: at(30), reason: 'timeout' },
    ]);
  });

  it('lets advanceTo apply the events waiting for event time', () => {
    const e = engine([purchase], 5 * MIN);
    e.apply([ev('c1', 'cart_added', at(2)), ev('c1', 'product_viewed', at(1))]);
    expect(brief(e.advanceTo(at(2)))).toEqual([
      { kind: 'reached', step: 0, time: at(1) },
      { kind: 'reached', step: 1, time: at(2) },
    ]);
    expect(e.meta().pending).toEqual([]);
  });
});

describe('PartitionEngine: several journeys', () => {
  const support = toEngineJourney({
    id: 'support',
    name: 'Support',
    steps: [
      { name: 'viewed', event_type: 'product_viewed' },
      { name: 'called', event_type: 'call_started', channel: 'call_center' },
      { name: 'solved', event_type: 'ticket_closed' },
    ],
    step_timeout: '10m',
    failure_event_types: ['checkout_error'],
  });

  it('runs each journey independently on the same events', () => {
    const e = engine([purchase, support]);
    const view = ev('c1', 'product_viewed', at(0));
    const facts = e.apply([
      view,
      ev('c1', 'call_started', at(1), { channel: 'call_center' }),
      ev('c1', 'cart_added', at(2)),
      ev('c1', 'checkout_error', at(3)),
    ]);
    expect(facts.map((f) => [f.journey, f.kind, f.step, f.instance])).toEqual([
      ['purchase', 'reached', 0, view.event_id],
      ['support', 'reached', 0, view.event_id],
      ['support', 'reached', 1, view.event_id],
      ['purchase', 'reached', 1, view.event_id],
    ]);
    const drops = e.advanceTo(at(60));
    expect(
      sortFacts(drops).map((f) => [f.journey, f.step, f.time, 'reason' in f && f.reason]),
    ).toEqual([
      ['purchase', 1, at(32), 'checkout_error'],
      ['support', 1, at(11), 'checkout_error'],
    ]);
  });

  it('keeps an instance per journey per customer', () => {
    const e = engine([purchase, support]);
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c2', 'product_viewed', at(0))]);
    expect(
      e
        .inProgress()
        .map((p) => `${p.customer}/${p.journey}`)
        .sort(),
    ).toEqual(['c1/purchase', 'c1/support', 'c2/purchase', 'c2/support']);
  });
});

describe('PartitionEngine: journey changes (rule 6)', () => {
  const changed = toEngineJourney({ ...purchaseDefinition, step_timeout: '1h' });

  it('gives a changed definition a new version, and the same definition the same one', () => {
    expect(changed.version).not.toBe(purchase.version);
    expect(toEngineJourney({ ...purchaseDefinition, name: 'Renamed' }).version).toBe(
      purchase.version,
    );
  });

  it('keeps the version when only owners, targets, value, feedback or review change', () => {
    const accountable = toEngineJourney({
      ...purchaseDefinition,
      steps: purchaseDefinition.steps.map((step, k) => ({
        ...step,
        owner: `team ${k}`,
        ...(k > 0 ? { target_conversion: 0.5 } : {}),
      })),
      value_property: 'cart_value',
      currency: 'EUR',
      feedback_event_types: ['csat_submitted'],
      review: { schedule: '0 9 * * 1', webhook_url: 'https://hooks.example.com/r' },
    });
    expect(accountable.version).toBe(purchase.version);
  });

  it('discards instances of a changed journey without facts', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c2', 'product_viewed', at(0))]);
    e.setJourneys([changed]);
    // c1 continues to step 1 under the old definition: not any more.
    expect(e.apply([ev('c1', 'cart_added', at(1))])).toEqual([]);
    // The old deadlines (30m) pass: no drop for either customer.
    expect(e.advanceTo(at(45))).toEqual([]);
    expect(e.inProgress()).toEqual([]);
  });

  it('starts instances of the new definition from events processed after the change', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0))]);
    e.setJourneys([changed]);
    const view = ev('c1', 'product_viewed', at(1));
    expect(e.apply([view]).map((f) => [f.kind, f.step, f.instance])).toEqual([
      ['reached', 0, view.event_id],
    ]);
    expect(brief(e.apply([ev('c1', 'cart_added', at(50))]))).toEqual([
      { kind: 'reached', step: 1, time: at(50) },
    ]);
    expect(brief(e.advanceTo(at(200)))).toEqual([
      { kind: 'dropped', step: 1, time: at(110), reason: 'timeout' },
    ]);
  });

  it('discards instances of a removed journey without facts', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0)), ev('c1', 'cart_added', at(1))]);
    e.setJourneys([]);
    expect(e.apply([ev('c1', 'checkout_started', at(2))])).toEqual([]);
    expect(e.advanceTo(at(100))).toEqual([]);
    expect(e.inProgress()).toEqual([]);
  });

  it('keeps instances when the journeys are set again unchanged', () => {
    const e = engine();
    e.apply([ev('c1', 'product_viewed', at(0))]);
    e.setJourneys([toEngineJourney({ ...purchaseDefinition })]);
    expect(brief(e.apply([ev('c1', 'cart_added', at(1))]))).toEqual([
      { kind: 'reached', step: 1, time: at(1) },
    ]);
  });

  it('does not apply a new journey to events processed before it existed', () => {
    const e = engine([]);
    e.apply([ev('c1', 'product_viewed', at(0))]);
    e.setJourneys([purchase]);
    expect(e.apply([ev('c1', 'cart_added', at(1))])).toEqual([]);
    expect(e.inProgress()).toEqual([]);
  });

  it('applies the journeys current when a waiting (late-tolerated) event is processed', () => {
    const e = engine([], 5 * MIN);
    e.apply([ev('c1', 'product_viewed', at(0))]);
    e.setJourneys([purchase]);
    expect(brief(e.advanceTo(at(0)))).toEqual([{ kind: 'reached', step: 0, time: at(0) }]);
  });
});

// --- Checkpoint and restore -------------------------------------------------------------

type Op = { events: EngineEvent[] } | { idle: number };

/** A store of customer state, fed with `takeChanges()` the way the processor does. */
class Store {
  readonly customers = new Map<string, CustomerState>();
  meta: PartitionMeta | null = null;
  deletes = 0;

  write(changes: PartitionChanges) {
    // What a database would hold: plain JSON.
    const { meta, upserts, deletes } = JSON.parse(JSON.stringify(changes)) as PartitionChanges;
    for (const id of deletes) this.customers.delete(id);
    for (const state of upserts) this.customers.set(state.customer, state);
    this.deletes += deletes.length;
    this.meta = meta;
  }
}

function run(e: PartitionEngine, ops: readonly Op[], store?: Store): Fact[] {
  const facts: Fact[] = [];
  for (const op of ops) {
    facts.push(...('events' in op ? e.apply(op.events) : e.advanceTo(op.idle)));
    store?.write(e.takeChanges());
  }
  return facts;
}

describe('PartitionEngine: checkpoint and restore', () => {
  const support = toEngineJourney({
    id: 'support',
    name: 'Support',
    steps: [
      { name: 'asked', event_type: 'cart_added' },
      { name: 'called', event_type: 'call_started', channel: 'call_center' },
    ],
    step_timeout: '3m',
    failure_event_types: ['payment_failed'],
  });
  const journeys = [purchase, support];
  const options = { allowedLatenessMs: 2 * MIN, customerRetentionMs: 20 * MIN };

  function stream(): Op[] {
    const view = ev('c1', 'product_viewed', at(0), { channel: 'app' });
    const cart = ev('c1', 'cart_added', at(3));
    return [
      { events: [view] },
      { events: [ev('c2', 'product_viewed', at(1))] },
      // Out of order within the lateness.
      { events: [cart, ev('c1', 'call_started', at(2), { channel: 'call_center' })] },
      { events: [ev('c2', 'cart_added', at(2)), view] },
      { events: [ev('c3', 'cart_added', at(4)), ev('c3', 'payment_failed', at(5))] },
      { events: [cart, ev('c1', 'checkout_started', at(6))] },
      { idle: at(8) },
      { events: [ev('c1', 'payment_failed', at(9)), ev('c2', 'checkout_error', at(9))] },
      { events: [ev('c3', 'call_started', at(9), { channel: 'call_center' })] },
      { idle: at(40) },
      // Late beyond the lateness: decided already.
      { events: [ev('c2', 'checkout_started', at(20))] },
      { events: [ev('c4', 'product_viewed', at(41))] },
      { events: fullPath('c5', at(41)) },
      { events: [ev('c4', 'cart_added', at(60)), ev('c4', 'checkout_started', at(61))] },
      { idle: at(65) },
      { idle: at(200) },
      { events: [ev('c1', 'product_viewed', at(201)), ev('c6', 'cart_added', at(203))] },
      { events: [ev('c1', 'cart_added', at(202)), ev('c6', 'payment_failed', at(204))] },
      { idle: at(300) },
    ];
  }

  it('resumes exactly where it stopped, whatever the split point', () => {
    const ops = stream();
    const whole = run(new PartitionEngine(journeys, options), ops);
    // The stream exercises drops, completions, deletes and pending events.
    expect(new Set(whole.map((f) => f.kind))).toEqual(new Set(['reached', 'completed', 'dropped']));
    let sawDeletes = false;
    let sawPending = false;
    for (let split = 0; split <= ops.length; split++) {
      const store = new Store();
      const first = new PartitionEngine(journeys, options);
      const part1 = run(first, ops.slice(0, split), store);
      const meta = store.meta ?? first.meta();
      sawPending ||= meta.pending.length > 0;
      sawDeletes ||= store.deletes > 0;
      const second = new PartitionEngine(journeys, options, {
        meta,
        customers: [...store.customers.values()],
      });
      expect(second.eventTime).toBe(first.eventTime);
      const part2 = run(second, ops.slice(split));
      expect(sortFacts([...part1, ...part2]), `split at ${split}`).toEqual(sortFacts(whole));
      expect(second.inProgress()).toEqual([]);
    }
    expect(sawDeletes).toBe(true);
    expect(sawPending).toBe(true);
  });

  it('resumes with the same in-progress state and pending events', () => {
    const ops = stream().slice(0, 6);
    const store = new Store();
    const first = new PartitionEngine(journeys, options);
    run(first, ops, store);
    const second = new PartitionEngine(journeys, options, {
      meta: store.meta as PartitionMeta,
      customers: [...store.customers.values()],
    });
    const key = (e: PartitionEngine) =>
      e
        .inProgress()
        .map((p) => JSON.stringify([p.customer, p.journey, p.state.instance, p.state.step]))
        .sort();
    expect(key(second)).toEqual(key(first));
    expect(second.meta()).toEqual(first.meta());
    expect(second.meta().pending.length).toBeGreaterThan(0);
  });
});

describe('PartitionEngine: erasure', () => {
  it('forgets an erased customer: no drop-off later, no pending event, no checkpoint row', () => {
    const e = engine([purchase], 5 * MIN);
    e.apply([ev('gone', 'product_viewed', at(0)), ev('kept', 'product_viewed', at(0))]);
    // Waiting for event time (allowed lateness): erased with the customer.
    e.apply([ev('gone', 'cart_added', at(6)), ev('kept', 'cart_added', at(6))]);
    e.takeChanges();
    e.eraseCustomer('gone');
    const changes = e.takeChanges();
    expect(changes.upserts).toEqual([]);
    expect(changes.deletes).toEqual([]);
    expect(changes.meta.pending.map((p) => p.customer_id)).toEqual(['kept']);
    expect(e.inProgress().map((i) => i.customer)).toEqual(['kept']);
    const facts = e.advanceTo(at(120));
    expect(new Set(facts.map((f) => f.customer))).toEqual(new Set(['kept']));
    expect(facts.some((f) => f.kind === 'dropped')).toBe(true);
  });

  it('takes a customer sent after the erasure as new, from its first event', () => {
    const e = engine();
    e.apply([ev('back', 'product_viewed', at(0)), ev('back', 'cart_added', at(1))]);
    e.eraseCustomer('back');
    const facts = e.apply([ev('back', 'product_viewed', at(2))]);
    expect(brief(facts)).toEqual([{ kind: 'reached', step: 0, time: at(2) }]);
  });
});
