import { z } from 'zod';
import { durationText, positiveDurationText } from './duration.js';
import { journeyId } from './journey.js';

export const alertRuleId = journeyId;

export const alertCondition = z.enum(['no_events', 'conversion_drop']);

// Defaults follow the contract's example rule: a 5-minute window judged against a week.
export const alertRuleBody = z.object({
  journey: journeyId,
  step: z.string().min(1).max(64),
  condition: alertCondition,
  window: positiveDurationText.default('5m'),
  min_entries: z.number().int().min(0).default(20),
  drop: z.number().gt(0).max(1).default(0.5),
  baseline_window: positiveDurationText.default('7d'),
  for: durationText.default('0s'),
  webhook_url: z.url({ protocol: /^https?$/ }).optional(),
});
export type AlertRuleBody = z.infer<typeof alertRuleBody>;
export type AlertRule = AlertRuleBody & { id: string };

export const alertState = z.enum(['firing', 'resolved']);

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
