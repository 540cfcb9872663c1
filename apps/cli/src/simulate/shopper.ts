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
  /** A shopper still logged in on arrival at the web site or the app (before checkout). */
  signedIn: Readonly<Record<'web' | 'mobile', number>>;
  /** An anonymous web or app visitor who logs in when adding to the cart. */
  loginAtCart: number;
  /** A shopper who has a loyalty card (the store knows the others by the visit only). */
  loyaltyCard: number;
  /** A loyalty card registered to its holder (the others stay anonymous cards). */
  cardRegistered: number;
  /** A customer answering the satisfaction survey after their journey ended. */
  feedback: number;
}

export const DEFAULT_PROBABILITIES: StepProbabilities = {
  purchase: 0.75,
  // Against the targets of samples/journeys.yaml, one step falls short: payment (0.88 of
  // checkouts go on to pay, and 12% of payments fail, half of them for good: about 0.83
  // against 0.9). The others clear theirs, with room for what the drop-offs count on top:
  // a customer who switches channel before any channel knows who they are (an anonymous
  // web visitor, a store visit without a registered card) leaves an instance that drops.
  purchaseContinue: [0.72, 0.93, 0.88, 0.99],
  signupContinue: [0.65, 0.97, 0.85],
  handoff: 0.15,
  checkoutError: 0.04,
  paymentFailed: 0.12,
  retryAfterFailure: 0.5,
  noise: 0.25,
  signedIn: { web: 0.3, mobile: 0.6 },
  loginAtCart: 0.4,
  loyaltyCard: 0.7,
  cardRegistered: 0.7,
  feedback: 0.4,
};

type Properties = Record<string, string | number | boolean | null>;

/**
 * Who a simulated customer is to each channel. Every channel but e-mail first knows them
 * by an id of its own; an event carrying that id with the customer id links the two.
 */
export interface Shopper {
  /** The id the business knows them by. */
  customer: string;
  /** The web site's cookie in their browser. */
  cookie: string;
  /** The app's id of their phone. */
  device: string;
  /** The number they call from. */
  phone: string;
  /** Their loyalty card, if any; only a registered card tells the store who they are. */
  card?: { id: string; registered: boolean };
  /** The call centre has linked their number: it recognises them when they call. */
  phoneKnown: boolean;
}

/** Rounded to cents. */
const cents = (eur: number) => Math.round(eur * 100) / 100;

const hex = (rnd: Random) =>
  Math.floor(rnd.next() * 2 ** 32)
    .toString(16)
    .padStart(8, '0');

/** Makes the shoppers of one run: customer ids `<prefix>-1`, `<prefix>-2`, ... */
export function shopperMaker(prefix: string, rnd: Random, p: StepProbabilities) {
  // Phone numbers spread over the UK mobile range, distinct within a run: 7_919_131 is
  // coprime with 10^9, so n -> base + n * 7_919_131 (mod 10^9) never repeats.
  const base = rnd.int(0, 999_999_999);
  let n = 0;
  return (): Shopper => {
    n += 1;
    const phone = String((base + n * 7_919_131) % 1_000_000_000).padStart(9, '0');
    const card = rnd.chance(p.loyaltyCard)
      ? {
          id: `card-${String(rnd.int(0, 999_999_999_999)).padStart(12, '0')}`,
          registered: rnd.chance(p.cardRegistered),
        }
      : undefined;
    return {
      customer: `${prefix}-${n}`,
      cookie: `ck-${hex(rnd)}${hex(rnd)}`,
      device: `dev-${hex(rnd)}${hex(rnd)}`,
      phone: `+447${phone}`,
      ...(card ? { card } : {}),
      phoneKnown: false,
    };
  };
}

/** The ids an event carries: the channel's anonymous id, the customer id, or both. */
export interface Ids {
  customer_id?: string;
  anonymous_id?: string;
}

export interface Emitted extends Ids {
  type: string;
  channel: Channel;
  properties?: Properties;
}

