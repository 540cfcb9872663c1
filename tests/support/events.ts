import type { Touchpoint } from '@touchstream/contracts';
import { callJson } from './http.js';

let sequence = 0;

/** A valid touchpoint as a client sends it; every call gets a new event id. */
export function makeEvent(overrides: Record<string, unknown> = {}) {
  sequence += 1;
  return {
    event_id: `evt-${process.pid}-${Date.now().toString(36)}-${sequence}`,
    customer_id: `customer-${sequence % 50}`,
    type: 'product_viewed',
    channel: 'web',
    timestamp: '2026-10-01T12:00:00.000Z',
    properties: { plan: 'pro', amount: 42.5 },
    ...overrides,
  };
}

/** The same event as the bus carries it. */
export function asTouchpoint(event: ReturnType<typeof makeEvent>): Touchpoint {
  return { ...event, timestamp: Date.parse(String(event.timestamp)) } as Touchpoint;
}

/** POST /v1/events with these events: the answer's status and parsed body. */
export const postEvents = (
  baseUrl: string,
  events: unknown[],
  headers: Record<string, string> = {},
) => callJson(baseUrl, 'POST', '/v1/events', { events }, headers);

/** Posts each batch in turn; each must be answered 202. */
export async function postAll(
  baseUrl: string,
  batches: readonly unknown[][],
  headers: Record<string, string> = {},
) {
  for (const batch of batches) {
    const { status, body } = await postEvents(baseUrl, batch, headers);
    if (status !== 202)
      throw new Error(`POST /v1/events answered ${status}: ${JSON.stringify(body)}`);
  }
}
