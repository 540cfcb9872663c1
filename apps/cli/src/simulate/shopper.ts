import {
  type Channel,
  HANDOFFS,
  NOISE,
  PURCHASE,
  SIGNUP,
  type SimulatedJourney,
} from './journeys.js';
import type { Random } from './random.js';

/** How simulated customers behave; every field is a probability. */
export interface StepProbabilities {
  /** A new customer shops (else signs up). */
  purchase: number;
  /** Continuing from each step of the purchase journey to the next (4 transitions). */
  purchaseContinue: readonly number[];
  /** The same for signup (3 transitions). */
  signupContinue: readonly number[];
  /** Switching channel at a transition, when the current one could take the next step too. */
  handoff: number;
  /** A checkout that ends in `checkout_error`. */
  checkoutError: number;
  /** A payment that ends in `payment_failed`. */
  paymentFailed: number;
  /** Trying again after one of those failures, instead of leaving. */
  retryAfterFailure: number;
  /** A channel event beside the journey (page views, app opens, ...) between steps. */
  noise: number;
}

export const DEFAULT_PROBABILITIES: StepProbabilities = {
  purchase: 0.75,
  purchaseContinue: [0.72, 0.8, 0.88, 0.95],
  signupContinue: [0.65, 0.8, 0.85],
  handoff: 0.15,
  checkoutError: 0.04,
  paymentFailed: 0.07,
  retryAfterFailure: 0.5,
  noise: 0.25,
};

type Properties = Record<string, string | number | boolean | null>;

export interface Emitted {
  customer_id: string;
  type: string;
  channel: Channel;
  properties?: Properties;
}

export interface Session {
  customer: string;
  journey: SimulatedJourney;
  /** The step the customer takes next. */
  step: number;
  channel: Channel;
  done: boolean;
  /** How it ended: completed, left (stopped without a word) or failed. */
  outcome?: 'completed' | 'left' | 'failed';
  noiseNext: boolean;
  basketEur: number;
}

export function startSession(customer: string, rnd: Random, p: StepProbabilities): Session {
  const journey = rnd.chance(p.purchase) ? PURCHASE : SIGNUP;
  return {
    customer,
    journey,
    step: 0,
    channel: rnd.weighted(journey.entryChannels as Record<Channel, number>),
    done: false,
    noiseNext: false,
    basketEur: 0,
  };
}

function propertiesOf(session: Session, type: string, rnd: Random): Properties | undefined {
  switch (type) {
    case 'product_viewed':
      return { product_id: `sku-${rnd.int(1, 400)}`, price_eur: rnd.int(5, 300) };
    case 'cart_added': {
      const quantity = rnd.int(1, 3);
      session.basketEur = quantity * rnd.int(5, 300);
      return { quantity, amount: session.basketEur };
    }
    case 'checkout_started':
      return { amount: session.basketEur };
    case 'payment_submitted':
      return {
        method:
          session.channel === 'store' ? rnd.pick(['card', 'cash']) : rnd.pick(['card', 'paypal']),
        amount: session.basketEur,
      };
    case 'order_placed':
      return { currency: 'EUR', amount: session.basketEur };
    case 'landing_viewed':
      return { campaign: rnd.pick(['spring_sale', 'newsletter', 'search_ad']) };
    case 'account_created':
      return { plan: rnd.pick(['free', 'free', 'pro']) };
    case 'payment_failed':
      return { reason: rnd.pick(['card_declined', 'insufficient_funds', 'timeout']) };
    case 'checkout_error':
      return { reason: rnd.pick(['out_of_stock', 'address_invalid', 'server_error']) };
    default:
      return undefined;
  }
}

function emit(session: Session, type: string, rnd: Random): Emitted {
  const properties = propertiesOf(session, type, rnd);
  return {
    customer_id: session.customer,
    type,
    channel: session.channel,
    ...(properties ? { properties } : {}),
  };
}

function failureChance(session: Session, p: StepProbabilities): number {
  const type = session.journey.steps[session.step]?.eventType;
  if (type === 'checkout_started') return p.checkoutError;
  if (type === 'payment_submitted') return p.paymentFailed;
  return 0;
}

/**
 * The customer's next event; moves the session on. A broken step always fails: the
 * customer gets its failure event and leaves, so nobody reaches that step any more.
 */
export function nextEvent(
  session: Session,
  rnd: Random,
  p: StepProbabilities,
  isBroken: (journey: SimulatedJourney, step: number) => boolean,
): Emitted {
  if (session.noiseNext) {
    session.noiseNext = false;
    return emit(session, rnd.pick(NOISE[session.channel]), rnd);
  }
  const { journey } = session;
  const step = journey.steps[session.step];
  if (!step) throw new Error(`session of ${session.customer} is past its last step`);

  if (isBroken(journey, session.step)) {
    session.done = true;
    session.outcome = 'failed';
    return emit(session, step.failureType, rnd);
  }
  if (rnd.chance(failureChance(session, p))) {
    // Failed, then maybe tries the same step again on its next turn.
    if (!rnd.chance(p.retryAfterFailure)) {
      session.done = true;
      session.outcome = 'failed';
    }
    return emit(session, step.failureType, rnd);
  }

  const event = emit(session, step.eventType, rnd);
  const continues =
    journey === PURCHASE ? p.purchaseContinue[session.step] : p.signupContinue[session.step];
  if (session.step === journey.steps.length - 1) {
    session.done = true;
    session.outcome = 'completed';
  } else if (!rnd.chance(continues ?? 0)) {
    session.done = true;
    session.outcome = 'left';
  } else {
    session.step += 1;
    const next = journey.steps[session.step]?.channels ?? [];
    const canStay = next.includes(session.channel);
    if (!canStay || rnd.chance(p.handoff)) {
      const neighbours = HANDOFFS[session.channel].filter((c) => next.includes(c));
      session.channel = rnd.pick(neighbours.length > 0 ? neighbours : next);
    }
    session.noiseNext = rnd.chance(p.noise);
  }
  return event;
}
