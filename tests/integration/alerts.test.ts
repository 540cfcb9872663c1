import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listDeliveries } from '@touchstream/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { postEvents } from '../support/events.js';
import { callJson } from '../support/http.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

// Short everything, so that a window and an interval pass in seconds: 1s evaluations,
// 2s step timeouts, 5s windows, and event time following the clock after 1s of quiet.
const ENV = {
  TOUCHSTREAM_ALERT_INTERVAL: '1s',
  TOUCHSTREAM_IDLE_WATERMARK: '1s',
  // The webhook receivers listen on 127.0.0.1.
  TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL: 'true',
};
// Each journey has event types of its own, so that one journey's traffic is not another's.
const STEPS = ['viewed', 'carted', 'paid'];
const eventType = (journeyId: string, step: number) => `${journeyId}.${STEPS[step]}`;
const journey = (id: string) => ({
  name: id,
  steps: STEPS.map((name, step) => ({ name, event_type: eventType(id, step) })),
  step_timeout: '2s',
});

/**
 * Customers walking a journey, live: every 200 ms four new customers, each going as far
 * as `depth(n)` steps (n counts customers). `depth` can be changed while it runs.
 */
function startTraffic(base: () => string, journeyId: string, depth: (n: number) => number) {
  let running = true;
  let customers = 0;
  const traffic = { depth, sent: 0 };
  const loop = (async () => {
    while (running) {
      const now = Date.now();
      const events = [];
      for (let i = 0; i < 4; i++) {
        customers += 1;
        const customer = `${journeyId}-${customers}`;
        const steps = traffic.depth(customers);
        for (let s = 0; s < steps; s++) {
          events.push({
            event_id: `${customer}-${s}`,
            customer_id: customer,
            type: eventType(journeyId, s),
            channel: 'web',
            timestamp: now + s * 10,
          });
        }
      }
      // While the runtime restarts nothing listens: those customers are simply lost.
      const posted = await postEvents(base(), events).catch(() => undefined);
      if (posted?.status === 202) traffic.sent += events.length;
      await sleep(200);
    }
  })();
  return Object.assign(traffic, {
    async stop() {
      running = false;
      await loop;
    },
  });
}

const ALL = () => 3;
const BROKEN = () => 2;

