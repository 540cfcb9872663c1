import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DropoffResponse } from '@touchstream/contracts';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../apps/cli/src/simulate/random.js';
import { postAll } from '../support/events.js';
import { queryFunnel, roundMedians } from '../support/funnel-client.js';
import { referenceFunnel } from '../support/funnel-reference.js';
import { callJson, putJourney } from '../support/http.js';
import {
  anonymize,
  resolveIdentities,
  type SentEvent,
  stitchedCustomers,
} from '../support/identities.js';
import {
  dropoffsAt,
  expectDropoffsToMatch,
  PURCHASE,
  PURCHASE_FILE,
  purchaseFunnelSteps,
  purchaseTraffic,
} from '../support/journey-traffic.js';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { spawnTouchstream, startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

/**
 * Identities end to end (API.md, "Identities" and rule 8): events under a customer's
 * anonymous ids count as the customer's, before and after the link, whatever order the
 * link and the events arrive in; the first link in event time stands.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
const IDLE = '8s';

/** Shuffled (seeded), in batches of `size`. */
function shuffledBatches<T>(items: readonly T[], size: number, seed: number): T[][] {
  const rnd = seededRandom(seed);
  const order = items.map((item) => ({ item, key: rnd.int(0, 1_000_000) }));
  order.sort((a, b) => a.key - b.key);
  const batches: T[][] = [];
  for (let i = 0; i < order.length; i += size) {
    batches.push(order.slice(i, i + size).map((o) => o.item));
  }
  return batches;
}

async function metric(address: string, name: string) {
  const text = await (await fetch(`${address}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ').at(-1) ?? Number.NaN);
}

/**
 * A visitor browses and carts on the web under a cookie, logs in on the web (an event that
 * is no journey step, the link), then phones the call centre, which knows the customer id
 * only. Sent in the worst order: the call centre first, the link last.
 */
function handoffStory(start: number, name: string) {
  const customer = `${name}-customer`;
  const cookie = `${name}-cookie`;
  const at = (minutes: number) => start + minutes * MIN;
  const web = (id: string, type: string, minutes: number): SentEvent => ({
    event_id: `${name}-${id}`,
    anonymous_id: cookie,
    type,
    channel: 'web',
    timestamp: at(minutes),
  });
  const call = (id: string, type: string, minutes: number, properties = {}): SentEvent => ({
    event_id: `${name}-${id}`,
    customer_id: customer,
    type,
    channel: 'call_center',
    timestamp: at(minutes),
    properties,
  });
  const callCentre = [
    call('c1', 'checkout_started', 3),
    call('c2', 'payment_submitted', 4),
    call('c3', 'order_placed', 5, { currency: 'EUR' }),
  ];
  const browsing = [web('w1', 'product_viewed', 0), web('w2', 'cart_added', 1)];
  const login = { ...web('w3', 'identified', 2), customer_id: customer };
  return { customer, cookie, batches: [callCentre, browsing, [login]] };
}

async function expectOneCustomerWithHandoff(
  address: string,
  story: ReturnType<typeof handoffStory>,
  start: number,
) {
  const range = new URLSearchParams({
    from: new Date(start - HOUR).toISOString(),
    to: new Date(start + HOUR).toISOString(),
  });
  await eventually(async () => {
    const { status, body } = await callJson(
      address,
      'GET',
      `/v1/journeys/${PURCHASE.id}/dropoffs?${range}`,
    );
    expect(status).toBe(200);
    const answer = body as DropoffResponse;
    expect({
      entered: answer.entered,
      completed: answer.completed,
      stitched: answer.stitched,
    }).toEqual({ entered: 1, completed: 1, stitched: 1 });
    const checkout = answer.transitions.find((t) => t.from_step === 'carted');
    expect(checkout?.handoffs).toEqual([
      { from_channel: 'web', to_channel: 'call_center', continued: 1 },
    ]);
  }, 60_000);
  const customer = await callJson(address, 'GET', `/v1/customers/${story.customer}`);
  expect(customer.status).toBe(200);
  expect(customer.body).toEqual({
    customer_id: story.customer,
    anonymous_ids: [story.cookie],
    first_seen: new Date(start).toISOString(),
    last_seen: new Date(start + 5 * MIN).toISOString(),
    events: 6,
  });
  // The cookie is no customer of its own any more.
  expect((await callJson(address, 'GET', `/v1/customers/${story.cookie}`)).status).toBe(404);
}

describe('identities on the embedded bus', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('count an anonymous web visitor, later known in the call centre, as one customer with a web → call_center hand-off', async () => {
    const runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-identities-')),
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
      TOUCHSTREAM_LOG_LEVEL: 'warn',
    });
    cleanup.push(() => runtime.stop());
    await putJourney(runtime.address, PURCHASE);
    const start = Date.now() - 2 * HOUR;
    const story = handoffStory(start, 'story');
    await postAll(runtime.address, story.batches);
    await expectOneCustomerWithHandoff(runtime.address, story, start);

    // After the link, the cookie's events are the customer's as they arrive.
    const later = {
      event_id: 'story-w4',
      anonymous_id: story.cookie,
      type: 'product_viewed',
      channel: 'web',
      timestamp: start + 30 * MIN,
    };
    await postAll(runtime.address, [[later]]);
    await eventually(async () => {
      const { body } = await callJson(runtime.address, 'GET', `/v1/customers/${story.customer}`);
      expect(body).toMatchObject({ events: 7 });
    });
    expect(
      (await callJson(runtime.address, 'GET', '/v1/customers/nobody-we-know')).body,
    ).toMatchObject({ error: { code: 'not_found' } });
  });

  it('match the reference on random anonymous and known ids, links before and after, conflicts and shuffled delivery', async () => {
    const runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-identities-ref-')),
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
      TOUCHSTREAM_LOG_LEVEL: 'warn',
    });
    cleanup.push(() => runtime.stop());
    await putJourney(runtime.address, PURCHASE);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), async (seed) => {
        // Each run in a day of its own: ranges of one never see another's events.
        run += 1;
        const start = Date.now() - (run * 24 + 6) * HOUR;
        const sent = anonymize(purchaseTraffic({ customers: 120, start, seed }), seed);
        const resolved = resolveIdentities(sent);
        await postAll(runtime.address, shuffledBatches(sent, 70, seed));
        const stitched = stitchedCustomers(sent);
        expect(stitched.size).toBeGreaterThan(0);
        await expectDropoffsToMatch(
          dropoffsAt(runtime.address),
          PURCHASE,
          resolved,
          start,
          stitched,
        );
        const query = {
          steps: purchaseFunnelSteps(),
          from: start - HOUR,
          to: start + 3 * HOUR,
          windowMs: 20 * MIN,
          filters: [],
        };
        const { status, body } = await queryFunnel(runtime.address, {
          steps: query.steps,
          from: new Date(query.from).toISOString(),
          to: new Date(query.to).toISOString(),
          window: '20m',
          breakdown: 'channel',
        });
        expect(status).toBe(200);
        expect(roundMedians(body)).toEqual(
          roundMedians(referenceFunnel({ ...query, breakdown: 'channel' }, resolved)),
        );
      }),
      { numRuns: Number(process.env.IDENTITY_RUNS ?? 3), endOnFailure: true },
    );
    expect(await metric(runtime.address, 'touchstream_identity_conflicts_total')).toBeGreaterThan(
      0,
    );
  });
});

describe('identities on Kafka', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  it('stitch the same way, across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-identities-kafka-'));
    const journeysFile = join(dir, 'journeys.json');
    await writeFile(journeysFile, PURCHASE_FILE);
    const env = {
      TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
      TOUCHSTREAM_JOURNEYS_FILE: journeysFile,
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
      TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
      TOUCHSTREAM_TOPIC_PREFIX: `${uniqueName('identities')}.`,
    };
    const start = Date.now() - 6 * HOUR;
    const story = handoffStory(start - 2 * HOUR, 'kafka-story');
    const sent = anonymize(purchaseTraffic({ customers: 150, start, seed: 21 }), 21);
    const uploads = shuffledBatches(sent, 60, 22);
    const half = Math.floor(uploads.length / 2);

    const first = await spawnTouchstream(['start'], env);
    cleanup.push(() => first.kill('SIGKILL'));
    await postAll(first.address, [...story.batches, ...uploads.slice(0, half)]);
    await first.kill('SIGKILL');

    const second = await spawnTouchstream(['start'], env);
    cleanup.push(() => second.kill('SIGTERM'));
    await postAll(second.address, uploads.slice(half));
    await expectOneCustomerWithHandoff(second.address, story, start - 2 * HOUR);
    await expectDropoffsToMatch(
      dropoffsAt(second.address),
      PURCHASE,
      resolveIdentities(sent),
      start,
      stitchedCustomers(sent),
    );
  });
});
