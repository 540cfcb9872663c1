import { PartitionEngine } from './partition-engine.js';
import type { CustomerState, EngineEvent, EngineJourney, Fact } from './types.js';

/** A customer's history re-derived: every fact it holds, and what the engine must remember. */
export interface Recomputed {
  facts: Fact[];
  /** Undefined when nothing is in progress and no event was relevant. */
  state: CustomerState | undefined;
}

/**
 * The journey rules applied to one customer's distinct events, in event-time order (ties:
 * the order given), up to `eventTime` (API.md, rule 7). It runs the same engine as the
 * fast path, so a corrected customer and a customer whose events arrived in order can
 * never be counted by two readings of the rules.
 *
 * `events` must be one customer's, sorted, without repeated ids, none later than
 * `eventTime`.
 */
export function recomputeCustomer(
  journeys: readonly EngineJourney[],
  events: readonly EngineEvent[],
  eventTime: number,
): Recomputed {
  // No lateness (the events are sorted) and no forgetting (the history is all there is).
  const engine = new PartitionEngine(journeys, {
    allowedLatenessMs: 0,
    customerRetentionMs: Number.POSITIVE_INFINITY,
  });
  const facts = engine.apply(events);
  facts.push(...engine.advanceTo(eventTime));
  const [state] = engine.takeChanges().upserts;
  return { facts, state };
}
