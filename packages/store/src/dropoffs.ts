import type { ClickHouseClient } from '@clickhouse/client';
import { type Journey, parseDuration } from '@touchstream/contracts';
import { toClickHouseTime } from './events.js';

/**
 * Every (instance, step) whose step was reached in [from, to), with what followed: the
 * next step (its channel, the seconds it took) or a drop (its reason). Counted once per
 * instance however often a fact was written: FINAL keeps each fact's current version and
 * hides withdrawn ones. A step counts as dropped only when it did not continue, so
 * `reached = continued + dropped + in_progress` holds even while a correction's rows are
 * half written (they may span several inserts).
 * Each row also carries the value its facts carried (the journey's value property, as of
 * the continue, drop or completion) and the instance's ratings: feedback events of its
 * customer within the step timeout after the instance ended (dropped or completed).
 */
const perStep = (ratings: string) => `
  WITH facts AS (
    SELECT instance, customer_id, kind, step, time, channel, seconds_from_previous, reason, value
    FROM facts FINAL WHERE journey = {journey:String}
  ),
  reached AS (
    SELECT instance, customer_id, step, channel FROM facts
    WHERE kind = 'reached' AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
  ),
  ratings AS (${ratings})
  SELECT r.step AS step, r.channel AS channel,
         -- Of a customer with events that came without its id and were filed under it.
         r.customer_id IN (SELECT customer_id FROM events WHERE stitched = 1) AS stitched,
         n.instance != '' AS continued, n.channel AS next_channel, n.seconds_from_previous AS seconds,
         d.instance != '' AND n.instance = '' AS dropped, if(dropped, d.reason, '') AS reason,
         c.instance != '' AS completed,
         n.value AS continued_value, d.value AS dropped_value, c.value AS completed_value,
         f.responses AS responses, f.score_sum AS score_sum
  FROM reached AS r
  LEFT JOIN (SELECT * FROM facts WHERE kind = 'reached' AND step > 0) AS n
    ON n.instance = r.instance AND n.customer_id = r.customer_id AND n.step = r.step + 1
  LEFT JOIN (SELECT * FROM facts WHERE kind = 'dropped') AS d
    ON d.instance = r.instance AND d.customer_id = r.customer_id AND d.step = r.step
  LEFT JOIN (SELECT * FROM facts WHERE kind = 'completed') AS c
    ON c.instance = r.instance AND c.customer_id = r.customer_id
  LEFT JOIN ratings AS f ON f.instance = r.instance AND f.customer_id = r.customer_id`;

/**
 * Per ended instance: how many feedback events its customer sent within the step timeout
 * after the end, and their scores summed. A replayed event counts once (its id); an event
 * without a numeric `score` is no rating.
 */
const RATINGS = `
  SELECT e.instance AS instance, e.customer_id AS customer_id,
         count() AS responses, sum(x.score) AS score_sum
  FROM (SELECT instance, customer_id, time FROM facts WHERE kind IN ('completed', 'dropped')) AS e
  INNER JOIN (
    SELECT customer_id, event_id, min(timestamp) AS at, any(rating) AS score
    FROM (
      SELECT customer_id, event_id, timestamp,
             JSONExtract(properties, 'score', 'Nullable(Float64)') AS rating
      FROM events
      WHERE type IN {feedback:Array(String)}
        AND customer_id IN (SELECT customer_id FROM facts WHERE kind IN ('completed', 'dropped'))
    )
    WHERE rating IS NOT NULL AND isFinite(rating)
    GROUP BY customer_id, event_id
  ) AS x ON x.customer_id = e.customer_id
  WHERE x.at >= e.time AND x.at <= e.time + toIntervalMillisecond({timeout:UInt64})
  GROUP BY e.instance, e.customer_id`;

/** A journey without feedback event types has no ratings to look for. */
const NO_RATINGS = `
  SELECT '' AS instance, '' AS customer_id, toUInt64(0) AS responses, toFloat64(0) AS score_sum
  WHERE 0`;

