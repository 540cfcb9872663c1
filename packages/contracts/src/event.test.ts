import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';
import { detailsFromIssues } from './errors.js';
import { ingestRequest, touchpointInput } from './event.js';
import { journeyBody } from './journey.js';
import { decodeTouchpoint, encodeTouchpoint } from './wire.js';

/** A receiving clock after the sample events, with the default margin. */
const CLOCK = { now: Date.UTC(2026, 11, 4), maxFutureMs: 3_600_000 };

const valid = {
  event_id: 'e1',
  customer_id: 'c1',
  type: 'order_placed',
  channel: 'call_center',
  timestamp: '2026-10-01T12:00:00.250+02:00',
  properties: { currency: 'EUR', total: 12.5, first: true, coupon: null },
};

describe('touchpoint event', () => {
  it('normalises ISO timestamps with a zone and epoch milliseconds to epoch milliseconds', () => {
    expect(touchpointInput.parse(valid).timestamp).toBe(Date.UTC(2026, 9, 1, 10, 0, 0, 250));
    expect(touchpointInput.parse({ ...valid, timestamp: 1790000000000 }).timestamp).toBe(
      1790000000000,
    );
  });

  it('takes an anonymous id, and counts it as the customer until one is given', () => {
    const { customer_id, ...anonymous } = valid;
    expect(touchpointInput.parse({ ...anonymous, anonymous_id: 'cookie-1' })).toMatchObject({
      customer_id: 'cookie-1',
      anonymous_id: 'cookie-1',
    });
    expect(touchpointInput.parse({ ...valid, anonymous_id: 'cookie-1' })).toMatchObject({
      customer_id,
      anonymous_id: 'cookie-1',
    });
    const neither = touchpointInput.safeParse(anonymous);
    expect(neither.success).toBe(false);
    expect(detailsFromIssues(neither.error?.issues ?? [])).toEqual([
      { path: 'customer_id', message: 'is required unless anonymous_id is given' },
    ]);
    expect(touchpointInput.safeParse({ ...anonymous, anonymous_id: '' }).success).toBe(false);
    // What the bus carries decodes to the same event.
    const event = touchpointInput.parse({ ...anonymous, anonymous_id: 'cookie-1' });
    const record = encodeTouchpoint(event);
    expect(record.key).toBe('cookie-1');
    expect(decodeTouchpoint(Buffer.from(record.value), CLOCK)).toEqual({ ok: true, event });
  });

  it('accepts the limits exactly', () => {
    const atLimits = {
      ...valid,
      event_id: 'e'.repeat(64),
      customer_id: 'c'.repeat(128),
      type: `a.b:c-d_${'x'.repeat(56)}`,
      channel: 'w'.repeat(32),
      properties: Object.fromEntries(
        Array.from({ length: 50 }, (_, i) => [`${i}`.padEnd(64, 'k'), 'v'.repeat(1024)]),
      ),
    };
    expect(touchpointInput.safeParse(atLimits).success).toBe(true);
  });

  it('round-trips through the wire format', () => {
    const event = touchpointInput.parse(valid);
    const decoded = decodeTouchpoint(Buffer.from(encodeTouchpoint(event).value), CLOCK);
    expect(decoded).toEqual({ ok: true, event });
    expect(encodeTouchpoint(event).key).toBe('c1');
  });

  it('names what is wrong with a record off the wire', () => {
    expect(decodeTouchpoint(Buffer.from('{nope'), CLOCK)).toEqual({
      ok: false,
      reason: 'not_json',
    });
    const decoded = decodeTouchpoint(
      Buffer.from(JSON.stringify({ ...valid, channel: 'Web' })),
      CLOCK,
    );
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.reason).toMatch(/^invalid_event: channel/);
  });

  it('refuses a record off the wire dated further ahead than the clock allows', () => {
    const at = (timestamp: number) =>
      decodeTouchpoint(Buffer.from(JSON.stringify({ ...valid, timestamp })), CLOCK);
    expect(at(CLOCK.now + CLOCK.maxFutureMs).ok).toBe(true);
    const ahead = at(CLOCK.now + CLOCK.maxFutureMs + 1);
    expect(!ahead.ok && ahead.reason).toBe(
      'future_timestamp: timestamp is 1 hour (3600001 ms) ahead of the receiving clock; at most 1 hour is allowed',
    );
  });

  it('reports one detail per faulty field, with the event index', () => {
    const result = ingestRequest.safeParse({
      events: [valid, { ...valid, channel: '', timestamp: 'later' }],
    });
    expect(result.success).toBe(false);
    const details = detailsFromIssues(result.error?.issues ?? [], 'events');
    expect(details.map((d) => [d.index, d.path])).toEqual([
      [1, 'channel'],
      [1, 'timestamp'],
    ]);
  });
});

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['0s', 0],
  ])('parses %s', (text, millis) => {
    expect(parseDuration(text)).toBe(millis);
  });
  it.each(['5', '', 'five minutes', '-5m', '5 m', '1y'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('journey', () => {
  const steps = [
    { name: 'viewed', event_type: 'product_viewed' },
    { name: 'paid', event_type: 'payment_submitted', channel: 'web', where: { currency: 'EUR' } },
  ];
  it('needs 2 to 20 uniquely named steps and a positive step timeout', () => {
    expect(journeyBody.safeParse({ name: 'J', steps, step_timeout: '30m' }).success).toBe(true);
    expect(
      journeyBody.parse({ name: 'J', steps, step_timeout: '30m' }).failure_event_types,
    ).toEqual([]);
    expect(
      journeyBody.safeParse({ name: 'J', steps: steps.slice(0, 1), step_timeout: '30m' }).success,
    ).toBe(false);
    const tooMany = Array.from({ length: 21 }, (_, i) => ({ name: `s${i}`, event_type: 'x' }));
    expect(journeyBody.safeParse({ name: 'J', steps: tooMany, step_timeout: '30m' }).success).toBe(
      false,
    );
    expect(
      journeyBody.safeParse({ name: 'J', steps: [steps[0], steps[0]], step_timeout: '30m' })
        .success,
    ).toBe(false);
    expect(journeyBody.safeParse({ name: 'J', steps, step_timeout: '0s' }).success).toBe(false);
  });
});
