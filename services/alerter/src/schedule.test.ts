import { describe, expect, it } from 'vitest';
import { evaluationOffsets } from './schedule.js';

describe('staggered evaluations', () => {
  it('spreads the rules evenly across the interval, each once', () => {
    expect(evaluationOffsets(4, 60_000)).toEqual([0, 15_000, 30_000, 45_000]);
    expect(evaluationOffsets(1, 60_000)).toEqual([0]);
    expect(evaluationOffsets(0, 60_000)).toEqual([]);
    const many = evaluationOffsets(1000, 1_000);
    expect(Math.max(...many)).toBeLessThan(1_000);
    expect(new Set(many).size).toBe(1000);
  });
});
