/**
 * Where a rule stands: `ok`, `pending` (its condition holds, waiting out `for`) or
 * `firing`. `since` is when the condition was first seen to hold.
 */
export type RuleState =
  | { kind: 'ok' }
  | { kind: 'pending'; since: number }
  | { kind: 'firing'; since: number };

/** What an evaluation found: the condition holds, does not, or could not be judged. */
export type Verdict = 'holds' | 'clear' | 'not_judged';

export interface Step {
  state: RuleState;
  /** `fire`: became firing; `resolve`: went back to ok. Each owes one notice. */
  change: 'fire' | 'resolve' | null;
}

export const OK: RuleState = { kind: 'ok' };

/**
 * The rule's next state. A verdict that could not be judged (too few entries, no baseline)
 * changes nothing: it is no evidence that a broken step recovered, nor that it broke.
 */
export function nextState(state: RuleState, verdict: Verdict, now: number, forMs: number): Step {
  if (verdict === 'not_judged') return { state, change: null };
  if (verdict === 'clear') {
    return { state: OK, change: state.kind === 'firing' ? 'resolve' : null };
  }
  switch (state.kind) {
    case 'firing':
      return { state, change: null };
    case 'pending':
      return now - state.since >= forMs
        ? { state: { kind: 'firing', since: state.since }, change: 'fire' }
        : { state, change: null };
    case 'ok':
      return forMs <= 0
        ? { state: { kind: 'firing', since: now }, change: 'fire' }
        : { state: { kind: 'pending', since: now }, change: null };
  }
}
