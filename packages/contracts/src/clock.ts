import ms from 'ms';
import { MIN_EVENT_TIME } from './event.js';

/** TOUCHSTREAM_MAX_FUTURE's default: an hour covers any sane clock and zone mistake. */
export const DEFAULT_MAX_FUTURE_MS = 3_600_000;

/** What the receiving side knows about time when it takes an event in. */
export interface ReceivingClock {
  /** The receiving clock, epoch milliseconds. */
  now: number;
  /** How far ahead of `now` an event time may be (TOUCHSTREAM_MAX_FUTURE). */
  maxFutureMs: number;
}

/**
 * A difference between the client's clock and ours smaller than this is the request's
 * travel time, not a wrong clock, and is left alone.
 */
export const SKEW_TOLERANCE_MS = 5_000;

/**
 * Corrects an event time by its client's clock skew, as Segment, PostHog and Snowplow do:
 * the client said it sent the batch at `sentAt` by its own clock, we received it at
 * `receivedAt` by ours, so its clock is off by the difference and so is every event time it
 * wrote. Without `sentAt` the event time stands as sent.
 *
 * The difference also holds the request's travel time, which varies from one attempt to
 * the next. Corrected by it, a retried event would get another time than its first attempt,
 * and the same event_id would no longer be the same event. So a difference within the
 * tolerance is not corrected (a synced client's retries stay identical) and a larger one is
 * corrected in whole seconds (a wrong clock's retries almost always agree).
 */
export function correctSkew(timestamp: number, sentAt: number | undefined, receivedAt: number) {
  if (sentAt === undefined) return timestamp;
  const skew = receivedAt - sentAt;
  if (Math.abs(skew) < SKEW_TOLERANCE_MS) return timestamp;
  return timestamp + Math.round(skew / 1000) * 1000;
}

/**
 * Why an event time cannot be taken, or undefined when it can. One client with a wrong clock
 * must never move event time for everyone else: an event further ahead than the allowed
 * margin would declare every other customer's in-progress instance dropped.
 */
export function eventTimeProblem(timestamp: number, clock: ReceivingClock): string | undefined {
  const ahead = timestamp - clock.now;
  if (ahead > clock.maxFutureMs) {
    return `is ${ms(ahead, { long: true })} (${ahead} ms) ahead of the receiving clock; at most ${ms(clock.maxFutureMs, { long: true })} is allowed`;
  }
  if (timestamp < MIN_EVENT_TIME) return 'is before 1970 once corrected by the client clock skew';
  return undefined;
}
