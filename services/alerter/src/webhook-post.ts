import pRetry, { AbortError } from 'p-retry';
import type { Logger } from 'pino';
import { webhookTargetProblem } from './webhook-target.js';

export interface DeliveryOptions {
  /** One request's limit, connection to response. */
  timeoutMs: number;
  /** How long after the transition a notice is retried; at least one attempt is made. */
  retryForMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL: may webhooks reach loopback and private addresses. */
  allowInternal: boolean;
}

export const DEFAULT_DELIVERY: DeliveryOptions = {
  timeoutMs: 10_000,
  retryForMs: 60 * 60_000,
  minBackoffMs: 1_000,
  maxBackoffMs: 5 * 60_000,
  allowInternal: false,
};

export interface DeliveryResult {
  outcome: 'delivered' | 'failed' | 'interrupted';
  attempts: number;
  httpStatus: number | null;
  error: string;
}

/** One POST to a webhook: what, where, and until when it is worth retrying. */
export interface WebhookPost {
  url: string;
  /** JSON. */
  body: string;
  /** The same post sent twice (a retry after a lost answer) carries the same key. */
  idempotencyKey: string;
  /** Retried until this time (epoch ms); at least one attempt is made. */
  retryUntil: number;
  /** Logged with each failed attempt, under `event`. */
  log: { event: string; fields: Record<string, unknown> };
}

/** A failure worth another attempt, with what the receiver said. */
class AttemptFailed extends Error {
  constructor(
    message: string,
    readonly httpStatus: number | null,
  ) {
    super(message);
  }
}

// A receiver that is away, overloaded or slow may come back; one that refuses the request
// (a wrong URL, a revoked hook) answers the same however often it is asked.
const RETRYABLE_STATUS = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * POSTs to a webhook with the alerter's guarantees: the target is judged at each attempt,
 * each request is timed out, a retryable failure is retried with exponential backoff
 * until `retryUntil`, and the signal (the alerter stops) interrupts it: what was being
 * posted then stays owed, and a later start posts it.
 */
export async function postWebhook(
  post: WebhookPost,
  options: DeliveryOptions & {
    now: () => number;
    signal: AbortSignal;
    logger: Logger;
    /** Told of every request made, and whether it was answered with success. */
    onAttempt?: (succeeded: boolean) => void;
  },
): Promise<DeliveryResult> {
  let attempts = 0;
  let httpStatus: number | null = null;
  // A post answered with success is delivered even if the alerter began stopping meanwhile:
  // reported interrupted, it would be posted again after the restart.
  let delivered = false;
  const attempt = async () => {
    attempts += 1;
    try {
      await send();
      options.onAttempt?.(true);
    } catch (error) {
      if (!options.signal.aborted) options.onAttempt?.(false);
      throw error;
    }
  };
  const send = async () => {
    // Judged at each attempt, on what the name resolves to now: a hook saved with a public
    // name that later points inside is refused too.
    const refused = await webhookTargetProblem(post.url, options);
    if (refused) throw new AbortError(new AttemptFailed(`not sent: ${refused}`, null));
    let response: Response;
    try {
      response = await fetch(post.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'touchstream-alerter',
          'idempotency-key': post.idempotencyKey,
        },
        body: post.body,
        signal: AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]),
        // A moved hook is the user's to fix: a redirect is reported as the answer it is.
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
      maxRetryTime: Math.max(0, post.retryUntil - options.now()),
      signal: options.signal,
      onFailedAttempt: ({ error, attemptNumber }) => {
        options.logger.warn(
          { ...post.log.fields, attempt: attemptNumber, err: error.message },
          post.log.event,
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
