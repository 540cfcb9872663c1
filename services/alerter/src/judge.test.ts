import { type AlertRule, alertRuleBody } from '@touchstream/contracts';
import type { TransitionCounts } from '@touchstream/store';
import { describe, expect, it } from 'vitest';
import { judge } from './judge.js';
import { noticeOf } from './notice.js';

const rule = (overrides: Partial<AlertRule> = {}): AlertRule => ({
  id: 'paid-broken',
  ...alertRuleBody.parse({ journey: 'shop', step: 'paid', condition: 'no_events' }),
  ...overrides,
});

const counts = (overrides: Partial<TransitionCounts> = {}): TransitionCounts => ({
  entries: 40,
  reachedStep: 30,
  continued: 30,
  dropped: 10,
  baselineContinued: 900,
  baselineDropped: 100,
  ...overrides,
});

describe('judging a rule', () => {
  it('does not judge with fewer entries than min_entries', () => {
    const found = judge(rule({ min_entries: 50 }), 'checkout', counts());
    expect(found.verdict).toBe('not_judged');
    expect(found.message).toContain('fewer than min_entries (50)');
  });

  it('finds below_target when conversion in the window is under the step target, as shown', () => {
    const below = rule({ condition: 'below_target', min_entries: 20 });
    // 30 of 40: 75%.
    expect(judge(below, 'checkout', counts(), 0.8)).toEqual({
      verdict: 'holds',
      value: 0.75,
      baseline: 0.8,
      message:
        'Conversion from "checkout" to step "paid" of journey "shop" is 75.0% in the last 5m (30 of 40), below its target of 80.0%.',
    });
    expect(judge(below, 'checkout', counts(), 0.75).verdict).toBe('clear');
    // 2 of 3 is 0.6667 as shown: a target of 0.6667 is met.
    expect(
      judge({ ...below, min_entries: 3 }, 'checkout', counts({ continued: 2, dropped: 1 }), 0.6667)
        .verdict,
    ).toBe('clear');
    // min_entries counts decided instances, not entries.
    const few = judge(below, 'checkout', counts({ continued: 10, dropped: 9 }), 0.8);
    expect(few.verdict).toBe('not_judged');
    expect(few.message).toContain('19 instances continued or dropped');
    expect(judge(below, 'checkout', counts()).verdict).toBe('not_judged');
  });

  it('finds no_events when no instance reached the step', () => {
    expect(judge(rule(), 'checkout', counts({ reachedStep: 0 }))).toEqual({
      verdict: 'holds',
      value: 0,
      baseline: null,
      message:
        'No instance reached step "paid" of journey "shop" in the last 5m, while 40 instances reached "checkout".',
    });
    expect(judge(rule(), 'checkout', counts()).verdict).toBe('clear');
  });

  it('fires no_events with min_entries 0 on an empty window, as the contract reads', () => {
    const empty = counts({ entries: 0, reachedStep: 0 });
    expect(judge(rule({ min_entries: 0 }), 'checkout', empty).verdict).toBe('holds');
  });

  it('compares conversion with (1 - drop) times the baseline', () => {
    const drop = rule({ condition: 'conversion_drop', drop: 0.5 });
    // Baseline 0.9; threshold 0.45.
    const low = judge(drop, 'checkout', counts({ continued: 8, dropped: 12 }));
    expect(low).toMatchObject({ verdict: 'holds', value: 0.4, baseline: 0.9 });
    expect(low.message).toContain('fell to 40.0% in the last 5m (8 of 20)');
    const fine = judge(drop, 'checkout', counts({ continued: 10, dropped: 10 }));
    expect(fine).toMatchObject({ verdict: 'clear', value: 0.5, baseline: 0.9 });
  });

  it('does not judge conversion before anything resolved, or without a baseline', () => {
    const drop = rule({ condition: 'conversion_drop' });
    expect(judge(drop, 'c', counts({ continued: 0, dropped: 0 })).verdict).toBe('not_judged');
    const noBaseline = counts({ baselineContinued: 0, baselineDropped: 0 });
    expect(judge(drop, 'c', noBaseline).verdict).toBe('not_judged');
    const thinBaseline = counts({ baselineContinued: 5, baselineDropped: 0 });
    expect(judge(drop, 'c', thinBaseline).verdict).toBe('not_judged');
  });
});

describe('a notice', () => {
  it('is the alert object with a chat-ready text', () => {
    const alert = {
      rule_id: 'paid-broken',
      journey: 'shop',
      step: 'paid',
      condition: 'no_events' as const,
      state: 'resolved' as const,
      value: 3,
      baseline: null,
      started_at: '2026-10-01T12:00:00.000Z',
      resolved_at: '2026-10-01T12:05:00.000Z',
      message: 'Resolved: 3 instances reached step "paid".',
    };
    const notice = noticeOf(alert);
    expect(notice).toMatchObject(alert);
    expect(notice.text).toContain('*RESOLVED*: no events on step `paid` of journey `shop`');
    expect(noticeOf({ ...alert, state: 'firing' }).text).toContain('*FIRING*');
    expect(noticeOf({ ...alert, condition: 'below_target' }).text).toContain(
      'below target on step `paid`',
    );
  });
});
