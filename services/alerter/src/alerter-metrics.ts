import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The alerter's metrics, in one place so that their names and help stay what dashboards
 * already read, whichever part counts them.
 */
export function buildAlerterMetrics(registry: Registry, firing: () => number) {
  const registers = [registry];
  return {
    evaluations: new Counter({
      name: 'touchstream_alerter_evaluations_total',
      help: 'Rule evaluations, by outcome (ok, pending, firing, not_judged, failed).',
      labelNames: ['outcome'],
      registers,
    }),
    transitions: new Counter({
      name: 'touchstream_alerter_transitions_total',
      help: 'Alerts that started firing or resolved.',
      labelNames: ['state'],
      registers,
    }),
    notifications: new Counter({
      name: 'touchstream_alerter_notifications_total',
      help: 'Webhook notices by alert state and outcome (delivered, failed after retries).',
      labelNames: ['state', 'outcome'],
      registers,
    }),
    attempts: new Counter({
      name: 'touchstream_alerter_notification_attempts_total',
      help: 'Webhook requests made, retries included, by result (succeeded, failed).',
      labelNames: ['result'],
      registers,
    }),
    firing: new Gauge({
      name: 'touchstream_alerter_alerts_firing',
      help: 'Rules whose alert is firing.',
      registers,
      // Read at scrape time: the watches are the one count of what is firing.
      collect() {
        this.set(firing());
      },
    }),
  };
}

export type AlerterMetrics = ReturnType<typeof buildAlerterMetrics>;
