import { type AlertState, KeyedQueue } from '@touchstream/contracts';
import { insertDelivery, type Store } from '@touchstream/store';
import type { Logger } from 'pino';
import type { AlertBook } from './alert-book.js';
import type { AlerterMetrics } from './alerter-metrics.js';
import { type DeliveryOptions, deliverNotice } from './notifier.js';

export interface OwedNoticesDeps {
  store: Store;
  logger: Logger;
  book: AlertBook;
  delivery: DeliveryOptions;
  now: () => number;
  /** Aborted when the alerter stops: a notice interrupted stays owed for the next start. */
  signal: AbortSignal;
  metrics: Pick<AlerterMetrics, 'notifications' | 'attempts'>;
}

/**
 * Delivers the notices alerts owe to their webhooks and records each outcome. The notices
 * of one alert go out in order, so a receiver never hears of a resolution before the
 * firing it resolves; different alerts are delivered side by side, so one slow receiver
 * holds up only its own alerts.
 */
export function buildOwedNotices(deps: OwedNoticesDeps) {
  const { store, logger, book, signal, metrics } = deps;
  const deliveries = new KeyedQueue<string>();

  const deliver = async (id: string, state: AlertState) => {
    const record = book.get(id);
    if (!record || signal.aborted) return;
    const result = await deliverNotice(record, state, {
      ...deps.delivery,
      now: deps.now,
      signal,
      logger,
      onAttempt: (succeeded) =>
        metrics.attempts.inc({ result: succeeded ? 'succeeded' : 'failed' }),
    });
    if (result.outcome === 'interrupted') return;
    metrics.notifications.inc({ state, outcome: result.outcome });
    const log = { alert_id: id, rule_id: record.alert.rule_id, state, ...result };
    if (result.outcome === 'delivered') logger.info(log, 'alert_notice_delivered');
    else logger.error(log, 'alert_notice_failed');
    const field = state === 'firing' ? 'firingNotice' : 'resolvedNotice';
    await book.update(id, (r) => ({ ...r, [field]: result.outcome }));
    await insertDelivery(store, {
      alert_id: id,
      rule_id: record.alert.rule_id,
      state,
      url: record.webhookUrl,
      outcome: result.outcome,
      attempts: result.attempts,
      http_status: result.httpStatus,
      error: result.error,
    });
  };

  return {
    /** Queues the delivery of an alert's `state` notice behind its earlier ones. */
    owe(id: string, state: AlertState) {
      // Nobody awaits a delivery: its failure is logged here, or nobody would hear of it.
      void deliveries
        .run(id, () => deliver(id, state))
        .catch((error) =>
          logger.error({ err: error, alert_id: id, state }, 'alert_notice_not_recorded'),
        );
    },

    /** Settles once the deliveries queued so far have. */
    idle: () => deliveries.idle(),
  };
}

export type OwedNotices = ReturnType<typeof buildOwedNotices>;
