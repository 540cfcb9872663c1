import type { Alert, DropoffResponse, FunnelResponse } from '@touchstream/contracts';
import { h } from './dom.js';
import {
  formatCount,
  formatMoney,
  formatRate,
  formatScore,
  formatSeconds,
  formatTime,
} from './format.js';

const num = (testId: string, value: string) =>
  h('td', { class: 'num', 'data-testid': testId }, value);

/** A rate with a bar behind it, so the worst rows stand out without reading every figure. */
function rateCell(testId: string, rate: number | null, tone: 'good' | 'bad') {
  const width = rate === null ? 0 : Math.round(Math.min(1, Math.max(0, rate)) * 100);
  return h(
    'td',
    {
      class: `num rate ${tone}`,
      style: `--fill: ${width}%`,
      'data-testid': testId,
    },
    formatRate(rate),
  );
}

function head(...names: string[]) {
  return h('thead', {}, h('tr', {}, ...names.map((n) => h('th', {}, n))));
}

export function renderFunnelTable(table: HTMLTableElement, funnel: FunnelResponse) {
  table.replaceChildren(
    head('Step', 'Customers', 'From start', 'From previous', 'Dropped', 'Median time'),
    h(
      'tbody',
      {},
      ...funnel.steps.map((step, i) =>
        h(
          'tr',
          { 'data-testid': `funnel-row-${i}` },
          h('td', { 'data-testid': `funnel-step-${i}` }, step.name),
          num(`funnel-customers-${i}`, formatCount(step.customers)),
          rateCell(`funnel-conversion-${i}`, step.conversion_from_start, 'good'),
          h('td', { class: 'num' }, i === 0 ? '–' : formatRate(step.conversion_from_previous)),
          h('td', { class: 'num' }, i === 0 ? '–' : formatCount(step.dropped_from_previous)),
          h('td', { class: 'num' }, formatSeconds(step.median_seconds_from_previous)),
        ),
      ),
    ),
  );
}

type Transition = DropoffResponse['transitions'][number];
type Feedback = Transition['feedback'];

/** The badge of a conversion under its owner's target. */
export const belowTargetBadge = (testId: string) =>
  h(
    'span',
    { class: 'badge below', 'data-testid': testId, title: 'Conversion below its target' },
    'below target',
  );

/**
 * The target of a transition as a percentage ('–' without one) and, when its conversion
 * is under it, the badge that says so; the exact target in data-target.
 */
export function targetCell(
  t: { target_conversion: number | null; below_target: boolean },
  testId: string,
  badgeTestId: string,
) {
  return h(
    'td',
    { class: t.below_target ? 'num target below' : 'num target' },
    h(
      'span',
      { 'data-testid': testId, 'data-target': String(t.target_conversion) },
      formatRate(t.target_conversion),
    ),
    t.below_target ? ' ' : null,
    t.below_target ? belowTargetBadge(badgeTestId) : null,
  );
}

/** An amount of value in the journey's currency; the exact figure in data-value. */
export const valueCell = (testId: string, amount: number | null, currency: string | null) =>
  h(
    'td',
    { class: 'num value', 'data-testid': testId, 'data-value': String(amount) },
    formatMoney(amount, currency),
  );

/**
 * `droppers 2.1 (14) · continuers 4.3 (52)`: the mean rating and the responses of each
 * side; '–' when nobody rated either. Each side keeps to one line when the cell wraps.
 */
export function describeFeedback(feedback: Feedback): Array<Node | string> {
  const { dropped, continued } = feedback;
  if (dropped.responses === 0 && continued.responses === 0) return ['–'];
  const side = (name: string, s: Feedback['dropped'], after = '') =>
    h(
      'span',
      {
        class: 'side',
        'data-responses': String(s.responses),
        'data-mean-score': String(s.mean_score),
      },
      `${name} ${formatScore(s.mean_score)} (${formatCount(s.responses)})${after}`,
    );
  return [side('droppers', dropped, ' ·'), ' ', side('continuers', continued)];
}

export const feedbackCell = (testId: string, feedback: Feedback) =>
  h(
    'td',
    {
      class: 'feedback',
      'data-testid': testId,
      title: 'Mean rating after the instance ended (responses)',
    },
    ...describeFeedback(feedback),
  );

/**
 * The value lost at points of disconnection, next to the value completed; hidden when
 * the journey has no value property.
 */
export function renderValueHeadline(element: HTMLElement, dropoffs: DropoffResponse) {
  if (dropoffs.value_dropped === null) {
    element.hidden = true;
    element.replaceChildren();
    return;
  }
  element.hidden = false;
  element.replaceChildren(
    h(
      'span',
      { class: 'lost' },
      'Value lost at points of disconnection: ',
      h(
        'strong',
        { 'data-testid': 'value-dropped', 'data-value': String(dropoffs.value_dropped) },
        formatMoney(dropoffs.value_dropped, dropoffs.currency),
      ),
    ),
    h(
      'span',
      { class: 'completed' },
      'Value completed: ',
      h(
        'strong',
        { 'data-testid': 'value-completed', 'data-value': String(dropoffs.value_completed) },
        formatMoney(dropoffs.value_completed, dropoffs.currency),
      ),
    ),
  );
}

