import { toClickHouseTime } from './events.js';

/** A fact as the engine emits it (see @touchstream/engine), in storable form. */
export interface FactRow {
  journey: string;
  instance: string;
  customer_id: string;
  kind: 'reached' | 'completed' | 'dropped';
  step: number;
  time: string;
  channel: string;
  previous_channel: string;
  seconds_from_previous: number | null;
  reason: string;
}

export function factRow(fact: {
  kind: FactRow['kind'];
  journey: string;
  instance: string;
  customer: string;
  step: number;
  time: number;
  channel?: string;
  previousChannel?: string | null;
  secondsFromPrevious?: number | null;
  reason?: string;
}): FactRow {
  return {
    journey: fact.journey,
    instance: fact.instance,
    customer_id: fact.customer,
    kind: fact.kind,
    step: fact.step,
    time: toClickHouseTime(fact.time),
    channel: fact.channel ?? '',
    previous_channel: fact.previousChannel ?? '',
    seconds_from_previous: fact.secondsFromPrevious ?? null,
    reason: fact.reason ?? '',
  };
}
