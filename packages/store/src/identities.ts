import type { ClickHouseClient } from '@clickhouse/client';
import { toClickHouseTime } from './events.js';
import { inSlices } from './slices.js';

/** An event that carried both ids: it links its anonymous id to its customer. */
export interface Link {
  anonymous_id: string;
  customer_id: string;
  /** The linking event's time, in epoch milliseconds. */
  linked_at: number;
  event_id: string;
}

/** The link that stands among an anonymous id's links: the first in event time (API.md). */
export function standingLink(links: readonly Link[]): Link | undefined {
  let first: Link | undefined;
  for (const link of links) {
    if (
      !first ||
      link.linked_at < first.linked_at ||
      (link.linked_at === first.linked_at && link.event_id < first.event_id)
    ) {
      first = link;
    }
  }
  return first;
}

export async function insertLinks(client: ClickHouseClient, links: readonly Link[]) {
  if (links.length === 0) return;
  await client.insert({
    table: 'identity_links',
    values: links.map((l) => ({ ...l, linked_at: toClickHouseTime(l.linked_at) })),
    format: 'JSONEachRow',
  });
}

/** Every link stored for these anonymous ids. */
export async function readLinks(
  client: ClickHouseClient,
  anonymousIds: readonly string[],
): Promise<Link[]> {
  return inSlices(anonymousIds, async (slice) => {
    const rows = await (
      await client.query({
        query: `SELECT DISTINCT anonymous_id, customer_id,
                       toUnixTimestamp64Milli(linked_at) AS at, event_id
                FROM identity_links WHERE anonymous_id IN {ids:Array(String)}`,
        query_params: { ids: slice },
        format: 'JSONEachRow',
      })
    ).json<{ anonymous_id: string; customer_id: string; at: string; event_id: string }>();
    return rows.map((r) => ({
      anonymous_id: r.anonymous_id,
      customer_id: r.customer_id,
      linked_at: Number(r.at),
      event_id: r.event_id,
    }));
  });
}

/**
 * Files the events of an anonymous id under the customer its link names: those that
 * carried no customer id, stored under the anonymous id itself or, after a link that
 * moved, under the customer it named before. Returns the customers whose events moved,
 * on both sides. Copies first, then deletes (a lightweight delete, which hides the rows at once):
 * a crash between the two leaves a copy that the next run of the same move deletes.
 */
export async function fileUnderCustomers(
  client: ClickHouseClient,
  moves: ReadonlyArray<{ anonymous_id: string; customer_id: string }>,
): Promise<{ from: string[]; to: string[] }> {
  const none = { from: [], to: [] };
  if (moves.length === 0) return none;
  const params = {
    anonymous: moves.map((m) => m.anonymous_id),
    customers: moves.map((m) => m.customer_id),
  };
  const misfiled = `anonymous_id IN {anonymous:Array(String)}
    AND (customer_id = anonymous_id OR stitched = 1)
    AND customer_id != transform(anonymous_id, {anonymous:Array(String)}, {customers:Array(String)}, '')`;
  const found = await (
    await client.query({
      query: `SELECT DISTINCT customer_id, anonymous_id FROM events WHERE ${misfiled}`,
      query_params: params,
      format: 'JSONEachRow',
    })
  ).json<{ customer_id: string; anonymous_id: string }>();
  if (found.length === 0) return none;
  await client.command({
    query: `INSERT INTO events (event_id, customer_id, anonymous_id, stitched, type, channel,
                                timestamp, properties, received_at)
            SELECT event_id,
                   transform(anonymous_id, {anonymous:Array(String)}, {customers:Array(String)}, ''),
                   anonymous_id, 1, type, channel, timestamp, properties, received_at
            FROM events WHERE ${misfiled}`,
    query_params: params,
  });
  // A mutation, not a patch part as erasure deletes are: a funnel read just after applies
  // the patches and cost 1.37x, against 1.12x with the mutation's mask (BENCHMARKS,
  // "Funnels over stitched identities"), though stitching ran 3x faster with patches.
  await client.command({ query: `DELETE FROM events WHERE ${misfiled}`, query_params: params });
  const target = new Map(moves.map((m) => [m.anonymous_id, m.customer_id]));
  return {
    from: [...new Set(found.map((r) => r.customer_id))],
    to: [...new Set(found.map((r) => target.get(r.anonymous_id) as string))],
  };
}

/** The anonymous ids whose standing link (first in event time) names the customer, sorted. */
export async function standingAnonymousIds(
  client: ClickHouseClient,
  customerId: string,
): Promise<string[]> {
  const rows = await (
    await client.query({
      query: `SELECT anonymous_id FROM identity_links
              WHERE anonymous_id IN (SELECT anonymous_id FROM identity_links
                                     WHERE customer_id = {customer:String})
              GROUP BY anonymous_id
              HAVING argMin(customer_id, (linked_at, event_id)) = {customer:String}`,
      query_params: { customer: customerId },
      format: 'JSONEachRow',
    })
  ).json<{ anonymous_id: string }>();
  return [...new Set(rows.map((r) => r.anonymous_id))].sort();
}

export interface CustomerSummary {
  customer_id: string;
  anonymous_ids: string[];
  first_seen: string;
  last_seen: string;
  events: number;
}

/**
 * A resolved customer: the distinct events filed under it (its own and those of its linked
 * anonymous ids) and the anonymous ids whose link to it stands. Null when it has none.
 */
export async function readCustomer(
  client: ClickHouseClient,
  customerId: string,
): Promise<CustomerSummary | null> {
  const [summary] = await (
    await client.query({
      query: `SELECT uniqExact(event_id) AS events,
                     toUnixTimestamp64Milli(min(timestamp)) AS first_seen,
                     toUnixTimestamp64Milli(max(timestamp)) AS last_seen
              FROM events WHERE customer_id = {customer:String}`,
      query_params: { customer: customerId },
      format: 'JSONEachRow',
    })
  ).json<{ events: string; first_seen: string; last_seen: string }>();
  if (!summary || Number(summary.events) === 0) return null;
  return {
    customer_id: customerId,
    anonymous_ids: await standingAnonymousIds(client, customerId),
    first_seen: new Date(Number(summary.first_seen)).toISOString(),
    last_seen: new Date(Number(summary.last_seen)).toISOString(),
    events: Number(summary.events),
  };
}
