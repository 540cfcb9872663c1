import { z } from 'zod';

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
  transitions: z.array(transitionDropoff),
});
export type DropoffResponse = z.infer<typeof dropoffResponse>;
