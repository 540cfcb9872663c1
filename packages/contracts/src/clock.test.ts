import { describe, expect, it } from 'vitest';
import { correctSkew, eventTimeProblem } from './clock.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 11, 4, 12);

describe('client clock skew', () => {
  it('moves event times by the difference between the client clock and ours, both ways', () => {
    // The client's clock is 2 h ahead: it said it sent at 14:00 what we received at 12:00.
    expect(correctSkew(NOW + 2 * HOUR - 60_000, NOW + 2 * HOUR, NOW)).toBe(NOW - 60_000);
    // The client's clock is 3 h behind.
    expect(correctSkew(NOW - 3 * HOUR - 60_000, NOW - 3 * HOUR, NOW)).toBe(NOW - 60_000);
    expect(correctSkew(NOW - 60_000, undefined, NOW)).toBe(NOW - 60_000);
  });

  it('leaves travel time alone and corrects in whole seconds, so a retry keeps its time', () => {
    // Sent 1.2 s and then 4.9 s before it arrived, by a synced clock: no correction.
    expect(correctSkew(NOW - 60_000, NOW - 1_200, NOW)).toBe(NOW - 60_000);
    expect(correctSkew(NOW - 60_000, NOW + 4_900, NOW)).toBe(NOW - 60_000);
    // A clock 2 h fast; the first attempt travels 30 ms, the retry 10 s later 180 ms.
    const event = NOW + 2 * HOUR - 60_000;
    const first = correctSkew(event, NOW + 2 * HOUR - 30, NOW);
    const retry = correctSkew(event, NOW + 2 * HOUR + 10_000 - 180, NOW + 10_000);
    expect(first).toBe(NOW - 60_000);
    expect(retry).toBe(first);
  });

  it('refuses event times further ahead than the margin, and before 1970', () => {
    const clock = { now: NOW, maxFutureMs: HOUR };
    expect(eventTimeProblem(NOW + HOUR, clock)).toBeUndefined();
    expect(eventTimeProblem(NOW - 400 * 86_400_000, clock)).toBeUndefined();
    expect(eventTimeProblem(NOW + 2 * 86_400_000, clock)).toBe(
      'is 2 days (172800000 ms) ahead of the receiving clock; at most 1 hour is allowed',
    );
    expect(eventTimeProblem(-1, clock)).toMatch(/before 1970/);
  });
});
