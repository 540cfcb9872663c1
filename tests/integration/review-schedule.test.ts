import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Alerter, buildAlerter } from '@touchstream/alerter';
import type { JourneyBody } from '@touchstream/contracts';
import {
  deleteJourney,
  listReviewPosts,
  migrate,
  type Store,
  saveJourney,
} from '@touchstream/store';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestStore } from '../support/store.js';
import { eventually } from '../support/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const MINUTE = 60_000;

/**
 * The alerter's wall clock, running at the real pace from where a test sets it: a test
 * moves it to just before a tick, or past a downtime, instead of waiting real minutes.
 */
const clock = {
  offset: 0,
  now: () => Date.now() + clock.offset,
  set(at: number) {
    clock.offset = at - Date.now();
  },
};

/** A minute boundary ahead of the real clock: the tests' ticks are counted from it. */
const M0 = Math.ceil(Date.now() / MINUTE) * MINUTE + 10 * MINUTE;
const iso = (ms: number) => new Date(ms).toISOString();

const journey = (name: string, webhookUrl: string, schedule = '* * * * *'): JourneyBody => ({
  name,
  steps: [
    { name: 'viewed', event_type: `${name}.viewed` },
    { name: 'paid', event_type: `${name}.paid` },
  ],
  step_timeout: '1h',
  failure_event_types: [],
  review: { schedule, webhook_url: webhookUrl },
});

