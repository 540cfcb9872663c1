import type { BusRecord } from '@touchstream/bus';
import { describe, expect, it } from 'vitest';
import { outcomeOf } from './outcomes.js';

const NOW = Date.UTC(2026, 11, 4, 12);
const CLOCK = { now: NOW, maxFutureMs: 3_600_000 };
const event = {
  event_id: 'e-1',
  customer_id: 'c-1',
  type: 'product_viewed',
  channel: 'web',
  timestamp: NOW - 60_000,
};

const record = (value: string, decoded?: unknown): BusRecord => ({
  topic: 't.touchpoints',
  partition: 3,
  offset: '41',
  key: 'c-1',
  value: Buffer.from(value),
  headers: { source: 'till-7' },
  decoded,
});

describe('outcomeOf', () => {
  it('makes a valid record an event', () => {
    const outcome = outcomeOf(record(JSON.stringify(event)), CLOCK);
    expect(outcome).toMatchObject({ kind: 'ok', event });
  });

  it('reads the processor’s own identity messages by their header, and dead-letters bad ones', () => {
    const linked = { kind: 'linked', anonymous_id: 'cookie-1' };
    const control = (value: string): BusRecord => ({
      ...record(value),
      headers: { touchstream_control: 'linked' },
    });
    expect(outcomeOf(control(JSON.stringify(linked)), CLOCK)).toEqual({
      kind: 'identity',
      message: linked,
    });
    const bad = outcomeOf(control(JSON.stringify(event)), CLOCK);
    expect(bad.kind === 'dead_letter' && bad.letter.headers?.dlq_reason).toBe(
      'invalid_identity_message',
    );
  });

  it('takes what the collector of this process validated without decoding the bytes again', () => {
    // Bytes that would not decode: only the validated event can have made this an event.
    const outcome = outcomeOf(record('not json', event), CLOCK);
    expect(outcome).toMatchObject({ kind: 'ok', event });
  });

  it('still judges a validated event by this clock', () => {
    const ahead = { ...event, timestamp: NOW + 2 * 3_600_000 };
    const outcome = outcomeOf(record(JSON.stringify(ahead), ahead), CLOCK);
    expect(outcome.kind).toBe('dead_letter');
    expect(outcome.kind === 'dead_letter' && outcome.letter.headers?.dlq_reason).toMatch(
      /^future_timestamp: timestamp is 2 hours/,
    );
  });

  it('makes anything else a dead letter with its provenance and its own headers', () => {
    const outcome = outcomeOf(record('{nope'), CLOCK);
    expect(outcome).toEqual({
      kind: 'dead_letter',
      letter: {
        key: 'c-1',
        value: Buffer.from('{nope'),
        headers: {
          source: 'till-7',
          dlq_reason: 'not_json',
          dlq_topic: 't.touchpoints',
          dlq_partition: '3',
          dlq_offset: '41',
        },
      },
    });
  });
});
