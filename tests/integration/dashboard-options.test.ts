import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  DropoffResponse,
  FunnelResponse,
  InsightsResponse,
  Touchpoint,
} from '@touchstream/contracts';
import type { Browser } from 'playwright-core';
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
import { eventually } from '../support/wait.js';

/**
 * The dashboard's funnel options (order, exclusions, hold-constant), its time-to-convert
 * histogram and its insights panel, against the API's own answers to the same questions,
 * on traffic where every option changes the figures.
 */

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const SCREENSHOT = new URL('../../test-output/dashboard-options.png', import.meta.url).pathname;
const INGEST_KEY = 'ingest-key-dashboard-options';
const QUERY_KEY = 'query-key-dashboard-options';

const JOURNEY = {
  id: 'checkout-options',
  body: {
    name: 'Checkout with options',
    steps: [
      { name: 'viewed', event_type: 'product_viewed' },
      { name: 'carted', event_type: 'cart_added' },
      { name: 'ordered', event_type: 'order_placed' },
    ],
    step_timeout: '10m',
    failure_event_types: ['checkout_error'],
  },
};

/**
 * Five groups of customers, each one option's case:
 * - `plain` (20) view, cart and order the same product;
 * - `switch` (10) cart another product than they viewed: `hold_constant: [product_id]`
 *   stops them at `viewed`;
 * - `helped` (10) open the help between cart and order: an exclusion of `help_opened`
 *   after step 1 and before step 2 leaves them out;
 * - `reversed` (10) order before they cart: `order: any` counts them at `ordered`;
 * - `stuck` (15) drop after viewing, most of them (10) after an error banner that only 4
 *   of `plain` see, then call the call centre: what the insights of `viewed` are about.
 * Gaps vary (30 s, 90 s, 4 min), so the time to convert fills several buckets.
 */
function optionsTraffic(start: number): Touchpoint[] {
  const events: Touchpoint[] = [];
  let n = 0;
  const emit = (
    customer: string,
    type: string,
    timestamp: number,
    properties?: Touchpoint['properties'],
    channel = 'web',
  ) => {
    n += 1;
    events.push({
      event_id: `dash-opt-${n}`,
      customer_id: customer,
      type,
      channel,
      timestamp,
      ...(properties ? { properties } : {}),
    });
  };
  const groups = [
    ['plain', 20],
    ['switch', 10],
    ['helped', 10],
    ['reversed', 10],
    ['stuck', 15],
  ] as const;
  let c = 0;
  for (const [group, size] of groups) {
    for (let i = 0; i < size; i++, c++) {
      const customer = `dash-opt-${group}-${i}`;
      const gap = [30 * SEC, 90 * SEC, 4 * MIN][c % 3] ?? MIN;
      const product = { product_id: `p-${c % 4}` };
      let t = start + c * 20 * SEC;
      emit(customer, 'product_viewed', t, product);
      // The banner goes with dropping, but not only: some who saw it went on.
      const banner = (group === 'stuck' && i < 10) || (group === 'plain' && i < 4);
      if (banner) emit(customer, 'error_banner', t + 10 * SEC);
      if (group === 'stuck') {
        // After the step timeout: what they did once they had dropped.
        emit(customer, 'call_received', t + 11 * MIN, undefined, 'call_center');
        continue;
      }
      if (group === 'reversed') {
        emit(customer, 'order_placed', t + gap, product);
        emit(customer, 'cart_added', t + 2 * gap, product);
        continue;
      }
      t += gap;
      emit(customer, 'cart_added', t, group === 'switch' ? { product_id: 'p-other' } : product);
      if (group === 'helped') emit(customer, 'help_opened', t + 5 * SEC);
      t += gap;
      emit(customer, 'order_placed', t, group === 'switch' ? { product_id: 'p-other' } : product);
    }
  }
  return events.sort((a, b) => a.timestamp - b.timestamp);
}

const CUSTOMERS = 65;
const digits = (text: string | null) => Number((text ?? '').replace(/[^\d]/g, ''));
/** As the page writes a ratio in en-US: one decimal. */
const times = (n: number) =>
  `${new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(n)}x`;

