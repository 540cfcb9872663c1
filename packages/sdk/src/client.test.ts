import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTouchstreamClient } from './client.js';
import type { DeliveryError } from './errors.js';

// The timing of batching and retries, with the clock under the test's control. What the
// collector really answers is covered against a running instance in tests/integration.
function recordingFetch(answers: (n: number) => Response | Error = () => accepted()) {
  const requests: {
    body: { events: { event_id: string }[]; sent_at: string };
    headers: Headers;
    at: number;
  }[] = [];
  const fetch = (async (_url: string, init: RequestInit) => {
    requests.push({
      body: JSON.parse(String(init.body)),
      headers: new Headers(init.headers),
      at: Date.now(),
    });
    const answer = answers(requests.length);
    if (answer instanceof Error) throw answer;
    return answer;
  }) as unknown as typeof globalThis.fetch;
  return { fetch, requests };
}

const accepted = () => new Response('{"accepted":1}', { status: 202 });
const unavailable = (retryAfter: string) =>
  new Response('{"error":{"code":"unavailable","message":"later","details":[]}}', {
    status: 503,
    headers: { 'retry-after': retryAfter },
  });

const event = (i: number) => ({ customer_id: `c${i}`, type: 'product_viewed', channel: 'web' });

describe('client timing', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.UTC(2026, 9, 1, 12) });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits for the interval before sending a partial batch, with ids and times filled in', async () => {
    const { fetch, requests } = recordingFetch();
    const client = createTouchstreamClient({
      url: 'http://touchstream.test/',
      key: 'k1',
      flushIntervalMs: 500,
      fetch,
    });
    expect(client.track(event(1))).toBe(true);
    expect(client.track({ ...event(2), event_id: 'mine', timestamp: new Date(0) })).toBe(true);
    await vi.advanceTimersByTimeAsync(499);
    expect(requests).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(requests).toHaveLength(1);
    const [first, second] = requests[0]?.body.events ?? [];
    expect(first).toMatchObject({ customer_id: 'c1', timestamp: Date.UTC(2026, 9, 1, 12) });
    expect(first?.event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(second).toMatchObject({ event_id: 'mine', timestamp: 0 });
    expect(requests[0]?.headers.get('authorization')).toBe('Bearer k1');
    await vi.advanceTimersByTimeAsync(0);
    expect(client.stats()).toMatchObject({ tracked: 2, sent: 2, accepted: 2, pending: 0 });
  });

  it('sends a full batch at once and keeps the rest for the interval', async () => {
    const { fetch, requests } = recordingFetch();
    const client = createTouchstreamClient({
      url: 'http://t',
      maxBatchEvents: 10,
      flushIntervalMs: 1000,
      fetch,
    });
    for (let i = 0; i < 25; i++) client.track(event(i));
    await vi.advanceTimersByTimeAsync(0);
    expect(requests.map((r) => r.body.events.length)).toEqual([10, 10]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(requests.map((r) => r.body.events.length)).toEqual([10, 10, 5]);
    const ids = requests.flatMap((r) => r.body.events.map((e) => e.event_id));
    expect(new Set(ids).size).toBe(25);
  });

  it('refuses events beyond the buffer, and reports each one', async () => {
    const errors: DeliveryError[] = [];
    const { fetch } = recordingFetch();
    const client = createTouchstreamClient({
      url: 'http://t',
      maxBufferedEvents: 3,
      fetch,
      onError: (e) => errors.push(e),
    });
    expect([1, 2, 3, 4].map((i) => client.track(event(i)))).toEqual([true, true, true, false]);
    expect(errors.map((e) => e.kind)).toEqual(['buffer_full']);
    await client.flush();
    expect(client.track(event(5))).toBe(true);
    expect(client.stats()).toMatchObject({ tracked: 4, refused: 1, accepted: 3, pending: 1 });
  });

  it('refuses an event that breaks the contract alone, not its batch', () => {
    const errors: DeliveryError[] = [];
    const client = createTouchstreamClient({
      url: 'http://t',
      fetch: recordingFetch().fetch,
      onError: (e) => errors.push(e),
    });
    expect(client.track({ ...event(1), type: 'Product Viewed' })).toBe(false);
    expect(errors[0]?.kind).toBe('invalid_event');
    expect(errors[0]?.details[0]?.path).toBe('type');
  });

  it('retries the same batch after Retry-After, with backoff between network failures', async () => {
    const { fetch, requests } = recordingFetch((n) =>
      n === 1 ? unavailable('2') : n === 2 ? new TypeError('fetch failed') : accepted(),
    );
    const client = createTouchstreamClient({
      url: 'http://t',
      fetch,
      random: () => 0.5,
      backoff: { baseMs: 100, maxMs: 1000 },
    });
    client.track(event(1));
    const flushed = client.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1999);
    expect(requests).toHaveLength(1);
    // Retry-After 2 s plus half of the 20% spread of the first retry's 100 ms ceiling.
    await vi.advanceTimersByTimeAsync(51);
    expect(requests).toHaveLength(2);
    // Second retry: half of a 200 ms ceiling.
    await vi.advanceTimersByTimeAsync(100);
    expect(requests).toHaveLength(3);
    await flushed;
    // The same events each time, each stamped with the clock of its own attempt.
    const events = requests[0]?.body.events;
    expect(requests.map((r) => r.body.events)).toEqual([events, events, events]);
    expect(requests.map((r) => Date.parse(r.body.sent_at))).toEqual(requests.map((r) => r.at));
    expect(client.stats()).toMatchObject({ sent: 1, retried: 2, accepted: 1, requests: 3 });
  });

  it('reports a 400 once with the server’s details and never retries it', async () => {
    const errors: DeliveryError[] = [];
    const { fetch, requests } = recordingFetch(
      () =>
        new Response(
          '{"error":{"code":"invalid_request","message":"bad","details":[{"index":0,"path":"x","message":"no"}]}}',
          { status: 400 },
        ),
    );
    const client = createTouchstreamClient({
      url: 'http://t',
      fetch,
      onError: (e) => errors.push(e),
    });
    client.track(event(1));
    await client.flush();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(requests).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ kind: 'rejected', status: 400, code: 'invalid_request' });
    expect(errors[0]?.details).toEqual([{ index: 0, path: 'x', message: 'no' }]);
    expect(errors[0]?.events).toHaveLength(1);
    expect(client.stats()).toMatchObject({ rejected: 1, accepted: 0, pending: 0 });
  });

  it('gives a batch up after maxRetryDurationMs', async () => {
    const errors: DeliveryError[] = [];
    const { fetch, requests } = recordingFetch(() => unavailable('1'));
    const client = createTouchstreamClient({
      url: 'http://t',
      fetch,
      random: () => 0,
      maxRetryDurationMs: 3500,
      onError: (e) => errors.push(e),
    });
    client.track(event(1));
    const flushed = client.flush();
    await vi.advanceTimersByTimeAsync(10_000);
    await flushed;
    expect(requests).toHaveLength(4);
    expect(errors.map((e) => [e.kind, e.status])).toEqual([['gave_up', 503]]);
    expect(client.stats()).toMatchObject({ failed: 1, pending: 0 });
  });

  it('close sends what is buffered, then refuses; what cannot go in time is given up', async () => {
    const { fetch, requests } = recordingFetch((n) => (n === 1 ? accepted() : unavailable('60')));
    const errors: DeliveryError[] = [];
    const client = createTouchstreamClient({
      url: 'http://t',
      maxBatchEvents: 2,
      flushIntervalMs: 60_000,
      fetch,
      onError: (e) => errors.push(e),
    });
    client.track(event(1));
    client.track(event(2));
    client.track(event(3));
    const closed = client.close({ timeoutMs: 5000 });
    expect(client.track(event(4))).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    const stats = await closed;
    expect(requests.map((r) => r.body.events.length)).toEqual([2, 1]);
    expect(stats).toMatchObject({ accepted: 2, failed: 1, refused: 1, pending: 0 });
    expect(errors.map((e) => e.kind)).toEqual(['closed', 'gave_up']);
  });
});
