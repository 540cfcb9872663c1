import './style.css';
import type { Journey } from '@touchstream/contracts';
import { ApiError, buildApiClient, type FunnelOptions } from './api.js';
import { describeApiError } from './api-errors.js';
import { buildCharts, channelColours } from './charts.js';
import { byId, h } from './dom.js';
import { formatCount, formatRate, ratio } from './format.js';
import { buildFunnelControls, optionsFromParams, optionsToParams } from './funnel-controls.js';
import { buildInsightsPanel } from './insights-panel.js';
import { buildReviewView } from './review-view.js';
import {
  renderAlertsTable,
  renderDropoffTable,
  renderFunnelTable,
  renderValueHeadline,
} from './tables.js';
import { fromLocalInput, lastPeriod, slices, type TimeRange, toLocalInput } from './time-range.js';
import { buildTimeToConvert } from './time-to-convert.js';

const WEEK = 7 * 86_400_000;
// Slices of the conversion chart: one drop-offs request each, so a handful.
const TIME_SLICES = 6;

const form = byId<HTMLFormElement>('controls');
const journeySelect = byId<HTMLSelectElement>('journey');
const fromInput = byId<HTMLInputElement>('from');
const toInput = byId<HTMLInputElement>('to');
const status = byId<HTMLParagraphElement>('status');
const content = byId<HTMLElement>('content');
const keyDialog = byId<HTMLDialogElement>('key-dialog');
const keyForm = byId<HTMLFormElement>('key-form');
const keyInput = byId<HTMLInputElement>('key-input');
const testId = (id: string) => {
  const element = document.querySelector<HTMLElement>(`[data-testid="${id}"]`);
  if (!element) throw new Error(`The page has no ${id}`);
  return element;
};

const api = buildApiClient({
  askKey: (reason) =>
    new Promise((resolve) => {
      byId('key-reason').textContent = reason;
      keyInput.value = '';
      keyForm.onsubmit = (event) => {
        event.preventDefault();
        const key = keyInput.value.trim();
        if (!key) return;
        keyDialog.close();
        resolve(key);
      };
      keyDialog.showModal();
    }),
});

const charts = buildCharts({
  funnel: byId('funnel-chart'),
  time: byId('time-chart'),
  channel: byId('channel-chart'),
  flow: byId('flow-chart'),
  timeToConvert: byId('ttc-chart'),
});

const funnelPanel = byId<HTMLElement>('funnel-panel');
const funnelError = byId<HTMLParagraphElement>('funnel-error');
const funnelFigures = byId<HTMLElement>('funnel-figures');
const funnelControls = buildFunnelControls(
  {
    form: byId('funnel-options'),
    order: byId('funnel-order'),
    hold: byId('funnel-hold'),
    exclusions: byId('funnel-exclusions'),
    addExclusion: byId('funnel-add-exclusion'),
  },
  () => {
    // Only a different question is asked again: a blank row added or removed is none.
    if (!shown || optionsKey(funnelControls.options()) === funnelPanel.dataset.options) return;
    remember(shown.journey, shown.range);
    void loadFunnel(shown.journey, shown.range);
  },
);
const timeToConvert = buildTimeToConvert(
  {
    step: byId('ttc-step'),
    quantiles: byId('ttc-quantiles'),
    caption: byId('ttc-caption'),
    table: byId('ttc-table'),
  },
  (histogram) => charts.timeToConvert(histogram),
);
const insights = buildInsightsPanel(
  {
    section: byId('insights-panel'),
    title: byId('insights-title'),
    status: byId('insights-status'),
    body: byId('insights-body'),
    close: byId('insights-close'),
  },
  api,
);

const review = buildReviewView(
  {
    section: byId('review-panel'),
    title: byId('review-title'),
    status: byId('review-status'),
    body: byId('review-body'),
    period: byId('review-period'),
    open: byId('review-open'),
    close: byId('review-close'),
  },
  api,
);

/** The status line; once figures are drawn it also names what they are of. */
function setStatus(
  text: string,
  kind: 'info' | 'error' | 'done' = 'info',
  shown?: { journey: string; range: TimeRange },
) {
  status.textContent = text;
  status.dataset.kind = kind;
  status.dataset.journey = shown?.journey ?? '';
  status.dataset.from = shown ? new Date(shown.range.from).toISOString() : '';
  status.dataset.to = shown ? new Date(shown.range.to).toISOString() : '';
}

function currentRange(): TimeRange | undefined {
  const from = fromLocalInput(fromInput.value);
  const to = fromLocalInput(toInput.value);
  return from !== undefined && to !== undefined && from < to ? { from, to } : undefined;
}

function showRange(range: TimeRange) {
  fromInput.value = toLocalInput(range.from);
  toInput.value = toLocalInput(range.to);
}

/** The choice lives in the address, so a view can be bookmarked and shared. */
function remember(journey: string, range: TimeRange) {
  const params = new URLSearchParams({
    journey,
    from: new Date(range.from).toISOString(),
    to: new Date(range.to).toISOString(),
  });
  optionsToParams(funnelControls.options(), params);
  history.replaceState(null, '', `?${params}`);
}

const optionsKey = (options: FunnelOptions) => JSON.stringify(options);

// A newer request makes an older one's answers stale: only the latest one draws.
let generation = 0;
let funnelGeneration = 0;
/** The journey and range the panels show (or are loading): what option changes re-ask. */
let shown: { journey: string; range: TimeRange } | undefined;

/**
 * The funnel panel on its own: the options change it without reloading the rest, and a
 * query the API refuses (a 400 naming a field) is said in the panel, the other panels
 * unharmed. Never throws. The panel's data-state and data-options say what it shows.
 */
