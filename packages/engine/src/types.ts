import type { JourneyStep, Touchpoint } from '@touchstream/contracts';

/** A journey as the engine runs it: definitions parsed, durations in milliseconds. */
export interface EngineJourney {
  id: string;
  /** Changes whenever the definition changes; instances of another version are discarded. */
  version: string;
  /** With their owners and targets, which the figures report and the engine ignores. */
  steps: readonly JourneyStep[];
  stepTimeoutMs: number;
  failureEventTypes: ReadonlySet<string>;
  /** The numeric property whose latest value in an instance is the money at stake. */
  valueProperty?: string;
}

/** One run of one customer through one journey, while it is in progress. */
export interface InstanceState {
  /** The entry event's id: the same entry always makes the same instance. */
  instance: string;
  version: string;
  /** Index of the last step reached. */
  step: number;
  /** Event time at which that step was reached (epoch ms). */
  stepTime: number;
  channel: string;
  /** Type of the last failure event after reaching `step`. */
  failure?: string;
  /** The latest value of the journey's value property among the instance's step events. */
  value?: number;
}

export interface CustomerState {
  customer: string;
  /** In-progress instances by journey id. */
  instances: Record<string, InstanceState>;
  /** Ids of the customer's latest events: a retried event must not count twice. */
  recent: string[];
  /** Event time of the customer's newest event. */
  lastEventTime: number;
  /** The latest deadline at which one of the customer's instances dropped off. */
  droppedAt?: number;
}

interface FactBase {
  journey: string;
  customer: string;
  instance: string;
  step: number;
  /** Event time the fact refers to (epoch ms). */
  time: number;
  /** The instance's value as of the fact (see `InstanceState.value`); absent when none. */
  value?: number;
}

/** Reached step `step` (step 0: entered). */
export interface ReachedFact extends FactBase {
  kind: 'reached';
  channel: string;
  /** Channel of the event that reached the previous step; null at step 0. */
  previousChannel: string | null;
  secondsFromPrevious: number | null;
}

/** Reached the last step. */
export interface CompletedFact extends FactBase {
  kind: 'completed';
}

/** Stopped at `step`: the deadline passed (`time` is the deadline) without step + 1. */
export interface DroppedFact extends FactBase {
  kind: 'dropped';
  reason: string;
}

export type Fact = ReachedFact | CompletedFact | DroppedFact;

export type EngineEvent = Pick<
  Touchpoint,
  'event_id' | 'customer_id' | 'type' | 'channel' | 'timestamp' | 'properties'
>;
