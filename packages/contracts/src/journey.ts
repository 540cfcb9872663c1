import { z } from 'zod';
import { positiveDurationText } from './duration.js';
import { channelName, eventType, text, whereConditions } from './event.js';

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
export const journeyStep = z.strictObject({ ...stepMatcher.shape, name: text(1, 64) });
export type JourneyStep = z.infer<typeof journeyStep>;

const journeyFields = {
  name: text(1, 200),
  steps: z.array(journeyStep).min(2).max(20),
  step_timeout: positiveDurationText,
  failure_event_types: z.array(eventType).max(50).default([]),
};

const uniqueStepNames = (j: { steps: ReadonlyArray<{ name: string }> }) =>
  new Set(j.steps.map((s) => s.name)).size === j.steps.length;
const uniqueStepNamesIssue = { message: 'step names must be unique', path: ['steps'] };

export const journeyBody = z
  .strictObject(journeyFields)
  .refine(uniqueStepNames, uniqueStepNamesIssue);
export type JourneyBody = z.infer<typeof journeyBody>;

/** A journey with its id, as a list in the journeys file has it. */
export const journey = z
  .strictObject({ id: journeyId, ...journeyFields })
  .refine(uniqueStepNames, uniqueStepNamesIssue);
export type Journey = JourneyBody & { id: string };
