import { z } from 'zod';

/** What dropped customers did next: customers who sent this type on this channel. */
export const afterDropEntry = z.object({
  type: z.string(),
  channel: z.string(),
  customers: z.number().int(),
  /** Of the customers of the dropped instances. */
  share: z.number(),
});

export const correlationKind = z.enum(['event_type', 'property', 'channel']);
export type CorrelationKind = z.infer<typeof correlationKind>;

/** An event type, property value or channel, and how it splits the dropped from the continued. */
export const correlation = z.object({
  kind: correlationKind,
  /** `type`, `channel`, or the property's name. */
  name: z.string(),
  /** The event type, channel or property value, as text. */
  value: z.string(),
  dropped: z.number().int(),
  continued: z.number().int(),
  odds_ratio: z.number(),
});
export type Correlation = z.infer<typeof correlation>;

/** GET /v1/journeys/{id}/dropoffs/{from_step}/insights (API.md, "Why they drop"). */
export const insightsResponse = z.object({
  journey: z.string(),
  from: z.string(),
  to: z.string(),
  from_step: z.string(),
  to_step: z.string(),
  /** Instances that reached `from_step` in the range and dropped there. */
  dropped: z.number().int(),
  /** Instances that reached `from_step` in the range and went on to `to_step`. */
  continued: z.number().int(),
  /** The customers of the dropped instances: what `after_drop` shares divide by. */
  dropped_customers: z.number().int(),
  after_drop: z.array(afterDropEntry),
  returned: z.object({ customers: z.number().int(), completed: z.number().int() }),
  correlations: z.array(correlation),
});
export type InsightsResponse = z.infer<typeof insightsResponse>;

/** Fewer instances than this with an item, dropped and continued together: no correlation. */
export const CORRELATION_MIN_INSTANCES = 10;
/** The strongest correlations listed. */
export const CORRELATION_LIMIT = 20;
/** The most frequent next events listed. */
export const AFTER_DROP_LIMIT = 50;

/**
 * The odds of dropping with an item over the odds without it, with 0.5 added to every cell
 * (Haldane-Anscombe) so an empty cell gives a finite ratio: a = dropped with it, b = dropped
 * without, c = continued with it, d = continued without.
 */
export function oddsRatio(a: number, b: number, c: number, d: number): number {
  return ((a + 0.5) * (d + 0.5)) / ((b + 0.5) * (c + 0.5));
}

/** Odds ratios span orders of magnitude: rounded to 4 significant digits, not decimals. */
export function roundOddsRatio(ratio: number): number {
  return Number(ratio.toPrecision(4));
}
