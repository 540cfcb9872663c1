import type { ClickHouseClient } from '@clickhouse/client';
import type { DropoffResponse, Journey } from '@touchstream/contracts';
import { toClickHouseTime } from './events.js';

/**
 * Every (instance, step) whose step was reached in [from, to), with what followed: the
 * next step (its channel, the seconds it took) or a drop (its reason). Counted once per
 * instance however often a fact was written (FINAL folds replays).
 */
const PER_STEP = `
  WITH facts AS (
    SELECT instance, customer_id, kind, step, time, channel, seconds_from_previous, reason
    FROM journey_facts FINAL WHERE journey = {journey:String}
  ),
  reached AS (
    SELECT instance, customer_id, step, channel FROM facts
    WHERE kind = 'reached' AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
  )
  SELECT r.step AS step, r.channel AS channel,
         n.instance != '' AS continued, n.channel AS next_channel, n.seconds_from_previous AS seconds,
         d.instance != '' AS dropped, d.reason AS reason,
         c.instance != '' AS completed
  FROM reached AS r
  LEFT JOIN (SELECT * FROM facts WHERE kind = 'reached' AND step > 0) AS n
    ON n.instance = r.instance AND n.customer_id = r.customer_id AND n.step = r.step + 1
  LEFT JOIN (SELECT * FROM facts WHERE kind = 'dropped') AS d
    ON d.instance = r.instance AND d.customer_id = r.customer_id AND d.step = r.step
  LEFT JOIN (SELECT * FROM facts WHERE kind = 'completed') AS c
    ON c.instance = r.instance AND c.customer_id = r.customer_id`;

// One pass, four groupings. grouping(channel, next_channel, reason) has a bit set for
// each column the row is NOT grouped by: 7 per step, 3 by channel, 6 by reason,
// 1 by channel hand-off.
const DROPOFFS = `
  SELECT step, channel, next_channel, reason, grouping(channel, next_channel, reason) AS grouped_by,
         count() AS reached_count, countIf(continued) AS continued_count,
         countIf(dropped) AS dropped_count, countIf(completed) AS completed_count,
         -- The usual median: the mean of the two middle values of an even count.
         quantileExactInclusiveIf(0.5)(seconds, continued) AS median_seconds
  FROM (${PER_STEP})
  GROUP BY GROUPING SETS ((step), (step, channel), (step, reason), (step, channel, next_channel))`;

interface Row {
  step: number;
  channel: string;
  next_channel: string;
  reason: string;
  grouped_by: number;
  reached_count: string;
  continued_count: string;
  dropped_count: string;
  completed_count: string;
  median_seconds: number | null;
}

/** Largest count first; ties by name, so equal counts always list in the same order. */
const byCount =
  <T>(count: (t: T) => number, name: (t: T) => string) =>
  (a: T, b: T) =>
    count(b) - count(a) || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

/** GET /v1/journeys/{id}/dropoffs: counts of journey instances, as API.md defines them. */
export async function queryDropoffs(
  client: ClickHouseClient,
  journey: Journey,
  from: number,
  to: number,
): Promise<DropoffResponse> {
  const rows = await (
    await client.query({
      query: DROPOFFS,
      query_params: { journey: journey.id, from: toClickHouseTime(from), to: toClickHouseTime(to) },
      format: 'JSONEachRow',
    })
  ).json<Row>();
  const n = (s: string) => Number(s);
  const at = (step: number, grouping: number) =>
    rows.filter((r) => r.step === step && Number(r.grouped_by) === grouping);
  const total = at(0, 7)[0];
  const transitions = journey.steps.slice(0, -1).map((fromStep, k) => {
    const step = at(k, 7)[0];
    const reached = n(step?.reached_count ?? '0');
    const continued = n(step?.continued_count ?? '0');
    const dropped = n(step?.dropped_count ?? '0');
    const median = step && continued > 0 ? step.median_seconds : null;
    return {
      from_step: fromStep.name,
      to_step: journey.steps[k + 1]?.name ?? '',
      reached,
      continued,
      dropped,
      in_progress: reached - continued - dropped,
      drop_rate: continued + dropped === 0 ? 0 : round4(dropped / (continued + dropped)),
      median_seconds_to_continue: median === null ? null : Number(median),
      reasons: at(k, 6)
        .filter((r) => n(r.dropped_count) > 0)
        .map((r) => ({ reason: r.reason, dropped: n(r.dropped_count) }))
        .sort(
          byCount(
            (r) => r.dropped,
            (r) => r.reason,
          ),
        ),
      by_channel: at(k, 3)
        .map((r) => ({
          channel: r.channel,
          reached: n(r.reached_count),
          continued: n(r.continued_count),
          dropped: n(r.dropped_count),
        }))
        .sort(
          byCount(
            (r) => r.reached,
            (r) => r.channel,
          ),
        ),
      handoffs: at(k, 1)
        .filter((r) => n(r.continued_count) > 0 && r.next_channel !== r.channel)
        .map((r) => ({
          from_channel: r.channel,
          to_channel: r.next_channel,
          continued: n(r.continued_count),
        }))
        .sort(
          byCount(
            (r) => r.continued,
            (r) => `${r.from_channel}\u0000${r.to_channel}`,
          ),
        ),
    };
  });
  return {
    journey: journey.id,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    entered: n(total?.reached_count ?? '0'),
    completed: n(total?.completed_count ?? '0'),
    transitions,
  };
}
