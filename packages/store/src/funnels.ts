import type { ClickHouseClient } from '@clickhouse/client';
import type { FunnelFilter, StepMatcher } from '@touchstream/contracts';
import { queryLimitReason } from './clickhouse-errors.js';
import { toClickHouseTime } from './events.js';
import { funnelChainsSql } from './funnel-chains.js';
import {
  breakdownSql,
  type FunnelBreakdown,
  filterSql,
  Params,
  STEP_BITS,
  stepMaskSql,
} from './funnel-conditions.js';
import { DEFAULT_FUNNEL_LIMITS, type FunnelLimits, funnelSettings } from './funnel-limits.js';
import {
  histogramBounds,
  readTimeToConvert,
  type TimeToConvert,
  timeToConvertColumns,
} from './funnel-time-to-convert.js';
import { NO_PROPERTY_COLUMNS, type PropertyColumns } from './property-columns.js';

export { DEFAULT_FUNNEL_LIMITS, type FunnelLimits } from './funnel-limits.js';

export type FunnelAttribution =
  | { by: 'first_touch' }
  | { by: 'last_touch' }
  | { by: 'step'; step: number };

export interface FunnelSpec {
  /** 2 to 20 steps, each with the name it is reported under. */
  steps: (StepMatcher & { name: string; optional?: boolean })[];
  /** Entries count in [from, to), epoch milliseconds. */
  from: number;
  to: number;
  windowMs: number;
  breakdown?: FunnelBreakdown;
  filters: FunnelFilter[];
  /** The options of API.md's "Funnel options"; absent, a funnel takes the plain path. */
  order?: 'strict' | 'any';
  exclusions?: { matcher: StepMatcher; afterStep: number; beforeStep: number }[];
  holdConstant?: string[];
  attribution?: FunnelAttribution;
}

/** A funnel without options: the plain path, which needs no chain per entry. */
export function isPlainFunnel(spec: FunnelSpec): boolean {
  return (
    spec.order !== 'any' &&
    !spec.steps.some((s) => s.optional) &&
    (spec.exclusions ?? []).length === 0 &&
    (spec.holdConstant ?? []).length === 0 &&
    (spec.attribution ?? { by: 'first_touch' }).by === 'first_touch'
  );
}

/**
 * The funnel as one ClickHouse query.
 *
 * windowFunnel follows one chain per customer and lets a new entry overwrite step 0 while
 * keeping the older chain's later steps, so with repeated entries it can miss a deeper
 * chain (and it gives no step times). The contract asks for the deepest step *any* entry
 * reached, so the chains are computed per customer with array functions, in linear time:
 *
 * f_k[i] is the latest entry from which steps 0..k can be done in order by the customer's
 * i-th event. The latest entry is the best one to continue from (the window counts from
 * the entry), and it only grows along time, so it is a forward fill.
 *
 * "Strictly earlier" needs care with events at the same millisecond. When every step has
 * its own event type, an event matches at most one step, and events of one millisecond are
 * sorted later steps first: the events before a step-k event within its millisecond then
 * match no step k-1, and the fill up to the event itself is the value from strictly
 * earlier. Otherwise a pass per level carries the value from before the millisecond
 * across it.
 *
 * The engine evaluates a lambda over whole arrays, one operation at a time, so the cost is
 * the number of operations per event: three per step level, and (with one step per event)
 * none for the step times, which are found by index.
 *
 * Step times are taken on one chain per customer: the one whose deepest step came first,
 * walking back from it to the latest event of each earlier step (the tightest such chain).
 */
