/**
 * Test-only: a deliberately naive reference for the streaming rules of API.md ("Journeys",
 * rules 1-4) and the dropoffs aggregation ("GET /v1/journeys/{id}/dropoffs"). It shares no
 * code with the engine (not even `matches`): each customer's events are replayed in
 * timestamp order (ties: input order) with the rules written out literally. Quadratic
 * and allocation-happy on purpose; only tests import it.
 */
import type { DropoffResponse, StepMatcher } from '@touchstream/contracts';
import type { EngineEvent, EngineJourney, Fact } from './types.js';

/** A step an instance reached: the time and channel of the event that reached it. */
export interface ReferenceStep {
  time: number;
  channel: string;
  /** The journey's value property: its latest number among the step events up to here. */
  value: number | null;
}

/** How the instance's last reached step ended (earlier steps all `continued`). */
export type ReferenceOutcome =
  | { kind: 'completed' }
  | { kind: 'dropped'; reason: string }
  | { kind: 'in_progress' };

export interface ReferenceInstance {
  journey: string;
  customer: string;
  /** The entry event's id. */
  instance: string;
  /** `steps[k]`: step k, for every step reached, in order. */
  steps: ReferenceStep[];
  outcome: ReferenceOutcome;
}

export type StepOutcome = 'continued' | 'completed' | 'dropped' | 'in_progress';

/** What happened at step `k` of an instance that reached it. */
export function stepOutcome(instance: ReferenceInstance, k: number): StepOutcome {
  if (k < instance.steps.length - 1) return 'continued';
  return instance.outcome.kind;
}

/** Type equal; channel equal when the step names one; every `where` property `===`. */
export function referenceMatches(step: StepMatcher | undefined, event: EngineEvent): boolean {
  if (step === undefined) return false;
  if (event.type !== step.event_type) return false;
  if (step.channel !== undefined && event.channel !== step.channel) return false;
  const props: Record<string, unknown> = event.properties ?? {};
  for (const name of Object.keys(step.where ?? {})) {
    if (!Object.hasOwn(props, name)) return false;
    if (props[name] !== step.where?.[name]) return false;
  }
  return true;
}

