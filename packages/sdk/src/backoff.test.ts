import { describe, expect, it } from 'vitest';
import { isRetryableStatus, parseRetryAfter, retryDelay } from './backoff.js';

const policy = { baseMs: 100, maxMs: 2000, maxRetryAfterMs: 60_000 };

describe('backoff', () => {
  it('doubles the ceiling per attempt up to the maximum, with full jitter', () => {
    expect([1, 2, 3, 4, 5, 6].map((a) => retryDelay(a, undefined, () => 1, policy))).toEqual([
      100, 200, 400, 800, 1600, 2000,
    ]);
    expect(retryDelay(4, undefined, () => 0, policy)).toBe(0);
    expect(retryDelay(4, undefined, () => 0.5, policy)).toBe(400);
  });

  it('never comes back before Retry-After, and spreads clients by up to 20% above it', () => {
    expect(retryDelay(1, 1000, () => 0, policy)).toBe(1000);
    expect(retryDelay(1, 1000, () => 1, policy)).toBe(1100);
    // Retry-After only lengthens the wait: past it, the exponential backoff still applies.
    expect(retryDelay(6, 1000, () => 1, policy)).toBe(2000);
    // A bogus header is capped.
    expect(retryDelay(1, 86_400_000, () => 0, policy)).toBe(60_000);
  });

  it('backs off as usual when Retry-After says 0 or a past date', () => {
    expect([1, 2, 3, 4].map((a) => retryDelay(a, 0, () => 1, policy))).toEqual([
      100, 200, 400, 800,
    ]);
    expect(retryDelay(4, 0, () => 0.5, policy)).toBe(400);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.UTC(2026, 9, 1, 12);
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 2.5 ', now)).toBe(2500);
    expect(parseRetryAfter(new Date(now + 3000).toUTCString(), now)).toBe(3000);
    expect(parseRetryAfter(new Date(now - 3000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('retries what means "later", never what means "wrong"', () => {
    for (const status of [408, 429, 500, 502, 503, 504])
      expect(isRetryableStatus(status)).toBe(true);
    for (const status of [400, 401, 403, 404, 413, 415])
      expect(isRetryableStatus(status)).toBe(false);
  });
});
