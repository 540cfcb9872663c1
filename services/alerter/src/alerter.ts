import { openAlertRecords, type Store } from '@touchstream/store';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { buildAlertBook } from './alert-book.js';
import { buildAlerterMetrics } from './alerter-metrics.js';
import { buildEvaluationCycle } from './evaluation-cycle.js';
import { DEFAULT_DELIVERY, type DeliveryOptions } from './notifier.js';
import { buildOwedNotices } from './owed-notices.js';
import { buildStoreReviewSchedule } from './review-schedule.js';
import { buildRuleEvaluation } from './rule-evaluation.js';
import { buildRuleWatches } from './rule-watches.js';

export interface AlerterDeps {
  store: Store;
  logger: Logger;
  metrics: Registry;
  /** TOUCHSTREAM_ALERT_INTERVAL: every rule is evaluated once per interval. */
  intervalMs: number;
  /** Wall clock in epoch milliseconds: `now` of the rules' windows (event time). */
  now?: () => number;
  delivery?: Partial<DeliveryOptions>;
}

/**
 * Evaluates the alert rules every interval, each at its own offset within the interval so
 * that the queries spread out, moves each rule through ok -> pending -> firing -> ok,
 * stores every alert and the notices it owes before acting on them, and delivers those
 * notices to the rules' webhooks. At start it takes over the alerts still firing and the
 * notices still owed, so a restart neither repeats nor forgets one. One alerter runs per
 * deployment.
 */
export function buildAlerter(deps: AlerterDeps) {
  const { store, logger } = deps;
  // Zero would evaluate in a busy loop; the configuration accepts any duration.
  if (!(deps.intervalMs >= 100)) {
    throw new Error('TOUCHSTREAM_ALERT_INTERVAL: must be at least 100ms');
  }
  const now = deps.now ?? Date.now;
  // One signal stops every part: no new cycle, evaluation or delivery attempt after it.
  const abort = new AbortController();
  const { signal } = abort;
  // Registered first so the metrics keep their order; the gauge reads `watches` only when
  // scraped, by which time it exists.
  const metrics = buildAlerterMetrics(deps.metrics, () => watches.firing());
  const book = buildAlertBook(store);
  const notices = buildOwedNotices({
    store,
    logger,
    book,
    delivery: { ...DEFAULT_DELIVERY, ...deps.delivery },
    now,
    signal,
    metrics,
  });
  const watches = buildRuleWatches({ book, notices, logger, now, metrics });
  // Each journey's review, posted on its schedule with the notices' delivery guarantees.
  const reviews = buildStoreReviewSchedule(store, {
    logger,
    delivery: { ...DEFAULT_DELIVERY, ...deps.delivery },
    now,
    signal,
  });
  const cycle = buildEvaluationCycle({
    store,
    logger,
    intervalMs: deps.intervalMs,
    now,
    signal,
    watchOnly: watches.watchOnly,
    evaluate: buildRuleEvaluation({ store, logger, now, signal, watches, metrics }),
  });
  let started = false;
  let stopping: Promise<void> | undefined;

  return {
    /** Takes over open alerts and owed notices, then evaluates every interval. */
    async start() {
      if (started) return;
      started = true;
      for (const record of await openAlertRecords(store)) {
        book.adopt(record);
        if (record.alert.state === 'firing') watches.takeOver(record);
        // The firing notice first: a receiver should not hear of a resolution before it.
        if (record.firingNotice === 'pending') notices.owe(record.id, 'firing');
        if (record.resolvedNotice === 'pending') notices.owe(record.id, 'resolved');
      }
      if (signal.aborted) return;
      cycle.start();
      await reviews.start();
      logger.info({ interval_ms: deps.intervalMs, open_alerts: book.size }, 'alerter_started');
    },

    /** Stops evaluating and interrupts deliveries; what is owed is delivered after a restart. */
    stop() {
      stopping ??= (async () => {
        cycle.halt();
        reviews.halt();
        abort.abort();
        // In the order the parts feed each other: evaluations owe notices, and both write.
        await cycle.settled();
        await reviews.idle();
        await notices.idle();
        await book.idle();
        logger.info('alerter_stopped');
      })();
      return stopping;
    },

    /** Healthy while cycles keep running: the last one began within two intervals. */
    health() {
      const lastCycleAt = cycle.lastCycleAt();
      const sinceCycle = lastCycleAt === null ? null : now() - lastCycleAt;
      const ok =
        started &&
        !signal.aborted &&
        sinceCycle !== null &&
        sinceCycle <= 2 * deps.intervalMs + 5_000;
      return {
        status: ok ? ('ok' as const) : ('unhealthy' as const),
        last_cycle_at: lastCycleAt === null ? null : new Date(lastCycleAt).toISOString(),
        firing: watches.firing(),
        open_alerts: book.size,
      };
    },
  };
}

export type Alerter = ReturnType<typeof buildAlerter>;
