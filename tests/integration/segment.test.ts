/**
 * Segment-compatible ingestion (API.md, v1.1) against `touchstream start` on the embedded
 * defaults, driven by the real Segment Node library (@segment/analytics-node) with only its
 * host changed, and read back from ClickHouse.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Analytics, type HTTPFetchFn } from '@segment/analytics-node';
import type { DropoffResponse } from '@touchstream/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { callJson } from '../support/http.js';
import { PURCHASE } from '../support/journey-traffic.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const KEYS = { ingest: 'segment-ingest-key', query: 'segment-query-key' };
const basic = (user: string) => `Basic ${Buffer.from(`${user}:`).toString('base64')}`;

interface Row {
  event_id: string;
  customer_id: string;
  anonymous_id: string;
  type: string;
  channel: string;
  timestamp: string;
  properties: Record<string, unknown>;
}

/** What the library reported: the status of every request it made, and delivery failures. */
function client(
  address: string,
  options: { writeKey?: string; httpClient?: HTTPFetchFn; maxRetries?: number } = {},
) {
  const analytics = new Analytics({
    writeKey: options.writeKey ?? KEYS.ingest,
    host: address,
    flushAt: 50,
    flushInterval: 200,
    maxRetries: options.maxRetries ?? 3,
    ...(options.httpClient ? { httpClient: options.httpClient } : {}),
  });
  const statuses: number[] = [];
  const failures: unknown[] = [];
  analytics.on('http_response', (response) => statuses.push(response.status));
  analytics.on('error', (error) => failures.push(error));
  return { analytics, statuses, failures };
}

/** A ClickHouse time, as the events table shows it. */
const stored = (iso: string) => iso.replace('T', ' ').replace('Z', '');

