/**
 * The funnel counting rules of API.md, written as plainly as possible: per customer, every
 * chain of events is enumerated and the deepest kept. With options (API.md "Funnel
 * options"), each entry's chain is its earliest path, built step by step as the words say.
 * Slow on purpose; for small datasets.
 */
import type { FunnelFilter, FunnelResponse, PropertyValue } from '@touchstream/contracts';

export interface RefEvent {
  event_id: string;
  customer_id: string;
  type: string;
  channel: string;
  /** Epoch milliseconds. */
  timestamp: number;
  properties?: Record<string, PropertyValue>;
}

export interface RefMatcher {
  event_type: string;
  channel?: string;
  where?: Record<string, PropertyValue>;
}

export interface RefStep extends RefMatcher {
  name: string;
  optional?: boolean;
}

export interface RefExclusion extends RefMatcher {
  after_step: number;
  before_step: number;
}

export interface RefQuery {
  steps: RefStep[];
  from: number;
  to: number;
  windowMs: number;
  breakdown?: 'channel' | `property:${string}`;
  filters: FunnelFilter[];
  order?: 'strict' | 'any';
  exclusions?: RefExclusion[];
  hold_constant?: string[];
  breakdown_attribution?: 'first_touch' | 'last_touch' | `step:${number}`;
}

/** A property equals a value: same JSON type and value; a missing property equals nothing. */
function equals(actual: PropertyValue | undefined, value: PropertyValue): boolean {
  return actual !== undefined && actual === value;
}

function passes(filter: FunnelFilter, event: RefEvent): boolean {
  const actual = event.properties?.[filter.property];
  switch (filter.op) {
    case 'eq':
      return equals(actual, filter.value);
    case 'neq':
      return !equals(actual, filter.value);
    case 'in':
      return filter.value.some((v) => equals(actual, v));
    case 'contains':
      return (
        typeof actual === 'string' && actual.toLowerCase().includes(filter.value.toLowerCase())
      );
    case 'gt':
      return typeof actual === 'number' && actual > filter.value;
    case 'lt':
      return typeof actual === 'number' && actual < filter.value;
  }
}

function matches(step: RefMatcher, event: RefEvent): boolean {
  if (event.type !== step.event_type) return false;
  if (step.channel !== undefined && event.channel !== step.channel) return false;
  for (const [name, value] of Object.entries(step.where ?? {})) {
    if (!equals(event.properties?.[name], value)) return false;
  }
  return true;
}

function breakdownValue(query: RefQuery, event: RefEvent | undefined): string | null {
  if (event === undefined) return null;
  if (query.breakdown === 'channel') return event.channel;
  const value = event.properties?.[(query.breakdown ?? '').slice('property:'.length)];
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : String(value);
}

/**
 * The level-p quantile, interpolated between the two nearest ranks (at p = 0.5, the usual
 * median: the mean of the two middle values of an even count).
 */
function quantile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const h = (sorted.length - 1) * p;
  const low = Math.floor(h);
  const high = Math.min(low + 1, sorted.length - 1);
  return (sorted[low] as number) + (h - low) * ((sorted[high] as number) - (sorted[low] as number));
}

/** The histogram's bounds: round durations up to the first that holds the window. */
const BOUNDS = [
  1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21_600, 43_200, 86_400, 172_800, 604_800,
  1_209_600, 2_592_000, 7_776_000, 31_622_400,
];

interface CustomerResult {
  /** Deepest step reached. */
  depth: number;
  /** Per step, the seconds the customer took to it; undefined where not counted. */
  seconds: (number | undefined)[];
  /** Per step, whether the customer counts at it. */
  counted: boolean[];
  breakdown: string | null;
}

/**
 * Every chain from every entry, enumerated. The deepest wins; among the deepest, the one
 * whose last step came first, then the one with the latest step before it, and so on
 * down to the entry (the tightest chain ending first).
 */
