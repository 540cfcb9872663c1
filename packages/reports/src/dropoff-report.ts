import {
  BELOW_TARGET_MIN_RESOLVED,
  type DropoffResponse,
  type FeedbackSummary,
  type Journey,
} from '@touchstream/contracts';
import type { DropoffCounts, Ratings } from '@touchstream/store';

/** Rates are fractions rounded to 4 decimals; 0 when there is nothing to divide by. */
export const rate = (part: number, whole: number) =>
  whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 10_000;

/** Money rounded to cents: sums of floating-point values carry noise beyond them. */
const money = (value: number | null) => (value === null ? null : Math.round(value * 100) / 100);

const feedbackSummary = (r: Ratings): FeedbackSummary => ({
  responses: r.responses,
  mean_score: r.responses === 0 ? null : Math.round((r.scoreSum / r.responses) * 100) / 100,
});

/** Largest count first; ties by name, so equal counts always list in the same order. */
const byCount =
  <T>(count: (t: T) => number, name: (t: T) => string) =>
  (a: T, b: T) =>
    count(b) - count(a) || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);

/** GET /v1/journeys/{id}/dropoffs as the API states it: named steps, rates, lists in order. */
export function dropoffReport(
  journey: Journey,
  from: number,
  to: number,
  counts: DropoffCounts,
): DropoffResponse {
  return {
    journey: journey.id,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    entered: counts.entered,
    completed: counts.completed,
    stitched: counts.stitched,
    currency: journey.currency ?? null,
    value_completed: money(counts.valueCompleted),
    value_dropped:
      counts.valueCompleted === null
        ? null
        : money(counts.transitions.reduce((sum, t) => sum + (t.valueDropped ?? 0), 0)),
    transitions: counts.transitions.map((t, k) => {
      const next = journey.steps[k + 1];
      const target = next?.target_conversion ?? null;
      const decided = t.continued + t.dropped;
      // Judged on the conversion as shown: 0.4 against a target of 0.4 is not below it.
      const conversion = rate(t.continued, decided);
      return {
        from_step: journey.steps[k]?.name ?? '',
        to_step: next?.name ?? '',
        reached: t.reached,
        continued: t.continued,
        dropped: t.dropped,
        in_progress: t.reached - t.continued - t.dropped,
        drop_rate: rate(t.dropped, decided),
        median_seconds_to_continue: t.medianSeconds,
        owner: next?.owner ?? null,
        target_conversion: target,
        conversion,
        below_target:
          target !== null && decided >= BELOW_TARGET_MIN_RESOLVED && conversion < target,
        value_dropped: money(t.valueDropped),
        value_continued: money(t.valueContinued),
        feedback: {
          dropped: feedbackSummary(t.feedback.dropped),
          continued: feedbackSummary(t.feedback.continued),
        },
        reasons: [...t.reasons].sort(
          byCount(
            (r) => r.dropped,
            (r) => r.reason,
          ),
        ),
        by_channel: [...t.byChannel].sort(
          byCount(
            (c) => c.reached,
            (c) => c.channel,
          ),
        ),
        handoffs: t.handoffs
          .map((h) => ({
            from_channel: h.fromChannel,
            to_channel: h.toChannel,
            continued: h.continued,
          }))
          .sort(
            byCount(
              (h) => h.continued,
              (h) => `${h.from_channel}\u0000${h.to_channel}`,
            ),
          ),
      };
    }),
  };
}
