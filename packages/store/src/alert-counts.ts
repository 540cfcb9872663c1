import type { ClickHouseClient } from '@clickhouse/client';
import { toClickHouseTime } from './events.js';

/** What an alert rule is judged on: the transition from step - 1 into step. */
export interface TransitionCounts {
  /** Instances that reached the previous step in the window. */
  entries: number;
  /** Instances that reached the step in the window. */
  reachedStep: number;
  /** Of the window's entries: those that went on to the step, and those that dropped. */
  continued: number;
  dropped: number;
  /** The same for the instances that reached the previous step in the baseline range. */
  baselineContinued: number;
  baselineDropped: number;
}

// Instances are keyed by (instance, customer_id) as in the drop-off query; FINAL keeps
// each fact's current version and hides withdrawn ones, so alerts judge current facts. A later step's or a drop's fact is never earlier
// than the fact it follows, so filtering them from the baseline start is exact.
const COUNTS = `
  WITH facts AS (
    SELECT instance, customer_id, kind, step, time FROM facts FINAL
    WHERE journey = {journey:String} AND step IN ({previous:UInt8}, {step:UInt8})
      AND time >= {baseline_from:DateTime64(3, 'UTC')}
  ),
  entries AS (
    SELECT instance, customer_id, time FROM facts
    WHERE kind = 'reached' AND step = {previous:UInt8} AND time < {to:DateTime64(3, 'UTC')}
  )
  SELECT
    countIf(e.time >= {from:DateTime64(3, 'UTC')}) AS entries,
    (SELECT count() FROM facts WHERE kind = 'reached' AND step = {step:UInt8}
       AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}) AS reached_step,
    countIf(e.time >= {from:DateTime64(3, 'UTC')} AND n.instance != '') AS continued,
    countIf(e.time >= {from:DateTime64(3, 'UTC')} AND d.instance != '' AND n.instance = '') AS dropped,
    countIf(e.time < {from:DateTime64(3, 'UTC')} AND n.instance != '') AS baseline_continued,
    countIf(e.time < {from:DateTime64(3, 'UTC')} AND d.instance != '' AND n.instance = '') AS baseline_dropped
  FROM entries AS e
  LEFT JOIN (SELECT instance, customer_id FROM facts WHERE kind = 'reached' AND step = {step:UInt8}) AS n
    ON n.instance = e.instance AND n.customer_id = e.customer_id
  LEFT JOIN (SELECT instance, customer_id FROM facts WHERE kind = 'dropped' AND step = {previous:UInt8}) AS d
    ON d.instance = e.instance AND d.customer_id = e.customer_id`;

/**
 * Counts of the transition into `step` (index >= 1) of `journey`, for instances that
 * reached the previous step in [from, to) and, for the baseline, in [baselineFrom, from).
 */
export async function transitionCounts(
  client: ClickHouseClient,
  range: { journey: string; step: number; baselineFrom: number; from: number; to: number },
): Promise<TransitionCounts> {
  const [row] = await (
    await client.query({
      query: COUNTS,
      query_params: {
        journey: range.journey,
        previous: range.step - 1,
        step: range.step,
        baseline_from: toClickHouseTime(range.baselineFrom),
        from: toClickHouseTime(range.from),
        to: toClickHouseTime(range.to),
      },
      format: 'JSONEachRow',
    })
  ).json<Record<string, string>>();
  const n = (name: string) => Number(row?.[name] ?? 0);
  return {
    entries: n('entries'),
    reachedStep: n('reached_step'),
    continued: n('continued'),
    dropped: n('dropped'),
    baselineContinued: n('baseline_continued'),
    baselineDropped: n('baseline_dropped'),
  };
}
