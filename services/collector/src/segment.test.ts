import { type Bus, BusUnavailableError, type OutgoingRecord } from '@touchstream/bus';
import { topicNames } from '@touchstream/contracts';
import { buildServer } from '@touchstream/http';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { buildCollector, clientKey } from './collector.js';

const NOW = Date.parse('2026-10-01T12:00:00.000Z');
const basic = (user: string, password = '') =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const INGEST = { authorization: basic('ingest-key') };

/** A bus that records what is published, or refuses it. */
function recordingBus(refuse = false) {
  const published: Array<{ topic: string; records: readonly OutgoingRecord[] }> = [];
  const bus = {
    kind: 'embedded',
    async publish(topic: string, records: readonly OutgoingRecord[]) {
      if (refuse) throw new BusUnavailableError('full');
      published.push({ topic, records });
    },
  } as unknown as Bus;
  const values = () =>
    published.flatMap((p) => p.records.map((r) => JSON.parse(String(r.value)) as unknown));
  return { bus, published, values };
}

async function build(
  options: { refuse?: boolean; rateLimit?: { max: number; windowMs: number }; keys?: boolean } = {},
) {
  const recorded = recordingBus(options.refuse);
  const metrics = new Registry();
  const collector = buildCollector({
    bus: recorded.bus,
    topics: topicNames('seg.'),
    metrics,
    maxFutureMs: 3_600_000,
    now: () => NOW,
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
  });
  const keys = options.keys ?? true;
  const app = await buildServer({
    config: {
      auth: {
        ingestKeys: keys ? ['ingest-key'] : [],
        queryKeys: keys ? ['query-key'] : [],
        adminKeys: [],
      },
    },
    logger: pino({ level: 'silent' }),
    metrics,
    readiness: {},
    routes: [collector.routes],
  });
  const post = (url: string, payload: unknown, headers: Record<string, string> = INGEST) =>
    app.inject({ method: 'POST', url, payload: payload as Record<string, unknown>, headers });
  return { app, post, ...recorded };
}

const track = (fields: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId: 'm-1',
  userId: 'u-1',
  event: 'Order Completed',
  timestamp: '2026-10-01T11:00:00.000Z',
  properties: { total: 10 },
  ...fields,
});

