import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  DropoffResponse,
  Review,
  ReviewStepFigures,
  Touchpoint,
} from '@touchstream/contracts';
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
import { eventually } from '../support/wait.js';

/**
 * The dashboard's owners, targets, value at risk and feedback, and its review view,
 * against the API's own answers, on traffic where every one of them is non-trivial.
 */

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const SCREENSHOT = new URL('../../test-output/dashboard-value.png', import.meta.url).pathname;
const INGEST_KEY = 'ingest-key-dashboard-value';
const QUERY_KEY = 'query-key-dashboard-value';

/** Owners and targets (the first transition's out of reach), a value and ratings. */
const VALUED = {
  id: 'value-checkout',
  body: {
    name: 'Checkout with value',
    steps: [
      { name: 'viewed', event_type: 'product_viewed', owner: 'catalogue team' },
      { name: 'carted', event_type: 'cart_added', owner: 'web team', target_conversion: 0.9 },
      { name: 'ordered', event_type: 'order_placed', owner: 'payments', target_conversion: 0.5 },
    ],
    step_timeout: '10m',
    value_property: 'basket',
    currency: 'EUR',
    feedback_event_types: ['survey_answered'],
  },
};

/** The same events seen without owners, targets, value or ratings. */
const PLAIN = {
  id: 'plain-checkout',
  body: {
    name: 'Checkout, plain',
    steps: [
      { name: 'viewed', event_type: 'product_viewed' },
      { name: 'carted', event_type: 'cart_added' },
    ],
    step_timeout: '10m',
  },
};

const RULE = {
  id: 'value-carted-below-target',
  body: {
    journey: VALUED.id,
    step: 'carted',
    condition: 'below_target',
    window: '1d',
    min_entries: 1,
  },
};

/**
 * `completing` customers view, cart and order; `dropViewed` only view; `dropCarted` view
 * and cart. The basket has cents and grows at the cart; most rate the journey after it
 * ended (droppers after the step timeout, low; completers after ordering, high).
 */
function valueTraffic(
  prefix: string,
  start: number,
  groups: { completing: number; dropViewed: number; dropCarted: number },
): Touchpoint[] {
  const events: Touchpoint[] = [];
  let n = 0;
  const emit = (
    customer: string,
    type: string,
    timestamp: number,
    properties?: Touchpoint['properties'],
  ) => {
    n += 1;
    events.push({
      event_id: `${prefix}-${n}`,
      customer_id: customer,
      type,
      channel: 'web',
      timestamp,
      ...(properties ? { properties } : {}),
    });
  };
  const total = groups.completing + groups.dropViewed + groups.dropCarted;
  for (let i = 0; i < total; i++) {
    const customer = `${prefix}-customer-${i}`;
    const kind =
      i < groups.completing
        ? 'completing'
        : i < groups.completing + groups.dropViewed
          ? 'dropViewed'
          : 'dropCarted';
    const basket = Math.round((19.99 + i * 7.35) * 100) / 100;
    let t = start + i * 30 * SEC;
    emit(customer, 'product_viewed', t, { basket });
    const rates = i % 4 !== 0;
    if (kind === 'dropViewed') {
      if (rates) emit(customer, 'survey_answered', t + 12 * MIN, { score: 1 + (i % 3) });
      continue;
    }
    t += 90 * SEC;
    emit(customer, 'cart_added', t, { basket: basket + 10.5 });
    if (kind === 'dropCarted') {
      if (rates) emit(customer, 'survey_answered', t + 11 * MIN, { score: 2 + (i % 2) });
      continue;
    }
    t += 2 * MIN;
    emit(customer, 'order_placed', t, { basket: basket + 10.5 });
    if (rates) emit(customer, 'survey_answered', t + MIN, { score: 4 + (i % 2) });
  }
  return events;
}

/** As the page writes figures in en-US (web/format.ts). */
const percent = (n: number) =>
  new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 }).format(n);
const money = (n: number, currency: string) =>
  new Intl.NumberFormat('en-US', { style: 'currency', currency, currencyDisplay: 'code' })
    .format(n)
    .replace(/\u00a0/g, ' ');
const score = (n: number | null) =>
  n === null ? '–' : new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(n);
const count = (n: number) => new Intl.NumberFormat('en-US').format(n);
type Feedback = DropoffResponse['transitions'][number]['feedback'];
const feedbackText = ({ dropped, continued }: Feedback) =>
  dropped.responses === 0 && continued.responses === 0
    ? '–'
    : `droppers ${score(dropped.mean_score)} (${count(dropped.responses)}) · ` +
      `continuers ${score(continued.mean_score)} (${count(continued.responses)})`;

