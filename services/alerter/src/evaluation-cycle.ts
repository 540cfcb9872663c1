import type { AlertRule, Journey } from '@touchstream/contracts';
import { listAlertRules, listJourneys, type Store } from '@touchstream/store';
import type { Logger } from 'pino';
import { evaluationOffsets } from './schedule.js';

export interface EvaluationCycleDeps {
  store: Store;
  logger: Logger;
  intervalMs: number;
  now: () => number;
  /** Aborted when the alerter stops: no cycle nor evaluation starts after it. */
  signal: AbortSignal;
  /** Told of each cycle's rules before any of them is evaluated. */
  watchOnly: (rules: AlertRule[]) => Promise<void>;
  /** Evaluates one rule; never rejects. */
  evaluate: (rule: AlertRule, journeys: Journey[]) => Promise<void>;
}

/**
 * Every interval, loads the rules and spreads their evaluations evenly across the
 * interval, so that their queries do not reach ClickHouse all at once.
 */
export function buildEvaluationCycle(deps: EvaluationCycleDeps) {
  const { logger, signal } = deps;
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<unknown>>();
  const evaluating = new Set<string>();
  let cycleTimer: NodeJS.Timeout | undefined;
  let lastCycleAt: number | null = null;
  // A cycle still loading rules when the next is due (a slow store) is not doubled up.
  let cycling = false;

  // Both ways: the work logs its own failures, and a rejection left unhandled here would
  // end the process.
  const track = (work: Promise<unknown>) => {
    inFlight.add(work);
    const forget = () => inFlight.delete(work);
    void work.then(forget, forget);
  };

  const evaluateLater = (rule: AlertRule, journeys: Journey[], offsetMs: number) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      // An evaluation still running (a slow query) is not doubled up.
      if (signal.aborted || evaluating.has(rule.id)) return;
      evaluating.add(rule.id);
      track(deps.evaluate(rule, journeys).finally(() => evaluating.delete(rule.id)));
    }, offsetMs);
    timers.add(timer);
  };

  const cycle = async () => {
    const [rules, journeys] = await Promise.all([
      listAlertRules(deps.store),
      listJourneys(deps.store),
    ]);
    if (signal.aborted) return;
    lastCycleAt = deps.now();
    await deps.watchOnly(rules);
    if (signal.aborted) return;
    const offsets = evaluationOffsets(rules.length, deps.intervalMs);
    rules.forEach((rule, i) => {
      evaluateLater(rule, journeys, offsets[i] ?? 0);
    });
  };

  const runCycle = () => {
    if (signal.aborted || cycling) return;
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
    /** Runs a cycle now and then one every interval. */
    start() {
      runCycle();
      cycleTimer = setInterval(runCycle, deps.intervalMs);
    },

    /** Starts no more cycles nor evaluations. */
    halt() {
      clearInterval(cycleTimer);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },

    /** Settles once the cycles and evaluations running have, and those they started. */
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },

    /** When the latest cycle loaded its rules, epoch milliseconds. */
    lastCycleAt: () => lastCycleAt,
  };
}

export type EvaluationCycle = ReturnType<typeof buildEvaluationCycle>;
