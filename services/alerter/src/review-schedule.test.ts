import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Journey } from '@touchstream/contracts';
import type { ReviewPost } from '@touchstream/store';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_DELIVERY, type DeliveryResult } from './notifier.js';
import { deliverReview, reviewIdempotencyKey } from './review-delivery.js';
import {
  buildReviewSchedule,
  FALLBACK_PERIOD_MS,
  latestTickIn,
  owedTick,
  periodBefore,
  type ReviewLedger,
  scheduleOf,
  tickAfter,
} from './review-schedule.js';

const at = (text: string) => Date.parse(text);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe('review ticks', () => {
  const everyMinute = scheduleOf('* * * * *');

  it('finds the first tick strictly after a time', () => {
    expect(tickAfter(everyMinute, at('2026-12-05T10:00:30Z'))).toBe(at('2026-12-05T10:01:00Z'));
    expect(tickAfter(everyMinute, at('2026-12-05T10:01:00Z'))).toBe(at('2026-12-05T10:02:00Z'));
    expect(tickAfter(scheduleOf('0 9 * * 1'), at('2026-12-05T10:00:00Z'))).toBe(
      at('2026-12-07T09:00:00Z'),
    );
  });

  it('finds the latest tick in a range, its end included', () => {
    const from = at('2026-12-05T10:00:00Z');
    expect(latestTickIn(everyMinute, from, at('2026-12-05T10:03:00Z'))).toBe(
      at('2026-12-05T10:03:00Z'),
    );
    expect(latestTickIn(everyMinute, from, at('2026-12-05T10:03:59.999Z'))).toBe(
      at('2026-12-05T10:03:00Z'),
    );
    expect(latestTickIn(everyMinute, from, at('2026-12-05T10:00:59Z'))).toBeNull();
  });

  it('owes only the latest tick after the last one, and only within the retry window', () => {
    const now = at('2026-12-05T10:05:30Z');
    // Ticks 10:01 to 10:05 were missed: only 10:05 is owed.
    expect(owedTick(everyMinute, at('2026-12-05T10:00:00Z'), now, HOUR)).toBe(
      at('2026-12-05T10:05:00Z'),
    );
    // The tick last posted is not owed again.
    expect(owedTick(everyMinute, at('2026-12-05T10:05:00Z'), now, HOUR)).toBeNull();
    // A daily tick of 09:00 is past an hour's window at 10:05:30.
    const daily = scheduleOf('0 9 * * *');
    expect(owedTick(daily, at('2026-12-04T09:00:00Z'), now, HOUR)).toBeNull();
    expect(owedTick(daily, at('2026-12-04T09:00:00Z'), now, 2 * HOUR)).toBe(
      at('2026-12-05T09:00:00Z'),
    );
  });

  it('reviews the time since the previous tick', () => {
    expect(periodBefore(everyMinute, at('2026-12-05T10:01:00Z'))).toBe(MINUTE);
    expect(periodBefore(scheduleOf('0 9 * * 1'), at('2026-12-07T09:00:00Z'))).toBe(7 * DAY);
    // On weekdays: Monday's review covers the weekend since Friday's.
    expect(periodBefore(scheduleOf('0 9 * * 1-5'), at('2026-12-07T09:00:00Z'))).toBe(3 * DAY);
    expect(periodBefore(scheduleOf('0 0 1 * *'), at('2026-12-01T00:00:00Z'))).toBe(30 * DAY);
    // croner cannot walk back from a 29 February: seven days.
    expect(periodBefore(scheduleOf('0 0 29 2 *'), at('2028-02-29T00:00:00Z'))).toBe(
      FALLBACK_PERIOD_MS,
    );
  });
});

/** review_posts in memory: rows replaced by id as ReplacingMergeTree's FINAL reads them. */
function memoryLedger() {
  const rows = new Map<string, ReviewPost & { version: number }>();
  let version = 0;
  const kind = (p: ReviewPost) =>
    p.outcome === 'started' || p.outcome === 'stopped' ? p.outcome : 'post';
  const all = () => [...rows.values()];
  const ledger: ReviewLedger = {
    async latest() {
      const latest = new Map<string, ReviewPost & { version: number }>();
      for (const row of all()) {
        const seen = latest.get(row.journey);
        const later =
          !seen || row.tick > seen.tick || (row.tick === seen.tick && row.version > seen.version);
        if (later) latest.set(row.journey, row);
      }
      return [...latest.values()];
    },
    async pending() {
      return all()
        .filter((r) => r.outcome === 'pending')
        .sort((a, b) => a.tick - b.tick);
    },
    async save(post) {
      version += 1;
      rows.set(`${post.journey}|${post.tick}|${kind(post)}`, { ...post, version });
    },
  };
  return {
    ledger,
    /** The rows of a journey's posts (markers left out), by tick. */
    posts: (journey: string) =>
      all()
        .filter((r) => r.journey === journey && kind(r) === 'post')
        .sort((a, b) => a.tick - b.tick)
        .map((r) => ({ tick: new Date(r.tick).toISOString(), outcome: r.outcome })),
    markers: (journey: string) =>
      all()
        .filter((r) => r.journey === journey && kind(r) !== 'post')
        .map((r) => r.outcome),
  };
}

