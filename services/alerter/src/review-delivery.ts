import type { ReviewPost } from '@touchstream/store';
import type { Logger } from 'pino';
import { type DeliveryOptions, type DeliveryResult, postWebhook } from './webhook-post.js';

/** The key a receiver can tell a repeated post of the same tick by. */
export const reviewIdempotencyKey = (post: Pick<ReviewPost, 'journey' | 'tick'>) =>
  `review:${post.journey}:${new Date(post.tick).toISOString()}`;

/**
 * POSTs a tick's review (its stored body) to the webhook with the guarantees of alert
 * notices, retried until `retryForMs` after the tick; interrupted when the alerter stops,
 * the post stays owed and a later start delivers it.
 */
export function deliverReview(
  post: ReviewPost,
  options: DeliveryOptions & { now: () => number; signal: AbortSignal; logger: Logger },
): Promise<DeliveryResult> {
  return postWebhook(
    {
      url: post.webhookUrl,
      body: post.body,
      idempotencyKey: reviewIdempotencyKey(post),
      retryUntil: post.tick + options.retryForMs,
      log: {
        event: 'review_post_attempt_failed',
        fields: { journey: post.journey, tick: new Date(post.tick).toISOString() },
      },
    },
    options,
  );
}
