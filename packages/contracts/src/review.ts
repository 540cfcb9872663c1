import { z } from 'zod';
import { alertCondition, alertState } from './alert.js';
import { feedbackSummary } from './dropoff.js';

/** A period of the review: [from, to), with the journey's totals over it. */
export const reviewPeriod = z.object({
  from: z.string(),
  to: z.string(),
  entered: z.number().int(),
  completed: z.number().int(),
  /** The value of the instances that completed; null without a value property. */
  value_completed: z.number().nullable(),
  /** The value lost at points of disconnection: the transitions' value_dropped summed. */
  value_dropped: z.number().nullable(),
});
export type ReviewPeriod = z.infer<typeof reviewPeriod>;

/** One transition's figures over one period: the drop-offs API's for the same range. */
export const reviewStepFigures = z.object({
  reached: z.number().int(),
  continued: z.number().int(),
  dropped: z.number().int(),
  /** continued / (continued + dropped), 4 decimals; 0 with nothing decided. */
  conversion: z.number(),
  below_target: z.boolean(),
  value_dropped: z.number().nullable(),
  value_continued: z.number().nullable(),
  /** The three reasons most dropped for, most first. */
  top_reasons: z.array(z.object({ reason: z.string(), dropped: z.number().int() })),
  feedback: z.object({ dropped: feedbackSummary, continued: feedbackSummary }),
});
export type ReviewStepFigures = z.infer<typeof reviewStepFigures>;

export const reviewTransition = z.object({
  from_step: z.string(),
  to_step: z.string(),
  /** The owner of `to_step`. */
  owner: z.string().nullable(),
  target_conversion: z.number().nullable(),
  current: reviewStepFigures,
  previous: reviewStepFigures,
  /** current.conversion - previous.conversion, 4 decimals; null when either period decided none. */
  change: z.number().nullable(),
});
export type ReviewTransition = z.infer<typeof reviewTransition>;

/** An alert of the journey that fired (started) in the current period, as it stands now. */
export const reviewAlert = z.object({
  rule_id: z.string(),
  step: z.string(),
  condition: alertCondition,
  state: alertState,
  started_at: z.string(),
  resolved_at: z.string().nullable(),
  message: z.string(),
});
export type ReviewAlert = z.infer<typeof reviewAlert>;

/** GET /v1/journeys/{id}/review: a period against the one before it, per transition. */
export const reviewResponse = z.object({
  journey: z.string(),
  name: z.string(),
  /** The journey's `currency`, null without one: the unit of every value. */
  currency: z.string().nullable(),
  /** The period's length as the shortest exact duration text: `7d` (also for `1w`), `24h` → `1d`. */
  period: z.string(),
  /** [now - period, now). */
  current: reviewPeriod,
  /** [now - 2 * period, now - period). */
  previous: reviewPeriod,
  transitions: z.array(reviewTransition),
  /** Oldest first. */
  alerts: z.array(reviewAlert),
});
export type Review = z.infer<typeof reviewResponse>;
