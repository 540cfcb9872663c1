import type { FunnelResponse } from '@touchstream/contracts';
import { h } from './dom.js';
import { formatBound, formatCount, formatSeconds } from './format.js';

type Step = FunnelResponse['steps'][number];
type Histogram = NonNullable<Step['time_to_convert']>['histogram'];

export interface TimeToConvertElements {
  step: HTMLSelectElement;
  quantiles: HTMLElement;
  caption: HTMLElement;
  /** The figures of the chart as a table, for screen readers (and tests): SVG bars are not. */
  table: HTMLTableElement;
}

/**
 * The time-to-convert histogram of one step of the funnel, chosen among steps 1 to n-1:
 * the last one at first (the time to complete the funnel's last transition), kept while
 * the funnel has the same steps.
 */
export function buildTimeToConvert(
  elements: TimeToConvertElements,
  draw: (histogram: Histogram) => void,
) {
  let funnel: FunnelResponse | undefined;
  let fromEntry = false;

  function render() {
    const k = Number(elements.step.value);
    const step = funnel?.steps[k];
    const ttc = step?.time_to_convert ?? null;
    const histogram = ttc?.histogram ?? [];
    const { quantiles, caption, table } = elements;
    quantiles.dataset.step = String(k);
    quantiles.dataset.p50 = String(ttc?.p50 ?? '');
    quantiles.dataset.p90 = String(ttc?.p90 ?? '');
    quantiles.replaceChildren(
      h('span', {}, 'median (p50) ', h('b', { 'data-testid': 'ttc-p50' }, formatSeconds(ttc?.p50))),
      h('span', {}, 'p90 ', h('b', { 'data-testid': 'ttc-p90' }, formatSeconds(ttc?.p90))),
    );
    // With `order: any` the API measures from the entry, not from the previous step.
    const previous = funnel?.steps[k - 1]?.name ?? 'the previous step';
    caption.textContent = fromEntry
      ? `Customers at ${step?.name ?? 'this step'} by the time they took from their entry (order: any)`
      : `Customers at ${step?.name ?? 'this step'} by the time they took from ${previous}`;
    table.replaceChildren(
      h('caption', {}, caption.textContent),
      h('thead', {}, h('tr', {}, h('th', {}, 'At most'), h('th', {}, 'Customers'))),
      h(
        'tbody',
        {},
        ...histogram.map((b, i) =>
          h(
            'tr',
            {},
            h('td', {}, formatBound(b.le_seconds)),
            h(
              'td',
              {
                'data-testid': `ttc-bucket-${i}`,
                'data-le-seconds': String(b.le_seconds),
                'data-customers': String(b.customers),
              },
              formatCount(b.customers),
            ),
          ),
        ),
      ),
    );
    draw(histogram);
  }

  elements.step.addEventListener('change', render);

  return {
    show(answer: FunnelResponse, order: 'strict' | 'any' = 'strict') {
      const names = answer.steps.map((s) => s.name);
      const before = funnel?.steps.map((s) => s.name) ?? [];
      const same = names.length === before.length && names.every((n, k) => n === before[k]);
      funnel = answer;
      fromEntry = order === 'any';
      if (!same) {
        elements.step.replaceChildren(
          ...names
            .slice(1)
            .map((name, i) => h('option', { value: String(i + 1) }, `${i + 1}. ${name}`)),
        );
        elements.step.value = String(names.length - 1);
      }
      render();
    },

    /** No figures: the panel shows why instead. */
    clear() {
      elements.quantiles.replaceChildren();
      elements.caption.textContent = '';
      elements.table.replaceChildren();
    },
  };
}
