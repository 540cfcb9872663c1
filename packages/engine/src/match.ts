import type { StepMatcher } from '@touchstream/contracts';
import type { EngineEvent } from './types.js';

/** Type, then channel, then every `where` property by strict equality. */
export function matches(step: StepMatcher, event: EngineEvent): boolean {
  if (step.event_type !== event.type) return false;
  if (step.channel !== undefined && step.channel !== event.channel) return false;
  if (step.where) {
    for (const [name, value] of Object.entries(step.where)) {
      const actual = event.properties?.[name];
      if (actual === undefined || actual !== value) return false;
    }
  }
  return true;
}