/** The value property of an event, when it is a finite number. */
function numericValue(journey: EngineJourney, event: EngineEvent): number | null {
  if (journey.valueProperty === undefined) return null;
  const value: unknown = event.properties?.[journey.valueProperty];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** Events in timestamp order, ties in input order (a stable sort). */
export function inEventTimeOrder(events: readonly EngineEvent[]): EngineEvent[] {
  return events
    .map((event, index) => ({ event, index }))
    .sort((a, b) => a.event.timestamp - b.event.timestamp || a.index - b.index)
    .map((x) => x.event);
}

/**
 * Every instance of `journey`, for every customer in `events`, once event time has reached
 * `finalEventTime` (and every event has been applied). Repeated event ids of a customer
 * count once: the first in event-time order.
 */
export function referenceInstances(
  journey: EngineJourney,
  events: readonly EngineEvent[],
  finalEventTime: number,
): ReferenceInstance[] {
  const ordered = inEventTimeOrder(events);
  const timeout = journey.stepTimeoutMs;
  const last = journey.steps.length - 1;
  const customers: string[] = [];
  for (const event of ordered) {
    if (!customers.includes(event.customer_id)) customers.push(event.customer_id);
  }

  const result: ReferenceInstance[] = [];
  for (const customer of customers) {
    const seen: string[] = [];
    let current: { instance: string; steps: ReferenceStep[]; failure: string | null } | null = null;
    const end = (outcome: ReferenceOutcome) => {
      if (current === null) return;
      result.push({
        journey: journey.id,
        customer,
        instance: current.instance,
        steps: current.steps,
        outcome,
      });
      current = null;
    };

    for (const event of ordered) {
      if (event.customer_id !== customer) continue;
      // A repeated event id is ignored.
      if (seen.includes(event.event_id)) continue;
      seen.push(event.event_id);

      // Rule 4: the deadline passed before this event happened: drop off at step k.
      if (current !== null) {
        const reachedAt = current.steps[current.steps.length - 1]?.time ?? 0;
        if (event.timestamp > reachedAt + timeout) {
          end({ kind: 'dropped', reason: current.failure ?? 'timeout' });
        }
      }

      if (current !== null) {
        const k = current.steps.length - 1;
        const reachedAt = current.steps[k]?.time ?? 0;
        const elapsed = event.timestamp - reachedAt;
        if (referenceMatches(journey.steps[k + 1], event) && elapsed >= 0 && elapsed <= timeout) {
          // Rule 2: the next step, within the timeout, advances.
          const previous = current.steps[k]?.value ?? null;
          current.steps.push({
            time: event.timestamp,
            channel: event.channel,
            value: numericValue(journey, event) ?? previous,
          });
          current.failure = null;
          // Rule 3: the last step completes.
          if (k + 1 === last) end({ kind: 'completed' });
        } else if (journey.failureEventTypes.has(event.type) && elapsed >= 0) {
          // Rule 4: remember the last failure event sent while at step k.
          current.failure = event.type;
        }
        // Anything else (other steps, step 0 again) is ignored.
      } else if (referenceMatches(journey.steps[0], event)) {
        // Rule 1: a step-0 event starts an instance when none is in progress.
        current = {
          instance: event.event_id,
          steps: [
            {
              time: event.timestamp,
              channel: event.channel,
              value: numericValue(journey, event),
            },
          ],
          failure: null,
        };
      }
    }

    // Event time reached `finalEventTime`: the deadline passed only if strictly before it.
    const still = current as { steps: ReferenceStep[]; failure: string | null } | null;
    if (still !== null) {
      const reachedAt = still.steps[still.steps.length - 1]?.time ?? 0;
      if (finalEventTime > reachedAt + timeout) {
        end({ kind: 'dropped', reason: still.failure ?? 'timeout' });
      } else {
        end({ kind: 'in_progress' });
      }
    }
  }
  return result;
}

/** The facts the engine should emit for these instances (in-progress ones: only `reached`). */
export function expectedFacts(
  journey: EngineJourney,
  instances: readonly ReferenceInstance[],
): Fact[] {
  const facts: Fact[] = [];
  for (const run of instances) {
    const base = { journey: run.journey, customer: run.customer, instance: run.instance };
    run.steps.forEach((step, k) => {
      const previous = k > 0 ? run.steps[k - 1] : undefined;
      const value = step.value === null ? {} : { value: step.value };
      facts.push({
        kind: 'reached',
        ...base,
        step: k,
        time: step.time,
        channel: step.channel,
        previousChannel: previous ? previous.channel : null,
        secondsFromPrevious: previous ? (step.time - previous.time) / 1000 : null,
        ...value,
      });
    });
    const k = run.steps.length - 1;
    const lastStep = run.steps[k];
    if (lastStep === undefined) continue;
    const value = lastStep.value === null ? {} : { value: lastStep.value };
    if (run.outcome.kind === 'completed') {
      facts.push({ kind: 'completed', ...base, step: k, time: lastStep.time, ...value });
    } else if (run.outcome.kind === 'dropped') {
      facts.push({
        kind: 'dropped',
        ...base,
        step: k,
        time: lastStep.time + journey.stepTimeoutMs,
        reason: run.outcome.reason,
        ...value,
      });
    }
  }
  return facts;
}

/** Canonical order for comparing fact lists as multisets. */
export function sortFacts(facts: readonly Fact[]): Fact[] {
  const rank = { reached: 0, completed: 1, dropped: 2 } as const;
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...facts].sort(
    (a, b) =>
      cmp(a.journey, b.journey) ||
      cmp(a.customer, b.customer) ||
      cmp(a.instance, b.instance) ||
      a.step - b.step ||
      rank[a.kind] - rank[b.kind] ||
      a.time - b.time,
  );
}

