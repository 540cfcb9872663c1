import { describe, expect, it } from 'vitest';
import {
  type BatchContext,
  type MappingClock,
  mapSegmentBatch,
  mapSegmentMessage,
  type SegmentMessage,
  segmentBatchRequest,
  segmentMessage,
  singleMessage,
  toToken,
} from './segment-mapping.js';

const RECEIVED = Date.parse('2026-10-01T12:00:00.000Z');
const CLOCK: MappingClock = { receivedAt: RECEIVED, maxFutureMs: 3_600_000 };

/** A message as the route's schema hands it over. */
const message = (fields: Record<string, unknown>): SegmentMessage =>
  segmentMessage.parse({
    type: 'track',
    messageId: 'msg-1',
    userId: 'user-1',
    event: 'Order Completed',
    timestamp: '2026-10-01T11:00:00.000Z',
    ...fields,
  });

const map = (fields: Record<string, unknown>, batch: BatchContext = {}, clock = CLOCK) =>
  mapSegmentMessage(message(fields), batch, clock);

const eventOf = (fields: Record<string, unknown>, batch: BatchContext = {}) => {
  const mapped = map(fields, batch);
  expect(mapped.problems).toEqual([]);
  if (!mapped.event) throw new Error('no event');
  return mapped.event;
};

describe('toToken', () => {
  it.each([
    ['Order Completed', 'order_completed'],
    ['order_completed', 'order_completed'],
    ['Checkout Step 2', 'checkout_step_2'],
    ['  Signed   Up!! ', '_signed_up_'],
    ['Cart: Item Added', 'cart:_item_added'],
    ['v2.page-view:home', 'v2.page-view:home'],
    ['Café Visité', 'caf_visit_'],
    ['Ärger/Über', '_rger_ber'],
    ['A+B=C', 'a_b_c'],
    ['😀 Emoji', '_emoji'],
    ['Call Center', 'call_center'],
  ])('%j -> %j', (name, token) => {
    expect(toToken(name)).toBe(token);
  });
});

