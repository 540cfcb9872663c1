import type { ClickHouseClient } from '@clickhouse/client';
import { toClickHouseTime } from './events.js';
import { nextVersion } from './versions.js';

/**
 * What a row of `review_posts` says: a tick's post `pending` (stored before it is sent),
 * `delivered` or `failed` (after its retries); or a marker, `started` when the alerter began
 * following the schedule and `stopped` when the review went away.
 */
export type ReviewPostOutcome = 'started' | 'stopped' | 'pending' | 'delivered' | 'failed';

/** One journey's review at one tick of its schedule, or a marker. */
export interface ReviewPost {
  journey: string;
  /** The tick, epoch milliseconds; a marker's is when it was written. */
  tick: number;
  schedule: string;
  webhookUrl: string;
  outcome: ReviewPostOutcome;
  /** The JSON posted; empty for a marker. */
  body: string;
  attempts: number;
  httpStatus: number | null;
  error: string;
}

/** A tick's post and the markers are rows of their own, even at the same millisecond. */
const rowId = (post: Pick<ReviewPost, 'journey' | 'tick' | 'outcome'>) => {
  const kind = post.outcome === 'started' || post.outcome === 'stopped' ? post.outcome : 'post';
  return `${post.journey}|${post.tick}|${kind}`;
};

/**
 * Stores the post as it is now. Callers serialise the writes of one tick: each write
 * carries a higher version, so the last one written is the one read.
 */
export async function saveReviewPost(client: ClickHouseClient, post: ReviewPost) {
  const id = rowId(post);
  await client.insert({
    table: 'review_posts',
    values: [
      {
        id,
        journey: post.journey,
        tick: toClickHouseTime(post.tick),
        schedule: post.schedule,
        webhook_url: post.webhookUrl,
        outcome: post.outcome,
        body: post.body,
        attempts: post.attempts,
        http_status: post.httpStatus,
        error: post.error,
        version: await nextVersion(client, 'review_posts', id),
      },
    ],
    format: 'JSONEachRow',
  });
}

interface Row {
  journey: string;
  tick: string;
  schedule: string;
  webhook_url: string;
  outcome: ReviewPostOutcome;
  body: string;
  attempts: number;
  http_status: number | null;
  error: string;
}

const COLUMNS = `journey, tick, schedule, webhook_url, outcome, body, attempts, http_status, error`;

const toPost = (row: Row): ReviewPost => ({
  journey: row.journey,
  tick: Date.parse(`${row.tick.replace(' ', 'T')}Z`),
  schedule: row.schedule,
  webhookUrl: row.webhook_url,
  outcome: row.outcome,
  body: row.body,
  attempts: Number(row.attempts),
  httpStatus: row.http_status === null ? null : Number(row.http_status),
  error: row.error,
});

/**
 * Each journey's latest row: the tick it last posted (or owes) or the marker written after
 * it. Of a post and a marker at the same millisecond, the one written later.
 */
export async function latestReviewPosts(client: ClickHouseClient): Promise<ReviewPost[]> {
  const rows = await (
    await client.query({
      query: `SELECT ${COLUMNS} FROM review_posts FINAL
              ORDER BY journey, tick DESC, version DESC LIMIT 1 BY journey`,
      format: 'JSONEachRow',
    })
  ).json<Row>();
  return rows.map(toPost);
}

/** The posts stored before they were sent and not yet delivered nor given up on, oldest first. */
export async function pendingReviewPosts(client: ClickHouseClient): Promise<ReviewPost[]> {
  const rows = await (
    await client.query({
      query: `SELECT ${COLUMNS} FROM review_posts FINAL WHERE outcome = 'pending'
              ORDER BY tick, journey`,
      format: 'JSONEachRow',
    })
  ).json<Row>();
  return rows.map(toPost);
}

/** A journey's rows (every journey's without one), in tick order, markers included. */
export async function listReviewPosts(
  client: ClickHouseClient,
  journey?: string,
): Promise<ReviewPost[]> {
  const rows = await (
    await client.query({
      query: `SELECT ${COLUMNS} FROM review_posts FINAL
              WHERE {all:Bool} OR journey = {journey:String}
              ORDER BY journey, tick, version`,
      query_params: { all: journey === undefined, journey: journey ?? '' },
      format: 'JSONEachRow',
    })
  ).json<Row>();
  return rows.map(toPost);
}