export function funnelSql(
  spec: FunnelSpec,
  limits: FunnelLimits = DEFAULT_FUNNEL_LIMITS,
  stored: PropertyColumns = NO_PROPERTY_COLUMNS,
) {
  const params = new Params();
  const K = spec.steps.length;
  // Times are milliseconds after an origin one window and one millisecond before `from`:
  // 0 can mean "no entry", and no event is within the window of it. 32 bits when the
  // range allows (half the memory for every array pass), else 64.
  const origin = spec.from - spec.windowMs - 1;
  const span = spec.to + spec.windowMs - origin;
  const time = span < 2 ** 32 - 1 ? 'UInt32' : 'UInt64';
  const originMs = params.bind('Int64', origin);
  const toRel = params.bind(time, spec.to - origin);
  const windowMs = params.bind(time, spec.windowMs);
  const from = params.bind("DateTime64(3, 'UTC')", toClickHouseTime(spec.from));
  // The narrowest mask that holds a bit per step.
  const maskType = K <= 8 ? 'toUInt8' : K <= 16 ? 'toUInt16' : 'toUInt32';
  // Entries are before `to`; their later steps at most `window` after them.
  const until = params.bind("DateTime64(3, 'UTC')", toClickHouseTime(spec.to + spec.windowMs));
  const stepTypes = [...new Set(spec.steps.map((s) => s.event_type))];
  const types = params.bind('Array(String)', stepTypes);
  const { sql: mask, onlyTypes } = stepMaskSql(params, spec.steps);
  const filters = spec.filters.map((f) => filterSql(params, f));
  const breakdown = spec.breakdown ? breakdownSql(params, spec.breakdown, stored) : `''`;
  const oneStepPerEvent = stepTypes.length === K;

  // Each level is a subquery of its own: as aliases in one SELECT, every level would be
  // expanded into the next and planning grows exponentially with the number of steps.
  const layers: string[] = [];
  // ok_k[i]: event i does step k of some chain. f_k[i]: the latest entry whose chain
  // reached step k at or before event i, 0 for none. It only grows along time, so it is a
  // forward fill of the entries where ok_k holds; and an event does step k+1 when its reach
  // (the earliest entry it is within the window of) is at most f_k as it stood strictly
  // earlier. No entry (0) is within the window of any event. One test per event and level,
  // then a fill that tests nothing. arrayFill never replaces the first element: `ev`
  // starts with an empty event, at time 0, for that.
  const before = (k: number) => (oneStepPerEvent ? `f${k - 1}` : `before${k}`);
  layers.push(`arrayMap(ti -> to${time}(ti - ${windowMs}), t) AS reach`);
  layers.push(`arrayMap((ti, mi) -> bitTest(mi, 0) AND ti < ${toRel}, t, m) AS ok0`);
  for (let k = 0; k < K - 1; k++) {
    layers.push(`arrayFill((v, ok) -> ok, ${k === 0 ? 't' : before(k)}, ok${k}) AS f${k}`);
    if (!oneStepPerEvent) {
      // f_k as it stood before the event's millisecond: shifted by one, then carried
      // across the events of one millisecond from its first.
      layers.push(`arrayFill((v, s) -> s, arrayShiftRight(f${k}, 1), starts) AS before${k + 1}`);
    }
    layers.push(
      `arrayMap((p, mi, ri) -> bitTest(mi, ${k + 1}) AND ri <= p, ${before(k + 1)}, m, reach) AS ok${k + 1}`,
    );
  }
  const levels = Array.from({ length: K }, (_, i) => K - 1 - i);
  // The last level has no fill (nothing continues from it): its tests say it directly.
  const reached = (k: number) => (k === K - 1 ? `arrayMax(ok${k}) = 1` : `f${k}[-1] > 0`);
  // -1: no entry in [from, to), the customer is not in the funnel.
  layers.push(`multiIf(${levels.map((k) => `${reached(k)}, ${k}`).join(', ')}, -1) AS depth`);
  // Step times along one chain, by event index (0: none): the earliest event doing the
  // deepest step, then for each earlier step the latest event doing it strictly earlier.
  layers.push(
    `multiIf(${levels.map((k) => `depth = ${k}, arrayFirstIndex(ok -> ok, ok${k})`).join(', ')}, 0) AS i_deepest`,
  );
  for (let k = K - 1; k >= 0; k--) {
    // With one step per event, the events before index i at i's millisecond do later
    // steps, so "strictly earlier" is "at a lower index".
    const latestBefore =
      k === K - 1
        ? '0'
        : oneStepPerEvent
          ? `arrayLastIndex(ok -> ok, arraySlice(ok${k}, 1, i${k + 1} - 1))`
          : `arrayLastIndex((ti, ok) -> ok AND ti < t[i${k + 1}], t, ok${k})`;
    layers.push(`multiIf(depth = ${k}, i_deepest, depth > ${k}, ${latestBefore}, 0) AS i${k}`);
  }
  layers.push(spec.steps.map((_, k) => `t[i${k}] AS tau${k}`).join(', '));

  // One UInt64 per event, time in milliseconds above the 20 step bits: a plain array
  // sorts by time and is far cheaper to collect than an array of tuples. The bits hold the
  // mask's complement (flipping every bit gives the mask back), so that within a
  // millisecond later steps sort first. The empty first event, all bits set, is at time 0
  // and does no step.
  const low = 2 ** STEP_BITS - 1;
  const packed = `bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp) - ${originMs}), ${STEP_BITS}) + ${low} - mask`;
  // Entries are told by f0; only the breakdown's first entry compares with `to` as a time.
  // Of several first entries in one millisecond, the smallest value (a tuple's min is
  // cheaper than an argMin by time and event id).
  const firstEntry = spec.breakdown
    ? `, tupleElement(minIf((timestamp, value), bitTest(mask, 0) AND timestamp < ${params.bind("DateTime64(3, 'UTC')", toClickHouseTime(spec.to))}), 2) AS breakdown_value`
    : `, '' AS breakdown_value`;
  let perCustomer = `
      SELECT arrayPushFront(arraySort(groupArray(${packed})), ${low}) AS ev,
             arrayMap(e -> to${time}(bitShiftRight(e, ${STEP_BITS})), ev) AS t,
             arrayMap(e -> ${maskType}(bitNot(e)), ev) AS m
             ${oneStepPerEvent ? '' : ', arrayMap((a, b) -> a != b, t, arrayShiftRight(t, 1)) AS starts'}
             ${firstEntry}
      FROM (
        SELECT customer_id, timestamp, ${mask} AS mask, ${breakdown} AS value
        FROM events
        WHERE timestamp >= ${from} AND timestamp < ${until} AND type IN ${types}
          ${filters.map((f) => `AND ${f}`).join('\n          ')}
      )
      ${onlyTypes ? '' : 'WHERE mask != 0'}
      GROUP BY customer_id`;
  for (const layer of layers) perCustomer = `SELECT *, ${layer} FROM (${perCustomer})`;

  const bounds = histogramBounds(spec.windowMs);
  const columns = [
    ...spec.steps.map((_, k) => `countIf(depth >= ${k}) AS c${k}`),
    ...spec.steps
      .slice(1)
      .flatMap((_, i) =>
        timeToConvertColumns(
          i + 1,
          `((toInt64(tau${i + 1}) - tau${i}) / 1000)`,
          `depth >= ${i + 1}`,
          bounds,
        ),
      ),
  ];
  const grouped = spec.breakdown
    ? `SELECT grouping(breakdown_value) AS is_total, breakdown_value, ${columns.join(', ')}
       FROM (${perCustomer}) WHERE depth >= 0
       GROUP BY GROUPING SETS ((), (breakdown_value))
       ORDER BY is_total DESC, c0 DESC, breakdown_value
       LIMIT ${limits.maxBreakdownValues + 1}`
    : `SELECT 1 AS is_total, '' AS breakdown_value, ${columns.join(', ')} FROM (${perCustomer}) WHERE depth >= 0`;
  return {
    query: `${grouped}\nSETTINGS ${funnelSettings(limits).join(', ')}`,
    params: params.values,
  };
}

