import {
  type AlertRule,
  type AlertState,
  type Journey,
  parseDuration,
} from '@touchstream/contracts';
import {
  type AlertRecord,
  insertDelivery,
  listAlertRules,
  listJourneys,
  openAlertRecords,
  type Store,
  saveAlertRecord,
  transitionCounts,
} from '@touchstream/store';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { type Judgement, judge } from './judge.js';
import { DEFAULT_DELIVERY, type DeliveryOptions, deliverNotice } from './notifier.js';
import { nextState, OK, type RuleState } from './rule-state.js';
import { evaluationOffsets } from './schedule.js';

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

interface Watch {
  state: RuleState;
  /** The open alert while firing. */
  recordId?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

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
  const delivery = { ...DEFAULT_DELIVERY, ...deps.delivery };
  const registers = [deps.metrics];
  const evaluations = new Counter({
    name: 'touchstream_alerter_evaluations_total',
    help: 'Rule evaluations, by outcome (ok, pending, firing, not_judged, failed).',
    labelNames: ['outcome'],
    registers,
  });
  const transitions = new Counter({
    name: 'touchstream_alerter_transitions_total',
    help: 'Alerts that started firing or resolved.',
    labelNames: ['state'],
    registers,
  });
  const notices = new Counter({
    name: 'touchstream_alerter_notifications_total',
    help: 'Webhook notices by alert state and outcome (delivered, failed after retries).',
    labelNames: ['state', 'outcome'],
    registers,
  });
  const attemptsMetric = new Counter({
    name: 'touchstream_alerter_notification_attempts_total',
    help: 'Webhook requests made, retries included, by result (succeeded, failed).',
    labelNames: ['result'],
    registers,
  });
  const watches = new Map<string, Watch>();
  /** The rules of the latest cycle: an evaluation of a rule deleted since changes nothing. */
  let liveRules = new Set<string>();
  new Gauge({
    name: 'touchstream_alerter_alerts_firing',
    help: 'Rules whose alert is firing.',
    registers,
    collect() {
      this.set([...watches.values()].filter((w) => w.state.kind === 'firing').length);
    },
  });

  /** Open alerts: firing, or with a notice owed. */
  const records = new Map<string, AlertRecord>();
  const writeChains = new Map<string, Promise<unknown>>();
  const deliveryChains = new Map<string, Promise<unknown>>();
  const inFlight = new Set<Promise<unknown>>();
  const evaluating = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  const abort = new AbortController();
  let cycleTimer: NodeJS.Timeout | undefined;
  let lastCycleAt: number | null = null;
  let started = false;
  let stopping: Promise<void> | undefined;

