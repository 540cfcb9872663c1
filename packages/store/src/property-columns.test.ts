import { describe, expect, it } from 'vitest';
import { funnelChainsSql } from './funnel-chains.js';

const T0 = Date.UTC(2026, 4, 1);

describe('property columns in funnels', () => {
  it('are read in place of the JSON only for the properties stored', () => {
    const spec = {
      steps: [
        { event_type: 'viewed', name: 'viewed' },
        { event_type: 'carted', name: 'carted' },
      ],
      from: T0,
      to: T0 + 3_600_000,
      windowMs: 3_600_000,
      filters: [],
      holdConstant: ['plan', 'n'],
      breakdown: { by: 'property' as const, name: 'plan' },
    };
    const { query } = funnelChainsSql(spec, undefined, new Set(['plan']));
    expect(query).toContain('cityHash64(property_plan, simpleJSONExtractRaw(properties');
    expect(query).toContain("JSONType(property_plan) = 'String'");
    expect(funnelChainsSql(spec).query).not.toContain('property_plan');
  });
});
