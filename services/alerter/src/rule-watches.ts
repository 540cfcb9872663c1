import type { AlertRule } from '@touchstream/contracts';
import type { AlertRecord } from '@touchstream/store';
import type { Logger } from 'pino';
import type { AlertBook } from './alert-book.js';
import type { AlerterMetrics } from './alerter-metrics.js';
import type { Judgement } from './judge.js';
import type { OwedNotices } from './owed-notices.js';
import { nextState, OK, type RuleState } from './rule-state.js';

export interface RuleWatchesDeps {
  book: AlertBook;
  notices: OwedNotices;
  logger: Logger;
  now: () => number;
  metrics: Pick<AlerterMetrics, 'transitions'>;
}

interface Watch {
  state: RuleState;
  /** The open alert while firing. */
  recordId?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Where each rule stands (ok, pending, firing), and the alerts its moves open and resolve:
 * a rule that starts firing opens an alert, one that clears or is deleted resolves it, and
 * each of those owes its webhook a notice.
 */
export function buildRuleWatches(deps: RuleWatchesDeps) {
  const { book, notices, logger, metrics } = deps;
  const watches = new Map<string, Watch>();
  /** The rules of the latest cycle: an evaluation of a rule deleted since changes nothing. */
  let live = new Set<string>();

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
    await book.open(record);
    metrics.transitions.inc({ state: 'firing' });
    logger.warn({ rule_id: rule.id, alert_id: id, message: record.alert.message }, 'alert_firing');
    if (record.firingNotice === 'pending') notices.owe(id, 'firing');
    return id;
  };

  const resolve = async (id: string, message: string, at: number) => {
    // Resolving twice (a deleted rule whose last evaluation resolved it too) would post
    // the resolution twice: the first resolution stands.
    if (book.get(id)?.alert.state !== 'firing') return;
    let already = false;
    const resolved = await book.update(id, (r) => {
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
    metrics.transitions.inc({ state: 'resolved' });
    logger.info({ rule_id: resolved.alert.rule_id, alert_id: id, message }, 'alert_resolved');
    if (resolved.resolvedNotice === 'pending') notices.owe(id, 'resolved');
  };

  return {
    /** A firing alert an earlier run left open: its rule goes on firing from when it began. */
    takeOver(record: AlertRecord) {
      watches.set(record.alert.rule_id, {
        state: { kind: 'firing', since: Date.parse(record.alert.started_at) },
        recordId: record.id,
      });
    },

    /**
     * The rules of a new cycle. A deleted rule's firing alert is resolved: nothing watches
     * that step any more.
     */
    async watchOnly(rules: AlertRule[]) {
      live = new Set(rules.map((r) => r.id));
      for (const [ruleId, watch] of watches) {
        if (live.has(ruleId)) continue;
        watches.delete(ruleId);
        if (watch.state.kind === 'firing' && watch.recordId) {
          await resolve(watch.recordId, `Resolved: the rule "${ruleId}" was deleted.`, deps.now());
        }
      }
    },

    /**
     * Moves the rule by what its evaluation at `at` found, opening or resolving its alert.
     * The rule's new state, or undefined when the rule was deleted while it was judged.
     */
    async apply(
      rule: AlertRule,
      judgement: Judgement,
      at: number,
      forMs: number,
    ): Promise<RuleState | undefined> {
      const watch = watches.get(rule.id) ?? { state: OK };
      const step = nextState(watch.state, judgement.verdict, at, forMs);
      if (!live.has(rule.id)) return undefined;
      if (step.change === 'fire') {
        const recordId = await fire(rule, judgement, at);
        watches.set(rule.id, { state: step.state, recordId });
      } else if (step.change === 'resolve' && watch.recordId) {
        await resolve(watch.recordId, `Resolved: ${judgement.message}`, at);
        watches.set(rule.id, { state: step.state });
      } else {
        watches.set(rule.id, { ...watch, state: step.state });
      }
      return step.state;
    },

    /** How many rules are firing. */
    firing: () => [...watches.values()].filter((w) => w.state.kind === 'firing').length,
  };
}

export type RuleWatches = ReturnType<typeof buildRuleWatches>;
