import type { ClickHouseClient } from '@clickhouse/client';
import {
  AFTER_DROP_LIMIT,
  CORRELATION_LIMIT,
  CORRELATION_MIN_INSTANCES,
  type CorrelationKind,
} from '@touchstream/contracts';
import { toClickHouseTime } from './events.js';

/**
 * The instances that reached step k in [from, to) and were decided there: continued to
 * step k+1 (`ends_at` = its time) or dropped (`ends_at` = the drop-off deadline). One pass
 * over the current facts of steps k and k+1, grouped per instance, where the drop-off query
 * joins; step and kind are sorting-key columns, so filtering them under FINAL never hides a
 * fact's newer version. As in the drop-off query, a step counts as dropped only when it did
 * not continue.
 */
const DECIDED = `
  SELECT instance, customer_id,
         minIf(time, kind = 'reached' AND step = {step:UInt8}) AS reached_at,
         anyIf(channel, kind = 'reached' AND step = {step:UInt8}) AS from_channel,
         countIf(kind = 'reached' AND step = {next:UInt8}) > 0 AS continued,
         if(continued, minIf(time, kind = 'reached' AND step = {next:UInt8}),
            minIf(time, kind = 'dropped' AND step = {step:UInt8})) AS ends_at
  FROM facts FINAL
  WHERE journey = {journey:String} AND step IN ({step:UInt8}, {next:UInt8})
  GROUP BY instance, customer_id
  HAVING countIf(kind = 'reached' AND step = {step:UInt8}) > 0
     AND reached_at >= {from:DateTime64(3, 'UTC')} AND reached_at < {to:DateTime64(3, 'UTC')}
     AND (continued OR countIf(kind = 'dropped' AND step = {step:UInt8}) > 0)`;

/**
 * The customers who reached step k in the range, as any version of a fact says: a superset
 * of the decided instances' customers, cheap enough to narrow the events read (the join
 * with `decided` does the exact work).
 */
const REACHED_CUSTOMERS = `
  SELECT customer_id FROM facts
  WHERE journey = {journey:String} AND kind = 'reached' AND step = {step:UInt8}
    AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}`;

/**
 * The decided instances' customers' distinct events that can fall in a window: after
 * `from`, at most two step timeouts after `to` (the end of the latest after-drop window).
 * An id stored more than once counts once, at its earliest time in that span (API.md,
 * rule 7). The customer is the resolved one: stitched events are stored under it.
 */
const SEEN = `
  SELECT customer_id, event_id, min(timestamp) AS at, argMin(type, timestamp) AS type,
         argMin(channel, timestamp) AS channel, argMin(properties, timestamp) AS properties
  FROM events
  WHERE customer_id IN (${REACHED_CUSTOMERS})
    AND timestamp > {from:DateTime64(3, 'UTC')} AND timestamp <= {span_end:DateTime64(3, 'UTC')}
  GROUP BY customer_id, event_id`;

/**
 * Each event of a decided instance's customer in one of its windows: strictly after the
 * from_step event's time and, for a continued instance, strictly before the next step's;
 * for a dropped one, up to the deadline (the correlation window) and then for one more
 * step timeout (what they did after the drop).
 */
const OBSERVED = `
  SELECT d.instance AS instance, d.customer_id AS customer_id, d.continued AS continued,
         s.at > d.ends_at AS after_drop, s.type AS type, s.channel AS channel,
         s.properties AS properties
  FROM seen AS s INNER JOIN decided AS d ON s.customer_id = d.customer_id
  WHERE s.at > d.reached_at
    AND if(d.continued, s.at < d.ends_at, s.at <= d.ends_at + toIntervalMillisecond({timeout_ms:Int64}))`;

/**
 * A property's value as text, as breakdowns show it: strings as they are, numbers and
 * booleans as their JSON text; null (and anything else) is no value.
 */
const PROPERTY_ITEMS = `
  arrayMap(p -> tuple('corr', 'property', p.1, if(JSONType(p.2) = 'String', JSONExtractString(p.2), p.2)),
           arrayFilter(p -> JSONType(p.2) IN ('String', 'Int64', 'UInt64', 'Double', 'Bool'),
                       JSONExtractKeysAndValuesRaw(properties)))`;

/**
 * What each row says, as (section, kind, name, value) items counted per instance and per
 * customer: `total` per decided instance; `corr` for what the correlations weigh (the
 * instance's channel, each event type and property value in its correlation window);
 * `after` for each (type, channel) after a drop; `returned` / `returned_completed` for a
 * dropped customer's new instance entered within a step timeout after the deadline.
 */