describe('the dashboard: funnel options, time to convert and insights', () => {
  let runtime: Runtime;
  let browser: Browser;
  const call = async (method: string, path: string, body?: unknown) => {
    const answer = await callJson(runtime.address, method, path, body, {
      authorization: `Bearer ${QUERY_KEY}`,
    });
    expect(answer.status, `${path} ${JSON.stringify(answer.body)}`).toBeLessThan(300);
    return answer.body;
  };

  beforeAll(async () => {
    const { dir, assetsDir } = await buildDashboardAssets('dashboard-options');
    runtime = await startWithDashboard(
      {
        TOUCHSTREAM_DATA_DIR: `${dir}/data`,
        TOUCHSTREAM_INGEST_KEYS: INGEST_KEY,
        TOUCHSTREAM_QUERY_KEYS: QUERY_KEY,
        // Short, so the last instances are decided soon after the traffic stops.
        TOUCHSTREAM_IDLE_WATERMARK: '3s',
      },
      assetsDir,
    );
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await runtime?.stop();
  });

  it('asks the API what the controls say, and shows its answers', async () => {
    await call('PUT', `/v1/journeys/${JOURNEY.id}`, JOURNEY.body);
    // A new journey applies about a second after the PUT: events before it would miss it.
    await sleep(1500);
    const start = Math.floor((Date.now() - 3 * HOUR) / MIN) * MIN;
    const events = optionsTraffic(start);
    await postAll(runtime.address, [events], { authorization: `Bearer ${INGEST_KEY}` });

    const range = { from: start - HOUR, to: start + 2 * HOUR };
    const iso = { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString() };
    const funnelOf = (options: Record<string, unknown>): Promise<FunnelResponse> =>
      call('POST', '/v1/funnels/query', { journey: JOURNEY.id, ...iso, ...options });
    const insightsOf = (step: string): Promise<InsightsResponse> =>
      call(
        'GET',
        `/v1/journeys/${JOURNEY.id}/dropoffs/${step}/insights?${new URLSearchParams(iso)}`,
      );

    // Every event stored and every instance decided: the figures no longer move.
    await eventually(async () => {
      const dropoffs: DropoffResponse = await call(
        'GET',
        `/v1/journeys/${JOURNEY.id}/dropoffs?${new URLSearchParams(iso)}`,
      );
      expect(dropoffs.entered).toBe(CUSTOMERS);
      for (const t of dropoffs.transitions) expect(t.in_progress, t.from_step).toBe(0);
      expect((await funnelOf({})).steps[0]?.customers).toBe(CUSTOMERS);
    }, 60_000);

    // Each option gives other figures than the plain funnel: the traffic tells them apart.
    const plain = await funnelOf({});
    const figures = (f: FunnelResponse) => f.steps.map((s) => s.customers);
    const exclusion = { event_type: 'help_opened', after_step: 1, before_step: 2 };
    const asked = {
      any: { order: 'any' },
      excluded: { exclusions: [exclusion] },
      held: { hold_constant: ['product_id'] },
      all: { order: 'any', exclusions: [exclusion], hold_constant: ['product_id'] },
    };
    for (const options of Object.values(asked)) {
      expect(figures(await funnelOf(options)), JSON.stringify(options)).not.toEqual(figures(plain));
    }

    const context = await dashboardContext(browser, QUERY_KEY);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${runtime.address}/?${new URLSearchParams({ journey: JOURNEY.id, ...iso })}`);
    await page
      .locator(
        `[data-testid="status"][data-kind="done"][data-journey="${JOURNEY.id}"]` +
          `[data-from="${iso.from}"][data-to="${iso.to}"]`,
      )
      .waitFor({ timeout: 30_000 });

    const text = (testId: string) => page.getByTestId(testId).textContent();
    const panel = page.getByTestId('funnel-panel');
    /** The panel has drawn the answer to these options (or said why not). */
    const funnelShows = (options: object, state = 'done') =>
      eventually(async () => {
        expect(await panel.getAttribute('data-state')).toBe(state);
        expect(JSON.parse((await panel.getAttribute('data-options')) ?? 'null')).toEqual(options);
      }, 30_000);
    const expectFunnel = async (answer: FunnelResponse) => {
      expect(await page.locator('[data-testid^="funnel-row-"]').count()).toBe(answer.steps.length);
      for (const [i, step] of answer.steps.entries()) {
        expect(await text(`funnel-step-${i}`)).toBe(step.name);
        expect(digits(await text(`funnel-customers-${i}`)), step.name).toBe(step.customers);
      }
    };

    await funnelShows({});
    await expectFunnel(plain);

    // Order: any.
    await page.getByTestId('funnel-order').selectOption('any');
    await funnelShows(asked.any);
    await expectFunnel(await funnelOf(asked.any));
    await page.getByTestId('funnel-order').selectOption('strict');
    await funnelShows({});

    // An exclusion: a blank row asks nothing; its event type does.
    await page.getByTestId('funnel-add-exclusion').click();
    const row = page.getByTestId('funnel-exclusion').first();
    await row.getByTestId('exclusion-after').selectOption('1');
    await row.getByTestId('exclusion-before').selectOption('2');
    await row.getByTestId('exclusion-type').fill('help_opened');
    await row.getByTestId('exclusion-type').press('Tab');
    await funnelShows(asked.excluded);
    await expectFunnel(await funnelOf(asked.excluded));

    // Hold constant, with the exclusion and order: any too.
    await page.getByTestId('funnel-order').selectOption('any');
    await page.getByTestId('funnel-hold-0').fill('product_id');
    await page.getByTestId('funnel-hold-0').press('Tab');
    await funnelShows(asked.all);
    await expectFunnel(await funnelOf(asked.all));
    // The options are in the address: the same view comes back from it.
    expect(new URL(page.url()).searchParams.getAll('hold')).toEqual(['product_id']);
    await page.reload();
    await funnelShows(asked.all);
    await expectFunnel(await funnelOf(asked.all));
    expect(await page.getByTestId('funnel-order').inputValue()).toBe('any');
    expect(await row.getByTestId('exclusion-type').inputValue()).toBe('help_opened');

    await row.getByTestId('exclusion-remove').click();
    await page.getByTestId('funnel-order').selectOption('strict');
    await funnelShows(asked.held);
    await expectFunnel(await funnelOf(asked.held));

    // A query the API refuses: its 400 is said in the panel, naming the control.
    const badType = 'Help Opened!';
    const refused = await callJson(
      runtime.address,
      'POST',
      '/v1/funnels/query',
      {
        journey: JOURNEY.id,
        ...iso,
        exclusions: [{ event_type: badType, after_step: 0, before_step: 2 }],
        hold_constant: ['product_id'],
      },
      { authorization: `Bearer ${QUERY_KEY}` },
    );
    expect(refused.status).toBe(400);
    const detail = refused.body.error.details[0];
    expect(detail.path).toBe('exclusions.0.event_type');
    await page.getByTestId('funnel-add-exclusion').click();
    await row.getByTestId('exclusion-type').fill(badType);
    await row.getByTestId('exclusion-type').press('Tab');
    await funnelShows(
      {
        exclusions: [{ event_type: badType, after_step: 0, before_step: 2 }],
        hold_constant: ['product_id'],
      },
      'error',
    );
    const error = page.getByTestId('funnel-error');
    expect(await error.isVisible()).toBe(true);
    expect(await error.textContent()).toContain(`Exclusion 1, event type: ${detail.message}`);
    expect(await page.locator('[data-testid^="funnel-row-"]').count()).toBe(0);
    // The rest of the page is untouched, and fixing the field brings the figures back.
    expect(await page.getByTestId('dropoff-row-0').isVisible()).toBe(true);
    await row.getByTestId('exclusion-remove').click();
    await page.getByTestId('funnel-hold-0').fill('');
    await page.getByTestId('funnel-hold-0').press('Tab');
    await funnelShows({});
    expect(await error.isVisible()).toBe(false);
    await expectFunnel(plain);

    // The time to convert: the last step by default, then the one before.
    const expectHistogram = async (answer: FunnelResponse, step: number) => {
      const ttc = answer.steps[step]?.time_to_convert;
      expect(ttc).toBeTruthy();
      if (!ttc) return;
      expect(await page.getByTestId('ttc-step').inputValue()).toBe(String(step));
      const quantiles = page.getByTestId('ttc-quantiles');
      expect(await quantiles.getAttribute('data-p50')).toBe(String(ttc.p50));
      expect(await quantiles.getAttribute('data-p90')).toBe(String(ttc.p90));
      expect(await page.locator('[data-testid^="ttc-bucket-"]').count()).toBe(ttc.histogram.length);
      for (const [i, bucket] of ttc.histogram.entries()) {
        const cell = page.getByTestId(`ttc-bucket-${i}`);
        expect(await cell.getAttribute('data-le-seconds')).toBe(String(bucket.le_seconds));
        expect(await cell.getAttribute('data-customers')).toBe(String(bucket.customers));
        expect(digits(await cell.textContent())).toBe(bucket.customers);
      }
      // Several buckets hold customers, and the chart drew a bar for them.
      expect(ttc.histogram.filter((b) => b.customers > 0).length).toBeGreaterThan(1);
      expect(await page.locator('#ttc-chart svg path').count()).toBeGreaterThan(0);
      // Bounds read as durations: 5 min, not 300.
      expect(await page.locator('#ttc-chart').textContent()).toContain('≤ 5 min');
    };
    await expectHistogram(plain, plain.steps.length - 1);
    await page.getByTestId('ttc-step').selectOption('1');
    await expectHistogram(plain, 1);

    // Insights, from the drop-off row of `viewed`.
    const insights = await insightsOf('viewed');
    expect(insights.after_drop.length).toBeGreaterThan(0);
    expect(insights.correlations.length).toBeGreaterThan(0);
    expect(await text('dropoff-transition-0')).toBe('viewed → carted');
    await page.getByTestId('dropoff-insights-0').click();
    const insightsPanel = page.getByTestId('insights-panel');
    await page
      .locator('[data-testid="insights-panel"][data-state="done"][data-from-step="viewed"]')
      .waitFor({ timeout: 30_000 });
    expect(await insightsPanel.isVisible()).toBe(true);
    expect(digits(await text('insights-dropped'))).toBe(insights.dropped);
    expect(digits(await text('insights-continued'))).toBe(insights.continued);
    for (const [i, next] of insights.after_drop.slice(0, 10).entries()) {
      expect(await text(`after-drop-type-${i}`)).toBe(next.type);
      expect(await text(`after-drop-channel-${i}`)).toBe(next.channel);
      const customers = page.getByTestId(`after-drop-customers-${i}`);
      expect(await customers.getAttribute('data-customers')).toBe(String(next.customers));
      expect(digits(await customers.textContent())).toBe(next.customers);
      expect(await page.getByTestId(`after-drop-share-${i}`).getAttribute('data-share')).toBe(
        String(next.share),
      );
    }
    expect(insights.after_drop[0]).toMatchObject({ type: 'call_received', channel: 'call_center' });
    expect(digits(await text('insights-returned-customers'))).toBe(insights.returned.customers);
    expect(digits(await text('insights-returned-completed'))).toBe(insights.returned.completed);

    const top = insights.correlations[0];
    expect(top).toMatchObject({ kind: 'event_type', value: 'error_banner' });
    if (!top) return;
    const sentence = page.getByTestId('correlation-0');
    expect(await sentence.getAttribute('data-odds-ratio')).toBe(String(top.odds_ratio));
    expect(await sentence.getAttribute('data-value')).toBe(top.value);
    expect(top.odds_ratio).toBeGreaterThan(1);
    expect(await sentence.textContent()).toContain(
      `Customers who saw error_banner had ${times(top.odds_ratio)} the odds of dropping here`,
    );
    // A correlation below 1 reads the other way round.
    const i = insights.correlations.findIndex((c) => c.odds_ratio < 1);
    const better = insights.correlations[i];
    expect(i).toBeGreaterThan(0);
    expect(i).toBeLessThan(5);
    expect(await text(`correlation-${i}`)).toContain(
      `${times(1 / (better?.odds_ratio ?? 1))} less likely to drop here (odds)`,
    );

    await mkdir(new URL('../../test-output/', import.meta.url), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.getByTestId('insights-close').click();
    expect(await insightsPanel.isVisible()).toBe(false);
    expect(problems).toEqual([]);
    await context.close();
  });
});
