import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer } from '@touchstream/http';
import { DEFAULT_FUNNEL_LIMITS } from '@touchstream/store';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { funnelRoutes } from '../../services/api/src/funnel-routes.js';
import { ingest, queryFunnel } from '../support/funnel-client.js';
import { putJourney } from '../support/http.js';
import { startTestRuntime } from '../support/runtime.js';

const T = Date.UTC(2026, 9, 1, 12);
const at = (seconds: number) => new Date(T + seconds * 1000).toISOString();
let sequence = 0;
const event = (
  customer: string,
  type: string,
  seconds: number,
  extra: Record<string, unknown> = {},
) => ({
  event_id: `api-${++sequence}`,
  customer_id: customer,
  type,
  channel: 'web',
  timestamp: at(seconds),
  ...extra,
});

const RANGE = { from: at(0), to: at(3600) };

describe('POST /v1/funnels/query', () => {
  let runtime: Runtime;
  const funnel = (body: Record<string, unknown>) => queryFunnel(runtime.address, body);

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-funnel-api-'));
    runtime = await startTestRuntime({ TOUCHSTREAM_DATA_DIR: join(dir, 'data') });
    await ingest(runtime.address, [
      // Viewed twice; only the second view is followed by a cart within the window.
      event('repeat', 'view', 0),
      event('repeat', 'view', 100),
      event('repeat', 'cart', 130),
      event('repeat', 'pay', 150),
      // windowFunnel answers "cart" here: the second view's cart at 209 replaces the first
      // chain's, and the pay at the same millisecond cannot follow it. The first view's
      // chain (200, 205, 209) reaches pay.
      event('overwrite', 'view', 200),
      event('overwrite', 'cart', 205),
      event('overwrite', 'view', 208),
      event('overwrite', 'cart', 209),
      event('overwrite', 'pay', 209),
      // Cart at the same millisecond as the view: not strictly later.
      event('same-time', 'view', 10),
      event('same-time', 'cart', 10),
      // The cart comes after `to`, within the window: it counts.
      event('late', 'view', 3590),
      event('late', 'cart', 3620, { channel: 'mobile' }),
      // Before the range: not in the funnel.
      event('early', 'view', -10),
      event('early', 'cart', 5),
    ]);
    await putJourney(runtime.address, {
      id: 'shop',
      name: 'Shop',
      steps: [
        { name: 'viewed', event_type: 'view' },
        { name: 'carted', event_type: 'cart' },
        { name: 'paid', event_type: 'pay' },
      ],
      step_timeout: '30s',
    });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it('counts each customer once, at the deepest step any entry reached', async () => {
    const { status, body } = await funnel({
      steps: [
        { event_type: 'view' },
        { event_type: 'cart', name: 'carted' },
        { event_type: 'pay' },
      ],
      window: '1m',
      ...RANGE,
    });
    expect(status).toBe(200);
    expect(body).toEqual({
      steps: [
        {
          name: 'view',
          customers: 4,
          conversion_from_start: 1,
          conversion_from_previous: 1,
          dropped_from_previous: 0,
          median_seconds_from_previous: null,
        },
        {
          name: 'carted',
          customers: 3,
          conversion_from_start: 0.75,
          conversion_from_previous: 0.75,
          dropped_from_previous: 1,
          median_seconds_from_previous: 30,
        },
        {
          name: 'pay',
          customers: 2,
          conversion_from_start: 0.5,
          conversion_from_previous: 0.6667,
          dropped_from_previous: 1,
          // The median of 20 s and 4 s (205 to 209).
          median_seconds_from_previous: 12,
        },
      ],
    });
  });

  it("takes a journey's steps, names and default window (step_timeout x transitions)", async () => {
    // 60 s by default: the repeat customer's second view reaches pay within it.
    const { status, body } = await funnel({ journey: 'shop', ...RANGE });
    expect(status).toBe(200);
    expect(
      body.steps.map((s: { name: string; customers: number }) => [s.name, s.customers]),
    ).toEqual([
      ['viewed', 4],
      ['carted', 3],
      ['paid', 2],
    ]);
    // Over 49 days of range: times no longer fit 32 bits and the query takes 64.
    const long = await funnel({
      journey: 'shop',
      from: '2026-01-01T00:00:00Z',
      to: '2026-12-31T00:00:00Z',
    });
    // The early customer (view 10 s before RANGE) is in this range too.
    expect(long.body.steps.map((s: { customers: number }) => s.customers)).toEqual([5, 4, 2]);
    const short = await funnel({ journey: 'shop', window: '20s', ...RANGE });
    expect(short.body.steps.map((s: { customers: number }) => s.customers)).toEqual([4, 1, 1]);
  });

  it('breaks down by the channel of the first entry, largest first', async () => {
    const { body } = await funnel({
      steps: [{ event_type: 'view' }, { event_type: 'cart', channel: 'mobile' }],
      window: '1m',
      breakdown: 'channel',
      ...RANGE,
    });
    expect(body.steps.map((s: { customers: number }) => s.customers)).toEqual([4, 1]);
    expect(body.breakdown).toHaveLength(1);
    expect(body.breakdown[0].value).toBe('web');
    expect(body.breakdown[0].steps[1].customers).toBe(1);
  });

  it('answers an empty range with zeros', async () => {
    const { status, body } = await funnel({
      steps: [{ event_type: 'view' }, { event_type: 'cart' }],
      from: '2020-01-01T00:00:00Z',
      to: '2020-01-02T00:00:00Z',
    });
    expect(status).toBe(200);
    expect(body.steps[1]).toEqual({
      name: 'cart',
      customers: 0,
      conversion_from_start: 0,
      conversion_from_previous: 0,
      dropped_from_previous: 0,
      median_seconds_from_previous: null,
    });
  });

  const expectError = (
    response: { status: number; body: unknown },
    status: number,
    code: string,
  ) => {
    expect(response.status).toBe(status);
    expect(response.body).toEqual({
      error: { code, message: expect.any(String), details: expect.any(Array) },
    });
  };

  it.each([
    ['one step', { steps: [{ event_type: 'view' }] }, 'steps'],
    [
      '21 steps',
      { steps: Array.from({ length: 21 }, (_, i) => ({ event_type: `s${i}` })) },
      'steps',
    ],
    [
      'a reversed range',
      { steps: [{ event_type: 'a' }, { event_type: 'b' }], from: at(10), to: at(0) },
      'from',
    ],
    ['neither steps nor journey', {}, 'steps'],
    [
      'both steps and journey',
      { journey: 'shop', steps: [{ event_type: 'a' }, { event_type: 'b' }] },
      'steps',
    ],
    [
      'an unknown operator',
      {
        steps: [{ event_type: 'a' }, { event_type: 'b' }],
        filters: [{ property: 'plan', op: 'like', value: 'pro' }],
      },
      'filters.0.op',
    ],
    [
      'an unknown field',
      { steps: [{ event_type: 'a' }, { event_type: 'b' }], filter: [] },
      'filter',
    ],
    ['a bad window', { steps: [{ event_type: 'a' }, { event_type: 'b' }], window: '1y' }, 'window'],
    [
      'a huge window',
      { steps: [{ event_type: 'a' }, { event_type: 'b' }], window: '400d' },
      'window',
    ],
    [
      'a bad breakdown',
      { steps: [{ event_type: 'a' }, { event_type: 'b' }], breakdown: 'device' },
      'breakdown',
    ],
    [
      'a bad timestamp',
      { steps: [{ event_type: 'a' }, { event_type: 'b' }], from: 'yesterday' },
      'from',
    ],
    [
      'a bad step type',
      { steps: [{ event_type: 'Viewed Product' }, { event_type: 'b' }] },
      'steps.0.event_type',
    ],
    [
      'a gt filter with a string',
      {
        steps: [{ event_type: 'a' }, { event_type: 'b' }],
        filters: [{ property: 'n', op: 'gt', value: 'x' }],
      },
      'filters.0.value',
    ],
    // Numbers past 2^53 once answered 500 ("Refusing to serialize unsafe integer").
    ...(['gt', 'eq'] as const).map(
      (op) =>
        [
          `a ${op} filter of 1e16`,
          {
            steps: [{ event_type: 'a' }, { event_type: 'b' }],
            filters: [{ property: 'n', op, value: 1e16 }],
          },
          'filters.0.value',
        ] as [string, object, string],
    ),
    [
      'an in filter holding 1e16',
      {
        steps: [{ event_type: 'a' }, { event_type: 'b' }],
        filters: [{ property: 'n', op: 'in', value: [1, 1e16] }],
      },
      'filters.0.value.1',
    ],
    [
      'a step where of 1e16',
      { steps: [{ event_type: 'a', where: { n: 1e16 } }, { event_type: 'b' }] },
      'steps.0.where.n',
    ],
    // 3,000 keys once answered 500 (ClickHouse's max query size).
    [
      'a step where with 3,000 keys',
      {
        steps: [
          {
            event_type: 'a',
            where: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`k${i}`, 'v'])),
          },
          { event_type: 'b' },
        ],
      },
      'steps.0.where',
    ],
    // A range starting in year 1000 once answered [0, 0] with a 200.
    [
      'a range from before 1970',
      { steps: [{ event_type: 'a' }, { event_type: 'b' }], from: '1000-01-01T00:00:00Z' },
      'from',
    ],
    [
      'a range to after 2200',
      { steps: [{ event_type: 'a' }, { event_type: 'b' }], to: '2300-01-01T00:00:00Z' },
      'to',
    ],
    [
      'a step name that is not Unicode',
      { steps: [{ event_type: 'a', name: 'x\ud83d' }, { event_type: 'b' }] },
      'steps.0.name',
    ],
  ])('refuses %s with 400 and the error object', async (_name, body, path) => {
    const response = await funnel(body);
    expectError(response, 400, 'invalid_request');
    expect(response.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
  });

  it('refuses a default range that ends before from', async () => {
    const response = await funnel({
      steps: [{ event_type: 'a' }, { event_type: 'b' }],
      from: '2199-01-01T00:00:00Z',
    });
    expectError(response, 400, 'invalid_request');
  });

  it('answers an unknown journey with 404', async () => {
    expectError(await funnel({ journey: 'nope' }), 404, 'not_found');
  });

  it('refuses a body that is not JSON', async () => {
    const response = await fetch(`${runtime.address}/v1/funnels/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"steps": [',
    });
    expect(response.status).toBe(400);
  });

  it('takes values as parameters: quotes and backslashes are just text', async () => {
    const { status, body } = await funnel({
      steps: [{ event_type: 'view', where: { "x') OR 1=1 --": "'\\" } }, { event_type: 'cart' }],
      filters: [{ property: "plan'", op: 'contains', value: "' OR ''='" }],
      breakdown: "property:a'b",
      ...RANGE,
    });
    expect(status).toBe(200);
    expect(body.steps[0].customers).toBe(0);
  });

  it('answers a query over its time limit with 503 and the error object, not a 500', async () => {
    // Enough rows that the engine checks its clock while reading them.
    await runtime.store.command({
      query: `INSERT INTO events (event_id, customer_id, type, channel, timestamp, properties)
              SELECT concat('load-', toString(number)), concat('load-', toString(number % 50000)),
                     ['view', 'cart'][number % 2 + 1], 'web',
                     toDateTime64('2026-10-01 12:00:00', 3, 'UTC') + toIntervalMillisecond(number),
                     '{}'
              FROM numbers(500000)`,
    });
    const app = await buildServer({
      config: { auth: { ingestKeys: [], queryKeys: [], adminKeys: [] } },
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      readiness: {},
      routes: [
        funnelRoutes({
          store: runtime.store,
          limits: { ...DEFAULT_FUNNEL_LIMITS, maxExecutionSeconds: 0.001 },
        }),
      ],
    });
    try {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/funnels/query',
        payload: { steps: [{ event_type: 'view' }, { event_type: 'cart' }], ...RANGE },
      });
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('5');
      expect(response.json()).toEqual({
        error: {
          code: 'query_limit_exceeded',
          message: expect.stringContaining('time limit'),
          details: [],
        },
      });
    } finally {
      await app.close();
    }
  });

  it('lists every endpoint in /openapi.json and serves /docs, without a key', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document.
    const spec: any = await (await fetch(`${runtime.address}/openapi.json`)).json();
    expect(spec.openapi).toMatch(/^3\./);
    for (const path of [
      '/v1/events',
      '/v1/funnels/query',
      '/v1/journeys',
      '/v1/journeys/{id}',
      '/v1/journeys/{id}/dropoffs',
      '/healthz',
      '/readyz',
      '/metrics',
    ]) {
      expect(Object.keys(spec.paths)).toContain(path);
    }
    const query = spec.paths['/v1/funnels/query'].post;
    expect(query.requestBody.content['application/json'].schema.properties).toHaveProperty('steps');
    expect(query.security).toEqual([{ bearer: [] }]);
    const docs = await fetch(`${runtime.address}/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('<html');
  });
});