const journey = (id: string, schedule: string | undefined): Journey => ({
  id,
  name: id,
  steps: [
    { name: 'viewed', event_type: 'viewed' },
    { name: 'paid', event_type: 'paid' },
  ],
  step_timeout: '1h',
  failure_event_types: [],
  ...(schedule ? { review: { schedule, webhook_url: `https://hooks.example/${id}` } } : {}),
});

describe('posting reviews on their schedules', () => {
  const logger = pino({ level: 'silent' });
  let journeys: Journey[];
  let store: ReturnType<typeof memoryLedger>;
  /** What the fake receiver was sent: journey, tick and the body's period. */
  let sent: { journey: string; tick: string; period_ms: number; url: string }[];
  /** Builds each review; at once unless a test says otherwise. */
  let composing: (journey: Journey) => Promise<void>;
  /** Decides each delivery; delivered at once unless a test says otherwise. */
  let answer: (post: ReviewPost, signal: AbortSignal) => Promise<DeliveryResult>;
  const schedules: { stop: () => Promise<void> }[] = [];

  const delivered = async (): Promise<DeliveryResult> => ({
    outcome: 'delivered',
    attempts: 1,
    httpStatus: 200,
    error: '',
  });

  /** An alerter's review schedule over the shared ledger: started, with its stop. */
  const start = async (retryForMs = DEFAULT_DELIVERY.retryForMs) => {
    const abort = new AbortController();
    const schedule = buildReviewSchedule({
      logger,
      delivery: { ...DEFAULT_DELIVERY, minBackoffMs: 10, maxBackoffMs: 10, retryForMs },
      now: Date.now,
      signal: abort.signal,
      journeys: async () => journeys,
      ledger: store.ledger,
      compose: async (j, tick, periodMs) => {
        await composing(j);
        return JSON.stringify({ journey: j.id, url: j.review?.webhook_url, tick, periodMs });
      },
      deliver: async (post, options) => {
        const body = JSON.parse(post.body);
        sent.push({
          journey: post.journey,
          tick: new Date(post.tick).toISOString(),
          period_ms: body.periodMs,
          url: post.webhookUrl,
        });
        return answer(post, options.signal);
      },
    });
    await schedule.start();
    const handle = {
      schedule,
      async stop() {
        schedule.halt();
        abort.abort();
        await schedule.idle();
      },
    };
    schedules.push(handle);
    return handle;
  };
  const ticksSent = (id: string) => sent.filter((s) => s.journey === id).map((s) => s.tick);

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(at('2026-12-05T10:00:30Z'));
    journeys = [journey('shop', '* * * * *')];
    store = memoryLedger();
    sent = [];
    answer = delivered;
    composing = async () => {};
  });

  afterEach(async () => {
    for (const s of schedules.splice(0)) await s.stop();
    vi.useRealTimers();
  });

  it('posts each tick once, from the first tick after the review was configured', async () => {
    await start();
    await vi.advanceTimersByTimeAsync(3 * MINUTE);
    // 10:00 came before the review was followed: not back-filled.
    expect(ticksSent('shop')).toEqual([
      '2026-12-05T10:01:00.000Z',
      '2026-12-05T10:02:00.000Z',
      '2026-12-05T10:03:00.000Z',
    ]);
    expect(sent.every((s) => s.period_ms === MINUTE)).toBe(true);
    expect(store.posts('shop')).toEqual([
      { tick: '2026-12-05T10:01:00.000Z', outcome: 'delivered' },
      { tick: '2026-12-05T10:02:00.000Z', outcome: 'delivered' },
      { tick: '2026-12-05T10:03:00.000Z', outcome: 'delivered' },
    ]);
    expect(store.markers('shop')).toEqual(['started']);
  });

  it('neither posts a tick again nor forgets one owed across a restart', async () => {
    const first = await start();
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:01:30: 10:01 posted
    await first.stop();
    // Started again within the same minute: 10:01 is not posted again.
    const second = await start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ticksSent('shop')).toEqual(['2026-12-05T10:01:00.000Z']);
    await second.stop();
    // Down from 10:01:40 to 10:05:30: of 10:02 to 10:05, the latest is posted, once.
    vi.setSystemTime(at('2026-12-05T10:05:30Z'));
    await start();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ticksSent('shop')).toEqual(['2026-12-05T10:01:00.000Z', '2026-12-05T10:05:00.000Z']);
    // And the schedule goes on.
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(ticksSent('shop')).toEqual([
      '2026-12-05T10:01:00.000Z',
      '2026-12-05T10:05:00.000Z',
      '2026-12-05T10:06:00.000Z',
    ]);
    // The review posted at 10:05 still covers one minute: the schedule's period.
    expect(sent.map((s) => s.period_ms)).toEqual([MINUTE, MINUTE, MINUTE]);
  });

  it('does not catch up a tick past the retry window', async () => {
    journeys = [journey('daily', '0 9 * * *')];
    vi.setSystemTime(at('2026-12-04T08:00:00Z'));
    const first = await start();
    await vi.advanceTimersByTimeAsync(1_000);
    await first.stop();
    // Down over 09:00 until 10:30: an hour and a half late, past the hour of retries.
    vi.setSystemTime(at('2026-12-04T10:30:00Z'));
    await start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ticksSent('daily')).toEqual([]);
    // The next day's tick is posted.
    vi.setSystemTime(at('2026-12-05T08:59:50Z'));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ticksSent('daily')).toEqual(['2026-12-05T09:00:00.000Z']);
  });

  it('resumes a post interrupted by a stop after the restart, without building it again', async () => {
    // The receiver never answers while the first alerter runs.
    answer = (_post, signal) =>
      new Promise((resolve) =>
        signal.addEventListener('abort', () =>
          resolve({ outcome: 'interrupted', attempts: 1, httpStatus: null, error: '' }),
        ),
      );
    const first = await start();
    await vi.advanceTimersByTimeAsync(40_000); // 10:01:10
    await first.stop();
    expect(store.posts('shop')).toEqual([{ tick: '2026-12-05T10:01:00.000Z', outcome: 'pending' }]);
    answer = delivered;
    await start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ticksSent('shop')).toEqual(['2026-12-05T10:01:00.000Z', '2026-12-05T10:01:00.000Z']);
    expect(store.posts('shop')).toEqual([
      { tick: '2026-12-05T10:01:00.000Z', outcome: 'delivered' },
    ]);
  });

  it('records a post given up on, and posts the next tick', async () => {
    answer = async () => ({
      outcome: 'failed',
      attempts: 4,
      httpStatus: 500,
      error: 'the receiver answered 500',
    });
    await start();
    await vi.advanceTimersByTimeAsync(2 * MINUTE);
    expect(store.posts('shop')).toEqual([
      { tick: '2026-12-05T10:01:00.000Z', outcome: 'failed' },
      { tick: '2026-12-05T10:02:00.000Z', outcome: 'failed' },
    ]);
  });

  it('retries building a review, and records a tick whose review could not be built', async () => {
    let failures = 2;
    composing = async () => {
      if (failures-- > 0) throw new Error('ClickHouse is away');
    };
    await start(30_000);
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:01:30
    expect(ticksSent('shop')).toEqual(['2026-12-05T10:01:00.000Z']);
    composing = async () => {
      throw new Error('ClickHouse is away');
    };
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:02:30: 10:02 given up on at 10:02:30
    expect(ticksSent('shop')).toHaveLength(1);
    expect(store.posts('shop')).toEqual([
      { tick: '2026-12-05T10:01:00.000Z', outcome: 'delivered' },
      { tick: '2026-12-05T10:02:00.000Z', outcome: 'failed' },
    ]);
  });

  it('posts a tick to the webhook URL the journey has at the tick', async () => {
    await start();
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:01:30
    journeys = [
      {
        ...journey('shop', '* * * * *'),
        review: { schedule: '* * * * *', webhook_url: 'https://hooks.example/new' },
      },
    ];
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:02:30
    expect(sent.map((s) => s.url)).toEqual([
      'https://hooks.example/shop',
      'https://hooks.example/new',
    ]);
  });

  it('stops a removed review and starts a re-added one from its next tick', async () => {
    journeys = [journey('shop', '* * * * *'), journey('gone', '* * * * *')];
    const first = await start();
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:01:30
    journeys = [journey('shop', undefined)];
    await vi.advanceTimersByTimeAsync(3 * MINUTE); // 10:04:30
    expect(ticksSent('shop')).toEqual(['2026-12-05T10:01:00.000Z']);
    expect(ticksSent('gone')).toEqual(['2026-12-05T10:01:00.000Z']);
    expect(store.markers('gone')).toEqual(['started', 'stopped']);
    expect(first.schedule.size).toBe(0);
    // Added back at 10:04:30: 10:04 came while it had no review.
    journeys = [journey('shop', '* * * * *')];
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:05:30
    expect(ticksSent('shop')).toEqual(['2026-12-05T10:01:00.000Z', '2026-12-05T10:05:00.000Z']);
    // Nor after a restart: removed and stored as stopped, it owes nothing.
    journeys = [];
    await vi.advanceTimersByTimeAsync(2_000);
    await first.stop();
    vi.setSystemTime(at('2026-12-05T10:09:30Z'));
    journeys = [journey('shop', '* * * * *')];
    await start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ticksSent('shop')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(ticksSent('shop').at(-1)).toBe('2026-12-05T10:10:00.000Z');
  });

  it('follows a changed schedule from its next tick, also across a restart', async () => {
    const first = await start();
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:01:30
    journeys = [journey('shop', '*/5 * * * *')];
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:02:30
    await first.stop();
    vi.setSystemTime(at('2026-12-05T10:12:30Z'));
    await start();
    await vi.advanceTimersByTimeAsync(1_000);
    // Of 10:05 and 10:10, due during the downtime on the new schedule, the latest only.
    expect(ticksSent('shop')).toEqual(['2026-12-05T10:01:00.000Z', '2026-12-05T10:10:00.000Z']);
    expect(sent.at(-1)?.period_ms).toBe(5 * MINUTE);
    expect(store.markers('shop')).toEqual(['started', 'started']);
  });

  it('changes the schedule with no restart: no tick of the new one before the change', async () => {
    await start();
    await vi.advanceTimersByTimeAsync(MINUTE); // 10:01:30
    journeys = [journey('shop', '*/2 * * * *')];
    await vi.advanceTimersByTimeAsync(4 * MINUTE); // 10:05:30
    expect(ticksSent('shop')).toEqual([
      '2026-12-05T10:01:00.000Z',
      '2026-12-05T10:02:00.000Z',
      '2026-12-05T10:04:00.000Z',
    ]);
  });
});