function customer(query: RefQuery, events: RefEvent[]): CustomerResult | undefined {
  const entries = events.filter(
    (e) =>
      e.timestamp >= query.from && e.timestamp < query.to && matches(query.steps[0] as RefStep, e),
  );
  if (entries.length === 0) return undefined;
  const chains: number[][] = [];
  const extend = (chain: number[]) => {
    chains.push(chain);
    const k = chain.length;
    if (k === query.steps.length) return;
    const last = chain[k - 1] as number;
    for (const e of events) {
      if (
        e.timestamp > last &&
        e.timestamp - (chain[0] as number) <= query.windowMs &&
        matches(query.steps[k] as RefStep, e)
      ) {
        extend([...chain, e.timestamp]);
      }
    }
  };
  for (const entry of entries) extend([entry.timestamp]);
  const better = (a: number[], b: number[]) => {
    if (a.length !== b.length) return a.length > b.length;
    const top = a.length - 1;
    if (a[top] !== b[top]) return (a[top] as number) < (b[top] as number);
    for (let j = top - 1; j >= 0; j--) {
      if (a[j] !== b[j]) return (a[j] as number) > (b[j] as number);
    }
    return false;
  };
  let best = chains[0] as number[];
  for (const chain of chains) if (better(chain, best)) best = chain;
  // The first entry's value; of several in its millisecond, the smallest.
  const start = Math.min(...entries.map((e) => e.timestamp));
  const first = smallest(
    query,
    entries.filter((e) => e.timestamp === start),
  );
  return {
    depth: best.length - 1,
    seconds: query.steps.map((_, k) =>
      k === 0 || k >= best.length
        ? undefined
        : ((best[k] as number) - (best[k - 1] as number)) / 1000,
    ),
    counted: query.steps.map((_, k) => k < best.length),
    breakdown: first,
  };
}

/** The smallest breakdown value of some events (they do not differ by anything else). */
function smallest(query: RefQuery, events: RefEvent[]): string | null {
  return events.map((e) => breakdownValue(query, e) as string).sort()[0] ?? null;
}

const byTimeThenId = (a: RefEvent, b: RefEvent) =>
  a.timestamp - b.timestamp || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0);

/** The same JSON value (a missing property is a value of its own). */
const sameValue = (a: RefEvent, b: RefEvent, property: string) =>
  JSON.stringify(a.properties?.[property]) === JSON.stringify(b.properties?.[property]);

interface Chain {
  entry: RefEvent;
  /** The event at each step, undefined where the chain did not take it. */
  steps: (RefEvent | undefined)[];
  depth: number;
  void: boolean;
}

/** An entry's chain, its earliest path, with the options as API.md words them. */
function chainOf(query: RefQuery, events: RefEvent[], entry: RefEvent): Chain {
  const K = query.steps.length;
  const end = entry.timestamp + query.windowMs;
  const holds = (e: RefEvent) => (query.hold_constant ?? []).every((p) => sameValue(e, entry, p));
  /** The first event (by time, then id) doing step k, strictly after `after`, before `before`. */
  const first = (k: number, after: number, before: number) =>
    events.find(
      (e) =>
        e.timestamp > after &&
        e.timestamp < before &&
        matches(query.steps[k] as RefStep, e) &&
        holds(e),
    );
  const steps: (RefEvent | undefined)[] = [entry];
  const optional = (k: number) => query.steps[k]?.optional === true;
  if (query.order === 'any') {
    // Each step on its own, after the entry, within the window; a step counts when every
    // required step up to it was done (and, for an optional one, it was done).
    const done = query.steps.map((_, k) => (k === 0 ? entry : first(k, entry.timestamp, end + 1)));
    for (let k = 1; k < K; k++) {
      const upTo = query.steps.slice(1, k + 1).every((_, j) => optional(j + 1) || done[j + 1]);
      steps[k] = upTo ? done[k] : undefined;
    }
  } else {
    // Required steps in order, each the first after the previous required one.
    let last = entry;
    for (let k = 1; k < K; k++) {
      if (optional(k)) continue;
      const next = first(k, last.timestamp, end + 1);
      if (!next) break;
      steps[k] = next;
      last = next;
    }
    // An optional step is taken when done after the chain's previous step and strictly
    // before its next required step (or within the window when the chain stopped there).
    for (let k = 1; k < K; k++) {
      if (!optional(k)) continue;
      const previous = steps
        .slice(0, k)
        .filter((e) => e !== undefined)
        .at(-1);
      let required = k - 1;
      while (optional(required)) required -= 1;
      if (!steps[required]) continue;
      let nextRequired = k + 1;
      while (optional(nextRequired)) nextRequired += 1;
      const before = steps[nextRequired]?.timestamp ?? end + 1;
      steps[k] = first(k, (previous as RefEvent).timestamp, before);
    }
  }
  let depth = 0;
  for (let k = 0; k < K; k++) if (steps[k]) depth = k;
  const isVoid = (query.exclusions ?? []).some((x) => {
    const start = steps[x.after_step];
    if (!start) return false;
    const later =
      query.order === 'any'
        ? steps[x.before_step]
        : steps.slice(x.before_step).find((e) => e !== undefined);
    const stop = later ? later.timestamp : end + 1;
    return events.some((e) => e.timestamp > start.timestamp && e.timestamp < stop && matches(x, e));
  });
  return { entry, steps: query.steps.map((_, k) => steps[k]), depth, void: isVoid };
}