describe('POST /v1/batch', () => {
  it('answers 200 {"success": true} and publishes every message as a touchpoint', async () => {
    const { post, published, values } = await build();
    const response = await post('/v1/batch', {
      batch: [
        track(),
        { ...track({ messageId: 'm-2', type: 'identify', traits: { plan: 'pro' } }) },
      ],
      writeKey: 'ingest-key',
      sentAt: '2026-10-01T12:00:00.000Z',
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ success: true });
    expect(published.map((p) => p.topic)).toEqual(['seg.touchpoints']);
    expect(published[0]?.records.map((r) => r.key)).toEqual(['u-1', 'u-1']);
    expect(values()).toEqual([
      {
        event_id: 'm-1',
        customer_id: 'u-1',
        type: 'order_completed',
        channel: 'server',
        timestamp: Date.parse('2026-10-01T11:00:00.000Z'),
        properties: { total: 10 },
      },
      {
        event_id: 'm-2',
        customer_id: 'u-1',
        type: 'identified',
        channel: 'server',
        timestamp: Date.parse('2026-10-01T11:00:00.000Z'),
        properties: { plan: 'pro' },
      },
    ]);
  });

  it('keys an anonymous message by its anonymous id', async () => {
    const { post, published } = await build();
    await post('/v1/batch', { batch: [track({ userId: null, anonymousId: 'anon-1' })] });
    expect(published[0]?.records[0]?.key).toBe('anon-1');
  });

  it('corrects originalTimestamp by the batch sentAt', async () => {
    const { post, values } = await build();
    const response = await post('/v1/batch', {
      sentAt: '2026-10-01T11:00:00.000Z',
      batch: [track({ timestamp: undefined, originalTimestamp: '2026-10-01T10:30:00.000Z' })],
    });
    expect(response.statusCode).toBe(200);
    expect(values()).toMatchObject([{ timestamp: Date.parse('2026-10-01T11:30:00.000Z') }]);
  });

  it('refuses the whole batch with one detail per problem, publishing nothing', async () => {
    const { post, published } = await build();
    const response = await post('/v1/batch', {
      batch: [track(), track({ messageId: undefined }), track({ userId: undefined })],
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: {
        code: 'invalid_request',
        message: 'The batch is invalid: one problem; nothing of it is stored.',
        details: [
          {
            index: 1,
            path: 'messageId',
            message: 'is required: it is the event id, the same id stored twice counts once',
          },
        ],
      },
    });
    const mapped = await post('/v1/batch', {
      batch: [track(), track({ userId: undefined }), track({ timestamp: '2026-10-01T14:00:00Z' })],
    });
    expect(mapped.statusCode).toBe(400);
    expect(mapped.json().error.details).toEqual([
      { index: 1, path: 'userId', message: 'is required unless anonymousId is given' },
      { index: 2, path: 'timestamp', message: expect.stringContaining('ahead of the receiving') },
    ]);
    expect(published).toEqual([]);
  });

  it('refuses a body that is not a batch, an empty batch and one past 1000 messages', async () => {
    const { post, published } = await build();
    for (const body of [
      {},
      { batch: [] },
      { batch: 'x' },
      { batch: Array.from({ length: 1001 }, (_, i) => track({ messageId: `m-${i}` })) },
    ]) {
      const response = await post('/v1/batch', body);
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe('invalid_request');
      expect(response.json().error.details.length).toBeGreaterThan(0);
    }
    expect(published).toEqual([]);
  });

  it('takes a group message and stores nothing of it', async () => {
    const { app, post, published } = await build();
    const response = await post('/v1/batch', {
      batch: [{ type: 'group', messageId: 'g-1', userId: 'u', groupId: 'acme' }],
    });
    expect(response.statusCode).toBe(200);
    expect(published).toEqual([]);
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toContain(
      'touchstream_collector_segment_messages_skipped_total{type="group"} 1',
    );
  });

  it('counts in /metrics what it left out of the properties and the values it cut', async () => {
    const { app, post } = await build();
    const properties = Object.fromEntries(Array.from({ length: 52 }, (_, i) => [`p${i}`, i]));
    await post('/v1/batch', {
      batch: [
        track({ properties: { tags: ['a'], deep: { a: { b: 1 } }, long: 'x'.repeat(2000) } }),
        track({ messageId: 'm-2', properties }),
      ],
    });
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toContain(
      'touchstream_collector_segment_properties_dropped_total{reason="array"} 1',
    );
    expect(metrics).toContain(
      'touchstream_collector_segment_properties_dropped_total{reason="nested"} 1',
    );
    expect(metrics).toContain(
      'touchstream_collector_segment_properties_dropped_total{reason="over_limit"} 2',
    );
    expect(metrics).toContain('touchstream_collector_segment_values_truncated_total 1');
    expect(metrics).toContain(
      'touchstream_collector_segment_messages_stored_total{type="track"} 2',
    );
  });

  it('answers 503 with Retry-After when the bus cannot take the events', async () => {
    const { post } = await build({ refuse: true });
    const response = await post('/v1/batch', { batch: [track()] });
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
    expect(response.json().error.code).toBe('unavailable');
  });
});

describe('the single-message routes', () => {
  it.each([
    ['track', { event: 'Signed Up' }, 'signed_up'],
    ['identify', { traits: { email: 'a@b.c' } }, 'identified'],
    ['page', { name: 'Home' }, 'page_viewed'],
    ['screen', { name: 'Home' }, 'screen_viewed'],
    ['alias', { previousId: 'anon-1' }, 'aliased'],
  ])('POST /v1/%s takes one message, its type implied', async (route, fields, type) => {
    const { post, values } = await build();
    const response = await post(`/v1/${route}`, {
      messageId: `single-${route}`,
      userId: 'u-1',
      timestamp: '2026-10-01T11:00:00.000Z',
      ...fields,
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ success: true });
    expect(values()).toMatchObject([{ event_id: `single-${route}`, customer_id: 'u-1', type }]);
  });

  it('names the problem at index 0', async () => {
    const { post, published } = await build();
    const response = await post('/v1/track', { messageId: 'm', event: 'E' });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toEqual({
      code: 'invalid_request',
      message: 'The message is invalid: one problem; nothing of it is stored.',
      details: [{ index: 0, path: 'userId', message: 'is required unless anonymousId is given' }],
    });
    const shape = await post('/v1/page', { userId: 'u' });
    expect(shape.json().error.details).toEqual([
      {
        index: 0,
        path: 'messageId',
        message: 'is required: it is the event id, the same id stored twice counts once',
      },
    ]);
    expect((await post('/v1/track', { ...track(), type: 'page' })).statusCode).toBe(400);
    expect(published).toEqual([]);
  });
});

