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
