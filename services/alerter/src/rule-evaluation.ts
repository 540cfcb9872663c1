import { type AlertRule, type Journey, parseDuration } from '@touchstream/contracts';
import { type Store, transitionCounts } from '@touchstream/store';
import type { Logger } from 'pino';
import type { AlerterMetrics } from './alerter-metrics.js';
import { judge } from './judge.js';
import type { RuleWatches } from './rule-watches.js';

export interface RuleEvaluationDeps {
  store: Store;
  logger: Logger;
  now: () => number;
  /** Aborted when the alerter stops: an evaluation then finishing changes nothing. */
  signal: AbortSignal;
  watches: RuleWatches;
  metrics: Pick<AlerterMetrics, 'evaluations'>;
}

/**
 * Evaluates one rule: reads the transition counts of its step over its window and its
 * baseline, judges them and moves the rule's watch. Every evaluation is counted by
 * outcome; one that fails is counted and logged, not thrown, since the next interval
 * evaluates the rule again.
 */
export function buildRuleEvaluation(deps: RuleEvaluationDeps) {
  const { store, logger, signal, watches, metrics } = deps;

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
      metrics.evaluations.inc({ outcome: 'failed' });
      return;
    }
    const at = deps.now();
    const windowMs = parseDuration(rule.window) ?? 0;
    const counts = await transitionCounts(store, {
      journey: journey.id,
      step: index,
      baselineFrom: at - windowMs - (parseDuration(rule.baseline_window) ?? 0),
      from: at - windowMs,
      to: at,
    });
    const judgement = judge(rule, previous.name, counts, journey.steps[index]?.target_conversion);
    if (signal.aborted) return;
    const state = await watches.apply(rule, judgement, at, parseDuration(rule.for) ?? 0);
    // The rule was deleted while its counts were read: nothing watches the step any more.
    if (!state) return;
    metrics.evaluations.inc({
      outcome: judgement.verdict === 'not_judged' ? 'not_judged' : state.kind,
    });
    logger.debug(
      { rule_id: rule.id, verdict: judgement.verdict, state: state.kind, ...counts },
      'alert_rule_evaluated',
    );
  };

  return async (rule: AlertRule, journeys: Journey[]) => {
    try {
      await evaluate(rule, journeys);
    } catch (error) {
      metrics.evaluations.inc({ outcome: 'failed' });
      logger.warn({ err: error, rule_id: rule.id }, 'alert_rule_evaluation_failed');
    }
  };
}

export type EvaluateRule = ReturnType<typeof buildRuleEvaluation>;