const ITEMS = `
  SELECT instance, customer_id, continued,
         arrayJoin([tuple('total', '', '', ''), tuple('corr', 'channel', 'channel', toString(from_channel))]) AS item
  FROM decided
  UNION ALL
  SELECT instance, customer_id, continued,
         arrayJoin(if(after_drop, [tuple('after', '', toString(type), toString(channel))],
                      arrayPushFront(${PROPERTY_ITEMS}, tuple('corr', 'event_type', 'type', toString(type))))) AS item
  FROM observed
  UNION ALL
  SELECT d.instance, d.customer_id, d.continued,
         arrayJoin(if(r.completed, [tuple('returned', '', '', ''), tuple('returned_completed', '', '', '')],
                      [tuple('returned', '', '', '')])) AS item
  FROM (SELECT instance, customer_id, minIf(time, kind = 'reached') AS entered_at,
               countIf(kind = 'completed') > 0 AS completed
        FROM facts FINAL
        WHERE journey = {journey:String} AND (step = 0 AND kind = 'reached' OR kind = 'completed')
          AND customer_id IN (SELECT customer_id FROM facts
                              WHERE journey = {journey:String} AND kind = 'dropped' AND step = {step:UInt8}
                                AND time >= {from:DateTime64(3, 'UTC')})
        GROUP BY instance, customer_id
        HAVING countIf(kind = 'reached') > 0) AS r
  INNER JOIN (SELECT * FROM decided WHERE NOT continued) AS d ON r.customer_id = d.customer_id
  WHERE r.entered_at > d.ends_at AND r.entered_at <= d.ends_at + toIntervalMillisecond({timeout_ms:Int64})`;

const COUNTED = `
  SELECT item.1 AS section, item.2 AS kind, item.3 AS name, item.4 AS value,
         uniqExactIf(customer_id, NOT continued) AS dropped_customers,
         uniqExactIf((instance, customer_id), NOT continued) AS dropped_instances,
         uniqExactIf((instance, customer_id), continued) AS continued_instances
  FROM (${ITEMS})
  GROUP BY section, kind, name, value`;

/**
 * Per item, the 2x2 table of instances against the totals, with the odds ratio (its 0.5
 * correction in every cell) and the ordering key: |ln odds_ratio| to 9 decimals, so that
 * ratios equal in exact arithmetic (2 and 0.5, say) tie whatever the last bits of a
 * logarithm; then the kind in API order, name, value.
 */
const INSIGHTS = `
  WITH decided AS (${DECIDED}), seen AS (${SEEN}), observed AS (${OBSERVED})
  SELECT section, kind, name, value, dropped_customers, dropped_instances, continued_instances
  FROM (
    SELECT *, max(if(section = 'total', dropped_instances, 0)) OVER () AS all_dropped,
              max(if(section = 'total', continued_instances, 0)) OVER () AS all_continued,
              ((dropped_instances + 0.5) * (all_continued - continued_instances + 0.5))
                / ((all_dropped - dropped_instances + 0.5) * (continued_instances + 0.5)) AS ratio
    FROM (${COUNTED})
  )
  WHERE section != 'corr' OR dropped_instances + continued_instances >= ${CORRELATION_MIN_INSTANCES}
  ORDER BY section,
           if(section = 'corr', round(abs(log(ratio)), 9), toFloat64(dropped_customers)) DESC,
           indexOf(['event_type', 'property', 'channel'], kind), name, value
  LIMIT ${Math.max(AFTER_DROP_LIMIT, CORRELATION_LIMIT)} BY section`;

interface Row {
  section: 'total' | 'corr' | 'after' | 'returned' | 'returned_completed';
  kind: string;
  name: string;
  value: string;
  dropped_customers: string;
  dropped_instances: string;
  continued_instances: string;
}

/** An item and its instances: `dropped` is a, `continued` is c of the odds ratio. */
export interface CorrelationCount {
  kind: CorrelationKind;
  name: string;
  value: string;
  dropped: number;
  continued: number;
}

/** What the insights of one transition counted; lists in the API's order. */
export interface InsightCounts {
  dropped: number;
  continued: number;
  droppedCustomers: number;
  afterDrop: { type: string; channel: string; customers: number }[];
  returned: { customers: number; completed: number };
  /** Strongest first, at most CORRELATION_LIMIT, each seen by enough instances. */
  correlations: CorrelationCount[];
}

/**
 * Why instances drop at step `step` of a journey (API.md, "Why they drop"): one query over
 * the current facts and the stored events. `stepTimeoutMs` is the journey's.
 */
export async function queryInsights(
  client: ClickHouseClient,
  journeyId: string,
  step: number,
  stepTimeoutMs: number,
  from: number,
  to: number,
): Promise<InsightCounts> {
  const rows = await (
    await client.query({
      query: INSIGHTS,
      query_params: {
        journey: journeyId,
        step,
        next: step + 1,
        from: toClickHouseTime(from),
        to: toClickHouseTime(to),
        span_end: toClickHouseTime(to + 2 * stepTimeoutMs),
        timeout_ms: stepTimeoutMs,
      },
      format: 'JSONEachRow',
    })
  ).json<Row>();
  const of = (section: Row['section']) => rows.filter((r) => r.section === section);
  const customers = (section: Row['section']) => Number(of(section)[0]?.dropped_customers ?? 0);
  const total = of('total')[0];
  return {
    dropped: Number(total?.dropped_instances ?? 0),
    continued: Number(total?.continued_instances ?? 0),
    droppedCustomers: Number(total?.dropped_customers ?? 0),
    afterDrop: of('after')
      .slice(0, AFTER_DROP_LIMIT)
      .map((r) => ({ type: r.name, channel: r.value, customers: Number(r.dropped_customers) })),
    returned: { customers: customers('returned'), completed: customers('returned_completed') },
    correlations: of('corr')
      .slice(0, CORRELATION_LIMIT)
      .map((r) => ({
        kind: r.kind as CorrelationKind,
        name: r.name,
        value: r.value,
        dropped: Number(r.dropped_instances),
        continued: Number(r.continued_instances),
      })),
  };
}
