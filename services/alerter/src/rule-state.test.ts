import { describe, expect, it } from 'vitest';
import { nextState, OK, type RuleState, type Verdict } from './rule-state.js';

/** Runs verdicts at the given times through the machine; returns the changes seen. */
function run(steps: [number, Verdict][], forMs: number) {
  let state: RuleState = OK;
  const changes: string[] = [];
  for (const [now, verdict] of steps) {
    const next = nextState(state, verdict, now, forMs);
    state = next.state;
    if (next.change) changes.push(`${next.change}@${now}`);
  }
  return { state, changes };
}

describe('alert rule state machine', () => {
  it('stays ok while the condition is clear', () => {
    expect(
      run(
        [
          [0, 'clear'],
          [1, 'clear'],
        ],
        0,
      ),
    ).toEqual({ state: OK, changes: [] });
  });

  it('fires at once without `for`, and only once while the condition holds', () => {
    const { state, changes } = run(
      [
        [0, 'holds'],
        [1, 'holds'],
        [2, 'holds'],
      ],
      0,
    );
    expect(changes).toEqual(['fire@0']);
    expect(state).toEqual({ kind: 'firing', since: 0 });
  });

  it('waits `for` in pending before firing', () => {
    const { changes } = run(
      [
        [0, 'holds'],
        [5, 'holds'],
        [10, 'holds'],
        [11, 'holds'],
      ],
      10,
    );
    expect(changes).toEqual(['fire@10']);
    expect(nextState(OK, 'holds', 0, 10).state).toEqual({ kind: 'pending', since: 0 });
  });

  it('goes back to ok from pending without a notice', () => {
    const { state, changes } = run(
      [
        [0, 'holds'],
        [5, 'clear'],
        [12, 'holds'],
      ],
      10,
    );
    expect(changes).toEqual([]);
    expect(state).toEqual({ kind: 'pending', since: 12 });
  });

  it('resolves once when the condition clears', () => {
    const { state, changes } = run(
      [
        [0, 'holds'],
        [1, 'clear'],
        [2, 'clear'],
      ],
      0,
    );
    expect(changes).toEqual(['fire@0', 'resolve@1']);
    expect(state).toEqual(OK);
  });

  it('fires again after a resolution', () => {
    const { changes } = run(
      [
        [0, 'holds'],
        [1, 'clear'],
        [2, 'holds'],
      ],
      0,
    );
    expect(changes).toEqual(['fire@0', 'resolve@1', 'fire@2']);
  });

  it('is not moved by evaluations that could not judge', () => {
    expect(
      run(
        [
          [0, 'holds'],
          [1, 'not_judged'],
          [2, 'not_judged'],
        ],
        0,
      ).changes,
    ).toEqual(['fire@0']);
    expect(run([[0, 'not_judged']], 0).state).toEqual(OK);
    const pending = run(
      [
        [0, 'holds'],
        [20, 'not_judged'],
      ],
      10,
    );
    expect(pending).toEqual({ state: { kind: 'pending', since: 0 }, changes: [] });
    expect(
      run(
        [
          [0, 'holds'],
          [20, 'not_judged'],
          [21, 'holds'],
        ],
        10,
      ).changes,
    ).toEqual(['fire@21']);
  });
});
