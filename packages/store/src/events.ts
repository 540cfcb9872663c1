import type { ClickHouseClient } from '@clickhouse/client';
import type { Touchpoint } from '@touchstream/contracts';

/** `2026-10-01 12:00:00.123`: the text form DateTime64(3) parses without extra settings. */
export function toClickHouseTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace('T', ' ').slice(0, 23);
}

export function toEventRow(event: Touchpoint) {
  return {
    event_id: event.event_id,
    customer_id: event.customer_id,
    type: event.type,
    channel: event.channel,
    timestamp: toClickHouseTime(event.timestamp),
    properties: JSON.stringify(event.properties ?? {}),
  };
}

/** Writes events; resolves once ClickHouse acknowledged the whole batch. */
export async function insertEvents(client: ClickHouseClient, events: readonly Touchpoint[]) {
  if (events.length === 0) return;
  await client.insert({ table: 'events', values: events.map(toEventRow), format: 'JSONEachRow' });
}

export interface StoredEvent {
  event_id: string;
  customer_id: string;
  type: string;
  channel: string;
  /** `YYYY-MM-DD hh:mm:ss.sss`, UTC. */
  timestamp: string;
  properties: string;
}

/** Events as stored, deduplicated, newest last. */
export async function readEvents(
  client: ClickHouseClient,
  customerId: string,
): Promise<StoredEvent[]> {
  return (
    await client.query({
      query: `SELECT event_id, customer_id, type, channel, timestamp, properties
              FROM events FINAL WHERE customer_id = {customer:String}
              ORDER BY timestamp, event_id`,
      query_params: { customer: customerId },
      format: 'JSONEachRow',
    })
  ).json<StoredEvent>();
}
