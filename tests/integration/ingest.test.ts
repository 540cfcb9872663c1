import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedBus } from '@touchstream/bus';
import { buildCollector } from '@touchstream/collector';
import { topicNames } from '@touchstream/contracts';
import { buildServer } from '@touchstream/http';
import { readEvents } from '@touchstream/store';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { makeEvent, postEvents } from '../support/events.js';
import { startTestRuntime } from '../support/runtime.js';

const INGEST = { authorization: 'Bearer ingest-key' };

describe('POST /v1/events on the embedded defaults', () => {
  let runtime: Runtime;
  let url: string;
  beforeAll(async () => {
    runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-ingest-')),
      TOUCHSTREAM_INGEST_KEYS: 'ingest-key',
      TOUCHSTREAM_QUERY_KEYS: 'query-key',
    });
    url = runtime.address;
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  const storedIds = async (customer: string) =>
    (await readEvents(runtime.store, customer)).map((e) => e.event_id);

  it('stores an accepted batch before answering 202', async () => {
    const events = [
      makeEvent({ customer_id: 'stored-1' }),
      makeEvent({ customer_id: 'stored-1', timestamp: Date.UTC(2026, 9, 1, 12, 5) }),
      makeEvent({ customer_id: 'stored-1', timestamp: '2026-10-01T14:10:00+02:00' }),
    ];
    const response = await postEvents(url, events, INGEST);
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ accepted: 3 });
    // On the embedded bus a 202 means stored: no waiting.
    const stored = await readEvents(runtime.store, 'stored-1');
    expect(stored.map((e) => e.event_id).sort()).toEqual(events.map((e) => e.event_id).sort());
    expect(stored.map((e) => e.timestamp).sort()).toEqual([
      '2026-10-01 12:00:00.000',
      '2026-10-01 12:05:00.000',
      '2026-10-01 12:10:00.000',
    ]);
  });

  it('stores the same batch posted twice once', async () => {
    const events = Array.from({ length: 5 }, () => makeEvent({ customer_id: 'twice-1' }));
    expect((await postEvents(url, events, INGEST)).status).toBe(202);
    expect((await postEvents(url, events, INGEST)).status).toBe(202);
    const [row] = await (
      await runtime.store.query({
        query: 'SELECT count() AS n FROM events FINAL WHERE customer_id = {c:String}',
        query_params: { c: 'twice-1' },
        format: 'JSONEachRow',
      })
    ).json<{ n: string | number }>();
    expect(Number(row?.n)).toBe(5);
  });

  it('stores an event known only by its anonymous id under that id, and one with both', async () => {
    const { customer_id: _, ...anonymous } = makeEvent({ customer_id: 'unused' });
    const both = makeEvent({ customer_id: 'known-1', anonymous_id: 'cookie-1' });
    const alone = { ...anonymous, anonymous_id: 'cookie-1' };
    expect((await postEvents(url, [alone, both], INGEST)).status).toBe(202);
    expect((await readEvents(runtime.store, 'cookie-1')).map((e) => e.anonymous_id)).toEqual([
      'cookie-1',
    ]);
    const [known] = await readEvents(runtime.store, 'known-1');
    expect(known?.anonymous_id).toBe('cookie-1');
    const neither = await postEvents(url, [anonymous], INGEST);
    expect(neither.status).toBe(400);
    expect(JSON.stringify(neither.body)).toContain('is required unless anonymous_id is given');
  });

  it('stores and matches values that look like SQL as plain data', async () => {
    const customer = "c'); DROP TABLE events; --";
    const event = makeEvent({
      customer_id: customer,
      event_id: "e'; SELECT 1; --",
      properties: { q: "' OR '1'='1", "k'ey": 'v\\"al' },
    });
    expect((await postEvents(url, [event], INGEST)).status).toBe(202);
    const [stored] = await readEvents(runtime.store, customer);
    expect(stored?.customer_id).toBe(customer);
    expect(JSON.parse(stored?.properties ?? '{}')).toEqual(event.properties);
    expect(await storedIds("c'); DROP TABLE events; -- OR 1=1")).toEqual([]);
  });

  const field = (overrides: Record<string, unknown>) => [makeEvent(overrides)];
  const many = (n: number, prefix: string) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i]));

  it.each([
    ['missing event_id', field({ event_id: undefined }), 'event_id'],
    ['empty event_id', field({ event_id: '' }), 'event_id'],
    ['event_id of 65 chars', field({ event_id: 'e'.repeat(65) }), 'event_id'],
    ['customer_id of 129 chars', field({ customer_id: 'c'.repeat(129) }), 'customer_id'],
    ['missing customer_id', field({ customer_id: undefined }), 'customer_id'],
    ['type with capitals', field({ type: 'Product Viewed' }), 'type'],
    ['type of 65 chars', field({ type: 't'.repeat(65) }), 'type'],
    ['channel of 33 chars', field({ channel: 'c'.repeat(33) }), 'channel'],
    ['channel with a slash', field({ channel: 'web/app' }), 'channel'],
    ['timestamp without zone', field({ timestamp: '2026-10-01T12:00:00' }), 'timestamp'],
    ['timestamp as words', field({ timestamp: 'yesterday' }), 'timestamp'],
    ['timestamp out of range', field({ timestamp: -5 }), 'timestamp'],
    ['timestamp as float', field({ timestamp: 1.5 }), 'timestamp'],
    ['51 properties', field({ properties: many(51, 'p') }), 'properties'],
    ['property name of 65 chars', field({ properties: { ['k'.repeat(65)]: 1 } }), 'properties'],
    [
      'property value of 1025 chars',
      field({ properties: { k: 'v'.repeat(1025) } }),
      'properties.k',
    ],
    ['nested property value', field({ properties: { k: { nested: true } } }), 'properties.k'],
    ['properties as a list', field({ properties: [1, 2] }), 'properties'],
    ['unknown field', field({ propertes: { plan: 'pro' } }), 'propertes'],
    // A lone surrogate once passed, and ClickHouse refused every insert holding it.
    ['a lone surrogate in customer_id', field({ customer_id: 'c-\ud83d' }), 'customer_id'],
    ['a lone surrogate in event_id', field({ event_id: 'lsc-\udc00' }), 'event_id'],
    ['a lone surrogate in a property name', field({ properties: { 'k\ud800': 1 } }), 'properties'],
    [
      'a lone surrogate in a property value',
      field({ properties: { k: '\udfff!' } }),
      'properties.k',
    ],
  ])('refuses an event with %s', async (_name, events, path) => {
    const response = await postEvents(url, events, INGEST);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
    expect(response.body.error.details).toContainEqual(
      expect.objectContaining({ index: 0, path: expect.stringMatching(new RegExp(`^${path}`)) }),
    );
  });

  it('refuses a batch with one bad event whole, with one detail per problem', async () => {
    const events = [
      makeEvent({ customer_id: 'all-or-nothing' }),
      makeEvent({ customer_id: 'all-or-nothing', timestamp: 'soon' }),
      makeEvent({ customer_id: 'all-or-nothing' }),
      makeEvent({ customer_id: 'all-or-nothing', type: 'BAD', channel: '' }),
    ];
    const response = await postEvents(url, events, INGEST);
    expect(response.status).toBe(400);
    const details = response.body.error.details as { index: number; path: string }[];
    expect(details.map((d) => [d.index, d.path])).toEqual([
      [1, 'timestamp'],
      [3, 'type'],
      [3, 'channel'],
    ]);
    expect(await storedIds('all-or-nothing')).toEqual([]);
  });

  it.each([
    ['no events', { events: [] }],
    ['1001 events', { events: Array.from({ length: 1001 }, () => makeEvent()) }],
    ['events not a list', { events: 'many' }],
    ['a list instead of an object', [makeEvent()]],
    ['an unknown field beside events', { events: [makeEvent()], sentAt: 1 }],
  ])('refuses a body with %s', async (_name, body) => {
    const response = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...INGEST },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'invalid_request' } });
  });

  it('stores a batch whose ids hold emoji, NUL and other valid Unicode as sent', async () => {
    const customer = 'c-\u{1F600}-\u0000-\u00e9';
    const event = makeEvent({
      customer_id: customer,
      event_id: 'e-\u{1F4A9}\u0000',
      properties: { 'k\u{1F600}': 'v\u0000' },
    });
    expect((await postEvents(url, [event], INGEST)).status).toBe(202);
    const [stored] = await readEvents(runtime.store, customer);
    expect(stored?.event_id).toBe(event.event_id);
    expect(JSON.parse(stored?.properties ?? '{}')).toEqual(event.properties);
  });

  it('refuses the reproduction whole, stores none of it and stalls nobody', async () => {
    // Nine valid events and one with an unpaired surrogate: once a 503 after 30 s with
    // eight of the nine stored and the partition blocked for everyone.
    const valid = Array.from({ length: 9 }, () => makeEvent({ customer_id: 'nine-valid' }));
    const poison = makeEvent({ event_id: 'lsc-2', customer_id: 'c-\ud83d' });
    const started = Date.now();
    const response = await postEvents(url, [...valid, poison], INGEST);
    expect(response.status).toBe(400);
    expect(response.body.error.details).toEqual([
      { index: 9, path: 'customer_id', message: expect.stringMatching(/valid Unicode/) },
    ]);
    expect(await storedIds('nine-valid')).toEqual([]);
    const unrelated = makeEvent({ customer_id: 'unrelated-after-poison' });
    expect((await postEvents(url, [unrelated], INGEST)).status).toBe(202);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('counts the problems it lists', async () => {
    // Once "2 problems" over one detail: a field breaking two rules is one problem.
    const response = await postEvents(url, [makeEvent({ timestamp: 1e308 })], INGEST);
    expect(response.status).toBe(400);
    expect(response.body.error.details).toHaveLength(1);
    expect(response.body.error.message).toBe('The body is invalid: one problem.');
  });

  it('answers malformed requests with their status and the error object', async () => {
    const send = (body: string, contentType?: string, headers: Record<string, string> = INGEST) =>
      fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { ...(contentType ? { 'content-type': contentType } : {}), ...headers },
        body,
      });
    const cases: Array<[Response, number, string]> = [
      [await send('{"events": [', 'application/json'), 400, 'invalid_json'],
      [await send('', 'application/json'), 400, 'invalid_json'],
      [await send('events=1', 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type'],
      [await send('{"events": []}', 'text/plain'), 415, 'unsupported_media_type'],
      [
        await send(`{"events": ["${'x'.repeat(1024 * 1024)}"]}`, 'application/json'),
        413,
        'payload_too_large',
      ],
      [await send('{"events": []}', 'application/json', {}), 401, 'unauthorized'],
      [
        await send('{"events": []}', 'application/json', { authorization: 'Bearer nope' }),
        401,
        'unauthorized',
      ],
      [
        await send('{"events": []}', 'application/json', { authorization: 'Bearer query-key' }),
        403,
        'forbidden',
      ],
    ];
    for (const [response, status, code] of cases) {
      expect(response.status).toBe(status);
      expect(await response.json()).toEqual({
        error: { code, message: expect.any(String), details: expect.any(Array) },
      });
    }
  });

  it('is healthy and ready with both dependencies up', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { bus: 'ok', clickhouse: 'ok', services: 'ok', processor: 'ok' },
    });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/touchstream_collector_events_accepted_total \d+/);
    expect(metrics).toMatch(/touchstream_processor_events_written_total \d+/);
  });
});