// One pass, four groupings. grouping(channel, next_channel, reason) has a bit set for
// each column the row is NOT grouped by: 7 per step, 3 by channel, 6 by reason,
// 1 by channel hand-off.
const dropoffsQuery = (ratings: string) => `
  SELECT step, channel, next_channel, reason, grouping(channel, next_channel, reason) AS grouped_by,
         count() AS reached_count, countIf(continued) AS continued_count,
         countIf(dropped) AS dropped_count, countIf(completed) AS completed_count,
         countIf(stitched) AS stitched_count,
         -- The usual median: the mean of the two middle values of an even count.
         quantileExactInclusiveIf(0.5)(seconds, continued) AS median_seconds,
         ifNull(sumIf(continued_value, continued), 0) AS value_continued,
         ifNull(sumIf(dropped_value, dropped), 0) AS value_dropped,
         ifNull(sumIf(completed_value, completed), 0) AS value_completed,
         sumIf(responses, dropped) AS dropped_responses, sumIf(score_sum, dropped) AS dropped_scores,
         sumIf(responses, continued) AS continued_responses,
         sumIf(score_sum, continued) AS continued_scores
  FROM (${perStep(ratings)})
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
  stitched_count: string;
  median_seconds: number | null;
  value_continued: number;
  value_dropped: number;
  value_completed: number;
  dropped_responses: string;
  dropped_scores: number;
  continued_responses: string;
  continued_scores: number;
}

/** Feedback responses and their scores summed. */
export interface Ratings {
  responses: number;
  scoreSum: number;
}

/** One transition's instances, as counted; unordered lists (the API orders them). */
export interface DropoffTransition {
  reached: number;
  continued: number;
  dropped: number;
  /** Median seconds to continue; null when none continued. */
  medianSeconds: number | null;
  reasons: { reason: string; dropped: number }[];
  byChannel: { channel: string; reached: number; continued: number; dropped: number }[];
  handoffs: { fromChannel: string; toChannel: string; continued: number }[];
  /** Sums of the value property; null when the journey has none. */
  valueDropped: number | null;
  valueContinued: number | null;
  feedback: { dropped: Ratings; continued: Ratings };
}

/** A journey's instances in a range: entered, completed, and each transition's counts. */
export interface DropoffCounts {
  entered: number;
  completed: number;
  /** Of the entered, instances of customers with events stitched from an anonymous id. */
  stitched: number;
  /** Of the entered that completed, their value summed; null without a value property. */
  valueCompleted: number | null;
  /** One per transition, in step order. */
  transitions: DropoffTransition[];
}

/** Counts of journey instances per transition, as the API's counting rules define them. */
export async function queryDropoffs(
  client: ClickHouseClient,
  journey: Journey,
  from: number,
  to: number,
): Promise<DropoffCounts> {
  const feedback = journey.feedback_event_types ?? [];
  const valued = journey.value_property !== undefined;
  const rows = await (
    await client.query({
      query: dropoffsQuery(feedback.length > 0 ? RATINGS : NO_RATINGS),
      query_params: {
        journey: journey.id,
        from: toClickHouseTime(from),
        to: toClickHouseTime(to),
        feedback,
        timeout: parseDuration(journey.step_timeout) ?? 0,
      },
      format: 'JSONEachRow',
    })
  ).json<Row>();
  const n = (s: string) => Number(s);
  const ratings = (responses = '0', scores = 0): Ratings => ({
    responses: n(responses),
    scoreSum: Number(scores),
  });
  const at = (step: number, grouping: number) =>
    rows.filter((r) => r.step === step && Number(r.grouped_by) === grouping);
  const total = at(0, 7)[0];
  const transitions = journey.steps.slice(0, -1).map((_, k): DropoffTransition => {
    const step = at(k, 7)[0];
    const continued = n(step?.continued_count ?? '0');
    return {
      reached: n(step?.reached_count ?? '0'),
      continued,
      dropped: n(step?.dropped_count ?? '0'),
      medianSeconds: step && continued > 0 ? Number(step.median_seconds) : null,
      reasons: at(k, 6)
        .filter((r) => n(r.dropped_count) > 0)
        .map((r) => ({ reason: r.reason, dropped: n(r.dropped_count) })),
      byChannel: at(k, 3).map((r) => ({
        channel: r.channel,
        reached: n(r.reached_count),
        continued: n(r.continued_count),
        dropped: n(r.dropped_count),
      })),
      handoffs: at(k, 1)
        .filter((r) => n(r.continued_count) > 0 && r.next_channel !== r.channel)
        .map((r) => ({
          fromChannel: r.channel,
          toChannel: r.next_channel,
          continued: n(r.continued_count),
        })),
      valueDropped: valued ? Number(step?.value_dropped ?? 0) : null,
      valueContinued: valued ? Number(step?.value_continued ?? 0) : null,
      feedback: {
        dropped: ratings(step?.dropped_responses, step?.dropped_scores),
        continued: ratings(step?.continued_responses, step?.continued_scores),
      },
    };
  });
  return {
    entered: n(total?.reached_count ?? '0'),
    completed: n(total?.completed_count ?? '0'),
    stitched: n(total?.stitched_count ?? '0'),
    valueCompleted: valued ? Number(total?.value_completed ?? 0) : null,
    transitions,
  };
}
