import { z } from 'zod';

/** Feedback responses within `step_timeout` after an instance dropped or completed. */
export const feedbackSummary = z.object({
  responses: z.number().int(),
  /** Rounded to 2 decimals; null without responses. */
  mean_score: z.number().nullable(),
});
export type FeedbackSummary = z.infer<typeof feedbackSummary>;

export const transitionDropoff = z.object({
  from_step: z.string(),
  to_step: z.string(),
  reached: z.number().int(),
  continued: z.number().int(),
  dropped: z.number().int(),
  in_progress: z.number().int(),
  drop_rate: z.number(),
  median_seconds_to_continue: z.number().nullable(),
  /** The owner of `to_step`: who answers for the conversion into it. */
  owner: z.string().nullable(),
  /** `to_step`'s target: the conversion into it its owner is measured by. */
  target_conversion: z.number().nullable(),
  /** continued / (continued + dropped). */
  conversion: z.number(),
  /** conversion < target_conversion, with at least BELOW_TARGET_MIN_RESOLVED decided. */
  below_target: z.boolean(),
  /** The value at stake (the journey's `value_property`) of the instances that dropped here; null without one. */
  value_dropped: z.number().nullable(),
  /** The value of the instances that continued, as of reaching `to_step`; null without a value property. */
  value_continued: z.number().nullable(),
  /** Ratings (feedback events' `score`) after the instance ended, of droppers vs continuers. */
  feedback: z.object({ dropped: feedbackSummary, continued: feedbackSummary }),
  reasons: z.array(z.object({ reason: z.string(), dropped: z.number().int() })),
  by_channel: z.array(
    z.object({
      channel: z.string(),
      reached: z.number().int(),
      continued: z.number().int(),
      dropped: z.number().int(),
    }),
  ),
  handoffs: z.array(
    z.object({ from_channel: z.string(), to_channel: z.string(), continued: z.number().int() }),
  ),
});

/** Fewer decided instances than this say too little to call a step below its target. */
export const BELOW_TARGET_MIN_RESOLVED = 20;

export const dropoffResponse = z.object({
  journey: z.string(),
  from: z.string(),
  to: z.string(),
  entered: z.number().int(),
  completed: z.number().int(),
  /** Touchstream's own: of the entered, instances of customers with stitched events. */
  stitched: z.number().int(),
  /** The journey's `currency`, null without one: the unit of every value below. */
  currency: z.string().nullable(),
  /** The value of the instances that completed; null without a value property. */
  value_completed: z.number().nullable(),
  /** The value lost at points of disconnection: the transitions' value_dropped summed. */
  value_dropped: z.number().nullable(),
  transitions: z.array(transitionDropoff),
});
export type DropoffResponse = z.infer<typeof dropoffResponse>;