/**
 * With options: the customer counts at the deepest step a non-void entry reached. The chain
 * counted is the deepest; then the one whose deepest step came first; then the latest
 * entry; then the one whose steps came first (a skipped step after any taken one); then,
 * with a breakdown, the entry with the greater event id (entries of one millisecond follow
 * different chains only with held values).
 */
function customerWithOptions(query: RefQuery, events: RefEvent[]): CustomerResult | undefined {
  const sorted = [...events].sort(byTimeThenId);
  const entries = sorted.filter(
    (e) =>
      e.timestamp >= query.from && e.timestamp < query.to && matches(query.steps[0] as RefStep, e),
  );
  const chains = entries.map((entry) => chainOf(query, sorted, entry)).filter((c) => !c.void);
  if (chains.length === 0) return undefined;
  const time = (e: RefEvent | undefined) => e?.timestamp ?? Number.POSITIVE_INFINITY;
  const compare = (a: Chain, b: Chain) => {
    if (a.depth !== b.depth) return a.depth - b.depth;
    const deep = time(b.steps[b.depth]) - time(a.steps[a.depth]);
    if (deep !== 0) return deep;
    if (a.entry.timestamp !== b.entry.timestamp) return a.entry.timestamp - b.entry.timestamp;
    for (let k = 1; k < query.steps.length; k++) {
      if (time(a.steps[k]) !== time(b.steps[k]))
        return time(a.steps[k]) < time(b.steps[k]) ? 1 : -1;
    }
    if (!query.breakdown) return 0;
    return a.entry.event_id < b.entry.event_id ? -1 : a.entry.event_id > b.entry.event_id ? 1 : 0;
  };
  const best = chains.reduce((a, b) => (compare(b, a) > 0 ? b : a));
  const attribution = query.breakdown_attribution ?? 'first_touch';
  /**
   * The value at a step of the chain: the smallest value of the events of that millisecond
   * that could be the step (the chain's times are the same whichever of them it took).
   */
  const valueAt = (k: number): string | null => {
    const event = best.steps[k];
    if (!event) return null;
    return smallest(
      query,
      sorted.filter(
        (e) =>
          e.timestamp === event.timestamp &&
          matches(query.steps[k] as RefStep, e) &&
          (query.hold_constant ?? []).every((p) => sameValue(e, best.entry, p)),
      ),
    );
  };
  // First touch: the first entry not made void; of several in its millisecond, the smallest.
  const start = (chains[0] as Chain).entry.timestamp;
  const breakdown =
    attribution === 'first_touch'
      ? smallest(
          query,
          chains.filter((c) => c.entry.timestamp === start).map((c) => c.entry),
        )
      : attribution === 'last_touch'
        ? valueAt(best.depth)
        : valueAt(Number(attribution.slice('step:'.length)));
  const anyOrder = query.order === 'any';
  return {
    depth: best.depth,
    seconds: best.steps.map((e, k) => {
      if (k === 0 || !e) return undefined;
      const from = anyOrder
        ? best.entry
        : (best.steps
            .slice(0, k)
            .filter((s) => s !== undefined)
            .at(-1) as RefEvent);
      return (e.timestamp - from.timestamp) / 1000;
    }),
    counted: best.steps.map((e, k) =>
      query.steps[k]?.optional ? e !== undefined : k <= best.depth,
    ),
    breakdown,
  };
}

