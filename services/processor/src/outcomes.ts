import type { BusRecord, OutgoingRecord } from '@touchstream/bus';
import {
  admitTouchpoint,
  DLQ_HEADERS,
  decodeTouchpoint,
  IDENTITY_HEADERS,
  type IdentityMessage,
  identityMessage,
  type ReceivingClock,
  type Touchpoint,
} from '@touchstream/contracts';

/** What a record of the touchpoints topic becomes; only the processor's shell acts on it. */
export type Outcome =
  | { kind: 'ok'; record: BusRecord; event: Touchpoint }
  | { kind: 'identity'; message: IdentityMessage }
  | { kind: 'dead_letter'; letter: OutgoingRecord };

/** A record the processor cannot use, with where it came from, for the dead-letter topic. */
export function deadLetter(record: BusRecord, reason: string): OutgoingRecord {
  return {
    key: record.key ?? '',
    value: record.value,
    headers: {
      ...record.headers,
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.topic]: record.topic,
      [DLQ_HEADERS.partition]: String(record.partition),
      [DLQ_HEADERS.offset]: record.offset,
    },
  };
}

/**
 * Decodes and validates a record once. A record the collector of this very process
 * published carries the event it validated; only the clock is judged again, by this
 * processor's clock, as for any record.
 */
export function outcomeOf(record: BusRecord, clock: ReceivingClock): Outcome {
  if (record.headers[IDENTITY_HEADERS.control] !== undefined) return identityOutcome(record);
  const validated = record.decoded as Touchpoint | undefined;
  const decoded = validated
    ? admitTouchpoint(validated, clock)
    : decodeTouchpoint(record.value, clock);
  if (!decoded.ok) return { kind: 'dead_letter', letter: deadLetter(record, decoded.reason) };
  return { kind: 'ok', record, event: decoded.event };
}

/** An erase message (API.md, "Erasure and retention"): the batch is cut at it. */
export function isEraseRecord(record: BusRecord): boolean {
  return record.headers[IDENTITY_HEADERS.control] === 'erase';
}

/** A message of the processor to itself (see stitching.ts); anything else under its header is dead. */
function identityOutcome(record: BusRecord): Outcome {
  let json: unknown;
  try {
    json = JSON.parse(record.value.toString('utf8'));
  } catch {
    json = undefined;
  }
  const parsed = identityMessage.safeParse(json);
  if (parsed.success) return { kind: 'identity', message: parsed.data };
  return { kind: 'dead_letter', letter: deadLetter(record, 'invalid_identity_message') };
}