export interface Session {
  shopper: Shopper;
  journey: SimulatedJourney;
  /** The step the customer takes next. */
  step: number;
  channel: Channel;
  done: boolean;
  /** How it ended: completed, left (stopped without a word) or failed. */
  outcome?: 'completed' | 'left' | 'failed';
  noiseNext: boolean;
  /** What the cart is worth in EUR (the purchase journey's `value_property`, `cart_value`). */
  cartValue: number;
  /** The last event was one of the journey's steps (not noise, a login or a failure). */
  tookStep: boolean;
  /** Web and mobile: logged in during this visit; call centre: the agent knows the caller. */
  identified: Set<Channel>;
  /** The store's id of this visit, for a shopper without a loyalty card. */
  visit?: string;
}

export function startSession(shopper: Shopper, rnd: Random, p: StepProbabilities): Session {
  const journey = rnd.chance(p.purchase) ? PURCHASE : SIGNUP;
  const session: Session = {
    shopper,
    journey,
    step: 0,
    channel: 'web', // until it arrives below
    done: false,
    noiseNext: false,
    cartValue: 0,
    tookStep: false,
    identified: new Set(),
  };
  arrive(session, rnd.weighted(journey.entryChannels as Record<Channel, number>), rnd, p);
  return session;
}

/** The customer comes to a channel, at the start or by a hand-off from `from`. */
function arrive(
  session: Session,
  channel: Channel,
  rnd: Random,
  p: StepProbabilities,
  from?: Channel,
) {
  session.channel = channel;
  if (session.identified.has(channel)) return;
  if (channel === 'web' || channel === 'mobile') {
    // A link in an e-mail says whom it was sent to; a purchase's shopper may still be
    // logged in (nobody is before signing up).
    if (from === 'email' || (session.journey === PURCHASE && rnd.chance(p.signedIn[channel]))) {
      session.identified.add(channel);
    }
  } else if (channel === 'call_center') {
    // A number linked before is recognised; otherwise the call comes in from the number
    // alone and the agent identifies the caller.
    if (session.shopper.phoneKnown) session.identified.add(channel);
    else session.noiseNext = true;
  } else if (channel === 'store' && !session.shopper.card) {
    session.visit ??= `visit-${hex(rnd)}${hex(rnd)}`;
  }
}

/** Who the event's channel knows the customer as, at this point of the visit. */
function idsOf(session: Session): Ids {
  const { shopper, channel } = session;
  const known = session.identified.has(channel);
  const as = (anonymous: string | undefined, linked: boolean): Ids => ({
    ...(linked ? { customer_id: shopper.customer } : {}),
    ...(anonymous ? { anonymous_id: anonymous } : {}),
  });
  switch (channel) {
    case 'web':
      return as(shopper.cookie, known);
    case 'mobile':
      return as(shopper.device, known);
    case 'call_center':
      return as(shopper.phone, known);
    case 'store':
      return as(shopper.card?.id ?? session.visit, shopper.card?.registered === true);
    case 'email':
      return as(undefined, true);
  }
}