describe('collector limits', () => {
  const build = async (bus = createEmbeddedBus(), rateLimit = { max: 1000, windowMs: 1000 }) => {
    const metrics = new Registry();
    const collector = buildCollector({
      bus,
      topics: topicNames('limits.'),
      metrics,
      rateLimit,
      maxFutureMs: 3_600_000,
    });
    return buildServer({
      config: { auth: { ingestKeys: [], queryKeys: [], adminKeys: [] } },
      logger: pino({ level: 'silent' }),
      metrics,
      readiness: {},
      routes: [collector.routes],
    });
  };
  const post = (app: Awaited<ReturnType<typeof build>>, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/events', headers, payload: { events: [makeEvent()] } });

  it('limits requests per key with 429, Retry-After and the error object', async () => {
    const app = await build(createEmbeddedBus(), { max: 2, windowMs: 60_000 });
    const a = { authorization: 'Bearer a' };
    expect((await post(app, a)).statusCode).toBe(202);
    expect((await post(app, a)).statusCode).toBe(202);
    const limited = await post(app, a);
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json().error.code).toBe('rate_limited');
    // Another key has its own allowance.
    expect((await post(app, { authorization: 'Bearer b' })).statusCode).toBe(202);
  });

  it('answers 503 with Retry-After when the bus cannot take the events', async () => {
    // No consumer and room for one event: the second request finds the bus full.
    const app = await build(createEmbeddedBus({ maxBacklog: 1 }));
    expect((await post(app)).statusCode).toBe(202);
    const refused = await post(app);
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json().error.code).toBe('unavailable');
  });
});