/** A receiver on 127.0.0.1 answering 500 until `healthy`, then 200. */
async function startFlakyReceiver() {
  const requests: { status: number; key: unknown; body: unknown }[] = [];
  const receiver = {
    healthy: false,
    requests,
    url: '',
    server: undefined as Server | undefined,
  };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const status = receiver.healthy ? 200 : 500;
      requests.push({
        status,
        key: request.headers['idempotency-key'],
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      response.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  receiver.server = server;
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/flaky`;
  return receiver;
}

describe('posting journey reviews on their schedules', () => {
  let store: Store;
  let receiver: WebhookReceiver;
  let flaky: Awaited<ReturnType<typeof startFlakyReceiver>>;
  let alerter: Alerter | undefined;

  /** An alerter on the test's store and clock, as `touchstream start` builds it. */
  const startAlerter = async () => {
    alerter = buildAlerter({
      store,
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      intervalMs: MINUTE,
      now: clock.now,
      // The receivers listen on 127.0.0.1; short backoffs, so that retries pass in seconds.
      delivery: { allowInternal: true, minBackoffMs: 100, maxBackoffMs: 300, timeoutMs: 2_000 },
    });
    await alerter.start();
  };
  const stopAlerter = async () => {
    await alerter?.stop();
    alerter = undefined;
  };
  const rows = async (id: string) =>
    (await listReviewPosts(store, id)).map((r) => ({
      tick: iso(r.tick),
      outcome: r.outcome,
      attempts: r.attempts,
      http_status: r.httpStatus,
    }));
  const postedTicks = (name: string) =>
    receiver.posts(name).map((p) => p.headers['idempotency-key']);

  beforeAll(async () => {
    store = await openTestStore();
    await migrate(store);
    receiver = await startWebhookReceiver();
    flaky = await startFlakyReceiver();
  });

  afterAll(async () => {
    await stopAlerter();
    await receiver?.close();
    flaky?.server?.closeAllConnections();
    flaky?.server?.close();
    await store?.close();
  });

  it('posts each tick once, with the review in Markdown and as JSON', async () => {
    await saveJourney(store, 'shop', journey('shop', receiver.url('shop')));
    clock.set(M0 + 30_000);
    await startAlerter();
    // Followed from its next tick, M0 + 1 minute, about a second of real time away.
    expect((await listReviewPosts(store, 'shop')).map((r) => r.outcome)).toEqual(['started']);
    clock.set(M0 + 59_000);
    await eventually(async () => expect(receiver.posts('shop')).toHaveLength(1), 20_000);
    const [post] = receiver.posts('shop');
    expect(post?.headers['idempotency-key']).toBe(`review:shop:${iso(M0 + MINUTE)}`);
    expect(post?.body).toMatchObject({
      journey: 'shop',
      name: 'shop',
      period: '1m',
      current: { from: iso(M0), to: iso(M0 + MINUTE), entered: 0 },
      transitions: [{ from_step: 'viewed', to_step: 'paid' }],
      alerts: [],
    });
    expect(typeof post?.body.text).toBe('string');
    expect(post?.body.text).toContain('shop');
    await eventually(async () =>
      expect(await rows('shop')).toEqual([
        expect.objectContaining({ outcome: 'started' }),
        { tick: iso(M0 + MINUTE), outcome: 'delivered', attempts: 1, http_status: 200 },
      ]),
    );
    // The checks go on every second: the tick is not posted again.
    await sleep(2_500);
    expect(receiver.posts('shop')).toHaveLength(1);
  });

  it('neither posts a tick again nor forgets one owed across a restart', async () => {
    await stopAlerter();
    await startAlerter();
    await sleep(2_500);
    expect(postedTicks('shop')).toEqual([`review:shop:${iso(M0 + MINUTE)}`]);
    await stopAlerter();
    // Down over four ticks (M0 + 2 to 5 minutes): the latest is owed, once.
    clock.set(M0 + 5 * MINUTE + 20_000);
    await startAlerter();
    await eventually(async () => expect(receiver.posts('shop')).toHaveLength(2), 20_000);
    await sleep(2_500);
    expect(postedTicks('shop')).toEqual([
      `review:shop:${iso(M0 + MINUTE)}`,
      `review:shop:${iso(M0 + 5 * MINUTE)}`,
    ]);
    // Its review covers the period since the schedule's previous tick: one minute.
    expect(receiver.posts('shop')[1]?.body).toMatchObject({
      period: '1m',
      current: { from: iso(M0 + 4 * MINUTE), to: iso(M0 + 5 * MINUTE) },
    });
    expect((await rows('shop')).filter((r) => r.outcome !== 'started').map((r) => r.tick)).toEqual([
      iso(M0 + MINUTE),
      iso(M0 + 5 * MINUTE),
    ]);
  });

  it('retries a failing receiver, and resumes the retries after a restart', async () => {
    await deleteJourney(store, 'shop');
    await saveJourney(store, 'flaky', journey('flaky', flaky.url));
    // Journeys are reloaded every second: the new review is followed from its next tick.
    await eventually(async () =>
      expect((await listReviewPosts(store, 'flaky')).map((r) => r.outcome)).toEqual(['started']),
    );
    const tick = M0 + 6 * MINUTE;
    clock.set(tick - 1_000);
    await eventually(async () => expect(flaky.requests.length).toBeGreaterThanOrEqual(3), 20_000);
    expect(flaky.requests.every((r) => r.status === 500)).toBe(true);
    expect(new Set(flaky.requests.map((r) => r.key))).toEqual(
      new Set([`review:flaky:${iso(tick)}`]),
    );
    // Stopped while retrying: the post stays owed.
    await stopAlerter();
    expect(await rows('flaky')).toEqual([
      expect.objectContaining({ outcome: 'started' }),
      { tick: iso(tick), outcome: 'pending', attempts: 0, http_status: null },
    ]);
    const made = flaky.requests.length;
    flaky.healthy = true;
    await startAlerter();
    await eventually(async () =>
      expect((await rows('flaky')).at(-1)).toEqual({
        tick: iso(tick),
        outcome: 'delivered',
        attempts: 1,
        http_status: 200,
      }),
    );
    // The same post, delivered once, and no other tick.
    expect(flaky.requests.slice(made)).toEqual([
      { status: 200, key: `review:flaky:${iso(tick)}`, body: flaky.requests[0]?.body },
    ]);
    expect(flaky.requests[0]?.body).toMatchObject({ journey: 'flaky', period: '1m' });
  });

  it('stops the schedule of a deleted journey', async () => {
    // `shop` was deleted in the test before: its schedule stopped, and the 6th minute
    // came with no post to it.
    expect(postedTicks('shop')).toHaveLength(2);
    expect((await listReviewPosts(store, 'shop')).at(-1)?.outcome).toBe('stopped');
    await deleteJourney(store, 'flaky');
    await eventually(async () =>
      expect((await listReviewPosts(store, 'flaky')).at(-1)?.outcome).toBe('stopped'),
    );
    const made = flaky.requests.length;
    clock.set(M0 + 8 * MINUTE - 1_000);
    await sleep(3_000);
    expect(flaky.requests).toHaveLength(made);
    expect(postedTicks('shop')).toHaveLength(2);
  });
});
