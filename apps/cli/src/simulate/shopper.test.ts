import { readFile } from 'node:fs/promises';
import { parseDuration } from '@touchstream/contracts';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findStep, PURCHASE, SIGNUP, SIMULATED_JOURNEYS } from './journeys.js';
import { seededRandom } from './random.js';
import {
  DEFAULT_PROBABILITIES,
  type Emitted,
  nextEvent,
  type Shopper,
  type SurveyAnswer,
  shopperMaker,
  startSession,
  surveyAnswer,
} from './shopper.js';

const SAMPLES = new URL('../../../../samples/journeys.yaml', import.meta.url);

/** 2000 visits; a third of them by a shopper who came before. */
function walk(seed: number, isBroken: Parameters<typeof nextEvent>[3] = () => false) {
  const rnd = seededRandom(seed);
  const newShopper = shopperMaker('c', rnd, DEFAULT_PROBABILITIES);
  const shoppers: Shopper[] = [];
  const events: (Emitted & { visit: number })[] = [];
  const outcomes: string[] = [];
  for (let visit = 0; visit < 2000; visit++) {
    const shopper = shoppers.length > 0 && rnd.chance(0.3) ? rnd.pick(shoppers) : newShopper();
    shoppers.push(shopper);
    const session = startSession(shopper, rnd, DEFAULT_PROBABILITIES);
    while (!session.done) {
      events.push({ ...nextEvent(session, rnd, DEFAULT_PROBABILITIES, isBroken), visit });
    }
    outcomes.push(`${session.journey.id}:${session.outcome}`);
  }
  return { events, outcomes };
}

interface Visit {
  journey: string;
  outcome: string;
  events: (Emitted & { timestamp: number })[];
  answer?: SurveyAnswer;
}

