import { type Review, type ReviewStepFigures, reviewResponse } from '@touchstream/contracts';
import { describe, expect, it } from 'vitest';
import { money, percent, points, reviewMarkdown } from './review-markdown.js';

const none = { responses: 0, mean_score: null };

const figures = (overrides: Partial<ReviewStepFigures>): ReviewStepFigures => ({
  reached: 100,
  continued: 60,
  dropped: 40,
  conversion: 0.6,
  below_target: false,
  value_dropped: 0,
  value_continued: 0,
  top_reasons: [],
  feedback: { dropped: none, continued: none },
  ...overrides,
});

const REVIEW: Review = {
  journey: 'online-purchase',
  name: 'Online purchase',
  currency: 'EUR',
  period: '7d',
  current: {
    from: '2026-11-28T16:00:00.000Z',
    to: '2026-12-05T16:00:00.000Z',
    entered: 1200,
    completed: 300,
    value_completed: 45_000.5,
    value_dropped: 12_345.678,
  },
  previous: {
    from: '2026-11-21T16:00:00.000Z',
    to: '2026-11-28T16:00:00.000Z',
    entered: 1000,
    completed: 280,
    value_completed: 40_000,
    value_dropped: 10_000,
  },
  transitions: [
    {
      from_step: 'viewed',
      to_step: 'carted',
      owner: 'web | team',
      target_conversion: 0.8,
      current: figures({
        conversion: 0.4567,
        below_target: true,
        value_dropped: 9_000.1,
        top_reasons: [
          { reason: 'checkout_error', dropped: 12 },
          { reason: '', dropped: 3 },
        ],
        feedback: {
          dropped: { responses: 5, mean_score: 2.1 },
          continued: { responses: 10, mean_score: 4.25 },
        },
      }),
      previous: figures({ conversion: 0.5067 }),
      change: -0.05,
    },
    {
      from_step: 'carted',
      to_step: 'paid',
      owner: null,
      target_conversion: null,
      current: figures({ conversion: 0.75, value_dropped: 3_345.58 }),
      previous: figures({ reached: 0, continued: 0, dropped: 0, conversion: 0 }),
      change: null,
    },
  ],
  alerts: [
    {
      rule_id: 'cart-below',
      step: 'carted',
      condition: 'below_target',
      state: 'resolved',
      started_at: '2026-12-01T10:15:30.000Z',
      resolved_at: '2026-12-01T11:00:00.000Z',
      message: 'back to 81%',
    },
    {
      rule_id: 'paid-quiet',
      step: 'paid',
      condition: 'no_events',
      state: 'firing',
      started_at: '2026-12-05T15:00:00.000Z',
      resolved_at: null,
      message: 'no payment for 5m',
    },
  ],
};

describe('reviewMarkdown', () => {
  const text = reviewMarkdown(REVIEW);
  const lines = text.split('\n');

  it('is a valid review to start with', () => {
    expect(reviewResponse.parse(REVIEW)).toEqual(REVIEW);
  });

  it('titles the journey and its dates, and says which periods are compared', () => {
    expect(lines[0]).toBe('# Journey review: Online purchase, 2026-11-28 to 2026-12-05');
    expect(text).toContain('the last 7d: 2026-11-28 16:00 UTC – 2026-12-05 16:00 UTC');
    expect(text).toContain('the 7d before: 2026-11-21 16:00 UTC – 2026-11-28 16:00 UTC');
  });

  it('heads with the value lost, in the currency, against the previous period', () => {
    expect(text).toContain(
      '**Value lost at points of disconnection: 12,345.68 EUR** (previous 7d: 10,000.00 EUR; +2,345.68 EUR, +23.5%).',
    );
    expect(text).toContain('Value completed: 45,000.50 EUR (previous: 40,000.00 EUR)');
  });

  it('has one table row per transition, numbers formatted for people', () => {
    const header = lines.findIndex((l) => l.startsWith('| Step |'));
    expect(lines[header]).toBe(
      '| Step | Owner | Conversion | Target | Change | Value dropped | Top reason (dropped) | Feedback score: droppers / continuers |',
    );
    expect(lines[header + 2]).toBe(
      '| viewed → carted | web \\| team | 45.7% **⚠ below target** | 80.0% | −5.0 pts (from 50.7%) | 9,000.10 EUR | checkout_error (12) | 2.10 (n=5) / 4.25 (n=10) |',
    );
    expect(lines[header + 3]).toBe(
      '| carted → paid | — | 75.0% | — | — | 3,345.58 EUR | — | — / — |',
    );
    expect(lines[header + 4]).toBe('');
  });

  it('lists the steps below target', () => {
    expect(text).toContain('**⚠ Below target (1):**');
    expect(text).toContain(
      '- viewed → carted: 45.7% against a target of 80.0% (owner: web | team)',
    );
  });

  it('ends with the alerts fired', () => {
    const at = lines.indexOf('## Alerts fired (2)');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 2, at + 4)).toEqual([
      '- 2026-12-01 10:15 UTC: `cart-below` (below_target) at step carted, resolved 2026-12-01 11:00 UTC: back to 81%',
      '- 2026-12-05 15:00 UTC: `paid-quiet` (no_events) at step paid, **firing**: no payment for 5m',
    ]);
  });

  it('says so when no alert fired and when the journey counts no value', () => {
    const plain = reviewMarkdown({
      ...REVIEW,
      currency: null,
      current: { ...REVIEW.current, value_completed: null, value_dropped: null },
      previous: { ...REVIEW.previous, value_completed: null, value_dropped: null },
      transitions: REVIEW.transitions.map((t) => ({
        ...t,
        current: { ...t.current, value_dropped: null, below_target: false },
      })),
      alerts: [],
    });
    expect(plain).toContain('Entered: **1200** (previous 7d: 1000); completed: **300**');
    expect(plain).toContain('no value property');
    expect(plain).not.toContain('⚠');
    expect(plain).toContain('## Alerts fired (0)\n\nNo alerts fired in the period.\n');
  });
});

describe('number formats', () => {
  it('formats percentages, points and money', () => {
    expect(percent(0)).toBe('0.0%');
    expect(percent(1)).toBe('100.0%');
    expect(percent(0.12345)).toBe('12.3%');
    expect(points(0.0123)).toBe('+1.2 pts');
    expect(points(-0.0004)).toBe('+0.0 pts');
    expect(points(-0.1)).toBe('−10.0 pts');
    expect(money(1234.5, 'EUR')).toBe('1,234.50 EUR');
    expect(money(0, null)).toBe('0.00');
    expect(money(null, 'EUR')).toBe('—');
  });
});