/** Rebuilds instances from facts (as the dropoffs query would), for the aggregation. */
export function instancesFromFacts(facts: readonly Fact[]): ReferenceInstance[] {
  const byKey = new Map<string, ReferenceInstance & { reached: Map<number, ReferenceStep> }>();
  for (const fact of facts) {
    const key = JSON.stringify([fact.journey, fact.customer, fact.instance]);
    let run = byKey.get(key);
    if (!run) {
      run = {
        journey: fact.journey,
        customer: fact.customer,
        instance: fact.instance,
        steps: [],
        outcome: { kind: 'in_progress' },
        reached: new Map(),
      };
      byKey.set(key, run);
    }
    if (fact.kind === 'reached')
      run.reached.set(fact.step, {
        time: fact.time,
        channel: fact.channel,
        value: fact.value ?? null,
      });
    else if (fact.kind === 'completed') run.outcome = { kind: 'completed' };
    else run.outcome = { kind: 'dropped', reason: fact.reason };
  }
  return [...byKey.values()].map(({ reached, ...run }) => {
    const steps: ReferenceStep[] = [];
    for (let k = 0; reached.has(k); k++) steps.push(reached.get(k) as ReferenceStep);
    return { ...run, steps };
  });
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] as number;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] as number) + hi) / 2;
}

function byCountThenName<T>(count: (x: T) => number, name: (x: T) => string) {
  return (a: T, b: T) =>
    count(b) - count(a) || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);
}

/**
 * The scores an instance's customer gave after it ended: feedback events (a finite numeric
 * `score`; a repeated id once) in [end, end + step timeout], where the end is the
 * completion, or the drop's deadline. None for an instance in progress.
 */
function referenceRatings(
  journey: EngineJourney,
  events: readonly EngineEvent[],
  feedbackEventTypes: readonly string[],
): (run: ReferenceInstance) => number[] {
  const byCustomer = new Map<string, Map<string, { time: number; score: number }>>();
  for (const event of inEventTimeOrder(events)) {
    if (!feedbackEventTypes.includes(event.type)) continue;
    const score: unknown = event.properties?.score;
    if (typeof score !== 'number' || !Number.isFinite(score)) continue;
    const mine = byCustomer.get(event.customer_id) ?? new Map();
    if (!mine.has(event.event_id)) mine.set(event.event_id, { time: event.timestamp, score });
    byCustomer.set(event.customer_id, mine);
  }
  return (run) => {
    const last = run.steps[run.steps.length - 1]?.time ?? 0;
    if (run.outcome.kind === 'in_progress') return [];
    const end = run.outcome.kind === 'completed' ? last : last + journey.stepTimeoutMs;
    return [...(byCustomer.get(run.customer)?.values() ?? [])]
      .filter((r) => r.time >= end && r.time <= end + journey.stepTimeoutMs)
      .map((r) => r.score);
  };
}

/**
 * The dropoffs response of API.md over `[from, to)` (epoch ms). An instance counts in a
 * transition when it reached `from_step` in the range; `entered` counts instances whose
 * step 0 is in the range, `completed` those of them that reached the last step. Ties in
 * the count-descending lists are broken by name, ascending. Hand-offs are the continued
 * instances whose two events were on different channels (API.md, "Words").
 */