  const track = <T>(work: Promise<T>) => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work)).catch(() => {});
    return work;
  };

  /**
   * Changes an alert and stores it. The writes of one alert run one after another, each
   * applying its change to what the previous one stored, so a delivery outcome and a
   * resolution arriving together never undo each other.
   */
  const update = (id: string, change: (record: AlertRecord) => AlertRecord) => {
    const previous = writeChains.get(id) ?? Promise.resolve();
    const write = previous
      .catch(() => {})
      .then(async () => {
        const current = records.get(id);
        if (!current) throw new Error(`alert ${id} is not open`);
        const next = change(current);
        await saveAlertRecord(store, next);
        records.set(id, next);
        const closed =
          next.alert.state === 'resolved' &&
          next.firingNotice !== 'pending' &&
          next.resolvedNotice !== 'pending';
        if (closed) records.delete(id);
        return next;
      });
    writeChains.set(id, write);
    // Both ways: a failed write is the caller's to handle, and a chain left rejected here
    // would be an unhandled rejection that ends the process.
    const forget = () => {
      if (writeChains.get(id) === write) writeChains.delete(id);
    };
    void write.then(forget, forget);
    return track(write);
  };

  /** Delivers an alert's owed notice; notices of one alert go out in order. */
  const notify = (id: string, state: AlertState) => {
    const previous = deliveryChains.get(id) ?? Promise.resolve();
    const sending = previous.then(async () => {
      const record = records.get(id);
      if (!record || abort.signal.aborted) return;
      const result = await deliverNotice(record, state, {
        ...delivery,
        now,
        signal: abort.signal,
        logger,
        onAttempt: (succeeded) =>
          attemptsMetric.inc({ result: succeeded ? 'succeeded' : 'failed' }),
      });
      if (result.outcome === 'interrupted') return;
      notices.inc({ state, outcome: result.outcome });
      const log = { alert_id: id, rule_id: record.alert.rule_id, state, ...result };
      if (result.outcome === 'delivered') logger.info(log, 'alert_notice_delivered');
      else logger.error(log, 'alert_notice_failed');
      const field = state === 'firing' ? 'firingNotice' : 'resolvedNotice';
      await update(id, (r) => ({ ...r, [field]: result.outcome }));
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
    });
    const settled = sending.catch((error) =>
      logger.error({ err: error, alert_id: id, state }, 'alert_notice_not_recorded'),
    );
    deliveryChains.set(id, settled);
    void settled.finally(() => {
      if (deliveryChains.get(id) === settled) deliveryChains.delete(id);
    });
    track(settled);
  };

  const fire = async (rule: AlertRule, judgement: Judgement, at: number) => {
    const id = `${rule.id}:${at}`;
    const record: AlertRecord = {
      id,
      alert: {
        rule_id: rule.id,
        journey: rule.journey,
        step: rule.step,
        condition: rule.condition,
        state: 'firing',
        value: judgement.value,
        baseline: judgement.baseline,
        started_at: iso(at),
        resolved_at: null,
        message: judgement.message,
      },
      firingMessage: judgement.message,
      webhookUrl: rule.webhook_url ?? '',
      firingNotice: rule.webhook_url ? 'pending' : 'none',
      resolvedNotice: 'none',
    };
    records.set(id, record);
    try {
      await update(id, (r) => r);
    } catch (error) {
      records.delete(id);
      throw error;
    }
    transitions.inc({ state: 'firing' });
    logger.warn({ rule_id: rule.id, alert_id: id, message: record.alert.message }, 'alert_firing');
    if (record.firingNotice === 'pending') notify(id, 'firing');
    return id;
  };

  const resolve = async (id: string, message: string, at: number) => {
    // Resolving twice (a deleted rule whose last evaluation resolved it too) would post
    // the resolution twice: the first resolution stands.
    if (records.get(id)?.alert.state !== 'firing') return;
    let already = false;
    const resolved = await update(id, (r) => {
      if (r.alert.state === 'resolved') {
        already = true;
        return r;
      }
      return {
        ...r,
        alert: { ...r.alert, state: 'resolved', resolved_at: iso(at), message },
        resolvedNotice: r.webhookUrl ? 'pending' : 'none',
      };
    });
    if (already) return;
    transitions.inc({ state: 'resolved' });
    logger.info({ rule_id: resolved.alert.rule_id, alert_id: id, message }, 'alert_resolved');
    if (resolved.resolvedNotice === 'pending') notify(id, 'resolved');
  };

  const evaluate = async (rule: AlertRule, journeys: Journey[]) => {
    const journey = journeys.find((j) => j.id === rule.journey);
    const index = journey?.steps.findIndex((s) => s.name === rule.step) ?? -1;
    const previous = journey?.steps[index - 1];
    if (!journey || index < 1 || !previous) {
      // The journey changed under the rule; the API refuses such rules, so say it loudly.
      logger.error(
        { rule_id: rule.id, journey: rule.journey, step: rule.step },
        'alert_rule_unresolvable',
      );
      evaluations.inc({ outcome: 'failed' });
      return;
    }
    const at = now();
    const windowMs = parseDuration(rule.window) ?? 0;
    const counts = await transitionCounts(store, {
      journey: journey.id,
      step: index,
      baselineFrom: at - windowMs - (parseDuration(rule.baseline_window) ?? 0),
      from: at - windowMs,
      to: at,
    });
    const judgement = judge(rule, previous.name, counts);
    const watch = watches.get(rule.id) ?? { state: OK };
    const step = nextState(watch.state, judgement.verdict, at, parseDuration(rule.for) ?? 0);
    // The rule was deleted while its counts were read: nothing watches the step any more.
    if (!liveRules.has(rule.id) || abort.signal.aborted) return;
    if (step.change === 'fire') {
      const recordId = await fire(rule, judgement, at);
      watches.set(rule.id, { state: step.state, recordId });
    } else if (step.change === 'resolve' && watch.recordId) {
      await resolve(watch.recordId, `Resolved: ${judgement.message}`, at);
      watches.set(rule.id, { state: step.state });
    } else {
      watches.set(rule.id, { ...watch, state: step.state });
    }
    evaluations.inc({
      outcome: judgement.verdict === 'not_judged' ? 'not_judged' : step.state.kind,
    });
    logger.debug(
      { rule_id: rule.id, verdict: judgement.verdict, state: step.state.kind, ...counts },
      'alert_rule_evaluated',
    );
  };

  /** A deleted rule's firing alert is resolved: nothing watches that step any more. */
  const forgetDeleted = async (rules: AlertRule[]) => {
    const live = new Set(rules.map((r) => r.id));
    for (const [ruleId, watch] of watches) {
      if (live.has(ruleId)) continue;
      watches.delete(ruleId);
      if (watch.state.kind === 'firing' && watch.recordId) {
        await resolve(watch.recordId, `Resolved: the rule "${ruleId}" was deleted.`, now());
      }
    }
  };

  /** Loads the rules and spreads their evaluations evenly across the interval. */
  const cycle = async () => {
    const [rules, journeys] = await Promise.all([listAlertRules(store), listJourneys(store)]);
    if (abort.signal.aborted) return;
    lastCycleAt = now();
    liveRules = new Set(rules.map((r) => r.id));
    await forgetDeleted(rules);
    if (abort.signal.aborted) return;
    const offsets = evaluationOffsets(rules.length, deps.intervalMs);
    rules.forEach((rule, i) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        // An evaluation still running (a slow query) is not doubled up.
        if (abort.signal.aborted || evaluating.has(rule.id)) return;
        evaluating.add(rule.id);
        track(
          evaluate(rule, journeys)
            .catch((error) => {
              evaluations.inc({ outcome: 'failed' });
              logger.warn({ err: error, rule_id: rule.id }, 'alert_rule_evaluation_failed');
            })
            .finally(() => evaluating.delete(rule.id)),
        );
      }, offsets[i]);
      timers.add(timer);
    });
  };

  // A cycle still loading rules when the next is due (a slow store) is not doubled up.
  let cycling = false;
  const runCycle = () => {
    if (abort.signal.aborted || cycling) return;
    cycling = true;
    track(
      cycle()
        .catch((error) => logger.warn({ err: error }, 'alert_cycle_failed'))
        .finally(() => {
          cycling = false;
        }),
    );
  };

  return {
    /** Takes over open alerts and owed notices, then evaluates every interval. */
    async start() {
      if (started) return;
      started = true;
      for (const record of await openAlertRecords(store)) {
        records.set(record.id, record);
        if (record.alert.state === 'firing') {
          watches.set(record.alert.rule_id, {
            state: { kind: 'firing', since: Date.parse(record.alert.started_at) },
            recordId: record.id,
          });
        }
        // The firing notice first: a receiver should not hear of a resolution before it.
        if (record.firingNotice === 'pending') notify(record.id, 'firing');
        if (record.resolvedNotice === 'pending') notify(record.id, 'resolved');
      }
      if (abort.signal.aborted) return;
      runCycle();
      cycleTimer = setInterval(runCycle, deps.intervalMs);
      logger.info({ interval_ms: deps.intervalMs, open_alerts: records.size }, 'alerter_started');
    },

    /** Stops evaluating and interrupts deliveries; what is owed is delivered after a restart. */
    stop() {
      stopping ??= (async () => {
        clearInterval(cycleTimer);
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        abort.abort();
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        logger.info('alerter_stopped');
      })();
      return stopping;
    },

    /** Healthy while cycles keep running: the last one began within two intervals. */
    health() {
      const sinceCycle = lastCycleAt === null ? null : now() - lastCycleAt;
      const ok =
        started &&
        !abort.signal.aborted &&
        sinceCycle !== null &&
        sinceCycle <= 2 * deps.intervalMs + 5_000;
      return {
        status: ok ? ('ok' as const) : ('unhealthy' as const),
        last_cycle_at: lastCycleAt === null ? null : iso(lastCycleAt),
        firing: [...watches.values()].filter((w) => w.state.kind === 'firing').length,
        open_alerts: records.size,
      };
    },
  };
}

export type Alerter = ReturnType<typeof buildAlerter>;
