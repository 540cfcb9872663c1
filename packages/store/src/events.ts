import type { ClickHouseClient } from '@clickhouse/client';
import type { Touchpoint } from '@touchstream/contracts';
import { inSlices } from './slices.js';

/** `2026-10-01 12:00:00.123`: the text form DateTime64(3) parses without extra settings. */
export function toClickHouseTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace('T', ' ').slice(0, 23);
}

/**
 * The event's row: under its customer id or, when it carried none, its anonymous id, or
 * the customer `linkedTo` names when that id is linked (stitched).
 */
export function toEventRow(event: Touchpoint, linkedTo?: string) {
  return {
    event_id: event.event_id,
    customer_id: linkedTo ?? event.customer_id,
    anonymous_id: event.anonymous_id ?? '',
    stitched: linkedTo === undefined ? 0 : 1,
    type: event.type,
    channel: event.channel,
    timestamp: toClickHouseTime(event.timestamp),
    properties: JSON.stringify(event.properties ?? {}),
  };
}

/** Writes events; resolves once ClickHouse acknowledged the whole batch. */
export async function insertEvents(client: ClickHouseClient, events: readonly Touchpoint[]) {
  if (events.length === 0) return;
  await client.insert({
    table: 'events',
    values: events.map((e) => toEventRow(e)),
    format: 'JSONEachRow',
  });
}

export interface StoredEvent {
  event_id: string;
  customer_id: string;
  /** '' when the event carried none. */
  anonymous_id: string;
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
      query: `SELECT event_id, customer_id, anonymous_id, type, channel, timestamp, properties
              FROM events FINAL WHERE customer_id = {customer:String}
              ORDER BY timestamp, event_id`,
      query_params: { customer: customerId },
      format: 'JSONEachRow',
    })
  ).json<StoredEvent>();
}

/** A stored event as the journey engine reads it (timestamp in epoch milliseconds). */
export type HistoryEvent = Pick<
  Touchpoint,
  'event_id' | 'customer_id' | 'type' | 'channel' | 'timestamp' | 'properties'
>;

/**
 * The distinct stored events of these customers, of these types, up to `upTo` (epoch ms):
 * each customer's in event-time order, ties in the order they were received, then by id.
 * An id stored more than once counts once, at its earliest time (API.md, rule 7).
 */
export async function readHistories(
  client: ClickHouseClient,
  customers: readonly string[],
  types: readonly string[],
  upTo: number,
): Promise<HistoryEvent[]> {
  if (types.length === 0) return [];
  return inSlices(customers, async (slice) => {
    const rows = await (
      await client.query({
        query: `SELECT customer_id, event_id, argMin(type, timestamp) AS first_type,
                       argMin(channel, timestamp) AS first_channel,
                       toUnixTimestamp64Milli(min(timestamp)) AS at,
                       argMin(properties, timestamp) AS props, min(received_at) AS received
                FROM events
                WHERE customer_id IN {customers:Array(String)} AND type IN {types:Array(String)}
                  AND timestamp <= {up_to:DateTime64(3, 'UTC')}
                GROUP BY customer_id, event_id
                ORDER BY customer_id, at, received, event_id`,
        query_params: { customers: slice, types, up_to: toClickHouseTime(upTo) },
        format: 'JSONEachRow',
      })
    ).json<{
      customer_id: string;
      event_id: string;
      first_type: string;
      first_channel: string;
      at: string;
      props: string;
    }>();
    return rows.map((r) => ({
      event_id: r.event_id,
      customer_id: r.customer_id,
      type: r.first_type,
      channel: r.first_channel,
      timestamp: Number(r.at),
      properties: JSON.parse(r.props) as HistoryEvent['properties'],
    }));
  });
}
