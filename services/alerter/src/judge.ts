import type { AlertRule } from '@touchstream/contracts';
import type { TransitionCounts } from '@touchstream/store';
import type { Verdict } from './rule-state.js';

export interface Judgement {
  verdict: Verdict;
  /** no_events: instances that reached the step; conversion_drop: conversion in the window. */
  value: number | null;
  /** conversion_drop: conversion over the baseline range; null otherwise or when unknown. */
  baseline: number | null;
  /** A sentence a person on call can act on. */
  message: string;
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Judges a rule's condition on the counts of its transition (previous step -> step). */
export function judge(rule: AlertRule, previousStep: string, counts: TransitionCounts): Judgement {
  const where = `step "${rule.step}" of journey "${rule.journey}"`;
  const lastWindow = `in the last ${rule.window}`;
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
