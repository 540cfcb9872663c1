import { describe, expect, it } from 'vitest';
import { type ClientOptions, createTouchstreamClient } from './client.js';
import type { DeliveryError } from './errors.js';

type SentEvent = Record<string, unknown> & { event_id: string };

/** A client whose requests are recorded and accepted; what it sent, flattened. */
function recordingClient(options: Partial<ClientOptions> = {}) {
  const sent: SentEvent[] = [];
  const errors: DeliveryError[] = [];
  const fetch = (async (_url: string, init: RequestInit) => {
    sent.push(...(JSON.parse(String(init.body)) as { events: SentEvent[] }).events);
    return new Response('{"accepted":1}', { status: 202 });
  }) as unknown as typeof globalThis.fetch;
  const client = createTouchstreamClient({
    url: 'http://t',
    fetch,
    onError: (e) => errors.push(e),
    ...options,
  });
  return { client, sent, errors };
}

/** The ids of sent events, by type, without the fields the client fills in. */
const idsOf = (events: readonly SentEvent[]) =>
  events.map((e) => ({ type: e.type, customer_id: e.customer_id, anonymous_id: e.anonymous_id }));

describe('client.visitor', () => {
  it('sends anonymous_id alone before identify, an identified event with both ids, then both', async () => {
    const { client, sent, errors } = recordingClient();
    const visitor = client.visitor('cookie-1', { channel: 'web' });
    expect(visitor.anonymousId).toBe('cookie-1');
    expect(visitor.customerId).toBeUndefined();
    expect(visitor.track({ type: 'product_viewed', properties: { sku: 'a' } })).toBe(true);
    expect(visitor.identify('c-42', { plan: 'gold', age: 40 })).toBe(true);
    expect(visitor.customerId).toBe('c-42');
    expect(visitor.track({ type: 'cart_added', channel: 'mobile' })).toBe(true);
    await client.close();
    expect(errors).toEqual([]);
    expect(idsOf(sent)).toEqual([
      { type: 'product_viewed', customer_id: undefined, anonymous_id: 'cookie-1' },
      { type: 'identified', customer_id: 'c-42', anonymous_id: 'cookie-1' },
      { type: 'cart_added', customer_id: 'c-42', anonymous_id: 'cookie-1' },
    ]);
    // Before identify the field is absent, not null: the server stores the anonymous id as
    // the customer.
    expect(Object.hasOwn(sent[0] ?? {}, 'customer_id')).toBe(false);
    expect(sent[0]).toMatchObject({ channel: 'web', properties: { sku: 'a' } });
    expect(sent[1]).toMatchObject({ channel: 'web', properties: { plan: 'gold', age: 40 } });
    expect(sent[1]?.event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof sent[1]?.timestamp).toBe('number');
    expect(sent[2]).toMatchObject({ channel: 'mobile' });
  });

  it('generates a random anonymous id per visitor, and visitors do not share state', async () => {
    const { client, sent } = recordingClient();
    const a = client.visitor(undefined, { channel: 'store' });
    const b = client.visitor(undefined, { channel: 'store' });
    expect(a.anonymousId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    expect(b.anonymousId).not.toBe(a.anonymousId);
    a.identify('c-1');
    b.track({ type: 'till_scanned' });
    a.track({ type: 'till_scanned' });
    expect(b.customerId).toBeUndefined();
    await client.close();
    expect(idsOf(sent)).toEqual([
      { type: 'identified', customer_id: 'c-1', anonymous_id: a.anonymousId },
      { type: 'till_scanned', customer_id: undefined, anonymous_id: b.anonymousId },
      { type: 'till_scanned', customer_id: 'c-1', anonymous_id: a.anonymousId },
    ]);
  });

  it('identify again with the same id sends another identified event; another id is refused', async () => {
    const { client, sent, errors } = recordingClient();
    const visitor = client.visitor('phone-555', { channel: 'call_center' });
    expect(visitor.identify('c-1')).toBe(true);
    expect(visitor.identify('c-1', { tier: 'b' })).toBe(true);
    expect(visitor.identify('c-2')).toBe(false);
    expect(visitor.customerId).toBe('c-1');
    visitor.track({ type: 'call_ended' });
    const stats = await client.close();
    expect(idsOf(sent)).toEqual([
      { type: 'identified', customer_id: 'c-1', anonymous_id: 'phone-555' },
      { type: 'identified', customer_id: 'c-1', anonymous_id: 'phone-555' },
      { type: 'call_ended', customer_id: 'c-1', anonymous_id: 'phone-555' },
    ]);
    expect(errors.map((e) => e.kind)).toEqual(['identity_conflict']);
    expect(errors[0]?.events).toEqual([
      expect.objectContaining({ customer_id: 'c-2', anonymous_id: 'phone-555' }),
    ]);
    expect(stats).toMatchObject({ tracked: 3, refused: 1, accepted: 3 });
  });

  it('starts identified with customerId: both ids at once, no identified event', async () => {
    const { client, sent } = recordingClient();
    const visitor = client.visitor('cookie-9', { channel: 'web', customerId: 'c-9' });
    expect(visitor.customerId).toBe('c-9');
    visitor.track({ type: 'page_viewed' });
    expect(visitor.identify('c-other')).toBe(false);
    await client.close();
    expect(idsOf(sent)).toEqual([
      { type: 'page_viewed', customer_id: 'c-9', anonymous_id: 'cookie-9' },
    ]);
  });

  it('takes anonymous and customer ids of 1 to 128 chars, and refuses others without throwing', async () => {
    const { client, sent, errors } = recordingClient();
    const longest = 'a'.repeat(128);
    expect(client.visitor(longest, { channel: 'web' }).track({ type: 'x' })).toBe(true);
    for (const bad of ['', 'a'.repeat(129), 'lone \ud83d surrogate']) {
      expect(client.visitor(bad, { channel: 'web' }).track({ type: 'x' })).toBe(false);
    }
    expect(errors.map((e) => [e.kind, e.details[0]?.path])).toEqual([
      ['invalid_event', 'anonymous_id'],
      ['invalid_event', 'anonymous_id'],
      ['invalid_event', 'anonymous_id'],
    ]);
    errors.length = 0;

    const visitor = client.visitor('cookie-2', { channel: 'web' });
    for (const bad of ['', 'c'.repeat(129)]) {
      expect(visitor.identify(bad)).toBe(false);
      // A refused id leaves the handle as it was.
      expect(visitor.customerId).toBeUndefined();
    }
    expect(errors.map((e) => [e.kind, e.details[0]?.path])).toEqual([
      ['invalid_event', 'customer_id'],
      ['invalid_event', 'customer_id'],
    ]);
    expect(visitor.identify('c'.repeat(128))).toBe(true);
    await client.close();
    expect(idsOf(sent)).toEqual([
      { type: 'x', customer_id: undefined, anonymous_id: longest },
      { type: 'identified', customer_id: 'c'.repeat(128), anonymous_id: 'cookie-2' },
    ]);
  });

  it('checks the customer id of identify even with validate: false', () => {
    const { client, errors } = recordingClient({ validate: false });
    const visitor = client.visitor('cookie-3');
    expect(visitor.identify('c'.repeat(129))).toBe(false);
    expect(visitor.customerId).toBeUndefined();
    expect(errors.map((e) => e.kind)).toEqual(['invalid_event']);
  });

  it('is identified by a valid id even when its identified event is refused', async () => {
    const { client, sent, errors } = recordingClient();
    const visitor = client.visitor('cookie-4', { channel: 'web' });
    expect(visitor.identify('c-4', { ['k'.repeat(65)]: 1 })).toBe(false);
    expect(errors.map((e) => [e.kind, e.details[0]?.path])).toEqual([
      ['invalid_event', `properties.${'k'.repeat(65)}`],
    ]);
    expect(visitor.customerId).toBe('c-4');
    visitor.track({ type: 'page_viewed' });
    await client.close();
    expect(idsOf(sent)).toEqual([
      { type: 'page_viewed', customer_id: 'c-4', anonymous_id: 'cookie-4' },
    ]);
  });

  it('takes the channel of the event, else the visitor’s; identify falls back to server', async () => {
    const { client, sent, errors } = recordingClient();
    const visitor = client.visitor('device-1');
    expect(visitor.track({ type: 'app_opened' })).toBe(false);
    expect(errors.map((e) => [e.kind, e.details[0]?.path])).toEqual([['invalid_event', 'channel']]);
    expect(visitor.track({ type: 'app_opened', channel: 'mobile' })).toBe(true);
    expect(visitor.identify('c-5')).toBe(true);
    expect(
      visitor.identify('c-5', undefined, {
        channel: 'mobile',
        event_id: 'id-1',
        timestamp: new Date(Date.UTC(2026, 9, 1)),
      }),
    ).toBe(true);
    await client.close();
    expect(sent.map((e) => e.channel)).toEqual(['mobile', 'server', 'mobile']);
    expect(sent[2]).toMatchObject({ event_id: 'id-1', timestamp: Date.UTC(2026, 9, 1) });
    expect(Object.hasOwn(sent[1] ?? {}, 'properties')).toBe(false);
  });

  it('never lets ids slipped into an event override the visitor’s', async () => {
    const { client, sent } = recordingClient();
    const visitor = client.visitor('cookie-5', { channel: 'web' });
    visitor.track({ type: 'x', customer_id: 'someone', anonymous_id: 'else' } as never);
    await client.close();
    expect(idsOf(sent)).toEqual([{ type: 'x', customer_id: undefined, anonymous_id: 'cookie-5' }]);
  });

  it('refuses identify and track once the client is closed', async () => {
    const { client, errors } = recordingClient();
    const visitor = client.visitor('cookie-6', { channel: 'web' });
    await client.close();
    expect(visitor.track({ type: 'x' })).toBe(false);
    expect(visitor.identify('c-6')).toBe(false);
    expect(errors.map((e) => e.kind)).toEqual(['closed', 'closed']);
  });
});

describe('client.track with anonymous ids', () => {
  it('takes anonymous_id alone or with customer_id, and refuses an event with neither', async () => {
    const { client, sent, errors } = recordingClient();
    expect(client.track({ anonymous_id: 'a-1', type: 'x', channel: 'web' })).toBe(true);
    expect(
      client.track({ anonymous_id: 'a-1', customer_id: 'c-1', type: 'x', channel: 'web' }),
    ).toBe(true);
    expect(client.track({ type: 'x', channel: 'web' })).toBe(false);
    expect(errors.map((e) => [e.kind, e.details[0]?.path])).toEqual([
      ['invalid_event', 'customer_id'],
    ]);
    await client.close();
    expect(idsOf(sent)).toEqual([
      { type: 'x', customer_id: undefined, anonymous_id: 'a-1' },
      { type: 'x', customer_id: 'c-1', anonymous_id: 'a-1' },
    ]);
  });
});