describe('mapSegmentMessage: ids and types', () => {
  it('maps a track: messageId, userId, anonymousId, the tokenized event, time', () => {
    expect(eventOf({ anonymousId: 'anon-1', properties: { total: 30, currency: 'EUR' } })).toEqual({
      event_id: 'msg-1',
      customer_id: 'user-1',
      anonymous_id: 'anon-1',
      type: 'order_completed',
      channel: 'server',
      timestamp: Date.parse('2026-10-01T11:00:00.000Z'),
      properties: { total: 30, currency: 'EUR' },
    });
  });

  it('takes an anonymous id alone: the event counts for it as a customer of its own', () => {
    const event = eventOf({ userId: undefined, anonymousId: 'anon-2' });
    expect(event.customer_id).toBe('anon-2');
    expect(event.anonymous_id).toBe('anon-2');
  });

  it('takes null or "" as no id, and a number as its text', () => {
    expect(eventOf({ userId: null, anonymousId: 'anon-3' }).customer_id).toBe('anon-3');
    expect(eventOf({ userId: '', anonymousId: 'anon-4' }).customer_id).toBe('anon-4');
    const numbered = eventOf({ userId: 42, anonymousId: null });
    expect(numbered.customer_id).toBe('42');
    expect(numbered.anonymous_id).toBeUndefined();
  });

  it('refuses a message with neither userId nor anonymousId', () => {
    expect(map({ userId: undefined }).problems).toEqual([
      { path: 'userId', message: 'is required unless anonymousId is given' },
    ]);
    expect(map({ userId: null, anonymousId: '' }).event).toBeUndefined();
  });

  it('maps page, screen and identify to page_viewed, screen_viewed and identified', () => {
    expect(eventOf({ type: 'page', event: undefined }).type).toBe('page_viewed');
    expect(eventOf({ type: 'screen', event: undefined }).type).toBe('screen_viewed');
    expect(eventOf({ type: 'identify', event: undefined }).type).toBe('identified');
  });

  it('maps alias: previousId -> anonymous_id, userId -> customer_id, type aliased', () => {
    expect(eventOf({ type: 'alias', previousId: 'anon-9', userId: 'user-9' })).toEqual({
      event_id: 'msg-1',
      customer_id: 'user-9',
      anonymous_id: 'anon-9',
      type: 'aliased',
      channel: 'server',
      timestamp: Date.parse('2026-10-01T11:00:00.000Z'),
    });
  });

  it('names the field the alias lacks', () => {
    expect(map({ type: 'alias', userId: undefined }).problems).toEqual([
      { path: 'userId', message: 'is required unless previousId is given' },
    ]);
  });

  it('takes a group message and stores nothing of it', () => {
    const mapped = map({ type: 'group', groupId: 'g-1', traits: { name: 'Acme' } });
    expect(mapped).toMatchObject({ problems: [] });
    expect(mapped.event).toBeUndefined();
    expect(map({ type: 'group', userId: undefined }).problems).toHaveLength(1);
  });

  it('refuses an event that tokenizes to more than 64 characters, naming `event`', () => {
    const { problems } = map({ event: `Very ${'Long '.repeat(20)}Name` });
    expect(problems).toEqual([
      { path: 'event', message: expect.stringMatching(/^as event type "very_long_.*64/) },
    ]);
  });

  it('names messageId and userId past their limits', () => {
    expect(map({ messageId: 'm'.repeat(65) }).problems.map((p) => p.path)).toEqual(['messageId']);
    expect(map({ messageId: '' }).problems.map((p) => p.path)).toEqual(['messageId']);
    expect(segmentMessage.safeParse({ ...message({}), userId: {} }).error?.issues).toMatchObject([
      { path: ['userId'], message: 'must be a string, a number or null' },
    ]);
    expect(map({ userId: 'u'.repeat(129) }).problems.map((p) => p.path)).toEqual(['userId']);
    expect(map({ type: 'alias', previousId: 'p'.repeat(129) }).problems.map((p) => p.path)).toEqual(
      ['previousId'],
    );
  });
});

describe('mapSegmentMessage: channel', () => {
  it('is properties.channel, else context.channel, else the batch context, else server', () => {
    const context = { channel: 'Mobile App' };
    const batch = { context: { channel: 'Email' } };
    expect(eventOf({ properties: { channel: 'Call Center' }, context }, batch).channel).toBe(
      'call_center',
    );
    expect(eventOf({ properties: { plan: 'pro' }, context }, batch).channel).toBe('mobile_app');
    expect(eventOf({ context: { ip: '1.2.3.4' } }, batch).channel).toBe('email');
    expect(eventOf({}).channel).toBe('server');
  });

  it('keeps properties.channel as a property too', () => {
    expect(eventOf({ properties: { channel: 'Web' } }).properties).toEqual({ channel: 'Web' });
  });

  it('skips a channel that is not a string', () => {
    expect(eventOf({ properties: { channel: 7 }, context: { channel: 'web' } }).channel).toBe(
      'web',
    );
  });

  it('does not take traits.channel as the channel of identify', () => {
    const event = eventOf({ type: 'identify', traits: { channel: 'Store' } });
    expect(event.channel).toBe('server');
    expect(event.properties).toEqual({ channel: 'Store' });
  });

  it('refuses a channel past 32 characters, naming where it came from', () => {
    expect(map({ properties: { channel: 'c'.repeat(33) } }).problems).toEqual([
      { path: 'properties.channel', message: expect.stringMatching(/^as channel: .*32/) },
    ]);
    expect(map({ context: { channel: '' } }).problems.map((p) => p.path)).toEqual([
      'context.channel',
    ]);
  });
});

describe('mapSegmentMessage: properties', () => {
  it('keeps scalars, flattens objects one level with `.`, leaves arrays and deeper out', () => {
    const mapped = map({
      properties: {
        plan: 'pro',
        total: 12.5,
        gift: false,
        coupon: null,
        address: { city: 'Lyon', zip: 69001, geo: { lat: 45.7 }, lines: ['a', 'b'] },
        tags: ['x', 'y'],
        empty: {},
      },
    });
    expect(mapped.problems).toEqual([]);
    expect(mapped.event?.properties).toEqual({
      plan: 'pro',
      total: 12.5,
      gift: false,
      coupon: null,
      'address.city': 'Lyon',
      'address.zip': 69001,
    });
    expect(Object.keys(mapped.event?.properties ?? {})).toEqual([
      'plan',
      'total',
      'gift',
      'coupon',
      'address.city',
      'address.zip',
    ]);
    expect(mapped.counts.dropped).toEqual({
      array: 2,
      nested: 1,
      over_limit: 0,
      invalid_key: 0,
      duplicate: 0,
    });
  });

  it('keeps the first 50 properties, flattened ones included, and counts the rest', () => {
    const properties: Record<string, unknown> = {};
    for (let i = 0; i < 48; i += 1) properties[`p${i}`] = i;
    properties.nested = { a: 1, b: 2, c: 3 };
    properties.last = 'x';
    const mapped = map({ properties });
    const kept = Object.keys(mapped.event?.properties ?? {});
    expect(kept).toHaveLength(50);
    expect(kept.slice(-2)).toEqual(['nested.a', 'nested.b']);
    expect(mapped.counts.dropped.over_limit).toBe(2);
  });

  it('leaves out and counts a name past 64 characters, and a flattened name already taken', () => {
    const mapped = map({
      properties: { ['k'.repeat(65)]: 1, 'a.b': 'literal', a: { b: 'flattened' } },
    });
    expect(mapped.event?.properties).toEqual({ 'a.b': 'literal' });
    expect(mapped.counts.dropped).toMatchObject({ invalid_key: 1, duplicate: 1 });
  });

  it('cuts a string past 1024 characters to 1024, never inside a surrogate pair', () => {
    const mapped = map({
      properties: { long: 'x'.repeat(5000), emoji: `${'x'.repeat(1023)}😀tail` },
    });
    expect(mapped.event?.properties?.long).toBe('x'.repeat(1024));
    expect(mapped.event?.properties?.emoji).toBe('x'.repeat(1023));
    expect(mapped.counts.truncated).toBe(2);
  });

  it('refuses a string that is not valid Unicode, naming the property', () => {
    expect(map({ properties: { address: { city: 'a\ud800' } } }).problems).toEqual([
      {
        path: 'properties.address.city',
        message: 'must be valid Unicode: it holds a lone UTF-16 surrogate',
      },
    ]);
  });

  it("makes identify's traits its properties, with the same flattening", () => {
    const mapped = map({
      type: 'identify',
      traits: { email: 'a@b.c', plan: 'pro', address: { city: 'Oslo' }, roles: ['admin'] },
      properties: { ignored: true },
    });
    expect(mapped.event?.properties).toEqual({
      email: 'a@b.c',
      plan: 'pro',
      'address.city': 'Oslo',
    });
    expect(mapped.counts.dropped.array).toBe(1);
    expect(map({ type: 'identify', traits: { bad: '\udc00' } }).problems[0]?.path).toBe(
      'traits.bad',
    );
  });

  it('stores no properties for alias and none when there are none', () => {
    expect(eventOf({ type: 'alias', previousId: 'a' }).properties).toBeUndefined();
    expect(eventOf({ properties: null }).properties).toBeUndefined();
  });

  it("adds page and screen's name and category when there is room and the name is free", () => {
    expect(
      eventOf({ type: 'page', name: 'Pricing', category: 'Docs', properties: { path: '/p' } })
        .properties,
    ).toEqual({ path: '/p', name: 'Pricing', category: 'Docs' });
    expect(
      eventOf({ type: 'screen', name: 'Home', properties: { name: 'Own name' } }).properties,
    ).toEqual({ name: 'Own name' });
    const full = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`p${i}`, i]));
    const mapped = map({ type: 'page', name: 'Pricing', properties: full });
    expect(Object.keys(mapped.event?.properties ?? {})).not.toContain('name');
    expect(mapped.counts.dropped.over_limit).toBe(0);
  });
});

