import { createHash } from 'node:crypto';
import { type Journey, parseDuration } from '@touchstream/contracts';
import type { EngineJourney } from './types.js';

/** The engine's form of a journey; its version is a digest of the definition. */
export function toEngineJourney(journey: Journey): EngineJourney {
  // What decides facts, and only that: a new owner or target must not start the journey
  // over. Stripped, not rebuilt, so the versions of journeys without them stay the same.
  const definition = JSON.stringify([
    journey.steps.map(({ owner: _owner, target_conversion: _target, ...matcher }) => matcher),
    journey.step_timeout,
    journey.failure_event_types,
  ]);
  return {
    id: journey.id,
    version: createHash('sha256').update(definition).digest('hex').slice(0, 16),
    steps: journey.steps,
    stepTimeoutMs: parseDuration(journey.step_timeout) ?? 0,
    failureEventTypes: new Set(journey.failure_event_types),
    // Not part of the version: it changes what facts carry, not which facts there are.
    ...(journey.value_property === undefined ? {} : { valueProperty: journey.value_property }),
  };
}
