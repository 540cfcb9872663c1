/** The channels the simulation runs a producer for, as channel services would. */
export const CHANNELS = ['web', 'mobile', 'store', 'call_center', 'email'] as const;
export type Channel = (typeof CHANNELS)[number];

export interface SimulatedStep {
  name: string;
  eventType: string;
  /** Channels on which a customer can take this step. */
  channels: readonly Channel[];
  /** What a channel sends when this step goes wrong. */
  failureType: string;
}

export interface SimulatedJourney {
  id: string;
  steps: readonly SimulatedStep[];
  /** Where customers enter, weighted. */
  entryChannels: Readonly<Partial<Record<Channel, number>>>;
  /**
   * From this step on, web and mobile know who the customer is: checkout needs a login,
   * signup makes the account. Before it their visitors may be anonymous.
   */
  signInStep: number;
  /** The journey's `step_timeout`: an instance not continued by then dropped at its deadline. */
  stepTimeoutMs: number;
  /** The event whose numeric `score` is a customer's rating (`feedback_event_types`). */
  feedbackType: string;
}

/** The two journeys of samples/journeys.yaml (a unit test keeps them in step). */
export const PURCHASE: SimulatedJourney = {
  id: 'online-purchase',
  steps: [
    {
      name: 'viewed',
      eventType: 'product_viewed',
      channels: ['web', 'mobile', 'store', 'email'],
      failureType: 'checkout_error',
    },
    {
      name: 'carted',
      eventType: 'cart_added',
      channels: ['web', 'mobile', 'store'],
      failureType: 'checkout_error',
    },
    {
      name: 'checkout',
      eventType: 'checkout_started',
      channels: ['web', 'mobile', 'store', 'call_center'],
      failureType: 'checkout_error',
    },
    {
      name: 'paid',
      eventType: 'payment_submitted',
      channels: ['web', 'mobile', 'store', 'call_center'],
      failureType: 'payment_failed',
    },
    {
      name: 'ordered',
      eventType: 'order_placed',
      channels: ['web', 'mobile', 'store', 'call_center'],
      failureType: 'payment_failed',
    },
  ],
  entryChannels: { web: 45, mobile: 30, store: 12, email: 13 },
  signInStep: 2,
  stepTimeoutMs: 120_000,
  feedbackType: 'csat_submitted',
};

export const SIGNUP: SimulatedJourney = {
  id: 'signup',
  steps: [
    {
      name: 'landed',
      eventType: 'landing_viewed',
      channels: ['web', 'mobile', 'email'],
      failureType: 'signup_failed',
    },
    {
      name: 'started',
      eventType: 'signup_started',
      channels: ['web', 'mobile'],
      failureType: 'signup_failed',
    },
    {
      name: 'registered',
      eventType: 'account_created',
      channels: ['web', 'mobile', 'call_center'],
      failureType: 'signup_failed',
    },
    // The confirmation link arrives by e-mail: every completed signup is a hand-off.
    {
      name: 'verified',
      eventType: 'email_verified',
      channels: ['email'],
      failureType: 'verification_failed',
    },
  ],
  entryChannels: { web: 50, mobile: 30, email: 20 },
  signInStep: 2,
  stepTimeoutMs: 300_000,
  feedbackType: 'csat_submitted',
};

export const SIMULATED_JOURNEYS = [PURCHASE, SIGNUP] as const;

/** Where a customer plausibly goes next when they switch channel. */
export const HANDOFFS: Readonly<Record<Channel, readonly Channel[]>> = {
  web: ['mobile', 'call_center', 'store'],
  mobile: ['web', 'store'],
  store: ['call_center', 'web'],
  call_center: ['web', 'email'],
  email: ['web', 'mobile'],
};

/** Events beside the journeys, as each channel sends them. */
export const NOISE: Readonly<Record<Channel, readonly string[]>> = {
  web: ['page_viewed', 'search'],
  mobile: ['app_opened', 'push_opened'],
  store: ['store_visit'],
  call_center: ['call_received'],
  email: ['email_opened', 'email_clicked'],
};

export interface BrokenStep {
  journey: SimulatedJourney;
  index: number;
  step: SimulatedStep;
}

/** A step named by its name or its event type, in either sample journey; purchase first. */
export function findStep(nameOrType: string): BrokenStep | undefined {
  for (const journey of SIMULATED_JOURNEYS) {
    const index = journey.steps.findIndex(
      (s) => s.name === nameOrType || s.eventType === nameOrType,
    );
    const step = journey.steps[index];
    if (step) return { journey, index, step };
  }
  return undefined;
}

/** Every accepted value of --break-step, for error messages. */
export function breakableSteps(): string[] {
  return SIMULATED_JOURNEYS.flatMap((j) => j.steps.flatMap((s) => [s.name, s.eventType]));
}