describe('mapSegmentMessage: time', () => {
  it('takes timestamp as it is, even with sentAt', () => {
    const event = eventOf({
      timestamp: '2026-10-01T10:00:00.000Z',
      sentAt: '2026-10-01T09:00:00Z',
    });
    expect(event.timestamp).toBe(Date.parse('2026-10-01T10:00:00.000Z'));
    expect(eventOf({ timestamp: RECEIVED - 5 }).timestamp).toBe(RECEIVED - 5);
  });

  it('corrects originalTimestamp by the skew sentAt shows: timestamp + (received_at - sent_at)', () => {
    // The client's clock is an hour behind: it sent at 11:00:10 by its clock, 12:00:00 by ours.
    const event = eventOf({
      timestamp: undefined,
      originalTimestamp: '2026-10-01T11:00:00.000Z',
      sentAt: '2026-10-01T11:00:10.000Z',
    });
    expect(event.timestamp).toBe(Date.parse('2026-10-01T11:59:50.000Z'));
  });

  it("uses the batch's sentAt when the message has none, the message's first", () => {
    const fields = { timestamp: undefined, originalTimestamp: '2026-10-01T13:00:00.000Z' };
    const batch = { sentAt: '2026-10-01T14:00:00.000Z' };
    expect(eventOf(fields, batch).timestamp).toBe(Date.parse('2026-10-01T11:00:00.000Z'));
    expect(eventOf({ ...fields, sentAt: '2026-10-01T13:00:00.000Z' }, batch).timestamp).toBe(
      Date.parse('2026-10-01T12:00:00.000Z'),
    );
  });

  it('leaves a skew within the tolerance alone, and originalTimestamp without sentAt', () => {
    const fields = { timestamp: undefined, originalTimestamp: '2026-10-01T11:00:00.000Z' };
    expect(eventOf({ ...fields, sentAt: RECEIVED - 2_000 }).timestamp).toBe(
      Date.parse('2026-10-01T11:00:00.000Z'),
    );
    expect(eventOf(fields).timestamp).toBe(Date.parse('2026-10-01T11:00:00.000Z'));
  });

  it('takes the time the request was received when the message has no time', () => {
    expect(eventOf({ timestamp: undefined }).timestamp).toBe(RECEIVED);
  });

  it('refuses an event time too far ahead, naming the field it came from', () => {
    expect(map({ timestamp: '2026-10-01T13:00:01.000Z' }).problems).toEqual([
      {
        path: 'timestamp',
        message: expect.stringMatching(/^the event time is 1 hour \(3601000 ms\) ahead/),
      },
    ]);
    const corrected = map({
      timestamp: undefined,
      originalTimestamp: '2026-10-01T12:30:00.000Z',
      sentAt: '2026-10-01T11:00:00.000Z',
    });
    expect(corrected.problems).toEqual([
      {
        path: 'originalTimestamp',
        message: expect.stringMatching(/^the event time, corrected by the client clock skew, is/),
      },
    ]);
  });

  it('refuses a time before 1970, as sent or once corrected', () => {
    expect(map({ timestamp: -1 }).problems).toEqual([
      { path: 'timestamp', message: 'must be between 1970 and 2200' },
    ]);
    const { problems } = map({
      timestamp: undefined,
      originalTimestamp: '1970-01-01T00:00:01.000Z',
      sentAt: '2026-10-01T13:00:00.000Z',
    });
    expect(problems.map((p) => p.path)).toEqual(['originalTimestamp']);
  });
});

