import type { AlertState } from '@touchstream/contracts';
import type { AlertRecord } from '@touchstream/store';
import type { Logger } from 'pino';
import { noticeOf } from './notice.js';
import { type DeliveryOptions, type DeliveryResult, postWebhook } from './webhook-post.js';

export {
  DEFAULT_DELIVERY,
  type DeliveryOptions,
  type DeliveryResult,
} from './webhook-post.js';

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
  return postWebhook(
    {
      url: record.webhookUrl,
      body,
      idempotencyKey: `${record.id}:${state}`,
      retryUntil: transitionAt + options.retryForMs,
      log: { event: 'alert_notice_attempt_failed', fields: { alert_id: record.id, state } },
    },
    options,
  );
}
