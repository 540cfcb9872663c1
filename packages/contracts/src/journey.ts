import { Cron } from 'croner';
import { z } from 'zod';
import { positiveDurationText } from './duration.js';
import { channelName, eventType, propertyName, text, whereConditions } from './event.js';
import { webhookUrl } from './webhook-url.js';

export const journeyId = z
  .string()
  .regex(/^[a-z0-9_-]{1,64}$/, 'must be 1-64 chars of a-z, 0-9, _ -');

/** A step matches an event by type, and optionally by channel and property equality. */
export const stepMatcher = z.object({
  event_type: eventType,
  channel: channelName.optional(),
  where: whereConditions.optional(),
});
export type StepMatcher = z.infer<typeof stepMatcher>;

/** Unknown fields are refused, not dropped: a misspelt field must not look configured. */
export const journeyStep = z.strictObject({
  ...stepMatcher.shape,
  name: text(1, 64),
  /** Who answers for the step: a team or a person. */
  owner: text(1, 128).optional(),
  /** The conversion from the previous step its owner is measured by. */
  target_conversion: z.number().min(0).max(1).optional(),
});
export type JourneyStep = z.infer<typeof journeyStep>;

/** A five-field cron expression (minute hour day month weekday), in UTC. */
const cronSchedule = z
  .string()
  .max(128)
  .superRefine((pattern, ctx) => {
    if (pattern.trim().split(/\s+/).length !== 5) {
      ctx.addIssue({ code: 'custom', message: 'must be 5 fields: minute hour day month weekday' });
      return;
    }
    try {
      new Cron(pattern, { paused: true, timezone: 'UTC' }).stop();
    } catch (error) {
      ctx.addIssue({
        code: 'custom',
        message: `is not a cron expression: ${(error as Error).message}`,
      });
    }
  });

const journeyFields = {
  name: text(1, 200),
  steps: z.array(journeyStep).min(2).max(20),
  step_timeout: positiveDurationText,
  failure_event_types: z.array(eventType).max(50).default([]),
  /** A numeric property whose latest value in an instance is the money at stake. */
  value_property: propertyName.optional(),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code of 3 capital letters, such as EUR')
    .optional(),
  /** Events whose numeric `score` is a customer's rating (CSAT, NPS). */
  feedback_event_types: z.array(eventType).max(50).optional(),
  /** The journey's review, posted on schedule. */
  review: z.strictObject({ schedule: cronSchedule, webhook_url: webhookUrl }).optional(),
};

const uniqueStepNames = (j: { steps: ReadonlyArray<{ name: string }> }) =>
  new Set(j.steps.map((s) => s.name)).size === j.steps.length;
const uniqueStepNamesIssue = { message: 'step names must be unique', path: ['steps'] };

/** The entry has no conversion into it, so no target. */
function entryTargetIssues(
  j: { steps: ReadonlyArray<{ target_conversion?: number | undefined }> },
  ctx: z.RefinementCtx,
) {
  if (j.steps[0]?.target_conversion !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: 'the first step has no conversion into it, so no target',
      path: ['steps', 0, 'target_conversion'],
    });
  }
}

export const journeyBody = z
  .strictObject(journeyFields)
  .refine(uniqueStepNames, uniqueStepNamesIssue)
  .superRefine(entryTargetIssues);
export type JourneyBody = z.infer<typeof journeyBody>;

/** A journey with its id, as a list in the journeys file has it. */
export const journey = z
  .strictObject({ id: journeyId, ...journeyFields })
  .refine(uniqueStepNames, uniqueStepNamesIssue)
  .superRefine(entryTargetIssues);
export type Journey = JourneyBody & { id: string };
