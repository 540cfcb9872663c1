import {
  type DropoffResponse,
  formatDuration,
  type Journey,
  type Review,
  type ReviewAlert,
  type ReviewPeriod,
  type ReviewStepFigures,
} from '@touchstream/contracts';
import { listAlerts, queryDropoffs, type Store } from '@touchstream/store';
import { dropoffReport } from './dropoff-report.js';

/** How many drop-off reasons a review lists per transition. */
export const REVIEW_TOP_REASONS = 3;

type Transition = DropoffResponse['transitions'][number];

const periodOf = (d: DropoffResponse): ReviewPeriod => ({
  from: d.from,
  to: d.to,
  entered: d.entered,
  completed: d.completed,
  value_completed: d.value_completed,
  value_dropped: d.value_dropped,
});

const figuresOf = (t: Transition): ReviewStepFigures => ({
  reached: t.reached,
  continued: t.continued,
  dropped: t.dropped,
  conversion: t.conversion,
  below_target: t.below_target,
  value_dropped: t.value_dropped,
  value_continued: t.value_continued,
  top_reasons: t.reasons.slice(0, REVIEW_TOP_REASONS),
  feedback: t.feedback,
});

const decided = (t: Transition) => t.continued + t.dropped;

/** The conversion's change in 4 decimals; null when either period decided no instance. */
const changeOf = (current: Transition, previous: Transition) =>
  decided(current) === 0 || decided(previous) === 0
    ? null
    : Math.round((current.conversion - previous.conversion) * 10_000) / 10_000;

/** Alerts of the journey that started in [from, to), oldest first. */
async function alertsFired(
  store: Store,
  journeyId: string,
  from: number,
  to: number,
): Promise<ReviewAlert[]> {
  const all = await listAlerts(store, 'all');
  return all
    .filter((a) => {
      const started = Date.parse(a.started_at);
      return a.journey === journeyId && started >= from && started < to;
    })
    .sort(
      (a, b) =>
        Date.parse(a.started_at) - Date.parse(b.started_at) ||
        (a.rule_id < b.rule_id ? -1 : a.rule_id > b.rule_id ? 1 : 0),
    )
    .map((a) => ({
      rule_id: a.rule_id,
      step: a.step,
      condition: a.condition,
      state: a.state,
      started_at: a.started_at,
      resolved_at: a.resolved_at,
      message: a.message,
    }));
}

/**
 * GET /v1/journeys/{id}/review: the period [now - period, now) against the one before it,
 * [now - 2·period, now - period). Each period's figures are the drop-offs API's for its range.
 */
export async function buildReview(
  store: Store,
  journey: Journey,
  options: { periodMs: number; now: number },
): Promise<Review> {
  const { periodMs, now } = options;
  if (!(periodMs > 0)) throw new RangeError(`The review period must be positive: ${periodMs}`);
  const mid = now - periodMs;
  const start = mid - periodMs;
  const current = dropoffReport(journey, mid, now, await queryDropoffs(store, journey, mid, now));
  const previous = dropoffReport(
    journey,
    start,
    mid,
    await queryDropoffs(store, journey, start, mid),
  );
  const alerts = await alertsFired(store, journey.id, mid, now);
  return {
    journey: journey.id,
    name: journey.name,
    currency: current.currency,
    period: formatDuration(periodMs),
    current: periodOf(current),
    previous: periodOf(previous),
    // The same journey over both ranges: the same transitions, in the same order.
    transitions: current.transitions.flatMap((t, k) => {
      const before = previous.transitions[k];
      if (!before) return [];
      return [
        {
          from_step: t.from_step,
          to_step: t.to_step,
          owner: t.owner,
          target_conversion: t.target_conversion,
          current: figuresOf(t),
          previous: figuresOf(before),
          change: changeOf(t, before),
        },
      ];
    }),
    alerts,
  };
}