/** As the page writes a change of conversion: arrow, sign, percentage points. */
const change = (n: number | null) => {
  if (n === null) return '–';
  const points = Math.round(n * 1000) / 10;
  const signed = new Intl.NumberFormat('en-US', {
    maximumFractionDigits: 1,
    signDisplay: 'exceptZero',
  }).format(points);
  return `${points > 0 ? '▲' : points < 0 ? '▼' : '='} ${signed} pp`;
};
const conversion = (f: ReviewStepFigures) =>
  f.continued + f.dropped > 0 ? percent(f.conversion) : '–';

describe('the dashboard: owners, targets, value at risk, feedback and the review', () => {
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
    const { dir, assetsDir } = await buildDashboardAssets('dashboard-value');
    runtime = await startWithDashboard(
      {
        TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
        TOUCHSTREAM_INGEST_KEYS: INGEST_KEY,
        TOUCHSTREAM_QUERY_KEYS: QUERY_KEY,
        // Short, so the last instances are decided soon after the traffic stops.
        TOUCHSTREAM_IDLE_WATERMARK: '3s',
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

  it('shows the API figures of value, targets and feedback, and the review', async () => {
    await call('PUT', `/v1/journeys/${VALUED.id}`, VALUED.body);
    await call('PUT', `/v1/journeys/${PLAIN.id}`, PLAIN.body);
    await call('PUT', `/v1/alert-rules/${RULE.id}`, RULE.body);
    // A new journey applies about a second after the PUT: events before it would miss it.
    await sleep(1500);

    const now = Date.now();
    // This week (below the first target) and, for the review, the week before (above it).
    const start = Math.floor((now - 3 * HOUR) / MIN) * MIN;
    const before = Math.floor((now - 8 * DAY) / MIN) * MIN;
    const current = { completing: 30, dropViewed: 15, dropCarted: 15 };
    const previous = { completing: 30, dropViewed: 4, dropCarted: 6 };
    const events = [
      ...valueTraffic('dash-value-before', before, previous),
      ...valueTraffic('dash-value', start, current),
    ].sort((a, b) => a.timestamp - b.timestamp);
    const batches: Touchpoint[][] = [];
    for (let i = 0; i < events.length; i += 200) batches.push(events.slice(i, i + 200));
    await postAll(runtime.address, batches, { authorization: `Bearer ${INGEST_KEY}` });

    const range = { from: start - HOUR, to: start + 2 * HOUR };
    const iso = { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString() };
    const reviewOfJourney = (journey: string, period: string): Promise<Review> =>
      call('GET', `/v1/journeys/${journey}/review?period=${period}`);
    const dropoffsOf = (journey: string): Promise<DropoffResponse> =>
      call('GET', `/v1/journeys/${journey}/dropoffs?${new URLSearchParams(iso)}`);

    // Every event stored, every instance decided and every rating counted.
    const entered = current.completing + current.dropViewed + current.dropCarted;
    await eventually(async () => {
      const answer = await dropoffsOf(VALUED.id);
      expect(answer.entered).toBe(entered);
      expect(answer.completed).toBe(current.completing);
      for (const t of answer.transitions) expect(t.in_progress, t.from_step).toBe(0);
      const rated = answer.transitions[0]?.feedback;
      // Of every four customers, three rate.
      expect((rated?.dropped.responses ?? 0) + (rated?.continued.responses ?? 0)).toBe(
        entered - Math.ceil(entered / 4),
      );
      expect((await dropoffsOf(PLAIN.id)).entered).toBe(entered);
    }, 60_000);
    await eventually(async () => {
      const { alerts } = await call('GET', '/v1/alerts?state=firing');
      expect(alerts.map((a: { rule_id: string }) => a.rule_id)).toContain(RULE.id);
    }, 30_000);

    const dropoffs = await dropoffsOf(VALUED.id);
    // The figures are non-trivial: a value lost and completed, ratings on both sides,
    // one transition below its target and one above.
    expect(dropoffs.currency).toBe('EUR');
    expect(dropoffs.value_dropped).toBeGreaterThan(0);
    expect(dropoffs.value_completed).toBeGreaterThan(0);
    expect(dropoffs.transitions.map((t) => t.below_target)).toEqual([true, false]);
    expect(dropoffs.transitions.map((t) => t.owner)).toEqual(['web team', 'payments']);
    for (const t of dropoffs.transitions) {
      expect(t.value_dropped, t.from_step).toBeGreaterThan(0);
      expect(t.feedback.dropped.responses, t.from_step).toBeGreaterThan(0);
      expect(t.feedback.continued.responses, t.from_step).toBeGreaterThan(0);
      expect(t.feedback.dropped.mean_score).toBeLessThan(t.feedback.continued.mean_score ?? 0);
    }

    const context = await dashboardContext(browser, QUERY_KEY);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const shown = (p: Page, journey: string) =>
      p
        .locator(
          `[data-testid="status"][data-kind="done"][data-journey="${journey}"]` +
            `[data-from="${iso.from}"][data-to="${iso.to}"]`,
        )
        .waitFor({ timeout: 30_000 });
    await page.goto(`${runtime.address}/?${new URLSearchParams({ journey: VALUED.id, ...iso })}`);
    await shown(page, VALUED.id);
    const text = (testId: string) => page.getByTestId(testId).textContent();

    // The headline: value lost at points of disconnection, and value completed.
    const headline = page.getByTestId('value-headline');
    expect(await headline.isVisible()).toBe(true);
    expect(await headline.textContent()).toContain(
      `Value lost at points of disconnection: ${money(dropoffs.value_dropped ?? 0, 'EUR')}`,
    );
    expect(await text('value-dropped')).toBe(money(dropoffs.value_dropped ?? 0, 'EUR'));
    expect(await page.getByTestId('value-dropped').getAttribute('data-value')).toBe(
      String(dropoffs.value_dropped),
    );
    expect(await text('value-completed')).toBe(money(dropoffs.value_completed ?? 0, 'EUR'));
    expect(await page.getByTestId('value-completed').getAttribute('data-value')).toBe(
      String(dropoffs.value_completed),
    );
    expect(await page.locator('#dropoff-table th').allTextContents()).toContain('Value at risk');

    expect(await page.locator('[data-testid^="dropoff-row-"]').count()).toBe(
      dropoffs.transitions.length,
    );
    for (const [i, t] of dropoffs.transitions.entries()) {
      const name = `${t.from_step} → ${t.to_step}`;
      expect(await text(`dropoff-transition-${i}`)).toBe(name);
      expect(await text(`dropoff-owner-${i}`), name).toBe(t.owner ?? '–');
      expect(await text(`dropoff-target-${i}`), name).toBe(
        t.target_conversion === null ? '–' : percent(t.target_conversion),
      );
      const row = page.getByTestId(`dropoff-row-${i}`);
      expect(await row.getAttribute('data-below-target'), name).toBe(String(t.below_target));
      expect(await row.evaluate((r) => r.classList.contains('below-target')), name).toBe(
        t.below_target,
      );
      const badge = page.getByTestId(`dropoff-below-target-${i}`);
      expect(await badge.count(), name).toBe(t.below_target ? 1 : 0);
      if (t.below_target) {
        expect(await badge.isVisible()).toBe(true);
        expect(await badge.textContent()).toBe('below target');
      }
      const value = page.getByTestId(`dropoff-value-${i}`);
      expect(await value.textContent(), name).toBe(money(t.value_dropped ?? 0, 'EUR'));
      expect(await value.getAttribute('data-value'), name).toBe(String(t.value_dropped));
      expect(await text(`dropoff-feedback-${i}`), name).toBe(feedbackText(t.feedback));
    }

    // The review: closed until asked, then the week against the week before.
    const reviewOf = (period: string) => reviewOfJourney(VALUED.id, period);
    const week = await reviewOf('7d');
    expect(week.current.entered).toBe(entered);
    expect(week.previous.entered).toBe(
      previous.completing + previous.dropViewed + previous.dropCarted,
    );
    expect(week.transitions[0]?.change).toBeLessThan(0);
    expect(week.transitions[0]?.current.below_target).toBe(true);
    expect(week.transitions[0]?.previous.below_target).toBe(false);
    expect(week.alerts.map((a) => a.rule_id)).toContain(RULE.id);

    const panel = page.getByTestId('review-panel');
    expect(await panel.isVisible()).toBe(false);
    expect(await page.getByTestId('review-period').inputValue()).toBe('7d');
    const choices = page.getByTestId('review-period').locator('option');
    const periods: Array<string | null> = [];
    for (let i = 0; i < (await choices.count()); i++) {
      periods.push(await choices.nth(i).getAttribute('value'));
    }
    expect(periods).toEqual(['24h', '7d', '30d']);
    const reviewShows = (period: string) =>
      page
        .locator(
          `[data-testid="review-panel"][data-state="done"][data-journey="${VALUED.id}"]` +
            `[data-period="${period}"]`,
        )
        .waitFor({ timeout: 30_000 });
    const expectReview = async (review: Review) => {
      expect(await panel.isVisible()).toBe(true);
      for (const key of ['current', 'previous'] as const) {
        const p = review[key];
        expect(await text(`review-${key}-entered`), key).toBe(count(p.entered));
        expect(await text(`review-${key}-completed`), key).toBe(count(p.completed));
        expect(await text(`review-${key}-value-dropped`), key).toBe(
          money(p.value_dropped ?? 0, 'EUR'),
        );
        expect(await text(`review-${key}-value-completed`), key).toBe(
          money(p.value_completed ?? 0, 'EUR'),
        );
      }
      expect(await page.locator('[data-testid^="review-row-"]').count()).toBe(
        review.transitions.length,
      );
      for (const [i, t] of review.transitions.entries()) {
        const name = `${t.from_step} → ${t.to_step}`;
        expect(await text(`review-transition-${i}`)).toBe(name);
        expect(await text(`review-owner-${i}`), name).toBe(t.owner ?? '–');
        expect(await text(`review-target-${i}`), name).toBe(
          t.target_conversion === null ? '–' : percent(t.target_conversion),
        );
        expect(await text(`review-conversion-${i}`), name).toBe(conversion(t.current));
        expect(await text(`review-previous-conversion-${i}`), name).toBe(conversion(t.previous));
        const shownChange = page.getByTestId(`review-change-${i}`);
        expect(await shownChange.textContent(), name).toBe(change(t.change));
        expect(await shownChange.getAttribute('data-change'), name).toBe(String(t.change));
        expect(await page.getByTestId(`review-conversion-${i}-below-target`).count(), name).toBe(
          t.current.below_target ? 1 : 0,
        );
        expect(
          await page.getByTestId(`review-previous-conversion-${i}-below-target`).count(),
          name,
        ).toBe(t.previous.below_target ? 1 : 0);
        expect(await text(`review-value-${i}`), name).toBe(
          money(t.current.value_dropped ?? 0, 'EUR'),
        );
        expect(await text(`review-previous-value-${i}`), name).toBe(
          money(t.previous.value_dropped ?? 0, 'EUR'),
        );
        const top = t.current.top_reasons[0];
        expect(await text(`review-reason-${i}`), name).toBe(
          top ? `${top.reason} ${count(top.dropped)}` : '–',
        );
        expect(await text(`review-feedback-${i}`), name).toBe(feedbackText(t.current.feedback));
      }
      const alerts = page.getByTestId('review-alert');
      expect(await alerts.count()).toBe(review.alerts.length);
      for (const [i, a] of review.alerts.entries()) {
        const row = alerts.nth(i);
        expect(await row.getAttribute('data-rule')).toBe(a.rule_id);
        expect(await row.getAttribute('data-state')).toBe(a.state);
        expect(await row.textContent()).toContain(a.message);
      }
    };

    await page.getByTestId('review-open').click();
    await reviewShows('7d');
    // Alerts go on being judged: the review is compared with an answer of the same moment.
    await expectReview(await reviewOf('7d'));
    expect(await page.getByTestId('review-conversion-0-below-target').isVisible()).toBe(true);
    expect(await text('review-change-0')).toMatch(/^▼ -/);

    // A month: both weeks in this period, none before it, so no change to show.
    await page.getByTestId('review-period').selectOption('30d');
    await reviewShows('30d');
    const month = await reviewOf('30d');
    expect(month.previous.entered).toBe(0);
    expect(month.transitions.every((t) => t.change === null)).toBe(true);
    await expectReview(month);
    expect(await text('review-change-0')).toBe('–');
    await page.getByTestId('review-period').selectOption('7d');
    await reviewShows('7d');

    await mkdir(new URL('../../test-output/', import.meta.url), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.getByTestId('review-close').click();
    expect(await panel.isVisible()).toBe(false);

    // A journey without a value property: no headline, no value column; no owners nor
    // targets either.
    const plain = await dropoffsOf(PLAIN.id);
    expect(plain.value_dropped).toBeNull();
    await page.goto(`${runtime.address}/?${new URLSearchParams({ journey: PLAIN.id, ...iso })}`);
    await shown(page, PLAIN.id);
    expect(await page.getByTestId('value-headline').isVisible()).toBe(false);
    expect(await page.locator('#dropoff-table th').allTextContents()).not.toContain(
      'Value at risk',
    );
    expect(await page.locator('[data-testid^="dropoff-value-"]').count()).toBe(0);
    expect(await text('dropoff-owner-0')).toBe('–');
    expect(await text('dropoff-target-0')).toBe('–');
    expect(await text('dropoff-feedback-0')).toBe('–');
    expect(await page.getByTestId('dropoff-below-target-0').count()).toBe(0);
    // Its review: no value either.
    await page.getByTestId('review-open').click();
    await page
      .locator(
        `[data-testid="review-panel"][data-state="done"][data-journey="${PLAIN.id}"][data-period="7d"]`,
      )
      .waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-testid="review-table"] th').allTextContents()).not.toContain(
      'Value dropped',
    );
    expect(await page.getByTestId('review-current-value-dropped').count()).toBe(0);
    expect(await text('review-owner-0')).toBe('–');
    expect(await text('review-target-0')).toBe('–');
    expect(await text('review-conversion-0')).toBe(
      conversion(
        (await reviewOfJourney(PLAIN.id, '7d')).transitions[0]?.current as ReviewStepFigures,
      ),
    );

    expect(problems).toEqual([]);
    await context.close();
  });
});