describe('mapSegmentBatch', () => {
  it('maps every message, counting what it left out and what it skipped', () => {
    const mapped = mapSegmentBatch(
      [
        message({ messageId: 'a', properties: { tags: ['x'] } }),
        message({ messageId: 'b', type: 'group', groupId: 'g' }),
        message({ messageId: 'c', type: 'identify', traits: { x: 'y'.repeat(2000) } }),
      ],
      {},
      CLOCK,
    );
    expect(mapped).toMatchObject({
      ok: true,
      stored: { track: 1, identify: 1 },
      skipped: { group: 1 },
      counts: { truncated: 1, dropped: { array: 1 } },
    });
    if (mapped.ok) expect(mapped.events.map((e) => e.event_id)).toEqual(['a', 'c']);
  });

  it('is all or nothing: one detail per problem, with the index of its message', () => {
    const mapped = mapSegmentBatch(
      [
        message({ messageId: 'a' }),
        message({ messageId: 'b', userId: undefined }),
        message({ messageId: 'c', event: '', properties: { channel: 'c'.repeat(40) } }),
      ],
      {},
      CLOCK,
    );
    expect(mapped).toEqual({
      ok: false,
      details: [
        { index: 1, path: 'userId', message: 'is required unless anonymousId is given' },
        { index: 2, path: 'event', message: expect.stringContaining('as event type ""') },
        { index: 2, path: 'properties.channel', message: expect.stringContaining('as channel') },
      ],
    });
  });
});

