import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DropoffResponse, FunnelResponse } from '@touchstream/contracts';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { launchBrowser } from '../support/browser.js';
import {
  buildDashboardAssets,
  dashboardContext,
  startWithDashboard,
} from '../support/dashboard.js';
import { postAll } from '../support/events.js';
import { callJson } from '../support/http.js';
import { anonymize, resolveIdentities, stitchedCustomers } from '../support/identities.js';
import {
  batchesWithRetries,
  expectDropoffsToMatch,
  PURCHASE,
  purchaseTraffic,
} from '../support/journey-traffic.js';
import { eventually } from '../support/wait.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const INGEST_KEY = 'ingest-key-dashboard';
const QUERY_KEY = 'query-key-dashboard';
const SCREENSHOT = new URL('../../test-output/dashboard.png', import.meta.url).pathname;

/** A journey whose second step never happens, and a rule that says so. */
const GIFT = {
  id: 'gift-wrap',
  body: {
    name: 'Gift wrapping',
    steps: [
      { name: 'viewed', event_type: 'product_viewed' },
      { name: 'wrapped', event_type: 'gift_wrapped' },
    ],
    step_timeout: '5m',
  },
  rule: {
    journey: 'gift-wrap',
    step: 'wrapped',
    condition: 'no_events',
    window: '1d',
    min_entries: 1,
  },
};

const digits = (text: string | null) => Number((text ?? '').replace(/[^\d]/g, ''));
const isoMinute = (ms: number) => new Date(ms).toISOString().slice(0, 16);

