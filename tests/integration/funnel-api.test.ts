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

/** Customers for the options, 10,000 s later: look, add, buy; each carries a product. */
const O = 10_000;
const OPTIONS_RANGE = { from: at(O), to: at(O + 1000) };
const p1 = { properties: { product_id: 'p1' } };
const OPTION_EVENTS = [
  // A remove between add and buy.
  event('o-removed', 'look', O, p1),
  event('o-removed', 'add', O + 10, p1),
  event('o-removed', 'remove', O + 15, p1),
  event('o-removed', 'buy', O + 20, p1),
  // Adds and buys another product than the one looked at.
  event('o-other', 'look', O, p1),
  event('o-other', 'add', O + 10, { properties: { product_id: 'p2' } }),
  event('o-other', 'buy', O + 20, { properties: { product_id: 'p2' } }),
  // Buys before adding.
  event('o-unordered', 'look', O, p1),
  event('o-unordered', 'buy', O + 10, p1),
  event('o-unordered', 'add', O + 20, { ...p1, channel: 'mobile' }),
  // Never adds.
  event('o-skipper', 'look', O, p1),
  event('o-skipper', 'buy', O + 30, p1),
  // Two adds of one millisecond, on two channels: either could be the chain's add.
  event('o-twins', 'look', O, p1),
  event('o-twins', 'add', O + 7, { ...p1, channel: 'web' }),
  event('o-twins', 'add', O + 7, { ...p1, channel: 'mobile' }),
  // Every step, on three channels.
  event('o-full', 'look', O, p1),
  event('o-full', 'add', O + 5, { ...p1, channel: 'mobile' }),
  event('o-full', 'buy', O + 40, { ...p1, channel: 'store' }),
];
const LOOK_ADD_BUY = {
  steps: [{ event_type: 'look' }, { event_type: 'add' }, { event_type: 'buy' }],
  window: '1m',
  ...OPTIONS_RANGE,
};
const customersOf = (body: { steps: { customers: number }[] }) =>
  body.steps.map((s) => s.customers);

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
      // For the options, in a range and with event types of their own.
      ...OPTION_EVENTS,
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
          time_to_convert: null,
        },
        {
          name: 'carted',
          customers: 3,
          conversion_from_start: 0.75,
          conversion_from_previous: 0.75,
          dropped_from_previous: 1,
          median_seconds_from_previous: 30,
          // 5 s (overwrite), 30 s (repeat) and 30 s (late).
          time_to_convert: {
            p25: 17.5,
            p50: 30,
            p75: 30,
            p90: 30,
            histogram: [
              { le_seconds: 1, customers: 0 },
              { le_seconds: 5, customers: 1 },
              { le_seconds: 10, customers: 0 },
              { le_seconds: 30, customers: 2 },
              { le_seconds: 60, customers: 0 },
            ],
          },
        },
        {
          name: 'pay',
          customers: 2,
          conversion_from_start: 0.5,
          conversion_from_previous: 0.6667,
          dropped_from_previous: 1,
          // The median of 20 s and 4 s (205 to 209).
          median_seconds_from_previous: 12,
          time_to_convert: expect.objectContaining({ p25: 8, p50: 12, p75: 16, p90: 18.4 }),
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
      time_to_convert: { p25: null, p50: null, p75: null, p90: null, histogram: expect.any(Array) },
    });
    // The default window (1d) sets the buckets: up to a day, all empty.
    const histogram = body.steps[1].time_to_convert.histogram;
    expect(histogram.map((b: { le_seconds: number }) => b.le_seconds)).toEqual([
      1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21_600, 43_200, 86_400,
    ]);
    expect(histogram.every((b: { customers: number }) => b.customers === 0)).toBe(true);
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

  describe('options', () => {
    it('counts a plain funnel of look, add, buy', async () => {
      const { status, body } = await funnel(LOOK_ADD_BUY);
      expect(status).toBe(200);
      // o-unordered and o-twins stop at add (no buy after it), o-skipper at look.
      expect(customersOf(body)).toEqual([6, 5, 3]);
    });

    it('voids an entry with an excluded event between two of its steps', async () => {
      const { body } = await funnel({
        ...LOOK_ADD_BUY,
        exclusions: [{ event_type: 'remove', after_step: 1, before_step: 2 }],
      });
      // o-removed has no other entry: it is not in the funnel at all.
      expect(customersOf(body)).toEqual([5, 4, 2]);
      // Outside the interval (before the add) the same event voids nothing.
      const before = await funnel({
        ...LOOK_ADD_BUY,
        exclusions: [{ event_type: 'remove', after_step: 0, before_step: 1 }],
      });
      expect(customersOf(before.body)).toEqual([6, 5, 3]);
    });

    it('holds a property constant along the chain', async () => {
      const { body } = await funnel({ ...LOOK_ADD_BUY, hold_constant: ['product_id'] });
      // o-other added another product: it stays at look.
      expect(customersOf(body)).toEqual([6, 4, 2]);
    });

    it('takes the steps after the entry in any order, timed from the entry', async () => {
      const { body } = await funnel({ ...LOOK_ADD_BUY, order: 'any' });
      // o-unordered bought, then added: both count.
      expect(customersOf(body)).toEqual([6, 5, 4]);
      // buy: 20 s, 20 s, 10 s, 40 s after the look.
      expect(body.steps[2].time_to_convert).toMatchObject({ p25: 17.5, p50: 20, p75: 25, p90: 34 });
    });

    it('lets a chain skip an optional step, compared with the required step before it', async () => {
      const { body } = await funnel({
        ...LOOK_ADD_BUY,
        steps: [
          { event_type: 'look' },
          { event_type: 'add', optional: true },
          { event_type: 'buy' },
        ],
      });
      // o-skipper and o-unordered (whose add came after the buy) reach buy without add;
      // o-twins did the add and stopped there.
      expect(customersOf(body)).toEqual([6, 4, 5]);
      expect(body.steps[1]).toMatchObject({
        optional: true,
        conversion_from_previous: 0.6667,
        dropped_from_previous: 2,
      });
      expect(body.steps[2]).toMatchObject({
        conversion_from_previous: 0.8333,
        dropped_from_previous: 1,
      });
      expect(body.steps[2]).not.toHaveProperty('optional');
    });

    it('attributes the breakdown to the deepest step, or to step k with a null group', async () => {
      const groups = (body: {
        breakdown: { value: string | null; steps: { customers: number }[] }[];
      }) => body.breakdown.map((b) => [b.value, b.steps[0]?.customers, b.steps.at(-1)?.customers]);
      const last = await funnel({
        ...LOOK_ADD_BUY,
        breakdown: 'channel',
        breakdown_attribution: 'last_touch',
      });
      // o-full bought in the store; o-unordered's deepest step is its mobile add; o-twins'
      // two adds of one millisecond give the smaller value, mobile.
      expect(groups(last.body)).toEqual([
        ['web', 3, 2],
        ['mobile', 2, 0],
        ['store', 1, 1],
      ]);
      const atBuy = await funnel({
        ...LOOK_ADD_BUY,
        breakdown: 'channel',
        breakdown_attribution: 'step:2',
      });
      expect(groups(atBuy.body)).toEqual([
        [null, 3, 0],
        ['web', 2, 2],
        ['store', 1, 1],
      ]);
      const first = await funnel({ ...LOOK_ADD_BUY, breakdown: 'channel' });
      expect(groups(first.body)).toEqual([['web', 6, 3]]);
    });

    it('combines the options with each other and with filters', async () => {
      const { body } = await funnel({
        ...LOOK_ADD_BUY,
        order: 'any',
        hold_constant: ['product_id'],
        exclusions: [{ event_type: 'remove', after_step: 0, before_step: 2 }],
        filters: [{ property: 'product_id', op: 'eq', value: 'p1' }],
      });
      // The filter drops o-other's p2 events; o-removed is void.
      expect(customersOf(body)).toEqual([5, 3, 2]);
    });

    const three = [{ event_type: 'a' }, { event_type: 'b' }, { event_type: 'c' }];
    it.each([
      [
        'an exclusion whose after_step is not before its before_step',
        { steps: three, exclusions: [{ event_type: 'x', after_step: 1, before_step: 1 }] },
        'exclusions.0.after_step',
      ],
      [
        'an exclusion past the last step',
        { steps: three, exclusions: [{ event_type: 'x', after_step: 0, before_step: 3 }] },
        'exclusions.0.before_step',
      ],
      [
        'an exclusion with an unknown field',
        {
          steps: three,
          exclusions: [{ event_type: 'x', after_step: 0, before_step: 1, after: 1 }],
        },
        'exclusions.0.after',
      ],
      [
        'an optional first step',
        { steps: [{ event_type: 'a', optional: true }, ...three.slice(1)] },
        'steps.0.optional',
      ],
      [
        'an optional last step',
        { steps: [...three.slice(0, 2), { event_type: 'c', optional: true }] },
        'steps.2.optional',
      ],
      [
        'four hold_constant properties',
        { steps: three, hold_constant: ['p', 'q', 'r', 's'] },
        'hold_constant',
      ],
      [
        'step:9 on five steps',
        {
          steps: [...three, { event_type: 'd' }, { event_type: 'e' }],
          breakdown: 'channel',
          breakdown_attribution: 'step:9',
        },
        'breakdown_attribution',
      ],
      [
        'an attribution of "middle"',
        { steps: three, breakdown: 'channel', breakdown_attribution: 'middle' },
        'breakdown_attribution',
      ],
      [
        'an attribution without a breakdown',
        { steps: three, breakdown_attribution: 'last_touch' },
        'breakdown_attribution',
      ],
      ['an unknown order', { steps: three, order: 'random' }, 'order'],
      [
        "an exclusion past a journey's last step",
        { journey: 'shop', exclusions: [{ event_type: 'x', after_step: 0, before_step: 3 }] },
        'exclusions.0.before_step',
      ],
      [
        "an attribution past a journey's last step",
        { journey: 'shop', breakdown: 'channel', breakdown_attribution: 'step:3' },
        'breakdown_attribution',
      ],
    ])('refuses %s with 400 and details naming the field', async (_name, body, path) => {
      const response = await funnel(body);
      expectError(response, 400, 'invalid_request');
      expect(response.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    });
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
      '/v1/journeys/{id}/dropoffs/{from_step}/insights',
      '/healthz',
      '/readyz',
      '/metrics',
    ]) {
      expect(Object.keys(spec.paths)).toContain(path);
    }
    const query = spec.paths['/v1/funnels/query'].post;
    const properties = query.requestBody.content['application/json'].schema.properties;
    for (const option of [
      'steps',
      'order',
      'exclusions',
      'hold_constant',
      'breakdown_attribution',
    ]) {
      expect(properties).toHaveProperty(option);
    }
    expect(JSON.stringify(query.responses['200'])).toContain('time_to_convert');
    expect(query.security).toEqual([{ bearer: [] }]);
    const docs = await fetch(`${runtime.address}/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('<html');
  });
});