/** A funnel with none of the options: the plain rules, and the plain query path. */
export function isPlain(query: RefQuery): boolean {
  return (
    (query.order ?? 'strict') === 'strict' &&
    !query.steps.some((s) => s.optional) &&
    (query.exclusions ?? []).length === 0 &&
    (query.hold_constant ?? []).length === 0 &&
    (query.breakdown_attribution ?? 'first_touch') === 'first_touch'
  );
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

function steps(query: RefQuery, results: CustomerResult[]) {
  const counts = query.steps.map((_, k) => results.filter((r) => r.counted[k]).length);
  const bounds = BOUNDS.slice(0, BOUNDS.findIndex((b) => b * 1000 >= query.windowMs) + 1);
  let previousRequired = 0;
  return query.steps.map((step, k) => {
    const customers = counts[k] as number;
    // Conversions and drops are from the previous required step.
    const previous = k === 0 ? customers : (counts[previousRequired] as number);
    if (!step.optional) previousRequired = k;
    const start = counts[0] as number;
    const seconds = results.flatMap((r) => (r.counted[k] ? [r.seconds[k] as number] : []));
    const levels = [0.25, 0.5, 0.75, 0.9].map((p) => quantile(seconds, p));
    return {
      name: step.name,
      customers,
      conversion_from_start: start === 0 ? 0 : round4(customers / start),
      conversion_from_previous: previous === 0 ? 0 : round4(customers / previous),
      dropped_from_previous: previous - customers,
      median_seconds_from_previous: k === 0 ? null : (levels[1] as number | null),
      ...(step.optional ? { optional: true as const } : {}),
      time_to_convert:
        k === 0
          ? null
          : {
              p25: levels[0] as number | null,
              p50: levels[1] as number | null,
              p75: levels[2] as number | null,
              p90: levels[3] as number | null,
              histogram: bounds.map((le, i) => ({
                le_seconds: le,
                customers: seconds.filter(
                  (x) => x <= le && (i === 0 || x > (bounds[i - 1] as number)),
                ).length,
              })),
            },
    };
  });
}

/** The funnel API.md defines, over events as stored (a repeated event id counts once). */
export function referenceFunnel(
  query: RefQuery,
  events: RefEvent[],
  maxBreakdownValues = 50,
): FunnelResponse {
  const unique = new Map<string, RefEvent>();
  for (const e of events) unique.set(`${e.customer_id}\u0000${e.timestamp}\u0000${e.event_id}`, e);
  const byCustomer = new Map<string, RefEvent[]>();
  for (const e of unique.values()) {
    if (!query.filters.every((f) => passes(f, e))) continue;
    byCustomer.set(e.customer_id, [...(byCustomer.get(e.customer_id) ?? []), e]);
  }
  const results = [...byCustomer.values()].flatMap(
    (es) => (isPlain(query) ? customer(query, es) : customerWithOptions(query, es)) ?? [],
  );
  const response: FunnelResponse = { steps: steps(query, results) };
  if (query.breakdown) {
    const values = [...new Set(results.map((r) => r.breakdown))];
    response.breakdown = values
      .map((value) => ({
        value,
        steps: steps(
          query,
          results.filter((r) => r.breakdown === value),
        ),
      }))
      .sort(
        (a, b) =>
          (b.steps[0]?.customers ?? 0) - (a.steps[0]?.customers ?? 0) ||
          // The group null (did not reach the attributed step) after any value.
          (a.value === b.value
            ? 0
            : a.value === null
              ? 1
              : b.value === null
                ? -1
                : a.value < b.value
                  ? -1
                  : 1),
      )
      .slice(0, maxBreakdownValues);
  }
  return response;
}
