import { eventTimeProblem, type ReceivingClock } from './clock.js';
import { type Touchpoint, touchpointInput } from './event.js';

/**
 * The touchpoints topic carries one validated event per record as JSON, keyed by
 * customer_id, with the timestamp in epoch milliseconds.
 */
export function encodeTouchpoint(event: Touchpoint): { key: string; value: string } {
  return { key: event.customer_id, value: JSON.stringify(event) };
}

export type Decoded = { ok: true; event: Touchpoint } | { ok: false; reason: string };

/**
 * Decodes a record; anything else on the topic is named, for the dead-letter queue. A record
 * written by a producer service directly is held to the collector's rules, so an event time
 * too far ahead of the clock is refused here too.
 */
export function decodeTouchpoint(value: Buffer, clock: ReceivingClock): Decoded {
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    return { ok: false, reason: 'not_json' };
  }
  const parsed = touchpointInput.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `invalid_event: ${issue?.path.join('.')} ${issue?.message}` };
  }
  return admitTouchpoint(parsed.data, clock);
}

/**
 * A valid event judged by the receiving clock: the one rule a validated event can still
 * break, since "too far ahead" depends on when and where it is received.
 */
export function admitTouchpoint(event: Touchpoint, clock: ReceivingClock): Decoded {
  const problem = eventTimeProblem(event.timestamp, clock);
  if (problem) return { ok: false, reason: `future_timestamp: timestamp ${problem}` };
  return { ok: true, event };
}
