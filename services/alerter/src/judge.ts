import type { AlertRule } from '@touchstream/contracts';
import type { TransitionCounts } from '@touchstream/store';
import type { Verdict } from './rule-state.js';

export interface Judgement {
  verdict: Verdict;
  /** no_events: instances that reached the step; otherwise the conversion in the window. */
  value: number | null;
  /**
   * conversion_drop: the conversion over the baseline range; below_target: the step's
   * target; null otherwise or when unknown.
   */
  baseline: number | null;
  /** A sentence a person on call can act on. */
  message: string;
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Judges a rule's condition on the counts of its transition (previous step -> step);
 * `target` is the step's target_conversion (below_target).
 */
export function judge(
  rule: AlertRule,
  previousStep: string,
  counts: TransitionCounts,
  target?: number,
): Judgement {
  const where = `step "${rule.step}" of journey "${rule.journey}"`;
  const lastWindow = `in the last ${rule.window}`;
  if (rule.condition === 'below_target') return judgeTarget(rule, previousStep, counts, target);
  if (counts.entries < rule.min_entries) {
    return {
      verdict: 'not_judged',
      value: null,
      baseline: null,
      message: `Not judged: ${plural(counts.entries, 'instance')} reached "${previousStep}" ${lastWindow}, fewer than min_entries (${rule.min_entries}).`,
    };
  }
  if (rule.condition === 'no_events') {
    const entered = `${plural(counts.entries, 'instance')} reached "${previousStep}"`;
    return counts.reachedStep === 0
      ? {
          verdict: 'holds',
          value: 0,
          baseline: null,
          message: `No instance reached ${where} ${lastWindow}, while ${entered}.`,
        }
      : {
          verdict: 'clear',
          value: counts.reachedStep,
          baseline: null,
          message: `${plural(counts.reachedStep, 'instance')} reached ${where} ${lastWindow}; ${entered}.`,
        };
  }
  const resolved = counts.continued + counts.dropped;
  const baselineResolved = counts.baselineContinued + counts.baselineDropped;
  const transition = `Conversion from "${previousStep}" to ${where}`;
  if (resolved === 0) {
    return {
      verdict: 'not_judged',
      value: null,
      baseline: null,
      message: `Not judged: none of the instances that reached "${previousStep}" ${lastWindow} has continued or dropped yet.`,
    };
  }
  const value = counts.continued / resolved;
  // A baseline of a handful of instances is noise: it needs as many as the window does.
  if (baselineResolved === 0 || baselineResolved < rule.min_entries) {
    return {
      verdict: 'not_judged',
      value: round4(value),
      baseline: null,
      message: `Not judged: only ${plural(baselineResolved, 'instance')} continued or dropped over the ${rule.baseline_window} baseline.`,
    };
  }
  const baseline = counts.baselineContinued / baselineResolved;
  const threshold = (1 - rule.drop) * baseline;
  const observed = `${percent(value)} ${lastWindow} (${counts.continued} of ${resolved})`;
  const against = `its baseline of ${percent(baseline)} over the ${rule.baseline_window} before`;
  return value < threshold
    ? {
        verdict: 'holds',
        value: round4(value),
        baseline: round4(baseline),
        message: `${transition} fell to ${observed}, below ${percent(1 - rule.drop)} of ${against}.`,
      }
    : {
        verdict: 'clear',
        value: round4(value),
        baseline: round4(baseline),
        message: `${transition} is ${observed}, against ${against}.`,
      };
}

/**
 * below_target (API.md): the conversion into the step over the window, judged once
 * min_entries instances are decided, against the step's target; compared as shown (4
 * decimals), as the drop-off answer's below_target is.
 */
function judgeTarget(
  rule: AlertRule,
  previousStep: string,
  counts: TransitionCounts,
  target: number | undefined,
): Judgement {
  const transition = `Conversion from "${previousStep}" to step "${rule.step}" of journey "${rule.journey}"`;
  if (target === undefined) {
    return {
      verdict: 'not_judged',
      value: null,
      baseline: null,
      message: `Not judged: step "${rule.step}" has no target_conversion any more.`,
    };
  }
  const resolved = counts.continued + counts.dropped;
  if (resolved === 0 || resolved < rule.min_entries) {
    return {
      verdict: 'not_judged',
      value: null,
      baseline: target,
      message: `Not judged: ${plural(resolved, 'instance')} continued or dropped in the last ${rule.window}, fewer than min_entries (${rule.min_entries}).`,
    };
  }
  const value = round4(counts.continued / resolved);
  const observed = `${percent(value)} in the last ${rule.window} (${counts.continued} of ${resolved})`;
  return value < target
    ? {
        verdict: 'holds',
        value,
        baseline: target,
        message: `${transition} is ${observed}, below its target of ${percent(target)}.`,
      }
    : {
        verdict: 'clear',
        value,
        baseline: target,
        message: `${transition} is ${observed}, meeting its target of ${percent(target)}.`,
      };
}
