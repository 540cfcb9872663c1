/** How long to wait before the next attempt of a batch. */
export interface BackoffPolicy {
  /** Upper bound of the first retry's wait. */
  baseMs: number;
  /** Upper bound of any computed wait (a server's Retry-After may ask for longer). */
  maxMs: number;
  /** A Retry-After beyond this is treated as this: a bogus header must not park a client for hours. */
  maxRetryAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  baseMs: 250,
  maxMs: 30_000,
  maxRetryAfterMs: 300_000,
};

/**
 * Parses a Retry-After header (delay in seconds, or an HTTP date) into milliseconds from
 * `now`; undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * The wait before retry number `attempt` (1 = the first retry). Full jitter over an
 * exponential ceiling spreads clients that failed together. A Retry-After is a floor: the
 * wait is never shorter than the server asked, and gets up to 20% on top so that clients
 * told the same second do not all come back in it. It only ever lengthens the wait: a
 * `Retry-After: 0` still backs off as if there were none.
 */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  const backoff = random() * ceiling;
  if (retryAfterMs === undefined) return Math.round(backoff);
  const floor = Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return Math.round(Math.max(backoff, floor + random() * Math.min(ceiling, floor * 0.2)));
}

/** Statuses worth the same request again: the server said "later", never "wrong". */
export function isRetryableStatus(status: number): boolean {
  // A 5xx never answers bad input (API.md), so retrying it cannot loop on a bad batch.
  return status === 408 || status === 429 || status >= 500;
}
