import { z } from 'zod';
import { durationText, positiveDurationText, withinAYear } from './duration.js';
import type { ErrorDetail } from './errors.js';
import { type Journey, journeyId } from './journey.js';
import { webhookUrl } from './webhook-url.js';

export const alertRuleId = journeyId;

export const alertCondition = z.enum(['no_events', 'conversion_drop', 'below_target']);
export type AlertCondition = z.infer<typeof alertCondition>;

// Defaults follow the contract's example rule: a 5-minute window judged against a week.
export const alertRuleBody = z.strictObject({
  journey: journeyId,
  step: z.string().min(1).max(64),
  condition: alertCondition,
  window: withinAYear(positiveDurationText).default('5m'),
  min_entries: z.number().int().min(0).default(20),
  drop: z.number().gt(0).max(1).default(0.5),
  baseline_window: withinAYear(positiveDurationText).default('7d'),
  for: withinAYear(durationText).default('0s'),
  webhook_url: webhookUrl.optional(),
});
export type AlertRuleBody = z.infer<typeof alertRuleBody>;
export type AlertRule = AlertRuleBody & { id: string };

export const alertRule = z.strictObject({ id: alertRuleId, ...alertRuleBody.shape });

/**
 * What is wrong with a rule given the journey it names (undefined: no such journey). A
 * rule watches the transition into its step, so the step must exist and not be the entry.
 */
export function alertRuleProblems(
  rule: AlertRuleBody,
  journey: Journey | undefined,
): ErrorDetail[] {
  if (!journey) return [{ path: 'journey', message: `there is no journey "${rule.journey}"` }];
  const index = journey.steps.findIndex((s) => s.name === rule.step);
  if (index < 0) {
    const names = journey.steps.map((s) => s.name).join(', ');
    return [
      { path: 'step', message: `journey "${journey.id}" has no step "${rule.step}" (${names})` },
    ];
  }
  if (index === 0) {
    return [
      {
        path: 'step',
        message: `"${rule.step}" is the entry step of "${journey.id}": a rule watches the transition into a later step`,
      },
    ];
  }
  if (rule.condition === 'below_target' && journey.steps[index]?.target_conversion === undefined) {
    return [
      {
        path: 'condition',
        message: `step "${rule.step}" of "${journey.id}" has no target_conversion to be below`,
      },
    ];
  }
  return [];
}

export const alertState = z.enum(['firing', 'resolved']);
export type AlertState = z.infer<typeof alertState>;

export const alert = z.object({
  rule_id: z.string(),
  journey: z.string(),
  step: z.string(),
  condition: alertCondition,
  state: alertState,
  value: z.number().nullable(),
  baseline: z.number().nullable(),
  started_at: z.string(),
  resolved_at: z.string().nullable(),
  message: z.string(),
});
export type Alert = z.infer<typeof alert>;

/** `?state=`: which alerts to list; all of them unless asked. */
export const alertsQuery = z.object({
  state: z.enum(['firing', 'resolved', 'all']).default('all'),
});