describe('Segment-compatible ingestion on the embedded defaults', () => {
  let runtime: Runtime;
  beforeAll(async () => {
    runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-segment-')),
      TOUCHSTREAM_INGEST_KEYS: KEYS.ingest,
      TOUCHSTREAM_QUERY_KEYS: KEYS.query,
    });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  /** The stored events of these ids, deduplicated, by id. */
  async function rows(ids: readonly string[]): Promise<Row[]> {
    const result = await runtime.store.query({
      query: `SELECT event_id, customer_id, anonymous_id, type, channel, timestamp, properties
              FROM events FINAL WHERE event_id IN {ids:Array(String)} ORDER BY event_id`,
      query_params: { ids },
      format: 'JSONEachRow',
    });
    const raw = await result.json<Omit<Row, 'properties'> & { properties: string }>();
    return raw.map((row) => ({ ...row, properties: JSON.parse(row.properties) }));
  }

  async function count(ids: readonly string[]) {
    const result = await runtime.store.query({
      query: `SELECT count() AS n, uniqExact(event_id) AS distinct_ids
              FROM events WHERE event_id IN {ids:Array(String)}`,
      query_params: { ids },
      format: 'JSONEachRow',
    });
    const [row] = await result.json<{ n: string | number; distinct_ids: string | number }>();
    return { rows: Number(row?.n), distinct: Number(row?.distinct_ids) };
  }

  it('stores what the Segment Node library sends: track, identify, page, screen, alias', async () => {
    const { analytics, statuses, failures } = client(runtime.address);
    const at = (minute: number) => new Date(Date.UTC(2026, 9, 1, 9, minute, 0, 123));
    analytics.identify({
      messageId: 'seg-lib-identify',
      userId: 'seg-user-1',
      anonymousId: 'seg-anon-1',
      traits: {
        email: 'ada@example.com',
        plan: 'Pro',
        logins: 3,
        address: { city: 'Lyon', country: 'FR' },
        roles: ['admin'],
      },
      timestamp: at(0),
    });
    analytics.track({
      messageId: 'seg-lib-track',
      userId: 'seg-user-1',
      event: 'Order Completed',
      properties: {
        channel: 'Call Center',
        total: 99.5,
        coupon: null,
        paid: true,
        products: [{ sku: 'a' }],
        shipping: { method: 'express', address: { zip: '69001' } },
      },
      context: { channel: 'ignored-when-properties-say' },
      timestamp: at(1),
    });
    analytics.page({
      messageId: 'seg-lib-page',
      anonymousId: 'seg-anon-solo',
      category: 'Docs',
      name: 'Pricing',
      properties: { path: '/pricing', url: 'https://example.com/pricing' },
      context: { channel: 'Web' },
      timestamp: at(2),
    });
    analytics.screen({
      messageId: 'seg-lib-screen',
      userId: 'seg-user-1',
      name: 'Home',
      properties: { variant: 'b' },
      context: { channel: 'Mobile' },
      timestamp: at(3),
    });
    analytics.alias({
      messageId: 'seg-lib-alias',
      userId: 'seg-user-1',
      previousId: 'seg-anon-1',
      timestamp: at(4),
    });
    // The library's own time: the call's.
    const before = Date.now();
    analytics.track({ messageId: 'seg-lib-now', userId: 'seg-user-2', event: 'Signed Up' });
    await analytics.closeAndFlush({ timeout: 20_000 });
    const after = Date.now();

    expect(failures).toEqual([]);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((status) => status === 200)).toBe(true);
    // On the embedded bus a 200 means stored: no waiting.
    const all = await rows([
      'seg-lib-alias',
      'seg-lib-identify',
      'seg-lib-page',
      'seg-lib-screen',
      'seg-lib-track',
    ]);
    expect(all).toEqual([
      {
        event_id: 'seg-lib-alias',
        customer_id: 'seg-user-1',
        anonymous_id: 'seg-anon-1',
        type: 'aliased',
        channel: 'server',
        timestamp: stored('2026-10-01T09:04:00.123Z'),
        properties: {},
      },
      {
        event_id: 'seg-lib-identify',
        customer_id: 'seg-user-1',
        anonymous_id: 'seg-anon-1',
        type: 'identified',
        channel: 'server',
        timestamp: stored('2026-10-01T09:00:00.123Z'),
        properties: {
          email: 'ada@example.com',
          plan: 'Pro',
          logins: 3,
          'address.city': 'Lyon',
          'address.country': 'FR',
        },
      },
      {
        event_id: 'seg-lib-page',
        customer_id: 'seg-anon-solo',
        anonymous_id: 'seg-anon-solo',
        type: 'page_viewed',
        channel: 'web',
        timestamp: stored('2026-10-01T09:02:00.123Z'),
        // The library puts the category into the properties itself; the name is added.
        properties: {
          path: '/pricing',
          url: 'https://example.com/pricing',
          category: 'Docs',
          name: 'Pricing',
        },
      },
      {
        event_id: 'seg-lib-screen',
        customer_id: 'seg-user-1',
        anonymous_id: '',
        type: 'screen_viewed',
        channel: 'mobile',
        timestamp: stored('2026-10-01T09:03:00.123Z'),
        properties: { variant: 'b', name: 'Home' },
      },
      {
        event_id: 'seg-lib-track',
        customer_id: 'seg-user-1',
        anonymous_id: '',
        type: 'order_completed',
        channel: 'call_center',
        timestamp: stored('2026-10-01T09:01:00.123Z'),
        properties: {
          channel: 'Call Center',
          total: 99.5,
          coupon: null,
          paid: true,
          'shipping.method': 'express',
        },
      },
    ]);
    const [now] = await rows(['seg-lib-now']);
    expect(now).toMatchObject({ customer_id: 'seg-user-2', type: 'signed_up', channel: 'server' });
    const time = Date.parse(`${now?.timestamp.replace(' ', 'T')}Z`);
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(after);

    // What was left out is counted.
    const metrics = await (await fetch(`${runtime.address}/metrics`)).text();
    expect(metrics).toMatch(
      /touchstream_collector_segment_properties_dropped_total\{reason="array"\} [2-9]/,
    );
    expect(metrics).toMatch(
      /touchstream_collector_segment_properties_dropped_total\{reason="nested"\} [1-9]/,
    );
  });

  it('stores a message once when the library retries it, and when it is sent twice', async () => {
    // The first request reaches the collector, then the connection "drops": the library
    // sends the same batch again, as it does after a network error.
    let attempts = 0;
    const droppingFetch: HTTPFetchFn = async (url, init) => {
      attempts += 1;
      const response = await fetch(url, init);
      if (attempts === 1) throw new Error('socket hang up');
      return response;
    };
    const first = client(runtime.address, { httpClient: droppingFetch });
    for (const id of ['seg-retry-1', 'seg-retry-2']) {
      first.analytics.track({
        messageId: id,
        userId: 'seg-retry-user',
        event: 'Cart Added',
        timestamp: new Date('2026-10-01T10:00:00.000Z'),
      });
    }
    await first.analytics.closeAndFlush({ timeout: 20_000 });
    expect(first.failures).toEqual([]);
    expect(attempts).toBe(2);

    // The same message from another process of the service.
    const second = client(runtime.address);
    second.analytics.track({
      messageId: 'seg-retry-1',
      userId: 'seg-retry-user',
      event: 'Cart Added',
      timestamp: new Date('2026-10-01T10:00:00.000Z'),
    });
    await second.analytics.closeAndFlush({ timeout: 20_000 });
    expect(second.statuses).toEqual([200]);

    expect((await count(['seg-retry-1', 'seg-retry-2'])).distinct).toBe(2);
    const deduplicated = await rows(['seg-retry-1', 'seg-retry-2']);
    expect(deduplicated.map((row) => [row.event_id, row.type, row.timestamp])).toEqual([
      ['seg-retry-1', 'cart_added', '2026-10-01 10:00:00.000'],
      ['seg-retry-2', 'cart_added', '2026-10-01 10:00:00.000'],
    ]);
  });

  it('refuses a wrong write key with 401 and stores nothing the library sent with it', async () => {
    const { analytics, statuses, failures } = client(runtime.address, { writeKey: 'wrong-key' });
    analytics.track({ messageId: 'seg-wrong-key', userId: 'u', event: 'Signed Up' });
    await analytics.closeAndFlush({ timeout: 20_000 });
    // A 401 is not retried by the library.
    expect(statuses).toEqual([401]);
    expect(failures).toHaveLength(1);
    expect((await count(['seg-wrong-key'])).rows).toBe(0);
  });

  it('takes the ingest key as Basic user name or Bearer; 401 unknown, 403 the query key', async () => {
    const body = (id: string) => ({
      messageId: id,
      userId: 'seg-auth-user',
      event: 'Signed Up',
      timestamp: '2026-10-01T10:00:00.000Z',
    });
    const post = (id: string, authorization?: string) =>
      callJson(runtime.address, 'POST', '/v1/track', body(id), {
        ...(authorization ? { authorization } : {}),
      });
    expect(await post('seg-auth-basic', basic(KEYS.ingest))).toEqual({
      status: 200,
      body: { success: true },
    });
    expect((await post('seg-auth-bearer', `Bearer ${KEYS.ingest}`)).status).toBe(200);
    const wrong = await post('seg-auth-wrong', basic('nope'));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('unauthorized');
    expect((await post('seg-auth-none')).status).toBe(401);
    const query = await post('seg-auth-query', basic(KEYS.query));
    expect(query.status).toBe(403);
    expect(query.body.error.code).toBe('forbidden');
    expect((await rows(['seg-auth-basic', 'seg-auth-bearer'])).length).toBe(2);
    expect((await count(['seg-auth-wrong', 'seg-auth-none', 'seg-auth-query'])).rows).toBe(0);
  });

  it('answers a batch with a bad message 400 with details and stores none of it', async () => {
    const good = {
      type: 'track',
      messageId: 'seg-bad-good',
      userId: 'seg-bad-user',
      event: 'Signed Up',
      timestamp: '2026-10-01T10:00:00.000Z',
    };
    const { status, body } = await callJson(
      runtime.address,
      'POST',
      '/v1/batch',
      {
        batch: [
          good,
          { ...good, messageId: undefined },
          { ...good, messageId: 'seg-bad-2', userId: undefined },
        ],
      },
      { authorization: basic(KEYS.ingest) },
    );
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.details).toEqual([
      {
        index: 1,
        path: 'messageId',
        message: 'is required: it is the event id, the same id stored twice counts once',
      },
    ]);
    const identity = await callJson(
      runtime.address,
      'POST',
      '/v1/batch',
      { batch: [good, { ...good, messageId: 'seg-bad-2', userId: null }] },
      { authorization: basic(KEYS.ingest) },
    );
    expect(identity.status).toBe(400);
    expect(identity.body.error.details).toEqual([
      { index: 1, path: 'userId', message: 'is required unless anonymousId is given' },
    ]);
    expect((await count(['seg-bad-good', 'seg-bad-2'])).rows).toBe(0);
  });

  it('corrects originalTimestamp by the client clock skew sentAt shows', async () => {
    // A client whose clock is two hours behind ours.
    const skew = 2 * 3_600_000;
    const clientNow = Date.now() - skew;
    const { status } = await callJson(
      runtime.address,
      'POST',
      '/v1/batch',
      {
        sentAt: new Date(clientNow).toISOString(),
        batch: [
          {
            type: 'track',
            messageId: 'seg-skew',
            anonymousId: 'seg-skew-device',
            event: 'App Opened',
            originalTimestamp: new Date(clientNow - 60_000).toISOString(),
          },
        ],
      },
      { authorization: basic(KEYS.ingest) },
    );
    expect(status).toBe(200);
    const [row] = await rows(['seg-skew']);
    const time = Date.parse(`${row?.timestamp.replace(' ', 'T')}Z`);
    // Corrected in whole seconds: within a second and a bit of the true time.
    expect(Math.abs(time - (clientNow + skew - 60_000))).toBeLessThan(2_000);
    expect(row).toMatchObject({ customer_id: 'seg-skew-device', type: 'app_opened' });
  });

  it('stitches and counts what the library sends: anonymous visits, identify and alias', async () => {
    const query = { authorization: `Bearer ${KEYS.query}` };
    const { id, ...journey } = PURCHASE;
    const put = await callJson(runtime.address, 'PUT', `/v1/journeys/${id}`, journey, query);
    expect(put.status).toBe(201);
    // A new journey applies to the events processed from about a second on (rule 6).
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const { analytics, statuses, failures } = client(runtime.address);
    // Recent, as live traffic is: the journey engine follows events within its lateness.
    const start = Date.now() - 2 * 3_600_000;
    const at = (minute: number) => new Date(start + minute * 60_000);
    const web = { context: { channel: 'Web' } };
    // Ada browses anonymously, logs in (identify links her cookie), and orders by phone.
    analytics.track({
      anonymousId: 'seg-cookie-ada',
      event: 'Product Viewed',
      timestamp: at(0),
      ...web,
    });
    analytics.track({
      anonymousId: 'seg-cookie-ada',
      event: 'Cart Added',
      timestamp: at(1),
      ...web,
    });
    analytics.identify({
      userId: 'seg-ada',
      anonymousId: 'seg-cookie-ada',
      timestamp: at(2),
      ...web,
    });
    for (const [minute, event, properties] of [
      [3, 'Checkout Started', {}],
      [4, 'Payment Submitted', {}],
      [5, 'Order Placed', { currency: 'EUR' }],
    ] as const) {
      analytics.track({
        userId: 'seg-ada',
        event,
        properties: { channel: 'Call Center', ...properties },
        timestamp: at(minute),
      });
    }
    // Bo views on the app under a device id that an alias links to his account later.
    analytics.screen({ anonymousId: 'seg-device-bo', name: 'Home', timestamp: at(0) });
    analytics.track({
      anonymousId: 'seg-device-bo',
      event: 'Product Viewed',
      timestamp: at(1),
      context: { channel: 'Mobile' },
    });
    analytics.track({
      userId: 'seg-bo',
      event: 'Cart Added',
      timestamp: at(3),
      context: { channel: 'Mobile' },
    });
    analytics.alias({ userId: 'seg-bo', previousId: 'seg-device-bo', timestamp: at(2) });
    // Cy never says who she is.
    analytics.page({ anonymousId: 'seg-cookie-cy', name: 'Pricing', timestamp: at(0), ...web });
    analytics.track({
      anonymousId: 'seg-cookie-cy',
      event: 'Product Viewed',
      timestamp: at(1),
      ...web,
    });
    await analytics.closeAndFlush({ timeout: 20_000 });
    expect(failures).toEqual([]);
    expect(statuses.every((status) => status === 200)).toBe(true);

    const range = new URLSearchParams({
      from: new Date(start - 3_600_000).toISOString(),
      to: new Date(start + 3_600_000).toISOString(),
    });
    await eventually(async () => {
      const { status, body } = await callJson(
        runtime.address,
        'GET',
        `/v1/journeys/${id}/dropoffs?${range}`,
        undefined,
        query,
      );
      expect(status).toBe(200);
      const answer = body as DropoffResponse;
      expect({ entered: answer.entered, completed: answer.completed }).toEqual({
        entered: 3,
        completed: 1,
      });
      const carted = answer.transitions.find((t) => t.from_step === 'viewed');
      expect(carted?.continued).toBe(2);
      const checkout = answer.transitions.find((t) => t.from_step === 'carted');
      expect(checkout?.handoffs).toEqual([
        { from_channel: 'web', to_channel: 'call_center', continued: 1 },
      ]);
    }, 60_000);
    const customer = async (who: string) =>
      callJson(runtime.address, 'GET', `/v1/customers/${who}`, undefined, query);
    expect((await customer('seg-ada')).body).toMatchObject({
      anonymous_ids: ['seg-cookie-ada'],
      events: 6,
    });
    expect((await customer('seg-bo')).body).toMatchObject({
      anonymous_ids: ['seg-device-bo'],
      events: 4,
    });
    expect((await customer('seg-cookie-cy')).body).toMatchObject({ anonymous_ids: [], events: 2 });
    expect((await customer('seg-cookie-ada')).status).toBe(404);
  });
});
