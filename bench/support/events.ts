/** The touchpoints and journeys the benchmarks generate and follow. */
import { type Journey, journeyBody, type Touchpoint } from '@touchstream/contracts';
import { PURCHASE } from '../../tests/support/journey-traffic.js';

/** mulberry32: the same events on every run. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = [
  'product_viewed',
  'product_viewed',
  'product_viewed',
  'cart_added',
  'checkout_started',
  'payment_submitted',
  'payment_failed',
  'order_placed',
  'email_opened',
  'call_started',
];
const CHANNELS = ['web', 'web', 'mobile', 'mobile', 'store', 'call_center', 'email'];
const DEVICES = ['desktop', 'ios', 'android', 'tablet'];
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export interface EventSource {
  /** An event as a client posts it: ISO timestamp. */
  next(): Record<string, unknown>;
}

/**
 * Touchpoints as channel services send them: a ULID-like id, a customer among `customers`,
 * a type, a channel and five properties (~260 bytes of JSON), in time order from `from`,
 * `meanGapMs` apart on average.
 */
export function eventSource(
  customers: number,
  seed = 42,
  { from = Date.UTC(2026, 9, 1, 8), meanGapMs = 25 } = {},
): EventSource {
  const rand = random(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)] as T;
  const id = (n: number) => Array.from({ length: n }, () => pick([...ALPHABET])).join('');
  let time = from;
  return {
    next() {
      time += Math.floor(rand() * 2 * meanGapMs);
      const customer = Math.floor(rand() * customers);
      return {
        event_id: `evt_${id(26)}`,
        customer_id: `cus_${String(customer).padStart(9, '0')}`,
        type: pick(TYPES),
        channel: pick(CHANNELS),
        timestamp: new Date(time).toISOString(),
        properties: {
          session_id: `ses_${id(16)}`,
          sku: `SKU-${Math.floor(rand() * 100_000)}`,
          price: Math.round(rand() * 50_000) / 100,
          currency: 'EUR',
          device: pick(DEVICES),
        },
      };
    },
  };
}

/** The same event as it travels on the bus (timestamp in epoch milliseconds). */
export function toTouchpoint(event: Record<string, unknown>): Touchpoint {
  return { ...event, timestamp: Date.parse(event.timestamp as string) } as Touchpoint;
}

/** The journeys the engine and processor benchmarks follow: a purchase and an assisted sale. */
export const BENCH_JOURNEYS: Journey[] = [
  {
    id: 'online-purchase',
    ...journeyBody.parse({
      name: 'Online purchase',
      // The steps of the tests' purchase journey; a longer timeout and one failure type.
      steps: PURCHASE.steps,
      step_timeout: '30m',
      failure_event_types: ['payment_failed'],
    }),
  },
  {
    id: 'assisted-sale',
    ...journeyBody.parse({
      name: 'Assisted sale',
      steps: [
        { name: 'called', event_type: 'call_started', channel: 'call_center' },
        { name: 'ordered', event_type: 'order_placed' },
      ],
      step_timeout: '2h',
    }),
  },
];
