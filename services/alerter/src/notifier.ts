import type { AlertState } from '@touchstream/contracts';
import type { AlertRecord } from '@touchstream/store';
import pRetry, { AbortError } from 'p-retry';
import type { Logger } from 'pino';
import { noticeOf } from './notice.js';
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
 * POSTs one notice of an alert (its `firing` or `resolved` state) to the webhook, retrying
 * with exponential backoff until `retryForMs` after the transition. The signal interrupts
 * it (the alerter stops): the notice then stays owed and a later start delivers it.
 */
export async function deliverNotice(
  record: AlertRecord,
  state: AlertState,
  options: DeliveryOptions & {
    now: () => number;
    signal: AbortSignal;
    logger: Logger;
    /** Told of every request made, and whether it was answered with success. */
    onAttempt?: (succeeded: boolean) => void;
  },
): Promise<DeliveryResult> {
  const { alert } = record;
  // A firing notice sent late (its receiver was away) still says what fired, not what resolved.
  const body = JSON.stringify(
    noticeOf(
      state === 'firing'
        ? { ...alert, state, resolved_at: null, message: record.firingMessage }
        : { ...alert, state },
    ),
  );
  const transitionAt = Date.parse(
    (state === 'resolved' ? alert.resolved_at : alert.started_at) ?? alert.started_at,
  );
  let attempts = 0;
  let httpStatus: number | null = null;
  const attempt = async () => {
    attempts += 1;
    try {
      await post();
      options.onAttempt?.(true);
    } catch (error) {
      if (!options.signal.aborted) options.onAttempt?.(false);
      throw error;
    }
  };
  const post = async () => {
    // Judged at each attempt, on what the name resolves to now: a rule saved with a public
    // name that later points inside is refused too.
    const refused = await webhookTargetProblem(record.webhookUrl, options);
    if (refused) throw new AbortError(new AttemptFailed(`not sent: ${refused}`, null));
    let response: Response;
    try {
      response = await fetch(record.webhookUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'touchstream-alerter',
          // The same notice sent twice (a retry after a lost answer) carries the same key.
          'idempotency-key': `${record.id}:${state}`,
        },
        body,
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
    if (response.ok) return;
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
      maxRetryTime: Math.max(0, transitionAt + options.retryForMs - options.now()),
      signal: options.signal,
      onFailedAttempt: ({ error, attemptNumber }) => {
        options.logger.warn(
          { alert_id: record.id, state, attempt: attemptNumber, err: error.message },
          'alert_notice_attempt_failed',
        );
      },
    });
    return { outcome: 'delivered', attempts, httpStatus, error: '' };
  } catch (error) {
    if (options.signal.aborted) return { outcome: 'interrupted', attempts, httpStatus, error: '' };
    const reason = error instanceof AbortError ? error.originalError : (error as Error);
    return { outcome: 'failed', attempts, httpStatus, error: reason.message };
  }
}