export function referenceDropoffs(
  journey: EngineJourney,
  instances: readonly ReferenceInstance[],
  from: number,
  to: number,
  extras: {
    /** Customers with events stitched from an anonymous id (API.md, "Identities"). */
    stitchedCustomers?: ReadonlySet<string>;
    /** Every event, for the ratings: feedback events carry a numeric `score`. */
    events?: readonly EngineEvent[];
    feedbackEventTypes?: readonly string[];
    currency?: string | null;
  } = {},
): DropoffResponse {
  const stitchedCustomers = extras.stitchedCustomers ?? new Set<string>();
  const valued = journey.valueProperty !== undefined;
  const rating = referenceRatings(journey, extras.events ?? [], extras.feedbackEventTypes ?? []);
  const cents = (x: number) => Math.round(x * 100) / 100;
  const sumValues = (
    runs: readonly ReferenceInstance[],
    step: (run: ReferenceInstance) => number,
  ) =>
    valued ? cents(runs.reduce((sum, run) => sum + (run.steps[step(run)]?.value ?? 0), 0)) : null;
  const summary = (runs: readonly ReferenceInstance[]) => {
    const scores = runs.flatMap((run) => rating(run));
    const total = scores.reduce((a, b) => a + b, 0);
    return {
      responses: scores.length,
      mean_score: scores.length === 0 ? null : Math.round((total / scores.length) * 100) / 100,
    };
  };
  const mine = instances.filter((run) => run.journey === journey.id);
  const inRange = (time: number | undefined) => time !== undefined && time >= from && time < to;
  const entered = mine.filter((run) => inRange(run.steps[0]?.time));
  const transitions: DropoffResponse['transitions'] = [];
  for (let k = 0; k + 1 < journey.steps.length; k++) {
    const reached = mine.filter((run) => inRange(run.steps[k]?.time));
    const outcome = (run: ReferenceInstance) => stepOutcome(run, k);
    const continued = reached.filter((run) => outcome(run) === 'continued');
    const dropped = reached.filter((run) => outcome(run) === 'dropped');
    const inProgress = reached.filter((run) => outcome(run) === 'in_progress');

    const reasons = new Map<string, number>();
    for (const run of dropped) {
      const reason = run.outcome.kind === 'dropped' ? run.outcome.reason : '?';
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }
    const channels = new Map<string, { reached: number; continued: number; dropped: number }>();
    for (const run of reached) {
      const channel = run.steps[k]?.channel ?? '';
      const row = channels.get(channel) ?? { reached: 0, continued: 0, dropped: 0 };
      row.reached += 1;
      if (outcome(run) === 'continued') row.continued += 1;
      if (outcome(run) === 'dropped') row.dropped += 1;
      channels.set(channel, row);
    }
    const handoffs = new Map<string, number>();
    for (const run of continued) {
      if (run.steps[k]?.channel === run.steps[k + 1]?.channel) continue;
      const key = JSON.stringify([run.steps[k]?.channel, run.steps[k + 1]?.channel]);
      handoffs.set(key, (handoffs.get(key) ?? 0) + 1);
    }
    const resolved = continued.length + dropped.length;
    transitions.push({
      from_step: journey.steps[k]?.name ?? '',
      to_step: journey.steps[k + 1]?.name ?? '',
      reached: reached.length,
      continued: continued.length,
      dropped: dropped.length,
      in_progress: inProgress.length,
      drop_rate: resolved === 0 ? 0 : Math.round((dropped.length / resolved) * 10_000) / 10_000,
      median_seconds_to_continue: median(
        continued.map((run) => ((run.steps[k + 1]?.time ?? 0) - (run.steps[k]?.time ?? 0)) / 1000),
      ),
      // API.md: the target and owner of the step converted into; below it with 20 decided.
      owner: journey.steps[k + 1]?.owner ?? null,
      target_conversion: journey.steps[k + 1]?.target_conversion ?? null,
      conversion: resolved === 0 ? 0 : Math.round((continued.length / resolved) * 10_000) / 10_000,
      below_target:
        journey.steps[k + 1]?.target_conversion !== undefined &&
        resolved >= 20 &&
        Math.round((continued.length / resolved) * 10_000) / 10_000 <
          (journey.steps[k + 1]?.target_conversion ?? 0),
      // The value as of the drop (the last step reached) and as of reaching the next step.
      value_dropped: sumValues(dropped, () => k),
      value_continued: sumValues(continued, () => k + 1),
      feedback: { dropped: summary(dropped), continued: summary(continued) },
      reasons: [...reasons]
        .map(([reason, n]) => ({ reason, dropped: n }))
        .sort(
          byCountThenName(
            (r) => r.dropped,
            (r) => r.reason,
          ),
        ),
      by_channel: [...channels]
        .map(([channel, row]) => ({ channel, ...row }))
        .sort(
          byCountThenName(
            (r) => r.reached,
            (r) => r.channel,
          ),
        ),
      handoffs: [...handoffs]
        .map(([key, n]) => {
          const [fromChannel, toChannel] = JSON.parse(key) as [string, string];
          return { from_channel: fromChannel, to_channel: toChannel, continued: n };
        })
        .sort(
          byCountThenName(
            (h) => h.continued,
            (h) => `${h.from_channel}\u0000${h.to_channel}`,
          ),
        ),
    });
  }
  return {
    journey: journey.id,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    entered: entered.length,
    completed: entered.filter((run) => run.outcome.kind === 'completed').length,
    stitched: entered.filter((run) => stitchedCustomers.has(run.customer)).length,
    currency: extras.currency ?? null,
    value_completed: sumValues(
      entered.filter((run) => run.outcome.kind === 'completed'),
      (run) => run.steps.length - 1,
    ),
    value_dropped: valued
      ? cents(transitions.reduce((sum, t) => sum + (t.value_dropped ?? 0), 0))
      : null,
    transitions,
  };
}