function propertiesOf(session: Session, type: string, rnd: Random): Properties | undefined {
  switch (type) {
    case 'product_viewed':
      return { product_id: `sku-${rnd.int(1, 400)}`, price_eur: rnd.int(5, 300) };
    case 'cart_added': {
      // 1 to 3 items at EUR 9.99 to 129.99: a cart of about EUR 10 to 390.
      const quantity = rnd.int(1, 3);
      session.cartValue = cents(quantity * (rnd.int(999, 12_999) / 100));
      return { quantity, cart_value: session.cartValue };
    }
    case 'checkout_started':
      // Now and then one more item at checkout.
      if (rnd.chance(0.2)) session.cartValue = cents(session.cartValue + rnd.int(499, 2_999) / 100);
      return { cart_value: session.cartValue };
    case 'payment_submitted':
      // Now and then a 10% voucher.
      if (rnd.chance(0.1)) session.cartValue = cents(session.cartValue * 0.9);
      return {
        method:
          session.channel === 'store' ? rnd.pick(['card', 'cash']) : rnd.pick(['card', 'paypal']),
        cart_value: session.cartValue,
      };
    case 'order_placed':
      return { currency: 'EUR', cart_value: session.cartValue };
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
  const ids = idsOf(session);
  if (session.channel === 'call_center' && ids.customer_id) session.shopper.phoneKnown = true;
  return {
    ...ids,
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
  session.tookStep = false;
  if (session.noiseNext) {
    session.noiseNext = false;
    const event = emit(session, rnd.pick(NOISE[session.channel]), rnd);
    // The call has come in; from the agent's first words on, they know who calls.
    if (session.channel === 'call_center') session.identified.add('call_center');
    return event;
  }
  const { journey, channel } = session;
  const step = journey.steps[session.step];
  if (!step) throw new Error(`session of ${session.shopper.customer} is past its last step`);

  // An anonymous web or app visitor logs in at checkout or when signing up (that step's
  // event then carries both ids and links them), or earlier, when adding to the cart.
  if ((channel === 'web' || channel === 'mobile') && !session.identified.has(channel)) {
    if (session.step >= journey.signInStep) {
      session.identified.add(channel);
    } else if (step.eventType === 'cart_added' && rnd.chance(p.loginAtCart)) {
      session.identified.add(channel);
      return emit(session, 'logged_in', rnd);
    }
  }

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
  session.tookStep = true;
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
    const canStay = next.includes(channel);
    session.noiseNext = rnd.chance(p.noise);
    if (!canStay || rnd.chance(p.handoff)) {
      const neighbours = HANDOFFS[channel].filter((c) => next.includes(c));
      arrive(session, rnd.pick(neighbours.length > 0 ? neighbours : next), rnd, p, channel);
    }
  }
  return event;
}

/**
 * When the engine ends the customer's journey instance: a completed one at the event that
 * reached the last step; any other at its deadline, the journey's step timeout after the
 * last step it reached (a failure or a word after that step does not move it).
 */
export function instanceEnd(session: Session, lastStepAt: number): number {
  return session.outcome === 'completed' ? lastStepAt : lastStepAt + session.journey.stepTimeoutMs;
}

/** Scores 1 to 5, weighted: customers who got what they came for mostly give 4 or 5. */
const SCORES: Readonly<Record<'completed' | 'left' | 'failed', Record<string, number>>> = {
  completed: { 1: 2, 2: 3, 3: 10, 4: 35, 5: 50 },
  left: { 1: 15, 2: 30, 3: 35, 4: 15, 5: 5 },
  // An error on the way hurts most.
  failed: { 1: 45, 2: 30, 3: 15, 4: 7, 5: 3 },
};

export interface SurveyAnswer extends Emitted {
  /** When the customer answers; within the step timeout after `instanceEnd`. */
  timestamp: number;
}

/**
 * The satisfaction survey a customer may answer once their journey instance ended
 * (`session.done`), as the last event's channel knew them, with a `score` of 1 to 5:
 * completers a few seconds after completing, the others a while after their deadline (the
 * survey goes out once they are taken to have left). Its time lies in
 * `[end, end + step timeout]`, where the drop-offs look for ratings. `lastStepAt` is when
 * the last step the instance reached was taken; undefined when it took none (no instance,
 * no survey).
 */
export function surveyAnswer(
  session: Session,
  last: Emitted,
  lastStepAt: number | undefined,
  rnd: Random,
  p: StepProbabilities,
): SurveyAnswer | undefined {
  if (!session.done || !session.outcome || lastStepAt === undefined) return undefined;
  if (!rnd.chance(p.feedback)) return undefined;
  const score = Number(rnd.weighted(SCORES[session.outcome]));
  const timeout = session.journey.stepTimeoutMs;
  const delay =
    session.outcome === 'completed'
      ? rnd.int(1_000, Math.min(10_000, timeout))
      : rnd.int(Math.min(5_000, timeout), Math.floor(timeout / 2));
  return {
    ...(last.customer_id ? { customer_id: last.customer_id } : {}),
    ...(last.anonymous_id ? { anonymous_id: last.anonymous_id } : {}),
    type: session.journey.feedbackType,
    channel: last.channel,
    properties: { score, journey: session.journey.id },
    timestamp: instanceEnd(session, lastStepAt) + delay,
  };
}
