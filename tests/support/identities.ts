import type { Touchpoint } from '@touchstream/contracts';
import { seededRandom } from '../../apps/cli/src/simulate/random.js';

/** An event as a client sends it: a customer id, an anonymous id, or both. */
export type SentEvent = Omit<Touchpoint, 'customer_id'> & { customer_id?: string };

const carriesCustomer = (e: SentEvent) =>
  e.customer_id !== undefined && e.customer_id !== e.anonymous_id;

/**
 * The identity rules of API.md, written plainly: every event counts for the customer id it
 * carries; an event with only an anonymous id counts for the customer of the id's first
 * link in event time (ties: the smaller event id), else for the anonymous id itself.
 */
export function resolveIdentities(events: readonly SentEvent[]): Touchpoint[] {
  const first = new Map<string, SentEvent>();
  for (const e of events) {
    if (!e.anonymous_id || !carriesCustomer(e)) continue;
    const held = first.get(e.anonymous_id);
    if (
      !held ||
      e.timestamp < held.timestamp ||
      (e.timestamp === held.timestamp && e.event_id < held.event_id)
    ) {
      first.set(e.anonymous_id, e);
    }
  }
  return events.map((e) => {
    if (carriesCustomer(e)) return e as Touchpoint;
    const anonymous = e.anonymous_id as string;
    return { ...e, customer_id: first.get(anonymous)?.customer_id ?? anonymous };
  });
}

/** The customers that events sent with only an anonymous id count for, once resolved. */
export function stitchedCustomers(events: readonly SentEvent[]): Set<string> {
  const resolved = resolveIdentities(events);
  return new Set(
    resolved
      .filter(
        (e, i) => !carriesCustomer(events[i] as SentEvent) && e.customer_id !== e.anonymous_id,
      )
      .map((e) => e.customer_id),
  );
}

/**
 * Known-customer traffic made anonymous the way channels see it: a share of customers
 * browse under a cookie until a step at which they log in (that event carries both ids,
 * the link), some never log in, and some cookies are shared: another customer logs in on
 * the same cookie, at a random time, earlier or later than the owner (a conflict).
 */
export function anonymize(events: readonly Touchpoint[], seed: number): SentEvent[] {
  const rnd = seededRandom(seed);
  const plans = new Map<string, { cookie: string; loginStep: number; never: boolean }>();
  const out: SentEvent[] = [];
  const seen = new Map<string, number>();
  for (const event of events) {
    let plan = plans.get(event.customer_id);
    if (!plan && !plans.has(event.customer_id)) {
      plan = rnd.chance(0.6)
        ? {
            cookie: `cookie-${event.customer_id}`,
            loginStep: rnd.int(0, 4),
            never: rnd.chance(0.15),
          }
        : undefined;
      plans.set(event.customer_id, plan as never);
    }
    const index = seen.get(event.customer_id) ?? 0;
    seen.set(event.customer_id, index + 1);
    if (!plan || !['web', 'mobile'].includes(event.channel)) {
      out.push(event);
      continue;
    }
    const { customer_id, ...rest } = event;
    if (plan.never || index < plan.loginStep) out.push({ ...rest, anonymous_id: plan.cookie });
    else out.push({ ...event, anonymous_id: plan.cookie });
  }
  // Shared cookies: another customer logs in on one, with an event of no journey.
  const customers = [...plans.keys()];
  const cookies = [...plans.values()].filter((p) => p !== undefined).map((p) => p.cookie);
  const times = events.map((e) => e.timestamp);
  const [earliest, latest] = [Math.min(...times), Math.max(...times)];
  for (const cookie of cookies) {
    if (!rnd.chance(0.15)) continue;
    out.push({
      event_id: `${cookie}-shared`,
      customer_id: rnd.pick(customers),
      anonymous_id: cookie,
      type: 'identified',
      channel: 'web',
      timestamp: rnd.int(earliest, latest),
    });
  }
  return out;
}
