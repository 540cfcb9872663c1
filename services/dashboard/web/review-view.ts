import type { Review, ReviewAlert, ReviewStepFigures } from '@touchstream/contracts';
import type { ApiClient } from './api.js';
import { h } from './dom.js';
import { formatChange, formatCount, formatMoney, formatRate, formatTime, ratio } from './format.js';
import { belowTargetBadge, describeFeedback } from './tables.js';

/** The periods the page offers; the API's default is a week. */
export const REVIEW_PERIODS = [
  { value: '24h', label: 'last 24 h' },
  { value: '7d', label: 'last 7 days' },
  { value: '30d', label: 'last 30 days' },
] as const;
export const DEFAULT_REVIEW_PERIOD = '7d';

const decided = (f: ReviewStepFigures) => f.continued + f.dropped > 0;

/** A period's conversion, '–' when it decided none, marked when under the target. */
function conversionCell(f: ReviewStepFigures, testId: string) {
  return h(
    'td',
    { class: f.below_target ? 'num target below' : 'num' },
    h(
      'span',
      { 'data-testid': testId, 'data-conversion': String(f.conversion) },
      decided(f) ? formatRate(f.conversion) : '–',
    ),
    f.below_target ? ' ' : null,
    f.below_target ? belowTargetBadge(`${testId}-below-target`) : null,
  );
}

function changeCell(change: number | null, testId: string) {
  const direction = change === null ? 'none' : change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
  return h(
    'td',
    {
      class: `num change ${direction}`,
      'data-testid': testId,
      'data-change': String(change),
      title: 'Conversion this period minus the period before, in percentage points',
    },
    formatChange(change),
  );
}

const moneyCell = (amount: number | null, currency: string | null, testId: string) =>
  h(
    'td',
    { class: 'num value', 'data-testid': testId, 'data-value': String(amount) },
    formatMoney(amount, currency),
  );

/** The reason most dropped for: `timeout 15`; '–' when nobody dropped. */
function topReasonCell(f: ReviewStepFigures, testId: string) {
  const top = f.top_reasons[0];
  return h(
    'td',
    {
      class: 'reasons',
      'data-testid': testId,
      title: f.top_reasons.map((r) => `${r.reason}: ${r.dropped}`).join(', '),
    },
    top
      ? h(
          'span',
          { class: top.reason === 'timeout' ? 'chip' : 'chip warn' },
          `${top.reason} `,
          h('b', {}, formatCount(top.dropped)),
        )
      : '–',
  );
}

/** The journey's totals over both periods, side by side. */
function totals(review: Review) {
  const valued = review.current.value_dropped !== null;
  const period = (name: string, p: Review['current'], key: string) =>
    h(
      'div',
      { class: `review-period ${key}`, 'data-testid': `review-${key}` },
      h('span', { class: 'label' }, name),
      h('span', { class: 'range' }, `${formatTime(p.from)} – ${formatTime(p.to)}`),
      h(
        'span',
        {},
        h('b', { 'data-testid': `review-${key}-entered` }, formatCount(p.entered)),
        ' entered, ',
        h('b', { 'data-testid': `review-${key}-completed` }, formatCount(p.completed)),
        ' completed (',
        formatRate(ratio(p.completed, p.entered)),
        ')',
      ),
      valued
        ? h(
            'span',
            {},
            'Value lost ',
            h(
              'b',
              {
                class: 'lost',
                'data-testid': `review-${key}-value-dropped`,
                'data-value': String(p.value_dropped),
              },
              formatMoney(p.value_dropped, review.currency),
            ),
            ', completed ',
            h(
              'b',
              {
                'data-testid': `review-${key}-value-completed`,
                'data-value': String(p.value_completed),
              },
              formatMoney(p.value_completed, review.currency),
            ),
          )
        : null,
    );
  return h(
    'div',
    { class: 'review-totals' },
    period('This period', review.current, 'current'),
    period('The period before', review.previous, 'previous'),
  );
}

function transitionsTable(review: Review) {
  const valued = review.current.value_dropped !== null;
  const names = [
    'Transition',
    'Owner',
    'Target',
    'Conversion',
    'Before',
    'Change',
    ...(valued ? ['Value dropped', 'Before'] : []),
    'Top reason',
    'Feedback',
  ];
  const table = h(
    'table',
    { 'data-testid': 'review-table' },
    h('thead', {}, h('tr', {}, ...names.map((n) => h('th', {}, n)))),
    h(
      'tbody',
      {},
      ...(review.transitions.length === 0
        ? [h('tr', {}, h('td', { colspan: String(names.length), class: 'empty' }, 'No steps.'))]
        : review.transitions.map((t, i) =>
            h(
              'tr',
              {
                'data-testid': `review-row-${i}`,
                'data-below-target': String(t.current.below_target),
                class: t.current.below_target ? 'below-target' : undefined,
              },
              h('td', { 'data-testid': `review-transition-${i}` }, `${t.from_step} → ${t.to_step}`),
              h('td', { class: 'owner', 'data-testid': `review-owner-${i}` }, t.owner ?? '–'),
              h(
                'td',
                {
                  class: 'num',
                  'data-testid': `review-target-${i}`,
                  'data-target': String(t.target_conversion),
                },
                formatRate(t.target_conversion),
              ),
              conversionCell(t.current, `review-conversion-${i}`),
              conversionCell(t.previous, `review-previous-conversion-${i}`),
              changeCell(t.change, `review-change-${i}`),
              valued
                ? moneyCell(t.current.value_dropped, review.currency, `review-value-${i}`)
                : null,
              valued
                ? moneyCell(t.previous.value_dropped, review.currency, `review-previous-value-${i}`)
                : null,
              topReasonCell(t.current, `review-reason-${i}`),
              h(
                'td',
                { class: 'feedback', 'data-testid': `review-feedback-${i}` },
                ...describeFeedback(t.current.feedback),
              ),
            ),
          )),
    ),
  );
  return h('div', { class: 'table-scroll' }, table);
}

