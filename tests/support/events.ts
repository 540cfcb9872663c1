import type { Touchpoint } from '@touchstream/contracts';

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

export async function postEvents(
  baseUrl: string,
  events: unknown[],
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${baseUrl}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ events }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: the tests assert the shape of what comes back.
  const body: any = await response.json();
  return { status: response.status, headers: response.headers, body };
}