describe('auth and rate limits of the Segment routes', () => {
  it('takes the ingest key as Basic user name or Bearer; 401 unknown or none, 403 query key', async () => {
    const { post } = await build();
    const body = { batch: [track()] };
    expect((await post('/v1/batch', body, { authorization: basic('ingest-key') })).statusCode).toBe(
      200,
    );
    expect(
      (await post('/v1/batch', body, { authorization: basic('ingest-key', 'ignored') })).statusCode,
    ).toBe(200);
    expect((await post('/v1/batch', body, { authorization: 'Bearer ingest-key' })).statusCode).toBe(
      200,
    );
    const wrong = await post('/v1/batch', body, { authorization: basic('wrong-key') });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toEqual({
      code: 'unauthorized',
      message: 'The key is not known.',
      details: [],
    });
    const none = await post('/v1/track', track(), {});
    expect(none.statusCode).toBe(401);
    expect(none.json().error.message).toMatch(/HTTP Basic user name/);
    expect((await post('/v1/page', track(), { authorization: basic('') })).statusCode).toBe(401);
    expect(
      (await post('/v1/identify', track(), { authorization: basic('query-key') })).statusCode,
    ).toBe(403);
  });

  it('keeps Basic to the Segment routes: POST /v1/events wants Bearer', async () => {
    const { post } = await build();
    const response = await post(
      '/v1/events',
      { events: [] },
      { authorization: basic('ingest-key') },
    );
    expect(response.statusCode).toBe(401);
  });

  it('counts requests per key, the Basic user name and the Bearer token alike', async () => {
    const { post } = await build({ rateLimit: { max: 2, windowMs: 60_000 } });
    const body = { batch: [track()] };
    expect((await post('/v1/batch', body, { authorization: basic('ingest-key') })).statusCode).toBe(
      200,
    );
    expect((await post('/v1/batch', body, { authorization: 'Bearer ingest-key' })).statusCode).toBe(
      200,
    );
    const limited = await post('/v1/batch', body, { authorization: basic('ingest-key') });
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('rate_limited');
  });

  it('derives the rate-limit key from the header', () => {
    const key = (authorization?: string) =>
      clientKey({ headers: authorization ? { authorization } : {}, ip: '10.0.0.1' });
    expect(key(basic('w'))).toBe('key:w');
    expect(key(basic('w', 'p'))).toBe('key:w');
    expect(key('Bearer w')).toBe('key:w');
    expect(key(basic(''))).toBe('ip:10.0.0.1');
    expect(key('Basic')).toBe('ip:10.0.0.1');
    expect(key()).toBe('ip:10.0.0.1');
  });
});

describe('OpenAPI', () => {
  it('lists the Segment routes with their request and response schemas', async () => {
    const { app } = await build({ keys: false });
    const spec = (await app.inject('/openapi.json')).json();
    for (const route of ['batch', 'track', 'identify', 'page', 'screen', 'alias']) {
      const operation = spec.paths[`/v1/${route}`]?.post;
      expect(operation, route).toBeDefined();
      expect(operation.requestBody.content['application/json'].schema.type).toBe('object');
      expect(operation.responses['200']).toBeDefined();
    }
    const batch = spec.paths['/v1/batch'].post.requestBody.content['application/json'].schema;
    expect(batch.required).toEqual(['batch']);
    expect(batch.properties.batch.maxItems).toBe(1000);
    const track = spec.paths['/v1/track'].post.requestBody.content['application/json'].schema;
    expect(track.required).toEqual(expect.arrayContaining(['messageId', 'event']));
    expect(JSON.stringify(track.properties.timestamp)).toContain('date-time');
  });
});