/** Each row opens the insights of its transition (`onInsights`), marked as the chosen row. */
export function renderDropoffTable(
  table: HTMLTableElement,
  dropoffs: DropoffResponse,
  onInsights: (transition: Transition) => void = () => {},
) {
  const insightsButton = (t: Transition, i: number) => {
    const button = h(
      'button',
      {
        type: 'button',
        class: 'quiet',
        'data-testid': `dropoff-insights-${i}`,
        title: `What the customers who dropped at ${t.from_step} did, and what sets them apart`,
      },
      'Why?',
    );
    button.addEventListener('click', () => {
      for (const row of table.querySelectorAll('tr.chosen')) row.classList.remove('chosen');
      button.closest('tr')?.classList.add('chosen');
      onInsights(t);
    });
    return h('td', {}, button);
  };
  // Without a value property there is no value at risk: no column rather than dashes.
  const valued = dropoffs.value_dropped !== null;
  table.replaceChildren(
    head(
      'Transition',
      'Owner',
      'Reached',
      'Continued',
      'Dropped',
      'In progress',
      'Drop rate',
      'Median to continue',
      'Target',
      ...(valued ? ['Value at risk'] : []),
      'Feedback',
      'Reasons',
      '',
    ),
    h(
      'tbody',
      {},
      ...dropoffs.transitions.map((t, i) =>
        h(
          'tr',
          {
            'data-testid': `dropoff-row-${i}`,
            'data-below-target': String(t.below_target),
            class: t.below_target ? 'below-target' : undefined,
          },
          h('td', { 'data-testid': `dropoff-transition-${i}` }, `${t.from_step} → ${t.to_step}`),
          h('td', { class: 'owner', 'data-testid': `dropoff-owner-${i}` }, t.owner ?? '–'),
          num(`dropoff-reached-${i}`, formatCount(t.reached)),
          num(`dropoff-continued-${i}`, formatCount(t.continued)),
          num(`dropoff-dropped-${i}`, formatCount(t.dropped)),
          num(`dropoff-in-progress-${i}`, formatCount(t.in_progress)),
          rateCell(`dropoff-rate-${i}`, t.continued + t.dropped > 0 ? t.drop_rate : null, 'bad'),
          h('td', { class: 'num' }, formatSeconds(t.median_seconds_to_continue)),
          targetCell(t, `dropoff-target-${i}`, `dropoff-below-target-${i}`),
          valued ? valueCell(`dropoff-value-${i}`, t.value_dropped, dropoffs.currency) : null,
          feedbackCell(`dropoff-feedback-${i}`, t.feedback),
          h(
            'td',
            { class: 'reasons', 'data-testid': `dropoff-reasons-${i}` },
            ...t.reasons.map((r) =>
              h(
                'span',
                { class: r.reason === 'timeout' ? 'chip' : 'chip warn' },
                `${r.reason} `,
                h('b', {}, formatCount(r.dropped)),
              ),
            ),
          ),
          insightsButton(t, i),
        ),
      ),
    ),
  );
}

/** Firing alerts first, then the most recently started. */
export function sortAlerts(alerts: readonly Alert[]): Alert[] {
  return [...alerts].sort(
    (a, b) =>
      Number(b.state === 'firing') - Number(a.state === 'firing') ||
      Date.parse(b.started_at) - Date.parse(a.started_at),
  );
}

const ALERT_LIMIT = 20;

export function renderAlertsTable(table: HTMLTableElement, alerts: readonly Alert[]) {
  const shown = sortAlerts(alerts).slice(0, ALERT_LIMIT);
  const value = (a: Alert, n: number | null) =>
    n === null ? '–' : a.condition === 'no_events' ? formatCount(n) : formatRate(n);
  table.replaceChildren(
    head(
      'State',
      'Rule',
      'Journey · step',
      'Condition',
      'Value',
      'Baseline',
      'Started',
      'Resolved',
      'Message',
    ),
    h(
      'tbody',
      {},
      ...(shown.length === 0
        ? [h('tr', {}, h('td', { colspan: '9', class: 'empty' }, 'No alerts.'))]
        : shown.map((a) =>
            h(
              'tr',
              { 'data-testid': 'alert-row', 'data-rule': a.rule_id, 'data-state': a.state },
              h('td', {}, h('span', { class: `badge ${a.state}` }, a.state)),
              h('td', {}, a.rule_id),
              h('td', {}, `${a.journey} · ${a.step}`),
              h('td', {}, a.condition.replace('_', ' ')),
              h('td', { class: 'num' }, value(a, a.value)),
              h('td', { class: 'num' }, value(a, a.baseline)),
              h('td', {}, formatTime(a.started_at)),
              h('td', {}, formatTime(a.resolved_at)),
              h('td', { class: 'message' }, a.message),
            ),
          )),
    ),
  );
}
