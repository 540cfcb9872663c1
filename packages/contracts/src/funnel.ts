import { z } from 'zod';
import { positiveDurationText, withinAYear } from './duration.js';
import { isoTimeInRange, propertyName, queryNumber, queryValue, text } from './event.js';
import { journeyId, stepMatcher } from './journey.js';

// Unknown fields are refused, as in ingest: a misspelt `filter` must not quietly give an
// unfiltered funnel.
export const funnelStep = z.strictObject({
  ...stepMatcher.shape,
  name: text(1, 64).optional(),
});

const scalar = z.union([text(0, 1024), queryNumber, z.boolean()]);

export const funnelFilter = z.discriminatedUnion('op', [
  z.strictObject({ property: propertyName, op: z.enum(['eq', 'neq']), value: queryValue }),
  z.strictObject({
    property: propertyName,
    op: z.literal('in'),
    value: z.array(scalar).min(1).max(100),
  }),
  z.strictObject({
    property: propertyName,
    op: z.literal('contains'),
    value: text(1, 1024),
  }),
  z.strictObject({ property: propertyName, op: z.enum(['gt', 'lt']), value: queryNumber }),
]);
export type FunnelFilter = z.infer<typeof funnelFilter>;

export const funnelQuery = z
  .strictObject({
    steps: z.array(funnelStep).min(2).max(20).optional(),
    journey: journeyId.optional(),
    from: isoTimeInRange.optional(),
    to: isoTimeInRange.optional(),
    window: withinAYear(positiveDurationText).optional(),
    breakdown: z.union([z.literal('channel'), z.string().regex(/^property:.{1,64}$/)]).optional(),
    filters: z.array(funnelFilter).max(20).optional(),
  })
  .refine((q) => (q.steps === undefined) !== (q.journey === undefined), {
    message: 'give either steps or journey',
    path: ['steps'],
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from < q.to, {
    message: 'from must be before to',
    path: ['from'],
  });
export type FunnelQuery = z.output<typeof funnelQuery>;

export const funnelStepResult = z.object({
  name: z.string(),
  customers: z.number().int(),
  conversion_from_start: z.number(),
  conversion_from_previous: z.number(),
  dropped_from_previous: z.number().int(),
  median_seconds_from_previous: z.number().nullable(),
});

export const funnelResponse = z.object({
  steps: z.array(funnelStepResult),
  breakdown: z.array(z.object({ value: z.string(), steps: z.array(funnelStepResult) })).optional(),
});
export type FunnelResponse = z.infer<typeof funnelResponse>;
