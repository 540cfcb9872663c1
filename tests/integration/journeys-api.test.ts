import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJourneysFile } from '../../apps/cli/src/journeys-file.js';
import {
  type JourneysFileRuntime,
  SIGNUP_YAML,
  startWithJourneysFile,
} from '../support/runtime.js';

const purchase = {
  name: 'Online purchase',
  steps: [
    { name: 'viewed', event_type: 'product_viewed' },
    { name: 'carted', event_type: 'cart_added' },
    { name: 'paid', event_type: 'payment_submitted', channel: 'web' },
    { name: 'ordered', event_type: 'order_placed', where: { currency: 'EUR' } },
  ],
  step_timeout: '30m',
  failure_event_types: ['payment_failed'],
};

describe('journeys API', () => {
  let api: JourneysFileRuntime;
  const call: JourneysFileRuntime['call'] = (...args) => api.call(...args);

  beforeAll(async () => {
    api = await startWithJourneysFile('journeys', [...SIGNUP_YAML, 'alert_rules: {}']);
  });
  afterAll(async () => {
    await api?.runtime.stop();
  });

  it('loads the journeys file at start', async () => {
    const { status, body } = await call('GET', '/v1/journeys/signup');
    expect(status).toBe(200);
    expect(body).toEqual({
      id: 'signup',
      name: 'Signup',
      steps: [
        { name: 'visited', event_type: 'landing_viewed' },
        { name: 'registered', event_type: 'account_created' },
      ],
      step_timeout: '1h',
      failure_event_types: [],
    });
  });

  it('creates, replaces, lists and deletes a journey', async () => {
    const created = await call('PUT', '/v1/journeys/online-purchase', purchase);
    expect(created).toEqual({ status: 201, body: { id: 'online-purchase', ...purchase } });
    const changed = { ...purchase, step_timeout: '45m' };
    const replaced = await call('PUT', '/v1/journeys/online-purchase', changed);
    expect(replaced).toEqual({ status: 200, body: { id: 'online-purchase', ...changed } });
    expect((await call('GET', '/v1/journeys/online-purchase')).body.step_timeout).toBe('45m');
    const list = await call('GET', '/v1/journeys');
    expect(list.body.journeys.map((j: { id: string }) => j.id)).toEqual([
      'online-purchase',
      'signup',
    ]);
    expect((await call('DELETE', '/v1/journeys/online-purchase')).status).toBe(204);
    expect((await call('GET', '/v1/journeys/online-purchase')).status).toBe(404);
    expect((await call('DELETE', '/v1/journeys/online-purchase')).status).toBe(404);
  });

  it('answers an unknown journey with 404 and the error object', async () => {
    for (const path of ['/v1/journeys/nope', '/v1/journeys/nope/dropoffs']) {
      const { status, body } = await call('GET', path);
      expect(status).toBe(404);
      expect(body.error.code).toBe('not_found');
    }
  });

  it.each([
    ['an id with capitals', 'Bad-Id', purchase],
    ['one step', 'one-step', { ...purchase, steps: purchase.steps.slice(0, 1) }],
    [
      '21 steps',
      'many',
      {
        ...purchase,
        steps: Array.from({ length: 21 }, (_, i) => ({ name: `s${i}`, event_type: 'x' })),
      },
    ],
    ['a timeout without unit', 'no-unit', { ...purchase, step_timeout: '30' }],
    ['duplicate step names', 'dup', { ...purchase, steps: [purchase.steps[0], purchase.steps[0]] }],
    [
      'an event type with spaces',
      'space',
      { ...purchase, steps: [{ name: 'a', event_type: 'a b' }, purchase.steps[1]] },
    ],
    [
      // Once stored with 201, and every funnel on it then answered 500.
      '5,000 where keys',
      'wide',
      {
        ...purchase,
        steps: [
          {
            ...purchase.steps[0],
            where: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, 'v'])),
          },
          purchase.steps[1],
        ],
      },
    ],
    ['a name that is not Unicode', 'lone', { ...purchase, name: 'Purchase \udc00' }],
  ])('refuses a journey with %s', async (_name, id, body) => {
    const { status, body: answer } = await call('PUT', `/v1/journeys/${id}`, body);
    expect(status).toBe(400);
    expect(answer.error.code).toBe('invalid_request');
    expect(answer.error.details.length).toBeGreaterThan(0);
  });

  it('refuses unknown fields, naming them, and stores nothing', async () => {
    // Once answered 200 and stored `failure_event_types: []`: the user believed failure
    // reasons were configured.
    const misspelt = await call('PUT', '/v1/journeys/misspelt', {
      ...purchase,
      failure_event_types: undefined,
      failure_event_type: ['payment_failed'],
    });
    expect(misspelt.status).toBe(400);
    expect(misspelt.body.error.details).toEqual([
      { path: 'failure_event_type', message: 'Unrecognized key: "failure_event_type"' },
    ]);
    const inStep = await call('PUT', '/v1/journeys/misspelt', {
      ...purchase,
      steps: [purchase.steps[0], { ...purchase.steps[1], chanel: 'web' }],
    });
    expect(inStep.status).toBe(400);
    expect(inStep.body.error.details).toEqual([
      { path: 'steps.1.chanel', message: 'Unrecognized key: "chanel"' },
    ]);
    expect((await call('GET', '/v1/journeys/misspelt')).status).toBe(404);

    const file = join(api.dir, 'misspelt.yaml');
    await writeFile(
      file,
      JSON.stringify({
        journeys: [{ id: 'misspelt', ...purchase, failure_event_type: ['payment_failed'] }],
      }),
    );
    await expect(loadJourneysFile(api.runtime.store, file)).rejects.toThrow(
      /Unrecognized key: "failure_event_type"/,
    );
    expect((await call('GET', '/v1/journeys/misspelt')).status).toBe(404);
  });

  it('stores and returns owners, targets, value, feedback and review, from the API and the file', async () => {
    const accountable = {
      ...purchase,
      steps: [
        { ...purchase.steps[0], owner: 'web team' },
        { ...purchase.steps[1], owner: 'web team', target_conversion: 0.4 },
        { ...purchase.steps[2], owner: 'payments: Ana Ruiz', target_conversion: 0.75 },
        { ...purchase.steps[3], target_conversion: 1 },
      ],
      value_property: 'cart_value',
      currency: 'EUR',
      feedback_event_types: ['csat_submitted'],
      review: { schedule: '0 9 * * 1', webhook_url: 'https://hooks.example.com/review' },
    };
    const created = await call('PUT', '/v1/journeys/accountable', accountable);
    expect(created).toEqual({ status: 201, body: { id: 'accountable', ...accountable } });
    expect((await call('GET', '/v1/journeys/accountable')).body).toEqual({
      id: 'accountable',
      ...accountable,
    });

    const file = join(api.dir, 'accountable.yaml');
    const fromFile = { id: 'accountable-file', ...accountable };
    await writeFile(file, JSON.stringify({ journeys: [fromFile] }));
    await loadJourneysFile(api.runtime.store, file);
    expect((await call('GET', '/v1/journeys/accountable-file')).body).toEqual(fromFile);
  });

  it('refuses bad owners, targets, currency, feedback types and reviews, naming the field', async () => {
    const refused = async (body: Record<string, unknown>) => {
      const answer = await call('PUT', '/v1/journeys/refused', { ...purchase, ...body });
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('invalid_request');
      return answer.body.error.details.map((d: { path: string }) => d.path);
    };
    const step = (k: number, extra: Record<string, unknown>) => ({
      steps: purchase.steps.map((s, i) => (i === k ? { ...s, ...extra } : s)),
    });
    expect(await refused(step(0, { target_conversion: 0.5 }))).toEqual([
      'steps.0.target_conversion',
    ]);
    expect(await refused(step(2, { target_conversion: 1.5 }))).toEqual([
      'steps.2.target_conversion',
    ]);
    expect(await refused(step(1, { owner: '' }))).toEqual(['steps.1.owner']);
    expect(await refused(step(1, { owner: 'x'.repeat(129) }))).toEqual(['steps.1.owner']);
    expect(await refused({ currency: 'eur' })).toEqual(['currency']);
    expect(await refused({ value_property: '' })).toEqual(['value_property']);
    expect(await refused({ feedback_event_types: ['CSAT!'] })).toEqual(['feedback_event_types.0']);
    const review = { schedule: '0 9 * * 1', webhook_url: 'https://hooks.example.com/review' };
    expect(await refused({ review: { ...review, schedule: '61 9 * * 1' } })).toEqual([
      'review.schedule',
    ]);
    // Six fields would be seconds first: refused rather than read another way.
    expect(await refused({ review: { ...review, schedule: '0 0 9 * * 1' } })).toEqual([
      'review.schedule',
    ]);
    expect(await refused({ review: { ...review, webhook_url: 'ftp://example.com' } })).toEqual([
      'review.webhook_url',
    ]);
    expect(await refused({ review: { ...review, webhook: review.webhook_url } })).toEqual([
      'review.webhook',
    ]);
    expect(
      await refused({ review: { ...review, webhook_url: 'http://127.0.0.1:9/review' } }),
    ).toEqual(['review.webhook_url']);
    expect((await call('GET', '/v1/journeys/refused')).status).toBe(404);
  });

  it('refuses a reversed or malformed drop-off range', async () => {
    const reversed = await call(
      'GET',
      '/v1/journeys/signup/dropoffs?from=2026-10-08T00:00:00Z&to=2026-10-01T00:00:00Z',
    );
    expect(reversed.status).toBe(400);
    const malformed = await call('GET', '/v1/journeys/signup/dropoffs?from=yesterday');
    expect(malformed.status).toBe(400);
    const early = await call('GET', '/v1/journeys/signup/dropoffs?from=1000-01-01T00:00:00Z');
    expect(early.status).toBe(400);
    expect(early.body.error.details).toEqual([
      { path: 'from', message: 'must be between 1970 and 2200' },
    ]);
  });

  it('needs a query key', async () => {
    expect((await call('GET', '/v1/journeys', undefined, {})).status).toBe(401);
    expect(
      (await call('GET', '/v1/journeys', undefined, { authorization: 'Bearer ingest-key' })).status,
    ).toBe(403);
  });
});
