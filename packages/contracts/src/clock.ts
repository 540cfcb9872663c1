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
 * Corrects an event time by its client's clock skew, as Segment, PostHog and Snowplow do:
 * the client said it sent the batch at `sentAt` by its own clock, we received it at
 * `receivedAt` by ours, so its clock is off by the difference and so is every event time it
 * wrote. Without `sentAt` the event time stands as sent.
 */
export function correctSkew(timestamp: number, sentAt: number | undefined, receivedAt: number) {
  return sentAt === undefined ? timestamp : timestamp + (receivedAt - sentAt);
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