describe('Segment shapes', () => {
  it('accepts the fields it does not map: context, integrations, _metadata, writeKey', () => {
    const body = segmentBatchRequest.parse({
      writeKey: 'k',
      sentAt: '2026-10-01T12:00:00.000Z',
      context: { library: { name: 'x' } },
      batch: [
        {
          type: 'track',
          messageId: 'm',
          userId: 'u',
          event: 'E',
          context: { library: { name: 'analytics-node' } },
          integrations: { All: true },
          _metadata: { jsRuntime: 'node' },
          options: {},
        },
      ],
    });
    expect(body.batch).toHaveLength(1);
  });

  it('refuses a message without messageId, an unknown type, a track without event', () => {
    const result = segmentBatchRequest.safeParse({
      batch: [
        { type: 'track', userId: 'u', event: 'E' },
        { type: 'wave', messageId: 'm' },
        { type: 'track', messageId: 'm', userId: 'u' },
        { type: 'page', messageId: 'm', userId: 'u', timestamp: '2026-10-01 12:00' },
        'track',
      ],
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([
      [
        'batch.0.messageId',
        'is required: it is the event id, the same id stored twice counts once',
      ],
      ['batch.1.type', 'must be one of track, identify, page, screen, alias, group'],
      ['batch.2.event', 'is required for a track call'],
      ['batch.3.timestamp', 'must be ISO 8601 with a zone, or epoch milliseconds'],
      ['batch.4', 'must be an object: a Segment message'],
    ]);
  });

  it('refuses an empty batch and one past 1000 messages', () => {
    const one = { type: 'alias', messageId: 'm', userId: 'u', previousId: 'p' };
    expect(segmentBatchRequest.safeParse({ batch: [] }).success).toBe(false);
    expect(segmentBatchRequest.safeParse({ batch: Array(1000).fill(one) }).success).toBe(true);
    expect(segmentBatchRequest.safeParse({ batch: Array(1001).fill(one) }).success).toBe(false);
  });

  it('takes a single message without type, or with its own type only', () => {
    const track = singleMessage('track');
    expect(track.safeParse({ messageId: 'm', userId: 'u', event: 'E' }).success).toBe(true);
    expect(
      track.safeParse({ type: 'track', messageId: 'm', userId: 'u', event: 'E' }).success,
    ).toBe(true);
    expect(track.safeParse({ type: 'page', messageId: 'm', userId: 'u', event: 'E' }).success).toBe(
      false,
    );
  });
});