/** 2000 visits, one event a second, each with the survey its customer may answer. */
function walkWithSurveys(seed: number) {
  const rnd = seededRandom(seed);
  const newShopper = shopperMaker('c', rnd, DEFAULT_PROBABILITIES);
  const visits: Visit[] = [];
  let time = 1_000_000;
  for (let n = 0; n < 2000; n++) {
    const session = startSession(newShopper(), rnd, DEFAULT_PROBABILITIES);
    const events: Visit['events'] = [];
    let lastStepAt: number | undefined;
    let answer: SurveyAnswer | undefined;
    while (!session.done) {
      time += 1000;
      const event = nextEvent(session, rnd, DEFAULT_PROBABILITIES, () => false);
      if (session.tookStep) lastStepAt = time;
      events.push({ ...event, timestamp: time });
      if (session.done)
        answer = surveyAnswer(session, event, lastStepAt, rnd, DEFAULT_PROBABILITIES);
    }
    visits.push({
      journey: session.journey.id,
      outcome: session.outcome ?? '',
      events,
      ...(answer ? { answer } : {}),
    });
  }
  return visits;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const ANONYMOUS_IDS = {
  web: /^ck-[0-9a-f]{16}$/,
  mobile: /^dev-[0-9a-f]{16}$/,
  store: /^(card-\d{12}|visit-[0-9a-f]{16})$/,
  call_center: /^\+447\d{9}$/,
} as const;

describe('simulated customers', () => {
  it('walk the journeys of samples/journeys.yaml', async () => {
    const file = parse(await readFile(SAMPLES, 'utf8')) as {
      journeys: Record<
        string,
        {
          steps: { name: string; event_type: string }[];
          failure_event_types: string[];
          step_timeout: string;
          feedback_event_types: string[];
        }
      >;
    };
    for (const journey of SIMULATED_JOURNEYS) {
      const sample = file.journeys[journey.id];
      expect(parseDuration(sample?.step_timeout ?? '')).toBe(journey.stepTimeoutMs);
      expect(sample?.feedback_event_types).toContain(journey.feedbackType);
      expect(sample?.steps.map((s) => [s.name, s.event_type])).toEqual(
        journey.steps.map((s) => [s.name, s.eventType]),
      );
      for (const step of journey.steps)
        expect(sample?.failure_event_types).toContain(step.failureType);
    }
  });

  it('reach every step on several channels, hand off, fail now and then, and pay in EUR', () => {
    const { events, outcomes } = walk(7);
    const types = new Set(events.map((e) => e.type));
    for (const journey of SIMULATED_JOURNEYS) {
      for (const step of journey.steps) expect(types).toContain(step.eventType);
    }
    expect(types).toContain('payment_failed');
    expect(types).toContain('checkout_error');
    expect(new Set(events.map((e) => e.channel)).size).toBe(5);
    expect(
      events
        .filter((e) => e.type === 'order_placed')
        .every((e) => e.properties?.currency === 'EUR'),
    ).toBe(true);
    for (const outcome of ['completed', 'left', 'failed']) {
      expect(outcomes).toContain(`online-purchase:${outcome}`);
    }
    // Every step is taken on a channel that can take it.
    for (const e of events) {
      const found = findStep(e.type);
      if (found) expect(found.step.channels).toContain(e.channel);
    }
  });

  it('never reach a broken step', () => {
    const paid = PURCHASE.steps.findIndex((s) => s.name === 'paid');
    const { events, outcomes } = walk(7, (journey, step) => journey === PURCHASE && step === paid);
    expect(events.some((e) => e.type === 'payment_submitted')).toBe(false);
    expect(events.some((e) => e.type === 'order_placed')).toBe(false);
    expect(events.filter((e) => e.type === 'payment_failed').length).toBeGreaterThan(100);
    expect(outcomes).not.toContain('online-purchase:completed');
    expect(outcomes).toContain('signup:completed');
  });

  it('stay anonymous on the web and in the app until they log in or check out, then carry both ids', () => {
    const { events } = walk(7);
    for (const e of events) {
      if (e.channel === 'email') expect(e).not.toHaveProperty('anonymous_id');
      else expect(e.anonymous_id).toMatch(ANONYMOUS_IDS[e.channel]);
      expect(e.customer_id ?? e.anonymous_id).toBeDefined();
    }
    for (const channel of ['web', 'mobile'] as const) {
      const here = events.filter((e) => e.channel === channel);
      const anonymous = here.filter((e) => e.customer_id === undefined);
      // Browsing anonymously, and linking at login or at checkout.
      expect(anonymous.filter((e) => e.type === 'product_viewed').length).toBeGreaterThan(100);
      expect(here.filter((e) => e.type === 'logged_in').every((e) => e.customer_id)).toBe(true);
      for (const type of ['checkout_started', 'payment_submitted', 'order_placed']) {
        expect(here.filter((e) => e.type === type).every((e) => e.customer_id)).toBe(true);
      }
      expect(here.filter((e) => e.type === 'account_created').every((e) => e.customer_id)).toBe(
        true,
      );
      // Within a visit, once logged in, a channel keeps sending both ids.
      const loggedIn = new Set<number>();
      for (const e of here) {
        if (e.customer_id) loggedIn.add(e.visit);
        else expect(loggedIn.has(e.visit)).toBe(false);
      }
      // Some are logged in when they arrive, most are not.
      const entries = here.filter((e) => e.type === 'product_viewed');
      const known = entries.filter((e) => e.customer_id).length / entries.length;
      expect(known).toBeGreaterThan(0.2);
      expect(known).toBeLessThan(0.8);
    }
  });

  it('show a loyalty card in the store, registered or not, or nothing at all', () => {
    const { events } = walk(7);
    const store = events.filter((e) => e.channel === 'store');
    const linked = new Set(store.filter((e) => e.customer_id).map((e) => e.anonymous_id));
    const never = store.filter((e) => !linked.has(e.anonymous_id));
    expect([...linked].every((id) => id?.startsWith('card-'))).toBe(true);
    expect(never.some((e) => e.anonymous_id?.startsWith('card-'))).toBe(true);
    expect(never.some((e) => e.anonymous_id?.startsWith('visit-'))).toBe(true);
    // Nobody else links them either: these customers stay anonymous.
    const everLinked = new Set(events.filter((e) => e.customer_id).map((e) => e.anonymous_id));
    expect(never.every((e) => !everLinked.has(e.anonymous_id))).toBe(true);
    expect(never.length / store.length).toBeGreaterThan(0.3);
  });

  it('call from their phone; the agent identifies them, and a known number at once', () => {
    const { events } = walk(7);
    const calls = events.filter((e) => e.channel === 'call_center');
    const known = new Set<string>();
    for (const e of calls) {
      const id = e.anonymous_id as string;
      if (e.customer_id === undefined) {
        // Only a number never linked comes in anonymous, with the call itself.
        expect(e.type).toBe('call_received');
        expect(known.has(id)).toBe(false);
      } else {
        known.add(id);
      }
    }
    expect(calls.filter((e) => e.customer_id === undefined).length).toBeGreaterThan(10);
    for (const e of calls.filter((e) => e.type !== 'call_received')) {
      expect(e.customer_id).toBeDefined();
    }
  });

  it('never link one anonymous id to two customers, and link most hand-offs to the call centre', () => {
    const { events } = walk(7);
    const owner = new Map<string, string>();
    for (const e of events) {
      if (!(e.customer_id && e.anonymous_id)) continue;
      expect(owner.get(e.anonymous_id) ?? e.customer_id).toBe(e.customer_id);
      owner.set(e.anonymous_id, e.customer_id);
    }
    // Web visits continued in the call centre: anonymous on the web before the call, yet
    // the same customer once the cookie's link (at login or checkout) is applied.
    let throughALink = 0;
    let handoffs = 0;
    for (let i = 1; i < events.length; i++) {
      const [before, after] = [events[i - 1], events[i]];
      if (before?.channel !== 'web' || after?.channel !== 'call_center') continue;
      if (before.visit !== after.visit) continue;
      handoffs += 1;
      const visit = events.filter((e) => e.visit === after.visit && e.channel === 'web');
      if (visit.some((e) => !e.customer_id && owner.get(e.anonymous_id ?? ''))) throughALink += 1;
    }
    expect(handoffs).toBeGreaterThan(20);
    expect(throughALink / handoffs).toBeGreaterThan(0.25);
  });

  it('carry the cart value, in EUR with cents, on the purchase steps from the cart on', () => {
    const visits = walkWithSurveys(5).filter((v) => v.journey === PURCHASE.id);
    const valued = ['cart_added', 'checkout_started', 'payment_submitted', 'order_placed'];
    let changed = 0;
    for (const visit of visits) {
      const steps = visit.events.filter((e) => valued.includes(e.type));
      for (const e of steps) {
        const value = e.properties?.cart_value;
        expect(typeof value).toBe('number');
        expect(value).toBeGreaterThanOrEqual(9.99);
        expect(value).toBeLessThanOrEqual(500);
        expect(Math.round((value as number) * 100) / 100).toBe(value);
      }
      const values = steps.map((e) => e.properties?.cart_value);
      if (new Set(values).size > 1) changed += 1;
      for (const e of visit.events.filter((e) => e.type === 'order_placed')) {
        expect(e.properties?.currency).toBe('EUR');
      }
      for (const e of visit.events.filter((e) => e.type === 'product_viewed')) {
        expect(e.properties).not.toHaveProperty('cart_value');
      }
    }
    // An item added at checkout, a voucher at payment: sometimes, not always.
    expect(changed).toBeGreaterThan(20);
    const carts = visits.flatMap((v) => v.events.filter((e) => e.type === 'cart_added'));
    const spread = carts.map((e) => e.properties?.cart_value as number);
    expect(Math.min(...spread)).toBeLessThan(40);
    expect(Math.max(...spread)).toBeGreaterThan(250);
  });

  it('answer a survey after some visits: 1 to 5, lower after a drop, within the step timeout after the end', () => {
    const visits = walkWithSurveys(9);
    const answered = visits.filter((v) => v.answer);
    expect(answered.length / visits.length).toBeGreaterThan(0.3);
    expect(answered.length / visits.length).toBeLessThan(0.5);
    for (const visit of answered) {
      const answer = visit.answer as SurveyAnswer;
      const journey = visit.journey === PURCHASE.id ? PURCHASE : SIGNUP;
      expect(answer.type).toBe('csat_submitted');
      expect([1, 2, 3, 4, 5]).toContain(answer.properties?.score);
      // As the channel of the last event knew the customer.
      const last = visit.events.at(-1);
      expect(answer.channel).toBe(last?.channel);
      expect(answer.customer_id).toBe(last?.customer_id);
      expect(answer.anonymous_id).toBe(last?.anonymous_id);
      // The instance ends at completion, or at the deadline after the last step reached.
      const steps = visit.events.filter((e) => journey.steps.some((s) => s.eventType === e.type));
      const lastStep = steps.at(-1)?.timestamp as number;
      const end = visit.outcome === 'completed' ? lastStep : lastStep + journey.stepTimeoutMs;
      expect(answer.timestamp).toBeGreaterThanOrEqual(end);
      expect(answer.timestamp).toBeLessThanOrEqual(end + journey.stepTimeoutMs);
      if (visit.outcome !== 'completed') expect(answer.timestamp).toBeGreaterThan(end);
    }
    const scores = (completed: boolean) =>
      answered
        .filter((v) => (v.outcome === 'completed') === completed)
        .map((v) => v.answer?.properties?.score as number);
    expect(scores(true).length).toBeGreaterThan(50);
    expect(scores(false).length).toBeGreaterThan(50);
    expect(mean(scores(true))).toBeGreaterThan(4);
    expect(mean(scores(false))).toBeLessThan(3);
    // Nobody answers for a visit that reached no step.
    expect(visits.filter((v) => v.events.length === 0 && v.answer)).toEqual([]);
  });

  it('convert at each purchase and signup step above its target but for payment', async () => {
    const file = parse(await readFile(SAMPLES, 'utf8')) as {
      journeys: Record<string, { steps: { name: string; target_conversion?: number }[] }>;
    };
    const visits = walkWithSurveys(21);
    for (const journey of SIMULATED_JOURNEYS) {
      const here = visits.filter((v) => v.journey === journey.id);
      // A step reached, then the next one reached (continued) or not (dropped).
      const reachedIndex = (v: Visit) =>
        Math.max(...v.events.map((e) => journey.steps.findIndex((s) => s.eventType === e.type)));
      journey.steps.forEach((step, k) => {
        const target = file.journeys[journey.id]?.steps[k]?.target_conversion;
        if (k === 0 || target === undefined) return;
        const reached = here.filter((v) => reachedIndex(v) >= k - 1).length;
        const conversion = here.filter((v) => reachedIndex(v) >= k).length / reached;
        if (step.name === 'paid') expect(conversion).toBeLessThan(target - 0.03);
        else expect(conversion, `${journey.id} ${step.name}`).toBeGreaterThan(target + 0.02);
      });
    }
  });

  it('are the same for the same seed', () => {
    expect(walk(3).events).toEqual(walk(3).events);
    expect(walk(3).events).not.toEqual(walk(4).events);
  });
});
