import { z } from 'zod';
import { positiveDurationText, withinAYear } from './duration.js';
import { isoTimeInRange, propertyName, queryNumber, queryValue, text } from './event.js';
import { journeyId, stepMatcher } from './journey.js';

// Unknown fields are refused, as in ingest: a misspelt `filter` must not quietly give an
// unfiltered funnel.
export const funnelStep = z.strictObject({
  ...stepMatcher.shape,
  name: text(1, 64).optional(),
  optional: z.boolean().optional(),
});

/** Exclusions are bits of a mask in the query: a few are plenty for a funnel. */
export const MAX_FUNNEL_EXCLUSIONS = 10;
export const MAX_HOLD_CONSTANT = 3;

/** An event that voids an entry when it falls between two steps of its chain. */
export const funnelExclusion = z.strictObject({
  ...stepMatcher.shape,
  after_step: z.number().int().min(0).max(19),
  before_step: z.number().int().min(1).max(19),
});
export type FunnelExclusion = z.infer<typeof funnelExclusion>;

export const breakdownAttribution = z.union([
  z.enum(['first_touch', 'last_touch']),
  z.string().regex(/^step:(0|[1-9][0-9]?)$/, 'must be first_touch, last_touch or step:<k>'),
]);

/**
 * Rules that need the number of steps, which a `journey` query only knows once the journey
 * is read: checked by the schema when `steps` are given, and by the route otherwise.
 */
export function funnelOptionIssues(
  query: Pick<FunnelQuery, 'exclusions' | 'breakdown_attribution' | 'breakdown'> & {
    steps?: { optional?: boolean | undefined }[] | undefined;
  },
  stepCount: number,
): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const last = stepCount - 1;
  (query.steps ?? []).forEach((step, k) => {
    if (step.optional && (k === 0 || k === last)) {
      issues.push({
        path: ['steps', k, 'optional'],
        message: 'the first and last steps cannot be optional',
      });
    }
  });
  (query.exclusions ?? []).forEach((exclusion, i) => {
    if (exclusion.before_step > last) {
      issues.push({
        path: ['exclusions', i, 'before_step'],
        message: `must be a step of the funnel (0 to ${last})`,
      });
    } else if (exclusion.after_step >= exclusion.before_step) {
      issues.push({ path: ['exclusions', i, 'after_step'], message: 'must be before before_step' });
    }
  });
  const attribution = query.breakdown_attribution;
  if (attribution !== undefined && query.breakdown === undefined) {
    issues.push({ path: ['breakdown_attribution'], message: 'needs a breakdown' });
  } else if (attribution?.startsWith('step:') && Number(attribution.slice(5)) > last) {
    issues.push({
      path: ['breakdown_attribution'],
      message: `must name a step of the funnel (step:0 to step:${last})`,
    });
  }
  return issues;
}

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
    order: z.enum(['strict', 'any']).optional(),
    exclusions: z.array(funnelExclusion).max(MAX_FUNNEL_EXCLUSIONS).optional(),
    hold_constant: z
      .array(propertyName)
      .max(MAX_HOLD_CONSTANT)
      .refine((names) => new Set(names).size === names.length, 'properties must be distinct')
      .optional(),
    breakdown_attribution: breakdownAttribution.optional(),
  })
  .refine((q) => (q.steps === undefined) !== (q.journey === undefined), {
    message: 'give either steps or journey',
    path: ['steps'],
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from < q.to, {
    message: 'from must be before to',
    path: ['from'],
  })
  .superRefine((q, ctx) => {
    if (q.steps === undefined) return;
    for (const issue of funnelOptionIssues(q, q.steps.length)) {
      ctx.addIssue({ code: 'custom', ...issue });
    }
  });
export type FunnelQuery = z.output<typeof funnelQuery>;

export const funnelStepResult = z.object({
  name: z.string(),
  customers: z.number().int(),
  conversion_from_start: z.number(),
  conversion_from_previous: z.number(),
  dropped_from_previous: z.number().int(),
  median_seconds_from_previous: z.number().nullable(),
  /** Present (true) on optional steps only. */
  optional: z.literal(true).optional(),
  time_to_convert: z
    .object({
      p25: z.number().nullable(),
      p50: z.number().nullable(),
      p75: z.number().nullable(),
      p90: z.number().nullable(),
      /** Customers per bucket: more than the previous bound, at most `le_seconds`. */
      histogram: z.array(z.object({ le_seconds: z.number(), customers: z.number().int() })),
    })
    .nullable(),
});

export const funnelResponse = z.object({
  steps: z.array(funnelStepResult),
  /** `value` is null for customers who did not reach the step a `step:<k>` attribution names. */
  breakdown: z
    .array(z.object({ value: z.string().nullable(), steps: z.array(funnelStepResult) }))
    .optional(),
});
export type FunnelResponse = z.infer<typeof funnelResponse>;