async function loadFunnel(journey: string, range: TimeRange) {
  const options = funnelControls.options();
  const mine = ++funnelGeneration;
  funnelPanel.dataset.state = 'loading';
  funnelPanel.dataset.options = optionsKey(options);
  try {
    const funnel = await api.funnel(journey, range.from, range.to, options);
    if (mine !== funnelGeneration) return;
    funnelError.hidden = true;
    funnelError.textContent = '';
    if (funnelFigures.hidden) {
      funnelFigures.hidden = false;
      // The charts were out of the layout: they take their size again before drawing.
      charts.resize();
    }
    renderFunnelTable(byId('funnel-table'), funnel);
    charts.funnel(funnel);
    timeToConvert.show(funnel, options.order);
    funnelPanel.dataset.state = 'done';
  } catch (error) {
    if (mine !== funnelGeneration) return;
    // Figures of the previous options would read as the answer to these: none are shown.
    byId('funnel-table').replaceChildren();
    charts.clearFunnel();
    timeToConvert.clear();
    funnelFigures.hidden = true;
    funnelError.textContent =
      error instanceof ApiError && error.status === 400
        ? describeApiError(error)
        : `Could not load the funnel: ${(error as Error).message}`;
    funnelError.hidden = false;
    funnelPanel.dataset.state = 'error';
  }
}

async function refresh() {
  const journey = journeySelect.value;
  const range = currentRange();
  if (!journey) return;
  if (!range) {
    setStatus('Choose a range whose start is before its end.', 'error');
    return;
  }
  remember(journey, range);
  const mine = ++generation;
  shown = { journey, range };
  funnelControls.setSteps(journeys.find((j) => j.id === journey)?.steps.map((s) => s.name) ?? []);
  // Its figures would be of the previous view.
  insights.close();
  // The review is of a journey, whatever the range: it follows the journey only.
  review.show(journey, journeyLabel(journey));
  setStatus('Loading…');
  try {
    const [, dropoffs, alerts, points] = await Promise.all([
      loadFunnel(journey, range),
      api.dropoffs(journey, range.from, range.to),
      api.alerts(),
      Promise.all(
        slices(range, TIME_SLICES).map(async (slice) => {
          const answer = await api.dropoffs(journey, slice.from, slice.to);
          return { ...slice, entered: answer.entered, completed: answer.completed };
        }),
      ),
    ]);
    if (mine !== generation) return;
    if (content.hidden) {
      content.hidden = false;
      charts.resize();
    }
    testId('summary-entered').textContent = formatCount(dropoffs.entered);
    testId('summary-completed').textContent = formatCount(dropoffs.completed);
    testId('summary-conversion').textContent = formatRate(
      ratio(dropoffs.completed, dropoffs.entered),
    );
    testId('summary-stitched').textContent = formatCount(dropoffs.stitched);
    const firing = alerts.filter((a) => a.state === 'firing').length;
    const firingCard = testId('summary-firing');
    firingCard.textContent = formatCount(firing);
    firingCard.classList.toggle('alarm', firing > 0);

    renderValueHeadline(byId('value-headline'), dropoffs);
    renderDropoffTable(
      byId('dropoff-table'),
      dropoffs,
      (transition) => void insights.open(journey, range, transition),
    );
    renderAlertsTable(byId('alerts-table'), alerts);
    const colours = channelColours(dropoffs);
    charts.time(points);
    charts.channels(dropoffs, colours);
    charts.flow(dropoffs, colours);
    setStatus(
      `${journeyLabel(journey)}: ${new Date(range.from).toLocaleString()} – ${new Date(range.to).toLocaleString()}`,
      'done',
      { journey, range },
    );
  } catch (error) {
    if (mine === generation) setStatus(`Could not load: ${(error as Error).message}`, 'error');
  }
}

let journeys: Journey[] = [];
const journeyLabel = (id: string) => journeys.find((j) => j.id === id)?.name ?? id;

async function start() {
  const params = new URLSearchParams(location.search);
  const asked = {
    journey: params.get('journey'),
    from: Date.parse(params.get('from') ?? ''),
    to: Date.parse(params.get('to') ?? ''),
  };
  showRange(Number.isNaN(asked.from) || Number.isNaN(asked.to) ? lastPeriod(WEEK) : asked);
  setStatus('Loading journeys…');
  try {
    journeys = await api.journeys();
  } catch (error) {
    setStatus(`Could not load journeys: ${(error as Error).message}`, 'error');
    return;
  }
  if (journeys.length === 0) {
    setStatus('No journeys yet: define one with PUT /v1/journeys/{id} (see /docs).', 'info');
    return;
  }
  journeySelect.replaceChildren(
    ...journeys.map((j) => h('option', { value: j.id }, `${j.name} (${j.id})`)),
  );
  if (asked.journey && journeys.some((j) => j.id === asked.journey)) {
    journeySelect.value = asked.journey;
  }
  // The steps first: the options name them by position.
  funnelControls.setSteps(
    journeys.find((j) => j.id === journeySelect.value)?.steps.map((s) => s.name) ?? [],
  );
  funnelControls.restore(optionsFromParams(params));
  await refresh();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void refresh();
});
journeySelect.addEventListener('change', () => void refresh());
for (const button of document.querySelectorAll<HTMLButtonElement>('[data-preset]')) {
  button.addEventListener('click', () => {
    showRange(lastPeriod(Number(button.dataset.preset)));
    void refresh();
  });
}

void start();
