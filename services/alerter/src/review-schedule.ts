import { type Journey, KeyedQueue } from '@touchstream/contracts';
import { buildReview, reviewMarkdown } from '@touchstream/reports';
import {
  latestReviewPosts,
  listJourneys,
  pendingReviewPosts,
  type ReviewPost,
  type Store,
  saveReviewPost,
} from '@touchstream/store';
import { Cron } from 'croner';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import type { DeliveryOptions, DeliveryResult } from './notifier.js';
import { deliverReview } from './review-delivery.js';

/** How often the journeys are reloaded and the ticks checked: a change applies within it. */
export const REVIEW_CHECK_MS = 1_000;

/** The period of a review whose schedule has no tick before it that croner can find. */
export const FALLBACK_PERIOD_MS = 7 * 24 * 60 * 60_000;

/** A review's schedule: five cron fields, in UTC, as the journey contract validates it. */
export const scheduleOf = (pattern: string) => new Cron(pattern, { timezone: 'UTC', paused: true });

/** The first tick strictly after `at`, or null when the schedule has none. */
export function tickAfter(cron: Cron, at: number): number | null {
  return cron.nextRun(new Date(at))?.getTime() ?? null;
}

/**
 * The latest tick in (`after`, `upTo`], or null. Walks forward from `after`: callers bound
 * the walk (a tick older than the retry window is never owed, so it starts there).
 */
export function latestTickIn(cron: Cron, after: number, upTo: number): number | null {
  let latest: number | null = null;
  for (let tick = tickAfter(cron, after); tick !== null && tick <= upTo; ) {
    latest = tick;
    tick = tickAfter(cron, tick);
  }
  return latest;
}

/**
 * The tick a schedule owes at `now`: the latest one after `since` (the tick last posted,
 * or when the schedule began to be followed) that is still within the retry window.
 * Only the latest: ticks missed before it (the alerter was down) are not caught up, since
 * each review covers the period up to its own tick and a burst of stale reviews helps no
 * one.
 */
export function owedTick(cron: Cron, since: number, now: number, retryForMs: number) {
  return latestTickIn(cron, Math.max(since, now - retryForMs - 1), now);
}

/**
 * What a tick's review covers: the time since the schedule's previous tick (a weekly
 * schedule reviews 7 days, a weekday one 3 days on Monday). Seven days when croner finds
 * no previous tick.
 */
export function periodBefore(cron: Cron, tick: number): number {
  try {
    const [previous] = cron.previousRuns(1, new Date(tick));
    if (previous && previous.getTime() < tick) return tick - previous.getTime();
  } catch {
    // croner 10 fails to walk back over some patterns (a 29 February): take the default.
  }
  return FALLBACK_PERIOD_MS;
}

/** Where the ticks and their outcomes are kept (review_posts in ClickHouse). */
export interface ReviewLedger {
  /** Each journey's latest row. */
  latest(): Promise<ReviewPost[]>;
  /** The posts stored as owed and not yet delivered nor given up on. */
  pending(): Promise<ReviewPost[]>;
  save(post: ReviewPost): Promise<void>;
}

export const storeLedger = (store: Store): ReviewLedger => ({
  latest: () => latestReviewPosts(store),
  pending: () => pendingReviewPosts(store),
  save: (post) => saveReviewPost(store, post),
});

/**
 * The body posted: Slack-style `text` (the review in Markdown) and the fields of the review
 * JSON beside it (GET /v1/journeys/{id}/review's), `{"text": "...", "journey": ...}`, for
 * the period of `periodMs` up to the tick.
 */
export const composeReview =
  (store: Store) =>
  async (journey: Journey, tick: number, periodMs: number): Promise<string> => {
    const review = await buildReview(store, journey, { periodMs, now: tick });
    return JSON.stringify({ text: reviewMarkdown(review), ...review });
  };

export interface ReviewScheduleDeps {
  logger: Logger;
  delivery: DeliveryOptions;
  now: () => number;
  /** Aborted when the alerter stops: a post interrupted stays owed for the next start. */
  signal: AbortSignal;
  /** The journeys as they are now. */
  journeys: () => Promise<Journey[]>;
  ledger: ReviewLedger;
  /** The JSON body of a journey's review at a tick. */
  compose: (journey: Journey, tick: number, periodMs: number) => Promise<string>;
  /** Posts a stored body; deliverReview unless a test says otherwise. */
  deliver?: typeof deliverReview;
  /** REVIEW_CHECK_MS unless a test says otherwise. */
  checkEveryMs?: number;
}