describe('alerting on broken journey steps, end to end', () => {
  let runtime: Runtime;
  let dataDir: string;
  let receiver: WebhookReceiver;
  const traffics: ReturnType<typeof startTraffic>[] = [];
  const base = () => runtime.address;

  const call = (method: string, path: string, body?: unknown) =>
    callJson(runtime.address, method, path, body);
  /** One counter of the alerter's metrics, summed over its labels matching `labels`. */
  const metric = async (name: string, labels = '') => {
    const text = await (await fetch(`${runtime.address}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(name) && line.includes(labels))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  };
  /** Waits until the alerter has evaluated at least `n` more times in the firing state. */
  const evaluationsWhileFiring = async (n: number) => {
    const start = await metric('touchstream_alerter_evaluations_total', 'outcome="firing"');
    await eventually(async () =>
      expect(
        await metric('touchstream_alerter_evaluations_total', 'outcome="firing"'),
      ).toBeGreaterThanOrEqual(start + n),
    );
  };
  /** Creates a journey and waits until the processor follows it. */
  const journeyWithTraffic = async (id: string, depth: (n: number) => number) => {
    expect((await call('PUT', `/v1/journeys/${id}`, journey(id))).status).toBe(201);
    const traffic = startTraffic(base, id, depth);
    traffics.push(traffic);
    await eventually(async () =>
      expect((await call('GET', `/v1/journeys/${id}/dropoffs`)).body.entered).toBeGreaterThan(0),
    );
    return traffic;
  };
  const alertsOf = async (ruleId: string, state = 'all') =>
    (await call('GET', `/v1/alerts?state=${state}`)).body.alerts.filter(
      (a: { rule_id: string }) => a.rule_id === ruleId,
    );

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'touchstream-alerts-'));
    receiver = await startWebhookReceiver();
    runtime = await startTestRuntime({ ...ENV, TOUCHSTREAM_DATA_DIR: dataDir });
    // Healthy traffic on a journey of its own for the whole file: its rules never fire.
    await journeyWithTraffic('healthy', ALL);
    for (const condition of ['no_events', 'conversion_drop']) {
      const rule = {
        journey: 'healthy',
        step: 'paid',
        condition,
        window: '5s',
        baseline_window: '30s',
        min_entries: 5,
        webhook_url: receiver.url(`healthy-${condition}`),
      };
      expect((await call('PUT', `/v1/alert-rules/healthy-${condition}`, rule)).status).toBe(201);
    }
  });
  afterAll(async () => {
    await Promise.all(traffics.map((t) => t.stop()));
    await runtime?.stop();
    await receiver?.close();
  });

  it('fires no_events once when a step stops receiving events, and resolves once on repair', async () => {
    const traffic = await journeyWithTraffic('no-events', ALL);
    const rule = {
      journey: 'no-events',
      step: 'paid',
      condition: 'no_events',
      window: '5s',
      min_entries: 5,
      webhook_url: receiver.url('no-events'),
    };
    expect((await call('PUT', '/v1/alert-rules/no-events', rule)).status).toBe(201);
    traffic.depth = BROKEN;

    // Within a window and an interval (and the time to see it).
    const [fired] = await eventually(async () => {
      const posts = receiver.posts('no-events');
      expect(posts).toHaveLength(1);
      return posts;
    }, 30_000);
    expect(fired?.body).toMatchObject({
      rule_id: 'no-events',
      journey: 'no-events',
      step: 'paid',
      condition: 'no_events',
      state: 'firing',
      value: 0,
      baseline: null,
      resolved_at: null,
    });
    expect(fired?.body.message).toMatch(/No instance reached step "paid"/);
    expect(fired?.body.text).toContain('*FIRING*');
    expect(fired?.headers['content-type']).toBe('application/json');
    expect(await alertsOf('no-events', 'firing')).toEqual(
      [{ ...fired?.body, text: undefined }].map(({ text: _, ...alert }) => alert),
    );

    // Still broken: it stays firing, without another post.
    await evaluationsWhileFiring(3);
    expect(receiver.posts('no-events')).toHaveLength(1);

    traffic.depth = ALL;
    const resolved = await eventually(async () => {
      const posts = receiver.posts('no-events');
      expect(posts).toHaveLength(2);
      return posts[1];
    }, 30_000);
    expect(resolved?.body).toMatchObject({
      rule_id: 'no-events',
      state: 'resolved',
      started_at: fired?.body.started_at,
    });
    expect(Date.parse(resolved?.body.resolved_at)).toBeGreaterThan(
      Date.parse(fired?.body.started_at),
    );
    expect(resolved?.body.text).toContain('*RESOLVED*');
    expect(await alertsOf('no-events', 'firing')).toEqual([]);
    const [history] = await alertsOf('no-events', 'resolved');
    expect(history).toMatchObject({ state: 'resolved', started_at: fired?.body.started_at });

    // Healthy again: no further posts while other rules keep firing and being evaluated.
    const deliveries = await eventually(async () => {
      const rows = (await listDeliveries(runtime.store)).filter((d) => d.rule_id === 'no-events');
      expect(rows.map((d) => [d.state, d.outcome, d.attempts])).toEqual([
        ['firing', 'delivered', 1],
        ['resolved', 'delivered', 1],
      ]);
      return rows;
    });
    expect(deliveries[0]?.http_status).toBe(200);
  });

  it('fires conversion_drop when conversion into a step falls below its baseline', async () => {
    const traffic = await journeyWithTraffic('conversion', ALL);
    const rule = {
      journey: 'conversion',
      step: 'paid',
      condition: 'conversion_drop',
      window: '5s',
      baseline_window: '1m',
      drop: 0.5,
      min_entries: 10,
      webhook_url: receiver.url('conversion'),
    };
    expect((await call('PUT', '/v1/alert-rules/conversion', rule)).status).toBe(201);
    // A baseline first: every customer pays until enough of them did so before the window.
    await eventually(async () => {
      const [, toPaid] = (await call('GET', '/v1/journeys/conversion/dropoffs')).body.transitions;
      expect(toPaid.continued).toBeGreaterThan(100);
    });
    // Then only one customer in five pays: the step works, barely.
    traffic.depth = (n) => (n % 5 === 0 ? 3 : 2);
    const [fired] = await eventually(async () => {
      const posts = receiver.posts('conversion');
      expect(posts).toHaveLength(1);
      return posts;
    }, 30_000);
    expect(fired?.body).toMatchObject({ condition: 'conversion_drop', state: 'firing' });
    // The baseline is what the step converted before it broke, give or take a few broken
    // instances that entered the baseline range while the window filled.
    expect(fired?.body.baseline).toBeGreaterThan(0.6);
    expect(fired?.body.value).toBeLessThan(fired?.body.baseline * 0.5);
    expect(fired?.body.message).toMatch(/Conversion from "carted" to step "paid"/);

    // A deleted rule watches nothing any more: its alert resolves, and says why.
    expect((await call('DELETE', '/v1/alert-rules/conversion')).status).toBe(204);
    const resolved = await eventually(async () => {
      const posts = receiver.posts('conversion');
      expect(posts).toHaveLength(2);
      return posts[1];
    });
    expect(resolved?.body).toMatchObject({ state: 'resolved', started_at: fired?.body.started_at });
    expect(resolved?.body.message).toContain('was deleted');
    expect(await alertsOf('conversion', 'firing')).toEqual([]);
  });

  it('fires below_target when conversion into a step falls under its target, and resolves on repair', async () => {
    const id = 'target';
    const plain = journey(id);
    const body = {
      ...plain,
      steps: plain.steps.map((step, k) => (k === 2 ? { ...step, target_conversion: 0.9 } : step)),
    };
    expect((await call('PUT', `/v1/journeys/${id}`, body)).status).toBe(201);
    const traffic = startTraffic(base, id, ALL);
    traffics.push(traffic);
    const rule = {
      journey: id,
      step: 'paid',
      condition: 'below_target',
      window: '5s',
      min_entries: 10,
      webhook_url: receiver.url(id),
    };
    expect((await call('PUT', `/v1/alert-rules/${id}`, rule)).status).toBe(201);
    // Meeting the target: judged, and clear.
    await eventually(async () => {
      const [, toPaid] = (await call('GET', `/v1/journeys/${id}/dropoffs`)).body.transitions;
      expect(toPaid.continued).toBeGreaterThan(20);
      expect(toPaid).toMatchObject({ target_conversion: 0.9, below_target: false });
    });
    expect(receiver.posts(id)).toEqual([]);

    // Nobody pays any more: conversion 0 against a target of 90%.
    traffic.depth = BROKEN;
    const [fired] = await eventually(async () => {
      const posts = receiver.posts(id);
      expect(posts).toHaveLength(1);
      return posts;
    }, 30_000);
    expect(fired?.body).toMatchObject({
      condition: 'below_target',
      state: 'firing',
      baseline: 0.9,
    });
    expect(fired?.body.value).toBeLessThan(0.9);
    expect(fired?.body.message).toMatch(/below its target of 90\.0%/);
    expect(fired?.body.text).toContain('below target on step `paid`');

    traffic.depth = ALL;
    const resolved = await eventually(async () => {
      const posts = receiver.posts(id);
      expect(posts).toHaveLength(2);
      return posts[1];
    }, 30_000);
    expect(resolved?.body).toMatchObject({ state: 'resolved', started_at: fired?.body.started_at });
    expect(await alertsOf(id, 'firing')).toEqual([]);
  });

  it('retries a notice while the receiver is down and delivers it when it is back', async () => {
    const away = await startWebhookReceiver();
    await away.down();
    await journeyWithTraffic('receiver-down', BROKEN);
    const failedBefore = await metric(
      'touchstream_alerter_notification_attempts_total',
      'result="failed"',
    );
    const rule = {
      journey: 'receiver-down',
      step: 'paid',
      condition: 'no_events',
      window: '5s',
      min_entries: 5,
      webhook_url: away.url('hook'),
    };
    expect((await call('PUT', '/v1/alert-rules/receiver-down', rule)).status).toBe(201);
    await eventually(async () =>
      expect(
        await metric('touchstream_alerter_notification_attempts_total', 'result="failed"'),
      ).toBeGreaterThanOrEqual(failedBefore + 1),
    );
    expect(await alertsOf('receiver-down', 'firing')).toHaveLength(1);
    await away.up();
    try {
      await eventually(async () => expect(away.posts('hook')).toHaveLength(1), 30_000);
      expect(away.posts('hook')[0]?.body).toMatchObject({
        rule_id: 'receiver-down',
        state: 'firing',
      });
      const [delivery] = await eventually(async () => {
        const rows = (await listDeliveries(runtime.store)).filter(
          (d) => d.rule_id === 'receiver-down',
        );
        expect(rows).toHaveLength(1);
        return rows;
      });
      expect(delivery).toMatchObject({ state: 'firing', outcome: 'delivered' });
      expect(delivery?.attempts).toBeGreaterThan(1);
      // Delivered once: the same notice is not posted again.
      await evaluationsWhileFiring(2);
      expect(away.posts('hook')).toHaveLength(1);
      expect((await call('DELETE', '/v1/alert-rules/receiver-down')).status).toBe(204);
      await eventually(async () => expect(away.posts('hook')).toHaveLength(2));
    } finally {
      await away.close();
    }
  });

  it('neither repeats nor forgets an alert or an owed notice across a restart', async () => {
    const traffic = await journeyWithTraffic('restart', BROKEN);
    const owedTraffic = await journeyWithTraffic('restart-owed', BROKEN);
    const away = await startWebhookReceiver();
    await away.down();
    const rule = (id: string, url: string) => ({
      journey: id,
      step: 'paid',
      condition: 'no_events',
      window: '5s',
      min_entries: 5,
      webhook_url: url,
    });
    expect(
      (await call('PUT', '/v1/alert-rules/restart', rule('restart', receiver.url('restart'))))
        .status,
    ).toBe(201);
    expect(
      (await call('PUT', '/v1/alert-rules/restart-owed', rule('restart-owed', away.url('owed'))))
        .status,
    ).toBe(201);
    // One alert delivered before the restart, one whose receiver is away through it.
    await eventually(async () => expect(receiver.posts('restart')).toHaveLength(1), 30_000);
    await eventually(async () => expect(await alertsOf('restart-owed', 'firing')).toHaveLength(1));
    const firing = await alertsOf('restart', 'firing');
    const owed = await alertsOf('restart-owed', 'firing');

    await runtime.stop();
    runtime = await startTestRuntime({ ...ENV, TOUCHSTREAM_DATA_DIR: dataDir });
    try {
      expect(await alertsOf('restart', 'firing')).toEqual(firing);
      // The new alerter judges the still-broken steps firing, and posts nothing again.
      await evaluationsWhileFiring(6);
      expect(receiver.posts('restart')).toHaveLength(1);
      expect(await alertsOf('restart', 'firing')).toEqual(firing);
      expect(await alertsOf('restart-owed', 'firing')).toEqual(owed);

      // The notice owed from before the restart is delivered, once, when its receiver is back.
      await away.up();
      await eventually(async () => expect(away.posts('owed')).toHaveLength(1), 30_000);
      expect(away.posts('owed')[0]?.body).toMatchObject({ state: 'firing', ...owed[0] });

      // It was not forgotten either: the repaired step resolves it.
      traffic.depth = ALL;
      owedTraffic.depth = ALL;
      await eventually(async () => expect(receiver.posts('restart')).toHaveLength(2), 30_000);
      expect(receiver.posts('restart')[1]?.body).toMatchObject({
        state: 'resolved',
        started_at: firing[0].started_at,
      });
      await eventually(async () => expect(away.posts('owed')).toHaveLength(2), 30_000);
      expect(away.posts('owed')[1]?.body.state).toBe('resolved');
    } finally {
      await away.close();
    }
  });

  it('never fired on the healthy journey', async () => {
    expect(receiver.posts('healthy-no_events')).toEqual([]);
    expect(receiver.posts('healthy-conversion_drop')).toEqual([]);
    expect(await alertsOf('healthy-no_events')).toEqual([]);
    expect(await alertsOf('healthy-conversion_drop')).toEqual([]);
    // And it was judged all along, not skipped for want of entries.
    expect(await metric('touchstream_alerter_evaluations_total', 'outcome="ok"')).toBeGreaterThan(
      5,
    );
  });
});