function alertsList(alerts: readonly ReviewAlert[]) {
  return h(
    'table',
    { 'data-testid': 'review-alerts' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['State', 'Rule', 'Step', 'Condition', 'Started', 'Resolved', 'Message'].map((n) =>
          h('th', {}, n),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      ...(alerts.length === 0
        ? [h('tr', {}, h('td', { colspan: '7', class: 'empty' }, 'No alerts fired.'))]
        : alerts.map((a) =>
            h(
              'tr',
              {
                'data-testid': 'review-alert',
                'data-rule': a.rule_id,
                'data-state': a.state,
                'data-started-at': a.started_at,
              },
              h('td', {}, h('span', { class: `badge ${a.state}` }, a.state)),
              h('td', {}, a.rule_id),
              h('td', {}, a.step),
              h('td', {}, a.condition.replace('_', ' ')),
              h('td', {}, formatTime(a.started_at)),
              h('td', {}, formatTime(a.resolved_at)),
              h('td', { class: 'message' }, a.message),
            ),
          )),
    ),
  );
}

/** The review as the API answers it: totals, transitions, and the alerts fired. */
export function renderReview(body: HTMLElement, review: Review) {
  body.replaceChildren(
    totals(review),
    transitionsTable(review),
    h('h3', {}, 'Alerts fired this period'),
    alertsList(review.alerts),
  );
}

export interface ReviewViewElements {
  section: HTMLElement;
  title: HTMLElement;
  status: HTMLElement;
  body: HTMLElement;
  period: HTMLSelectElement;
  open: HTMLButtonElement;
  close: HTMLButtonElement;
}

/**
 * A journey's review: its last period against the one before, per transition. Opened by
 * its button for the journey shown, it follows the period chosen and the journey shown
 * while open. The section's data-state, data-journey and data-period say what it shows.
 */
export function buildReviewView(elements: ReviewViewElements, api: ApiClient) {
  const { section, title, status, body, period } = elements;
  period.replaceChildren(...REVIEW_PERIODS.map((p) => h('option', { value: p.value }, p.label)));
  period.value = DEFAULT_REVIEW_PERIOD;
  // A newer opening makes an older answer stale: only the latest one draws.
  let generation = 0;
  let journey: string | undefined;

  function close() {
    generation += 1;
    section.hidden = true;
    section.dataset.state = 'closed';
    delete section.dataset.journey;
    delete section.dataset.period;
    elements.open.setAttribute('aria-expanded', 'false');
    body.replaceChildren();
  }

  async function load(id: string, label: string) {
    const mine = ++generation;
    const chosen = period.value;
    section.hidden = false;
    section.dataset.state = 'loading';
    section.dataset.journey = id;
    section.dataset.period = chosen;
    elements.open.setAttribute('aria-expanded', 'true');
    const periodLabel = REVIEW_PERIODS.find((p) => p.value === chosen)?.label ?? chosen;
    title.textContent = `Review of ${label}: ${periodLabel} against the period before`;
    status.textContent = 'Loading…';
    status.dataset.kind = 'info';
    body.replaceChildren();
    try {
      const review = await api.review(id, chosen);
      if (mine !== generation) return;
      status.textContent = '';
      renderReview(body, review);
      section.dataset.state = 'done';
    } catch (error) {
      if (mine !== generation) return;
      status.textContent = `Could not load the review: ${(error as Error).message}`;
      status.dataset.kind = 'error';
      section.dataset.state = 'error';
    }
  }

  let label = '';
  elements.close.addEventListener('click', close);
  elements.open.addEventListener('click', () => {
    if (journey) void load(journey, label);
  });
  period.addEventListener('change', () => {
    if (journey && !section.hidden) void load(journey, label);
  });

  return {
    close,
    /** The journey the page shows: the review follows it when open. */
    show(id: string, name: string) {
      const changed = id !== journey;
      journey = id;
      label = name;
      if (changed && !section.hidden) void load(id, name);
    },
  };
}
