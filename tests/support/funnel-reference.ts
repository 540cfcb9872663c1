/**
 * The funnel counting rules of API.md, written as plainly as possible: per customer, every
 * chain of events is enumerated and the deepest kept. Slow on purpose; for small datasets.
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

export interface RefStep {
  name: string;
  event_type: string;
  channel?: string;
  where?: Record<string, PropertyValue>;
}

export interface RefQuery {
  steps: RefStep[];
  from: number;
  to: number;
  windowMs: number;
  breakdown?: 'channel' | `property:${string}`;
  filters: FunnelFilter[];
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

function matches(step: RefStep, event: RefEvent): boolean {
  if (event.type !== step.event_type) return false;
  if (step.channel !== undefined && event.channel !== step.channel) return false;
  for (const [name, value] of Object.entries(step.where ?? {})) {
    if (!equals(event.properties?.[name], value)) return false;
  }
  return true;
}

function breakdownValue(query: RefQuery, event: RefEvent): string {
  if (query.breakdown === 'channel') return event.channel;
  const value = event.properties?.[(query.breakdown ?? '').slice('property:'.length)];
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : String(value);
}

/** The usual median: the mean of the two middle values of an even count. */
function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

interface CustomerResult {
  /** Deepest step reached. */
  depth: number;
  /** Times of steps 0..depth on the chain step times are measured on. */
  times: number[];
  breakdown: string;
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
  const first = [...entries].sort(
    (a, b) => a.timestamp - b.timestamp || (a.event_id < b.event_id ? -1 : 1),
  )[0] as RefEvent;
  return { depth: best.length - 1, times: best, breakdown: breakdownValue(query, first) };
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

function steps(query: RefQuery, results: CustomerResult[]) {
  const counts = query.steps.map((_, k) => results.filter((r) => r.depth >= k).length);
  return query.steps.map((step, k) => {
    const customers = counts[k] as number;
    const previous = k === 0 ? customers : (counts[k - 1] as number);
    const start = counts[0] as number;
    return {
      name: step.name,
      customers,
      conversion_from_start: start === 0 ? 0 : round4(customers / start),
      conversion_from_previous: previous === 0 ? 0 : round4(customers / previous),
      dropped_from_previous: previous - customers,
      median_seconds_from_previous:
        k === 0
          ? null
          : median(
              results
                .filter((r) => r.depth >= k)
                .map((r) => ((r.times[k] as number) - (r.times[k - 1] as number)) / 1000),
            ),
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
  const results = [...byCustomer.values()].flatMap((es) => customer(query, es) ?? []);
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
          (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
      )
      .slice(0, maxBreakdownValues);
  }
  return response;
}
