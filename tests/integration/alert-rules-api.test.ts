import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildAlerter } from '@touchstream/alerter';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJourneysFile } from '../../apps/cli/src/journeys-file.js';
import {
  type JourneysFileRuntime,
  SIGNUP_YAML,
  startWithJourneysFile,
} from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const checkout = {
  name: 'Checkout',
  steps: [
    { name: 'carted', event_type: 'cart_added' },
    { name: 'paid', event_type: 'payment_submitted' },
    { name: 'ordered', event_type: 'order_placed' },
  ],
  step_timeout: '30m',
};

const rule = {
  journey: 'checkout',
  step: 'paid',
  condition: 'no_events',
  window: '10m',
  min_entries: 5,
  webhook_url: 'https://hooks.example.com/touchstream',
};

describe('alert rules API', () => {
  let api: JourneysFileRuntime;
  const call: JourneysFileRuntime['call'] = (...args) => api.call(...args);

  beforeAll(async () => {
    api = await startWithJourneysFile('alert-rules', [
      ...SIGNUP_YAML,
      'alert_rules:',
      '  signup-broken:',
      '    journey: signup',
      '    step: registered',
      '    condition: conversion_drop',
      '    drop: 0.3',
    ]);
    expect((await call('PUT', '/v1/journeys/checkout', checkout)).status).toBe(201);
  });
  afterAll(async () => {
    await api?.runtime.stop();
  });

  it('loads the rules of the journeys file, with the defaults filled in', async () => {
    const { status, body } = await call('GET', '/v1/alert-rules/signup-broken');
    expect(status).toBe(200);
    expect(body).toEqual({
      id: 'signup-broken',
      journey: 'signup',
      step: 'registered',
      condition: 'conversion_drop',
      window: '5m',
      min_entries: 20,
      drop: 0.3,
      baseline_window: '7d',
      for: '0s',
    });
  });

  it('creates, replaces, lists and deletes a rule', async () => {
    const created = await call('PUT', '/v1/alert-rules/paid-broken', rule);
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: 'paid-broken',
      ...rule,
      drop: 0.5,
      baseline_window: '7d',
      for: '0s',
    });
    const replaced = await call('PUT', '/v1/alert-rules/paid-broken', { ...rule, for: '2m' });
    expect(replaced.status).toBe(200);
    expect((await call('GET', '/v1/alert-rules/paid-broken')).body.for).toBe('2m');
    const list = await call('GET', '/v1/alert-rules');
    expect(list.status).toBe(200);
    expect(list.body.alert_rules.map((r: { id: string }) => r.id)).toEqual([
      'paid-broken',
      'signup-broken',
    ]);
    expect((await call('DELETE', '/v1/alert-rules/paid-broken')).status).toBe(204);
    expect((await call('GET', '/v1/alert-rules')).body.alert_rules).toHaveLength(1);
  });

  it('answers an unknown rule id with 404 and the error object', async () => {
    for (const [method, body] of [
      ['GET', undefined],
      ['DELETE', undefined],
    ] as const) {
      const answer = await call(method, '/v1/alert-rules/nope', body);
      expect(answer.status).toBe(404);
      expect(answer.body.error).toMatchObject({ code: 'not_found', details: [] });
      expect(answer.body.error.message).toContain('nope');
    }
  });

  it.each([
    ['an unknown journey', { ...rule, journey: 'nope' }, 'journey'],
    ['an unknown step', { ...rule, step: 'shipped' }, 'step'],
    ['the entry step, which has no transition into it', { ...rule, step: 'carted' }, 'step'],
    ['an unknown condition', { ...rule, condition: 'slow' }, 'condition'],
    [
      'below_target on a step without a target',
      { ...rule, condition: 'below_target' },
      'condition',
    ],
    ['a window without unit', { ...rule, window: '10' }, 'window'],
    ['a drop above 1', { ...rule, condition: 'conversion_drop', drop: 1.5 }, 'drop'],
    ['a negative min_entries', { ...rule, min_entries: -1 }, 'min_entries'],
    ['a webhook that is not http', { ...rule, webhook_url: 'ftp://example.com/x' }, 'webhook_url'],
    ['a misspelt field', { ...rule, min_entry: 3 }, 'min_entry'],
    ['a window beyond a year', { ...rule, window: '1000000000d' }, 'window'],
    ['a baseline beyond a year', { ...rule, baseline_window: '400d' }, 'baseline_window'],
    ['a wait beyond a year', { ...rule, for: '367d' }, 'for'],
    [
      'a webhook with a NUL byte',
      { ...rule, webhook_url: 'https://h.example.com/\u0000x' },
      'webhook_url',
    ],
    [
      'a 500 KB webhook',
      { ...rule, webhook_url: `https://h.example.com/${'a'.repeat(500_000)}` },
      'webhook_url',
    ],
    [
      'a webhook to the cloud metadata service',
      { ...rule, webhook_url: 'http://169.254.169.254/latest/meta-data/iam/' },
      'webhook_url',
    ],
    ['a webhook to loopback', { ...rule, webhook_url: 'http://127.0.0.1:8080/' }, 'webhook_url'],
    ['a webhook to a private network', { ...rule, webhook_url: 'http://10.0.0.7/' }, 'webhook_url'],
  ])('refuses a rule with %s', async (_name, body, path) => {
    const { status, body: answer } = await call('PUT', '/v1/alert-rules/bad', body);
    expect(status).toBe(400);
    expect(answer.error.code).toBe('invalid_request');
    expect(answer.error.details.map((d: { path: string }) => d.path)).toContain(path);
    expect((await call('GET', '/v1/alert-rules/bad')).status).toBe(404);
  });

  it('refuses a malformed rule id', async () => {
    const { status, body } = await call('PUT', '/v1/alert-rules/Bad%20Id', rule);
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
  });

  it('lists alerts by state and refuses an unknown state', async () => {
    for (const state of ['firing', 'resolved', 'all']) {
      const { status, body } = await call('GET', `/v1/alerts?state=${state}`);
      expect(status).toBe(200);
      expect(body).toEqual({ alerts: [] });
    }
    expect((await call('GET', '/v1/alerts')).body).toEqual({ alerts: [] });
    const bad = await call('GET', '/v1/alerts?state=open');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect(bad.body.error.details[0].path).toBe('state');
  });

  it('runs an alerter that reports its health and stops idempotently', async () => {
    const alerter = buildAlerter({
      store: api.runtime.store,
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      intervalMs: 200,
    });
    expect(alerter.health().status).toBe('unhealthy');
    await alerter.start();
    await eventually(async () => expect(alerter.health()).toMatchObject({ status: 'ok' }));
    await Promise.all([alerter.stop(), alerter.stop()]);
    await alerter.stop();
    expect(alerter.health().status).toBe('unhealthy');
    expect(() =>
      buildAlerter({
        store: api.runtime.store,
        logger: pino({ level: 'silent' }),
        metrics: new Registry(),
        intervalMs: 0,
      }),
    ).toThrow(/TOUCHSTREAM_ALERT_INTERVAL/);
  });

  it('needs a query key', async () => {
    expect((await call('GET', '/v1/alert-rules', undefined, {})).status).toBe(401);
    expect(
      (await call('GET', '/v1/alerts', undefined, { authorization: 'Bearer ingest-key' })).status,
    ).toBe(403);
  });

  it('refuses a journeys file whose rule names a missing step, storing none of its rules', async () => {
    const file = join(api.dir, 'bad.yaml');
    await writeFile(
      file,
      JSON.stringify({
        journeys: { 'other-signup': { name: 'Signup', steps: checkout.steps, step_timeout: '1h' } },
        alert_rules: [
          { id: 'fine', journey: 'other-signup', step: 'paid', condition: 'no_events' },
          { id: 'typo', journey: 'other-signup', step: 'payed', condition: 'no_events' },
        ],
      }),
    );
    // What `touchstream start` runs before any service starts; its error stops the start.
    await expect(loadJourneysFile(api.runtime.store, file)).rejects.toThrow(
      /alert_rules\.typo\.step: journey "other-signup" has no step "payed"/,
    );
    expect((await call('GET', '/v1/alert-rules/fine')).status).toBe(404);
  });
});