interface Row {
  is_total: number | string;
  breakdown_value: string | null;
  [column: string]: unknown;
}

/** Customers who reached a step, and the time they took from the step before. */
export interface FunnelStepCount {
  name: string;
  customers: number;
  medianSeconds: number | null;
  /** Null on step 0. */
  timeToConvert: TimeToConvert | null;
  optional: boolean;
}

/** A funnel's counts: in all, and per breakdown value (largest first) when asked. */
export interface FunnelCounts {
  steps: FunnelStepCount[];
  /** `value` null: customers who did not reach the step a `step:<k>` attribution names. */
  breakdown?: { value: string | null; steps: FunnelStepCount[] }[];
}

/** ClickHouse stopped the query at one of the limits: too heavy, not a fault. */
export class QueryLimitError extends Error {
  constructor(
    readonly reason: string,
    readonly limits: FunnelLimits,
  ) {
    super(`the funnel query ${reason}`);
    this.name = 'QueryLimitError';
  }
}

function countsOf(spec: FunnelSpec, row: Row | undefined): FunnelStepCount[] {
  const bounds = histogramBounds(spec.windowMs);
  return spec.steps.map((step, k) => {
    const customers = Number(row?.[`c${k}`] ?? 0);
    const timeToConvert =
      k === 0 ? null : readTimeToConvert(row?.[`q${k}`], row?.[`h${k}`], customers, bounds);
    return {
      name: step.name,
      customers,
      medianSeconds: timeToConvert?.quantiles?.[1] ?? null,
      timeToConvert,
      optional: step.optional === true,
    };
  });
}

/**
 * Customers per step of a funnel, as the API's counting rules define them. `stored`: the
 * properties stored as columns of their own (see property-columns.ts).
 */
export async function queryFunnel(
  client: ClickHouseClient,
  spec: FunnelSpec,
  limits: FunnelLimits = DEFAULT_FUNNEL_LIMITS,
  stored: PropertyColumns = NO_PROPERTY_COLUMNS,
): Promise<FunnelCounts> {
  const { query, params } = isPlainFunnel(spec)
    ? funnelSql(spec, limits, stored)
    : funnelChainsSql(spec, limits, stored);
  let rows: Row[];
  try {
    rows = await (
      await client.query({ query, query_params: params, format: 'JSONEachRow' })
    ).json<Row>();
  } catch (error) {
    const reason = queryLimitReason(error);
    if (reason) throw new QueryLimitError(reason, limits);
    throw error;
  }
  const total = rows.find((r) => Number(r.is_total) === 1);
  const counts: FunnelCounts = { steps: countsOf(spec, total) };
  if (spec.breakdown) {
    counts.breakdown = rows
      .filter((r) => Number(r.is_total) === 0)
      .map((r) => ({ value: r.breakdown_value, steps: countsOf(spec, r) }));
  }
  return counts;
}