/** A journey whose review schedule is followed. */
interface Followed {
  journey: Journey;
  schedule: string;
  cron: Cron;
  webhookUrl: string;
  /**
   * The first tick after the latest one handled (posted, or too old to be) or after the
   * schedule began to be followed; computed once, so that a check compares, not walks.
   */
  next: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Posts each journey's review on its cron schedule, once per tick, with the delivery
 * guarantees of alert notices. Every second it reloads the journeys (a new, changed or
 * removed review applies within it) and posts the ticks that came due.
 *
 * Each tick is stored `pending` with its body before it is posted, and its outcome after:
 * a restart resumes the posts interrupted and, from each journey's latest row, posts the
 * latest tick that came due while it was down (if still within the retry window), so no
 * tick is posted twice nor forgotten. A review added or whose schedule changed is followed
 * from its next tick: a `started` marker says so across restarts, and a `stopped` one that
 * a removed review owes nothing.
 */
export function buildReviewSchedule(deps: ReviewScheduleDeps) {
  const { logger, ledger, signal } = deps;
  const { retryForMs, minBackoffMs, maxBackoffMs } = deps.delivery;
  const deliver = deps.deliver ?? deliverReview;
  const followed = new Map<string, Followed>();
  /** Each journey's latest row at start, taken when the journey is first followed. */
  let stored = new Map<string, ReviewPost>();
  const posts = new KeyedQueue<string>();
  let timer: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;

  /** Retries a store write or a review build with the notices' backoff, until `until`. */
  const persistently = <T>(work: () => Promise<T>, until: number) =>
    pRetry(work, {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: minBackoffMs,
      maxTimeout: maxBackoffMs,
      randomize: true,
      maxRetryTime: Math.max(0, until - deps.now()),
      signal,
    });

  const marker = (f: Pick<Followed, 'journey' | 'schedule' | 'webhookUrl'>, at: number) => ({
    journey: f.journey.id,
    tick: at,
    schedule: f.schedule,
    webhookUrl: f.webhookUrl,
    body: '',
    attempts: 0,
    httpStatus: null,
    error: '',
  });

  /** Posts a stored tick and stores its outcome; an interruption leaves it owed. */
  const send = async (post: ReviewPost) => {
    if (signal.aborted) return;
    const result: DeliveryResult = await deliver(post, {
      ...deps.delivery,
      now: deps.now,
      signal,
      logger,
    });
    if (result.outcome === 'interrupted') return;
    const log = {
      journey: post.journey,
      tick: iso(post.tick),
      outcome: result.outcome,
      attempts: result.attempts,
      http_status: result.httpStatus,
      error: result.error,
    };
    if (result.outcome === 'delivered') logger.info(log, 'review_posted');
    else logger.error(log, 'review_post_failed');
    const done: ReviewPost = {
      ...post,
      outcome: result.outcome,
      attempts: result.attempts,
      httpStatus: result.httpStatus,
      error: result.error,
    };
    // Written even while stopping: a post made and not recorded would be made again.
    await pRetry(() => ledger.save(done), { retries: 3, minTimeout: minBackoffMs });
  };

  /** Builds the tick's review, stores it owed, then posts it. */
  const postTick = async (f: Followed, tick: number) => {
    if (signal.aborted) return;
    // As the journey is at the tick: a later change takes the next tick.
    const at = { journey: f.journey, schedule: f.schedule, webhookUrl: f.webhookUrl };
    const { journey, schedule } = at;
    const periodMs = periodBefore(f.cron, tick);
    let post: ReviewPost;
    try {
      post = await persistently(async () => {
        const body = await deps.compose(journey, tick, periodMs);
        const owed: ReviewPost = { ...marker(at, tick), outcome: 'pending', body };
        await ledger.save(owed);
        return owed;
      }, tick + retryForMs);
    } catch (error) {
      // Stopped before it was stored: the next start owes it while it is in the window.
      if (signal.aborted) return;
      const message = `the review was not built and stored: ${(error as Error).message}`;
      logger.error({ journey: journey.id, tick: iso(tick), err: message }, 'review_post_failed');
      await ledger
        .save({ ...marker(at, tick), outcome: 'failed', error: message })
        .catch((e) => logger.error({ err: e, journey: journey.id }, 'review_post_not_recorded'));
      return;
    }
    logger.info(
      { journey: journey.id, tick: iso(tick), period_ms: periodMs, schedule },
      'review_due',
    );
    await send(post);
  };

  /** The posts of one journey go out in order, each after the previous one settled. */
  const enqueue = (journey: string, work: () => Promise<void>) => {
    void posts
      .run(journey, work)
      .catch((error) => logger.error({ err: error, journey }, 'review_post_not_recorded'));
  };

  /** Starts following a journey's review: from its stored row, or from now. */
  const follow = async (journey: Journey, now: number) => {
    const review = journey.review;
    if (!review) return;
    const row = stored.get(journey.id);
    stored.delete(journey.id);
    const f: Followed = {
      journey,
      schedule: review.schedule,
      cron: scheduleOf(review.schedule),
      webhookUrl: review.webhook_url,
      next: null,
    };
    // Owed from the tick last stored (or the start of the schedule), if it is the same one.
    let since = now;
    if (row && row.outcome !== 'stopped' && row.schedule === review.schedule) {
      since = row.tick;
    } else {
      await ledger.save({ ...marker(f, now), outcome: 'started' });
      logger.info({ journey: journey.id, schedule: f.schedule }, 'review_schedule_started');
    }
    // A tick older than the retry window is not owed: the walk to the latest starts there.
    f.next = tickAfter(f.cron, Math.max(since, now - retryForMs - 1));
    followed.set(journey.id, f);
  };

  const unfollow = async (id: string, f: Followed, now: number) => {
    followed.delete(id);
    logger.info({ journey: id, schedule: f.schedule }, 'review_schedule_stopped');
    await ledger.save({ ...marker(f, now), outcome: 'stopped' });
  };

  const check = async () => {
    const journeys = await deps.journeys();
    if (signal.aborted) return;
    const now = deps.now();
    const reviewed = new Map(journeys.filter((j) => j.review).map((j) => [j.id, j]));
    for (const [id, f] of followed) {
      const journey = reviewed.get(id);
      // A changed schedule starts again from its next tick; a changed URL takes the next post.
      if (!journey) {
        await unfollow(id, f, now).catch((error) =>
          logger.warn({ err: error, journey: id }, 'review_schedule_not_recorded'),
        );
      } else if (journey.review?.schedule !== f.schedule) followed.delete(id);
    }
    for (const journey of reviewed.values()) {
      if (signal.aborted) return;
      const f = followed.get(journey.id);
      if (f) {
        f.journey = journey;
        f.webhookUrl = journey.review?.webhook_url ?? f.webhookUrl;
        continue;
      }
      // Not followed until its start is stored: the next check tries again.
      await follow(journey, now).catch((error) =>
        logger.warn({ err: error, journey: journey.id }, 'review_schedule_not_recorded'),
      );
    }
    for (const f of followed.values()) {
      if (f.next === null || f.next > now) continue;
      // Usually the tick just come; after a stall, the latest of those missed.
      const tick = latestTickIn(f.cron, f.next - 1, now) ?? f.next;
      f.next = tickAfter(f.cron, tick);
      if (now - tick > retryForMs) continue;
      enqueue(f.journey.id, () => postTick(f, tick));
    }
  };

  const runCheck = () => {
    if (signal.aborted || checking) return checking;
    checking = check()
      .catch((error) => logger.warn({ err: error }, 'review_check_failed'))
      .finally(() => {
        checking = undefined;
      });
    return checking;
  };

  return {
    /** Resumes the posts still owed, then checks the schedules every second. */
    async start() {
      const [latest, pending] = await Promise.all([ledger.latest(), ledger.pending()]);
      stored = new Map(latest.map((row) => [row.journey, row]));
      for (const post of pending) enqueue(post.journey, () => send(post));
      if (signal.aborted) return;
      timer = setInterval(runCheck, deps.checkEveryMs ?? REVIEW_CHECK_MS);
      await runCheck();
    },

    /** Checks no more schedules. */
    halt() {
      clearInterval(timer);
    },

    /** Settles once the check running has, and the posts queued so far. */
    async idle() {
      await checking;
      await posts.idle();
    },

    /** How many journeys' reviews are followed. */
    get size() {
      return followed.size;
    },
  };
}

/** The review schedule of the alerter's store. */
export function buildStoreReviewSchedule(
  store: Store,
  deps: Omit<ReviewScheduleDeps, 'journeys' | 'ledger' | 'compose'>,
) {
  return buildReviewSchedule({
    ...deps,
    journeys: () => listJourneys(store),
    ledger: storeLedger(store),
    compose: composeReview(store),
  });
}

export type ReviewSchedule = ReturnType<typeof buildReviewSchedule>;
