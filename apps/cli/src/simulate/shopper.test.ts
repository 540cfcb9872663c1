import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findStep, PURCHASE, SIMULATED_JOURNEYS } from './journeys.js';
import { seededRandom } from './random.js';
import { DEFAULT_PROBABILITIES, type Emitted, nextEvent, startSession } from './shopper.js';

const SAMPLES = new URL('../../../../samples/journeys.yaml', import.meta.url);

function walk(seed: number, isBroken: Parameters<typeof nextEvent>[3] = () => false) {
  const rnd = seededRandom(seed);
  const events: Emitted[] = [];
  const outcomes: string[] = [];
  for (let c = 0; c < 2000; c++) {
    const session = startSession(`c${c}`, rnd, DEFAULT_PROBABILITIES);
    while (!session.done) events.push(nextEvent(session, rnd, DEFAULT_PROBABILITIES, isBroken));
    outcomes.push(`${session.journey.id}:${session.outcome}`);
  }
  return { events, outcomes };
}

describe('simulated customers', () => {
  it('walk the journeys of samples/journeys.yaml', async () => {
    const file = parse(await readFile(SAMPLES, 'utf8')) as {
      journeys: Record<
        string,
        { steps: { name: string; event_type: string }[]; failure_event_types: string[] }
      >;
    };
    for (const journey of SIMULATED_JOURNEYS) {
      const sample = file.journeys[journey.id];
      expect(sample?.steps.map((s) => [s.name, s.event_type])).toEqual(
        journey.steps.map((s) => [s.name, s.eventType]),
      );
      for (const step of journey.steps)
        expect(sample?.failure_event_types).toContain(step.failureType);
    }
  });

  it('reach every step on several channels, hand off, fail now and then, and pay in EUR', () => {
    const { events, outcomes } = walk(7);
    const types = new Set(events.map((e) => e.type));
    for (const journey of SIMULATED_JOURNEYS) {
      for (const step of journey.steps) expect(types).toContain(step.eventType);
    }
    expect(types).toContain('payment_failed');
    expect(types).toContain('checkout_error');
    expect(new Set(events.map((e) => e.channel)).size).toBe(5);
    expect(
      events
        .filter((e) => e.type === 'order_placed')
        .every((e) => e.properties?.currency === 'EUR'),
    ).toBe(true);
    for (const outcome of ['completed', 'left', 'failed']) {
      expect(outcomes).toContain(`online-purchase:${outcome}`);
    }
    // Every step is taken on a channel that can take it.
    for (const e of events) {
      const found = findStep(e.type);
      if (found) expect(found.step.channels).toContain(e.channel);
    }
  });

  it('never reach a broken step', () => {
    const paid = PURCHASE.steps.findIndex((s) => s.name === 'paid');
    const { events, outcomes } = walk(7, (journey, step) => journey === PURCHASE && step === paid);
    expect(events.some((e) => e.type === 'payment_submitted')).toBe(false);
    expect(events.some((e) => e.type === 'order_placed')).toBe(false);
    expect(events.filter((e) => e.type === 'payment_failed').length).toBeGreaterThan(100);
    expect(outcomes).not.toContain('online-purchase:completed');
    expect(outcomes).toContain('signup:completed');
  });
});
