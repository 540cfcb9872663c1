/** One event as the client holds it: serialised once, when it is tracked. */
export interface QueuedEvent {
  eventId: string;
  json: string;
  bytes: number;
}

export interface BatchLimits {
  maxEvents: number;
  maxBytes: number;
}

// `{"sent_at":"2026-12-04T12:00:00.000Z","events":[` + `]}`
const ENVELOPE_BYTES = 50;

/** The request body size of these events. */
export function bodyBytes(events: readonly QueuedEvent[]): number {
  let total = ENVELOPE_BYTES + Math.max(0, events.length - 1);
  for (const e of events) total += e.bytes;
  return total;
}

/** The largest event a request can carry alone. */
export function maxEventBytes(limits: BatchLimits): number {
  return limits.maxBytes - ENVELOPE_BYTES;
}

/**
 * How many events from the head of the queue fit one request: as many as the limits
 * allow, in order (a customer's events leave in the order they were tracked).
 */
export function batchSize(queue: readonly QueuedEvent[], limits: BatchLimits): number {
  let bytes = ENVELOPE_BYTES;
  let n = 0;
  for (const event of queue) {
    if (n >= limits.maxEvents) break;
    const next = bytes + event.bytes + (n > 0 ? 1 : 0);
    if (next > limits.maxBytes) break;
    bytes = next;
    n += 1;
  }
  return n;
}

/**
 * True when `count` queued events of `eventBytes` in all fill at least one request, so
 * waiting for the interval gains nothing. Kept incremental: tracking stays O(1).
 */
export function fillsRequest(count: number, eventBytes: number, limits: BatchLimits): boolean {
  if (count >= limits.maxEvents) return true;
  return ENVELOPE_BYTES + eventBytes + Math.max(0, count - 1) >= limits.maxBytes;
}

/**
 * The request body: the events and the client's clock when it sends them, from which the
 * collector corrects every event time by this machine's clock skew.
 */
export function requestBody(events: readonly QueuedEvent[], sentAt: number): string {
  const sent = new Date(sentAt).toISOString();
  return `{"sent_at":"${sent}","events":[${events.map((e) => e.json).join(',')}]}`;
}
