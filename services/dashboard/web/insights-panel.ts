import type { Correlation, InsightsResponse } from '@touchstream/contracts';
import type { ApiClient } from './api.js';
import { h } from './dom.js';
import { formatCount, formatRate, formatTimes } from './format.js';
import type { TimeRange } from './time-range.js';

/** The strongest correlations in the list; the rest (up to the API's 20) fold away. */
const TOP_CORRELATIONS = 5;
/** Next events shown; the API lists up to 50, the tail is thin. */
const AFTER_DROP_ROWS = 10;

/**
 * A correlation as a manager reads it, in three parts: the lead, the item (set apart as
 * code, since it is an event type or value as sent) and the verdict. Below 1 the ratio is
 * turned over, "2.3x less likely", rather than "0.43x the odds".
 */
export function correlationWords(c: Correlation): { lead: string; item: string; verdict: string } {
  const lead =
    c.kind === 'event_type'
      ? 'Customers who saw '
      : c.kind === 'channel'
        ? 'Customers who reached this step on '
        : `Customers who had ${c.name} = `;
  const verdict =
    c.odds_ratio > 1
      ? ` had ${formatTimes(c.odds_ratio)} the odds of dropping here`
      : c.odds_ratio < 1
        ? ` were ${formatTimes(1 / c.odds_ratio)} less likely to drop here (odds)`
        : ' were as likely to drop here as the others';
  return { lead, item: c.value === '' ? '""' : c.value, verdict };
}

function correlationItem(c: Correlation, i: number, answer: InsightsResponse) {
  const { lead, item, verdict } = correlationWords(c);
  return h(
    'li',
    {
      'data-testid': `correlation-${i}`,
      'data-kind': c.kind,
      'data-name': c.name,
      'data-value': c.value,
      'data-odds-ratio': String(c.odds_ratio),
      'data-dropped': String(c.dropped),
      'data-continued': String(c.continued),
      class: c.odds_ratio > 1 ? 'worse' : 'better',
    },
    lead,
    h('code', {}, item),
    verdict,
    h(
      'small',
      {},
      ` (${formatCount(c.dropped)} of ${formatCount(answer.dropped)} dropped and ${formatCount(c.continued)} of ${formatCount(answer.continued)} continued had it)`,
    ),
  );
}

function afterDropTable(answer: InsightsResponse) {
  const shown = answer.after_drop.slice(0, AFTER_DROP_ROWS);
  const rest = answer.after_drop.length - shown.length;
  return h(
    'table',
    { 'data-testid': 'after-drop-table' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Event type'),
        h('th', {}, 'Channel'),
        h('th', {}, 'Customers'),
        h('th', {}, 'Share'),
      ),
    ),
    h(
      'tbody',
      {},
      ...(shown.length === 0
        ? [
            h(
              'tr',
              {},
              h(
                'td',
                { colspan: '4', class: 'empty' },
                'No events from them within a step timeout of dropping.',
              ),
            ),
          ]
        : shown.map((a, i) =>
            h(
              'tr',
              { 'data-testid': `after-drop-row-${i}` },
              h('td', { 'data-testid': `after-drop-type-${i}` }, a.type),
              h('td', { 'data-testid': `after-drop-channel-${i}` }, a.channel),
              h(
                'td',
                {
                  class: 'num',
                  'data-testid': `after-drop-customers-${i}`,
                  'data-customers': String(a.customers),
                },
                formatCount(a.customers),
              ),
              h(
                'td',
                {
                  class: 'num',
                  'data-testid': `after-drop-share-${i}`,
                  'data-share': String(a.share),
                },
                formatRate(a.share),
              ),
            ),
          )),
      rest > 0
        ? h('tr', {}, h('td', { colspan: '4', class: 'empty' }, `and ${formatCount(rest)} more`))
        : null,
    ),
  );
}

function render(body: HTMLElement, answer: InsightsResponse) {
  const top = answer.correlations.slice(0, TOP_CORRELATIONS);
  const more = answer.correlations.slice(TOP_CORRELATIONS);
  const figure = (testId: string, n: number) =>
    h('b', { 'data-testid': testId, 'data-value': String(n) }, formatCount(n));
  body.replaceChildren(
    h(
      'p',
      { class: 'lede' },
      figure('insights-dropped', answer.dropped),
      ` instances dropped at ${answer.from_step} (`,
      figure('insights-dropped-customers', answer.dropped_customers),
      ' customers); ',
      figure('insights-continued', answer.continued),
      ` continued to ${answer.to_step}.`,
    ),
    h(
      'div',
      { class: 'grid' },
      h(
        'div',
        {},
        h('h3', {}, 'Where the dropped customers went next'),
        afterDropTable(answer),
        h(
          'p',
          { 'data-testid': 'insights-returned' },
          figure('insights-returned-customers', answer.returned.customers),
          ' of them started the journey again within a step timeout; ',
          figure('insights-returned-completed', answer.returned.completed),
          ' of those completed it.',
        ),
      ),
      h(
        'div',
        {},
        h('h3', {}, 'What sets them apart'),
        answer.correlations.length === 0
          ? h(
              'p',
              { class: 'empty', 'data-testid': 'correlations-none' },
              'Nothing seen by at least 10 instances sets the dropped apart.',
            )
          : h(
              'ol',
              { class: 'correlations', 'data-testid': 'correlations' },
              ...top.map((c, i) => correlationItem(c, i, answer)),
            ),
        more.length > 0
          ? h(
              'details',
              {},
              h('summary', {}, `${more.length} weaker`),
              h(
                'ol',
                { class: 'correlations', start: String(TOP_CORRELATIONS + 1) },
                ...more.map((c, i) => correlationItem(c, i + TOP_CORRELATIONS, answer)),
              ),
            )
          : null,
      ),
    ),
  );
}

export interface InsightsPanelElements {
  section: HTMLElement;
  title: HTMLElement;
  status: HTMLElement;
  body: HTMLElement;
  close: HTMLButtonElement;
}

/**
 * Why instances drop at one transition: opened from a drop-off row, for the journey and
 * range that row was computed for (not the inputs, which may have been edited since), so
 * its figures (`dropped`, `continued`) are the row's.
 */
export function buildInsightsPanel(elements: InsightsPanelElements, api: ApiClient) {
  const { section, title, status, body } = elements;
  // A newer opening makes an older answer stale: only the latest one draws.
  let generation = 0;

  function close() {
    generation += 1;
    section.hidden = true;
    section.dataset.state = 'closed';
    delete section.dataset.fromStep;
    body.replaceChildren();
  }
  elements.close.addEventListener('click', close);

  async function open(
    journey: string,
    range: TimeRange,
    transition: { from_step: string; to_step: string },
  ) {
    const mine = ++generation;
    section.hidden = false;
    section.dataset.state = 'loading';
    section.dataset.fromStep = transition.from_step;
    title.textContent = `Why they drop: ${transition.from_step} → ${transition.to_step}`;
    status.textContent = 'Loading…';
    status.dataset.kind = 'info';
    body.replaceChildren();
    section.scrollIntoView({ block: 'nearest' });
    try {
      const answer = await api.insights(journey, transition.from_step, range.from, range.to);
      if (mine !== generation) return;
      status.textContent = '';
      render(body, answer);
      section.dataset.state = 'done';
    } catch (error) {
      if (mine !== generation) return;
      status.textContent = `Could not load the insights: ${(error as Error).message}`;
      status.dataset.kind = 'error';
      section.dataset.state = 'error';
    }
  }

  return { open, close };
}
