import type { ReviewPost } from '@touchstream/store';
import pRetry, { AbortError } from 'p-retry';
import type { Logger } from 'pino';
import type { DeliveryOptions, DeliveryResult } from './notifier.js';
import { webhookTargetProblem } from './webhook-target.js';

/** A failure worth another attempt, with what the receiver said. */
class AttemptFailed extends Error {
  constructor(
    message: string,
    readonly httpStatus: number | null,
  ) {
    super(message);
  }
}

// As for alert notices: a receiver away, overloaded or slow may come back; one that
// refuses the request answers the same however often it is asked.
const RETRYABLE_STATUS = (status: number) => status === 408 || status === 429 || status >= 500;

/** The key a receiver can tell a repeated post of the same tick by. */
export const reviewIdempotencyKey = (post: Pick<ReviewPost, 'journey' | 'tick'>) =>
  `review:${post.journey}:${new Date(post.tick).toISOString()}`;

/**
 * POSTs a tick's review (its stored body) to the webhook with the guarantees of alert
 * notices (deliverNotice): the target is judged at each attempt, each request is timed
 * out, a retryable failure is retried with exponential backoff until `retryForMs` after
 * the tick (at least one attempt is made), and the signal interrupts it (the alerter
 * stops): the post then stays owed and a later start delivers it.
 */
export async function deliverReview(
  post: ReviewPost,
  options: DeliveryOptions & {
    now: () => number;
    signal: AbortSignal;
    logger: Logger;
  },
): Promise<DeliveryResult> {
  let attempts = 0;
  let httpStatus: number | null = null;
  // A post answered with success is delivered even if the alerter began stopping meanwhile:
  // reported interrupted, it would be posted again after the restart.
  let delivered = false;
  const attempt = async () => {
    attempts += 1;
    const refused = await webhookTargetProblem(post.webhookUrl, options);
    if (refused) throw new AbortError(new AttemptFailed(`not sent: ${refused}`, null));
    let response: Response;
    try {
      response = await fetch(post.webhookUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'touchstream-alerter',
          'idempotency-key': reviewIdempotencyKey(post),
        },
        body: post.body,
        signal: AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]),
        redirect: 'manual',
      });
    } catch (error) {
      if (options.signal.aborted) throw new AbortError('the alerter is stopping');
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      throw new AttemptFailed(`${(error as Error).message}${cause ? ` (${cause})` : ''}`, null);
    }
    httpStatus = response.status;
    await response.body?.cancel();
    if (response.ok) {
      delivered = true;
      return;
    }
    const failure = new AttemptFailed(`the receiver answered ${response.status}`, response.status);
    if (!RETRYABLE_STATUS(response.status)) throw new AbortError(failure);
    throw failure;
  };
  try {
    await pRetry(attempt, {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: options.minBackoffMs,
      maxTimeout: options.maxBackoffMs,
      randomize: true,
      maxRetryTime: Math.max(0, post.tick + options.retryForMs - options.now()),
      signal: options.signal,
      onFailedAttempt: ({ error, attemptNumber }) => {
        options.logger.warn(
          {
            journey: post.journey,
            tick: new Date(post.tick).toISOString(),
            attempt: attemptNumber,
            err: error.message,
          },
          'review_post_attempt_failed',
        );
      },
    });
    return { outcome: 'delivered', attempts, httpStatus, error: '' };
  } catch (error) {
    if (delivered) return { outcome: 'delivered', attempts, httpStatus, error: '' };
    if (options.signal.aborted) return { outcome: 'interrupted', attempts, httpStatus, error: '' };
    const reason = error instanceof AbortError ? error.originalError : (error as Error);
    return { outcome: 'failed', attempts, httpStatus, error: reason.message };
  }
}