describe('the dashboard at /', () => {
  let runtime: Runtime;
  let browser: Browser;
  const call = async (method: string, path: string, body?: unknown) => {
    const answer = await callJson(runtime.address, method, path, body, {
      authorization: `Bearer ${QUERY_KEY}`,
    });
    expect(answer.status, path).toBeLessThan(300);
    return answer.body;
  };

  beforeAll(async () => {
    const { dir, assetsDir } = await buildDashboardAssets('dashboard');
    runtime = await startWithDashboard(
      {
        TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
        TOUCHSTREAM_INGEST_KEYS: INGEST_KEY,
        TOUCHSTREAM_QUERY_KEYS: QUERY_KEY,
        // Short, so the last instances are decided soon after the traffic stops.
        TOUCHSTREAM_IDLE_WATERMARK: '8s',
        TOUCHSTREAM_ALERT_INTERVAL: '1s',
      },
      assetsDir,
    );
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await runtime?.stop();
  });

  it('serves the page and its assets without a key, and keeps /v1 behind it', async () => {
    const page = await fetch(`${runtime.address}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    const script = html.match(/src="\.\/(assets\/[^"]+\.js)"/)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${runtime.address}/${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${runtime.address}/v1/journeys`)).status).toBe(401);
    expect((await fetch(`${runtime.address}/v1/no-such-thing`)).status).toBe(401);
  });

  it('shows the figures the API gives for the chosen journey and range', async () => {
    const { id, ...purchase } = PURCHASE;
    await call('PUT', `/v1/journeys/${id}`, purchase);
    await call('PUT', `/v1/journeys/${GIFT.id}`, GIFT.body);
    await call('PUT', '/v1/alert-rules/gift-wrap-broken', GIFT.rule);

    const start = Math.floor((Date.now() - 3 * HOUR) / MINUTE) * MINUTE;
    // As channels send it: some customers anonymous on the web until they log in.
    const sent = anonymize(purchaseTraffic({ customers: 250, start, seed: 7 }), 7);
    const events = resolveIdentities(sent);
    await postAll(runtime.address, batchesWithRetries(sent, 200), {
      authorization: `Bearer ${INGEST_KEY}`,
    });
    const dropoffsOf = (from: number, to: number): Promise<DropoffResponse> =>
      call(
        'GET',
        `/v1/journeys/${id}/dropoffs?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`,
      );
    // Every instance decided, so the figures no longer move under the page.
    await expectDropoffsToMatch(dropoffsOf, PURCHASE, events, start, stitchedCustomers(sent));
    await eventually(async () => {
      const { alerts } = await call('GET', '/v1/alerts?state=firing');
      expect(alerts.map((a: { rule_id: string }) => a.rule_id)).toContain('gift-wrap-broken');
    }, 30_000);

    const range = { from: start - HOUR, to: start + 3 * HOUR };
    const dropoffs = await dropoffsOf(range.from, range.to);
    const funnel: FunnelResponse = await call('POST', '/v1/funnels/query', {
      journey: id,
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
    });
    expect(dropoffs.entered).toBeGreaterThan(0);
    expect(dropoffs.stitched).toBeGreaterThan(0);

    // Without a key kept: the page must ask for one.
    const context = await dashboardContext(browser);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));

    await page.goto(`${runtime.address}/`);
    // The first request is refused without a key: the page asks for one.
    await page.getByTestId('key-input').fill(QUERY_KEY);
    await page.getByTestId('key-submit').click();

    await page.getByTestId('journey-select').selectOption(id);
    await page.getByTestId('range-from').fill(isoMinute(range.from));
    await page.getByTestId('range-to').fill(isoMinute(range.to));
    await page.getByTestId('apply').click();
    const shown = async (p: Page) =>
      p
        .locator(
          `[data-testid="status"][data-kind="done"][data-journey="${id}"]` +
            `[data-from="${new Date(range.from).toISOString()}"][data-to="${new Date(range.to).toISOString()}"]`,
        )
        .waitFor({ timeout: 30_000 });
    await shown(page);

    const text = (testId: string) => page.getByTestId(testId).textContent();
    expect(digits(await text('summary-entered'))).toBe(dropoffs.entered);
    expect(digits(await text('summary-completed'))).toBe(dropoffs.completed);
    expect(digits(await text('summary-stitched'))).toBe(dropoffs.stitched);
    expect(digits(await text('summary-firing'))).toBeGreaterThanOrEqual(1);

    for (const [i, step] of funnel.steps.entries()) {
      expect(await text(`funnel-step-${i}`)).toBe(step.name);
      expect(digits(await text(`funnel-customers-${i}`)), step.name).toBe(step.customers);
    }
    expect(await page.locator('[data-testid^="funnel-row-"]').count()).toBe(funnel.steps.length);

    expect(dropoffs.transitions.length).toBe(PURCHASE.steps.length - 1);
    for (const [i, t] of dropoffs.transitions.entries()) {
      const name = `${t.from_step} → ${t.to_step}`;
      expect(await text(`dropoff-transition-${i}`)).toBe(name);
      expect(digits(await text(`dropoff-reached-${i}`)), name).toBe(t.reached);
      expect(digits(await text(`dropoff-continued-${i}`)), name).toBe(t.continued);
      expect(digits(await text(`dropoff-dropped-${i}`)), name).toBe(t.dropped);
      expect(digits(await text(`dropoff-in-progress-${i}`)), name).toBe(t.in_progress);
      for (const reason of t.reasons) {
        expect(await text(`dropoff-reasons-${i}`)).toContain(`${reason.reason} ${reason.dropped}`);
      }
      // Owners, targets, value at risk and ratings (dashboard-value.test.ts checks how
      // they read).
      expect(await text(`dropoff-owner-${i}`), name).toBe(t.owner ?? '–');
      expect(await page.getByTestId(`dropoff-target-${i}`).getAttribute('data-target'), name).toBe(
        String(t.target_conversion),
      );
      expect(await page.getByTestId(`dropoff-below-target-${i}`).count(), name).toBe(
        t.below_target ? 1 : 0,
      );
      expect(await page.getByTestId(`dropoff-value-${i}`).getAttribute('data-value'), name).toBe(
        String(t.value_dropped),
      );
      expect(await text(`dropoff-feedback-${i}`), name).toContain(
        `(${t.feedback.dropped.responses})`,
      );
    }
    expect(dropoffs.transitions.some((t) => t.below_target)).toBe(true);
    expect(await page.getByTestId('value-headline').isVisible()).toBe(true);
    expect(await page.getByTestId('value-dropped').getAttribute('data-value')).toBe(
      String(dropoffs.value_dropped),
    );
    expect(await text('value-dropped')).toMatch(/^EUR [\d,]+\.\d\d$/);

    const alert = page.locator('[data-testid="alert-row"][data-rule="gift-wrap-broken"]');
    await expect(alert.getAttribute('data-state')).resolves.toBe('firing');

    // Every chart drew something: funnel, conversion over time, channels, and the flow.
    for (const chart of ['funnel-chart', 'time-chart', 'channel-chart', 'flow-chart']) {
      expect(await page.locator(`#${chart} svg path`).count(), chart).toBeGreaterThan(0);
    }

    await mkdir(new URL('../../test-output/', import.meta.url), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // The key is asked once: the same view again, from its address, needs no prompt.
    await page.reload();
    await shown(page);
    expect(await page.getByTestId('key-dialog').isVisible()).toBe(false);
    expect(digits(await text('funnel-customers-0'))).toBe(funnel.steps[0]?.customers);
    expect(problems).toEqual([]);
    await context.close();
  });
});
