import type { Alert, DropoffResponse, FunnelResponse } from '@touchstream/contracts';
import { h } from './dom.js';
import { formatCount, formatRate, formatSeconds, formatTime } from './format.js';

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
  table.replaceChildren(
    head(
      'Transition',
      'Reached',
      'Continued',
      'Dropped',
      'In progress',
      'Drop rate',
      'Median to continue',
      'Reasons',
      '',
    ),
    h(
      'tbody',
      {},
      ...dropoffs.transitions.map((t, i) =>
        h(
          'tr',
          { 'data-testid': `dropoff-row-${i}` },
          h('td', { 'data-testid': `dropoff-transition-${i}` }, `${t.from_step} → ${t.to_step}`),
          num(`dropoff-reached-${i}`, formatCount(t.reached)),
          num(`dropoff-continued-${i}`, formatCount(t.continued)),
          num(`dropoff-dropped-${i}`, formatCount(t.dropped)),
          num(`dropoff-in-progress-${i}`, formatCount(t.in_progress)),
          rateCell(`dropoff-rate-${i}`, t.continued + t.dropped > 0 ? t.drop_rate : null, 'bad'),
          h('td', { class: 'num' }, formatSeconds(t.median_seconds_to_continue)),
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
