/**
 * Test-only: GET /v1/journeys/{id}/dropoffs/{from_step}/insights computed from API.md's
 * words ("Why they drop", with the choices docs/API.md states) over the events sent and
 * the reference model's instances. Naive on purpose: it shares no code with the store or
 * the API, not even the odds-ratio formula.
 */
import type { InsightsResponse, Journey, Touchpoint } from '@touchstream/contracts';
import { parseDuration } from '@touchstream/contracts';
import { toEngineJourney } from '@touchstream/engine';
import {
  inEventTimeOrder,
  type ReferenceInstance,
  referenceInstances,
  stepOutcome,
} from '../../packages/engine/src/reference-model.js';

const FLOOR = 10;
const CORRELATIONS = 20;
const AFTER_DROP = 50;
const KIND_ORDER = ['event_type', 'property', 'channel'];

/** Strings in byte (UTF-8) order, as ClickHouse compares them. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The first copy of every event id of a customer, in event-time order (API.md, rule 7). */
function distinctEvents(events: readonly Touchpoint[]): Touchpoint[] {
  const seen = new Set<string>();
  return (inEventTimeOrder(events) as Touchpoint[]).filter((e) => {
    const key = `${e.customer_id}\u0000${e.event_id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A property value as text: strings as they are, numbers and booleans as JSON; no null. */
function propertyText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  return undefined;
}

interface Decided {
  run: ReferenceInstance;
  continued: boolean;
  reachedAt: number;
  /** The next step's time, or the drop-off deadline. */
  endsAt: number;
}

/** The answer, as API.md defines it, for the transition from step `fromStep`. */
export function referenceInsights(
  journey: Journey,
  events: readonly Touchpoint[],
  fromStep: string,
  from: number,
  to: number,
): InsightsResponse {
  const timeout = parseDuration(journey.step_timeout) ?? 0;
  const k = journey.steps.findIndex((s) => s.name === fromStep);
  const instances = referenceInstances(
    toEngineJourney(journey),
    events,
    Number.POSITIVE_INFINITY,
  ).filter((run) => run.journey === journey.id);
  const decided: Decided[] = [];
  for (const run of instances) {
    const reached = run.steps[k];
    if (!reached || reached.time < from || reached.time >= to) continue;
    const outcome = stepOutcome(run, k);
    if (outcome !== 'continued' && outcome !== 'dropped') continue;
    const continued = outcome === 'continued';
    const endsAt = continued ? (run.steps[k + 1]?.time ?? 0) : reached.time + timeout;
    decided.push({ run, continued, reachedAt: reached.time, endsAt });
  }
  const dropped = decided.filter((d) => !d.continued);
  const continued = decided.filter((d) => d.continued);
  const droppedCustomers = new Set(dropped.map((d) => d.run.customer));

  const byCustomer = new Map<string, Touchpoint[]>();
  for (const event of distinctEvents(events)) {
    byCustomer.set(event.customer_id, [...(byCustomer.get(event.customer_id) ?? []), event]);
  }

  // What dropped customers did within a step timeout after the deadline.
  const afterDrop = new Map<string, Set<string>>();
  for (const d of dropped) {
    for (const e of byCustomer.get(d.run.customer) ?? []) {
      if (e.timestamp <= d.endsAt || e.timestamp > d.endsAt + timeout) continue;
      const key = JSON.stringify([e.type, e.channel]);
      afterDrop.set(key, (afterDrop.get(key) ?? new Set()).add(d.run.customer));
    }
  }

  // Dropped customers who entered the journey again in that time; did such a return complete?
  const returned = new Set<string>();
  const completed = new Set<string>();
  for (const d of dropped) {
    for (const again of instances) {
      const entry = again.steps[0]?.time ?? Number.NaN;
      if (again.customer !== d.run.customer) continue;
      if (!(entry > d.endsAt && entry <= d.endsAt + timeout)) continue;
      returned.add(d.run.customer);
      if (again.outcome.kind === 'completed') completed.add(d.run.customer);
    }
  }

  // Per item, the instances that had it: their channel, and the types and property values
  // of their events strictly after reaching from_step and before the next step (continued)
  // or up to the deadline (dropped).
  const items = new Map<string, { dropped: Set<Decided>; continued: Set<Decided> }>();
  const note = (d: Decided, kind: string, name: string, value: string) => {
    const key = JSON.stringify([kind, name, value]);
    const item = items.get(key) ?? { dropped: new Set(), continued: new Set() };
    (d.continued ? item.continued : item.dropped).add(d);
    items.set(key, item);
  };
  for (const d of decided) {
    note(d, 'channel', 'channel', d.run.steps[k]?.channel ?? '');
    for (const e of byCustomer.get(d.run.customer) ?? []) {
      const inside = d.continued ? e.timestamp < d.endsAt : e.timestamp <= d.endsAt;
      if (e.timestamp <= d.reachedAt || !inside) continue;
      note(d, 'event_type', 'type', e.type);
      for (const [name, value] of Object.entries(e.properties ?? {})) {
        const text = propertyText(value);
        if (text !== undefined) note(d, 'property', name, text);
      }
    }
  }
  const A = dropped.length;
  const C = continued.length;
  const correlations = [...items]
    .map(([key, item]) => {
      const [kind, name, value] = JSON.parse(key) as [string, string, string];
      const a = item.dropped.size;
      const c = item.continued.size;
      const ratio = ((a + 0.5) * (C - c + 0.5)) / ((A - a + 0.5) * (c + 0.5));
      return { kind, name, value, dropped: a, continued: c, ratio };
    })
    .filter((x) => x.dropped + x.continued >= FLOOR)
    .map((x) => ({ ...x, strength: Math.round(Math.abs(Math.log(x.ratio)) * 1e9) / 1e9 }))
    .sort(
      (x, y) =>
        y.strength - x.strength ||
        KIND_ORDER.indexOf(x.kind) - KIND_ORDER.indexOf(y.kind) ||
        byBytes(x.name, y.name) ||
        byBytes(x.value, y.value),
    )
    .slice(0, CORRELATIONS)
    .map(({ kind, name, value, dropped: a, continued: c, ratio }) => ({
      kind: kind as 'event_type' | 'property' | 'channel',
      name,
      value,
      dropped: a,
      continued: c,
      odds_ratio: Number(ratio.toPrecision(4)),
    }));

  const share = (n: number) =>
    droppedCustomers.size === 0 ? 0 : Math.round((n / droppedCustomers.size) * 10_000) / 10_000;
  return {
    journey: journey.id,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    from_step: fromStep,
    to_step: journey.steps[k + 1]?.name ?? '',
    dropped: A,
    continued: C,
    dropped_customers: droppedCustomers.size,
    after_drop: [...afterDrop]
      .map(([key, customers]) => {
        const [type, channel] = JSON.parse(key) as [string, string];
        return { type, channel, customers: customers.size, share: share(customers.size) };
      })
      .sort(
        (x, y) =>
          y.customers - x.customers || byBytes(x.type, y.type) || byBytes(x.channel, y.channel),
      )
      .slice(0, AFTER_DROP),
    returned: { customers: returned.size, completed: completed.size },
    correlations,
  };
}