describe('delivering a review', () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      server.close();
    }
  });

  /** A real receiver on 127.0.0.1 answering with what `answer` decides per request. */
  async function receiver(answer: (n: number) => number) {
    const requests: { headers: Record<string, unknown>; body: string }[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        requests.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
        response.writeHead(answer(requests.length)).end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, requests };
  }

  const post = (url: string): ReviewPost => ({
    journey: 'shop',
    tick: Date.now(),
    schedule: '* * * * *',
    webhookUrl: url,
    outcome: 'pending',
    body: JSON.stringify({ text: '# Shop', journey: 'shop' }),
    attempts: 0,
    httpStatus: null,
    error: '',
  });
  const options = (allowInternal = true, signal = new AbortController().signal) => ({
    timeoutMs: 500,
    retryForMs: 2_000,
    minBackoffMs: 20,
    maxBackoffMs: 50,
    allowInternal,
    now: Date.now,
    signal,
    logger: pino({ level: 'silent' }),
  });

  it('retries a failing receiver with backoff, with the same body and key', async () => {
    const hook = await receiver((n) => (n < 3 ? 500 : 200));
    const review = post(hook.url);
    const result = await deliverReview(review, options());
    expect(result).toEqual({ outcome: 'delivered', attempts: 3, httpStatus: 200, error: '' });
    expect(hook.requests.map((r) => r.body)).toEqual([review.body, review.body, review.body]);
    expect(new Set(hook.requests.map((r) => r.headers['idempotency-key']))).toEqual(
      new Set([reviewIdempotencyKey(review)]),
    );
  });

  it('gives up after the retry window, and at once on a refusal', async () => {
    const failing = await receiver(() => 503);
    const late = { ...post(failing.url), tick: Date.now() - 5_000 };
    expect(await deliverReview(late, options())).toMatchObject({
      outcome: 'failed',
      attempts: 1,
      httpStatus: 503,
    });
    const refusing = await receiver(() => 404);
    expect(await deliverReview(post(refusing.url), options())).toMatchObject({
      outcome: 'failed',
      attempts: 1,
      httpStatus: 404,
    });
  });

  it('refuses an internal address unless allowed', async () => {
    const hook = await receiver(() => 200);
    const result = await deliverReview(post(hook.url), options(false));
    expect(result.outcome).toBe('failed');
    expect(result.error).toContain('TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL');
    expect(hook.requests).toHaveLength(0);
  });

  it('is interrupted by the stop', async () => {
    const hook = await receiver(() => 503);
    const abort = new AbortController();
    const delivering = deliverReview(post(hook.url), options(true, abort.signal));
    setTimeout(() => abort.abort(), 100);
    expect((await delivering).outcome).toBe('interrupted');
  });
});
