import { mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTouchstreamClient, type DeliveryError } from '@touchstream/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const KEY = 'ingest-key';

type Mode = 'forward' | 'unavailable' | 'drop_answer';

/**
 * A real HTTP hop in front of the collector that misbehaves on purpose: it answers 503
 * with Retry-After itself, or forwards a request and then cuts the connection before the
 * collector's answer reaches the client (the batch is stored, the client cannot know).
 */
async function startProxy(target: string, modeOf: (n: number) => Mode) {
  const seen: { mode: Mode; ids: string[] }[] = [];
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    const mode = modeOf(seen.length + 1);
    const ids = (JSON.parse(body) as { events: { event_id: string }[] }).events.map(
      (e) => e.event_id,
    );
    seen.push({ mode, ids });
    if (mode === 'unavailable') {
      response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      response.end('{"error":{"code":"unavailable","message":"try later","details":[]}}');
      return;
    }
    const upstream = await fetch(`${target}${request.url}`, {
      method: request.method ?? 'POST',
      headers: {
        'content-type': request.headers['content-type'] ?? 'application/json',
        ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}),
      },
      body,
    });
    const text = await upstream.text();
    if (mode === 'drop_answer') {
      request.socket.destroy();
      return;
    }
    response.writeHead(upstream.status, { 'content-type': 'application/json' });
    response.end(text);
  };
  const server: Server = createServer((request, response) => {
    handle(request, response).catch(() => request.socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the SDK against a running collector', () => {
  let runtime: Runtime;
  beforeAll(async () => {
    runtime = await startTestRuntime(
      {
        TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-sdk-')),
        TOUCHSTREAM_INGEST_KEYS: KEY,
        TOUCHSTREAM_QUERY_KEYS: 'query-key',
      },
      ['collector', 'processor'],
    );
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  /** Stored copies per event id of customers with this prefix, duplicates folded. */
  async function storedIds(prefix: string) {
    const rows = await (
      await runtime.store.query({
        query:
          'SELECT event_id, count() AS n FROM events FINAL WHERE startsWith(customer_id, {p:String}) GROUP BY event_id',
        query_params: { p: prefix },
        format: 'JSONEachRow',
      })
    ).json<{ event_id: string; n: string | number }>();
    return new Map(rows.map((r) => [r.event_id, Number(r.n)]));
  }

  const events = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      event_id: `${prefix}-e${i}`,
      customer_id: `${prefix}-c${i % 17}`,
      type: i % 2 === 0 ? 'product_viewed' : 'cart_added',
      channel: i % 3 === 0 ? 'mobile' : 'web',
      timestamp: Date.UTC(2026, 9, 1, 12) + i,
      properties: { amount: i, currency: 'EUR' },
    }));

  it('stores every tracked event exactly once, across several full and partial batches', async () => {
    const client = createTouchstreamClient({ url: runtime.address, key: KEY, flushIntervalMs: 50 });
    const tracked = [];
    for (let i = 0; i < 2500; i++) {
      // Ids and times left to the client.
      const ok = client.track({
        customer_id: `all-c${i % 31}`,
        type: 'page_viewed',
        channel: 'web',
        properties: { i },
      });
      tracked.push(ok);
    }
    expect(tracked.every(Boolean)).toBe(true);
    const stats = await client.close();
    expect(stats).toMatchObject({
      tracked: 2500,
      sent: 2500,
      accepted: 2500,
      retried: 0,
      pending: 0,
    });
    expect(stats.requests).toBeGreaterThanOrEqual(3);
    const stored = await storedIds('all-');
    expect(stored.size).toBe(2500);
    expect([...stored.values()].every((n) => n === 1)).toBe(true);
  });

  it('waits out 503s with Retry-After and delivers the same batch once', async () => {
    const proxy = await startProxy(runtime.address, (n) => (n <= 2 ? 'unavailable' : 'forward'));
    try {
      const errors: DeliveryError[] = [];
      const client = createTouchstreamClient({
        url: proxy.url,
        key: KEY,
        onError: (e) => errors.push(e),
      });
      const sent = events('busy', 40);
      for (const e of sent) client.track(e);
      const started = Date.now();
      await client.flush();
      // Two answers of "Retry-After: 1": the client never came back sooner.
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
      expect(proxy.seen.map((s) => s.mode)).toEqual(['unavailable', 'unavailable', 'forward']);
      for (const s of proxy.seen) expect(s.ids).toEqual(sent.map((e) => e.event_id));
      expect(errors).toEqual([]);
      expect(client.stats()).toMatchObject({ sent: 40, retried: 80, accepted: 40, requests: 3 });
      const stored = await storedIds('busy-');
      expect([...stored.keys()].sort()).toEqual(sent.map((e) => e.event_id).sort());
      expect([...stored.values()].every((n) => n === 1)).toBe(true);
      await client.close();
    } finally {
      await proxy.close();
    }
  });

  it('retries a batch whose answer was lost after it was stored, and it counts once', async () => {
    const proxy = await startProxy(runtime.address, (n) => (n === 1 ? 'drop_answer' : 'forward'));
    try {
      const client = createTouchstreamClient({
        url: proxy.url,
        key: KEY,
        backoff: { baseMs: 50 },
      });
      const sent = events('lost', 25);
      for (const e of sent) client.track(e);
      await client.flush();
      expect(proxy.seen.map((s) => s.mode)).toEqual(['drop_answer', 'forward']);
      expect(proxy.seen[1]?.ids).toEqual(proxy.seen[0]?.ids);
      expect(client.stats()).toMatchObject({ sent: 25, retried: 25, accepted: 25, failed: 0 });
      const stored = await storedIds('lost-');
      expect(stored.size).toBe(25);
      expect([...stored.values()].every((n) => n === 1)).toBe(true);
      await client.close();
    } finally {
      await proxy.close();
    }
  });

  it('reports a 400 with the collector’s details and does not retry it', async () => {
    const proxy = await startProxy(runtime.address, () => 'forward');
    try {
      const errors: DeliveryError[] = [];
      // Checking in the client is off, so the collector itself judges the batch.
      const client = createTouchstreamClient({
        url: proxy.url,
        key: KEY,
        validate: false,
        onError: (e) => errors.push(e),
      });
      const sent = events('bad', 5);
      client.track(sent[0] as (typeof sent)[number]);
      client.track({ ...(sent[1] as (typeof sent)[number]), type: 'Not A Type' });
      await client.flush();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(proxy.seen).toHaveLength(1);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ kind: 'rejected', status: 400 });
      expect(errors[0]?.details).toEqual([expect.objectContaining({ index: 1, path: 'type' })]);
      expect(errors[0]?.events).toHaveLength(2);
      expect(client.stats()).toMatchObject({ rejected: 2, accepted: 0, retried: 0, pending: 0 });
      expect((await storedIds('bad-')).size).toBe(0);
      await client.close();
    } finally {
      await proxy.close();
    }
  });

  it('reports a wrong key as refused, without retrying', async () => {
    const errors: DeliveryError[] = [];
    const client = createTouchstreamClient({
      url: runtime.address,
      key: 'not-a-key',
      onError: (e) => errors.push(e),
    });
    client.track(events('unauth', 1)[0] as ReturnType<typeof events>[number]);
    const stats = await client.close();
    expect(errors.map((e) => [e.kind, e.status])).toEqual([['rejected', 401]]);
    expect(stats).toMatchObject({ rejected: 1, requests: 1 });
  });

  /** Stored events that carried this anonymous id, duplicates folded, in event-time order. */
  async function storedByAnonymousId(anonymousId: string) {
    return (
      await runtime.store.query({
        query: `SELECT event_id, customer_id, anonymous_id, type, channel, properties
                FROM events FINAL WHERE anonymous_id = {a:String} ORDER BY timestamp, event_id`,
        query_params: { a: anonymousId },
        format: 'JSONEachRow',
      })
    ).json<{
      event_id: string;
      customer_id: string;
      anonymous_id: string;
      type: string;
      channel: string;
      properties: string;
    }>();
  }

  it('sends a visitor’s events before identify with its anonymous id, then with both ids, and they stitch', async () => {
    const errors: DeliveryError[] = [];
    const client = createTouchstreamClient({
      url: runtime.address,
      key: KEY,
      onError: (e) => errors.push(e),
    });
    const at = (minute: number) => Date.UTC(2026, 9, 2, 12, minute);
    // Two visitors served at once by one client: one with the shop's cookie id, one with an
    // id the SDK makes up.
    const shopper = client.visitor('visitor-cookie-1', { channel: 'web' });
    const walkIn = client.visitor(undefined, { channel: 'store' });
    shopper.track({ type: 'product_viewed', timestamp: at(0), properties: { sku: 'a' } });
    walkIn.track({ type: 'till_scanned', timestamp: at(0) });
    shopper.track({ type: 'cart_added', timestamp: at(1) });
    // Sent, and stored under the cookie, before the link exists.
    await client.flush();
    expect(shopper.identify('visitor-c1', { plan: 'gold' }, { timestamp: at(2) })).toBe(true);
    shopper.track({ type: 'checkout_started', timestamp: at(3) });
    walkIn.track({ type: 'receipt_printed', timestamp: at(4) });
    const stats = await client.close();
    expect(errors).toEqual([]);
    expect(stats).toMatchObject({ tracked: 6, accepted: 6, refused: 0 });

    // Once the link is processed, the events sent under the cookie alone are the
    // customer's too (stitched): every row of the cookie is filed under the customer.
    let shopperRows: Awaited<ReturnType<typeof storedByAnonymousId>> = [];
    await eventually(async () => {
      shopperRows = await storedByAnonymousId('visitor-cookie-1');
      expect(shopperRows.map((r) => [r.type, r.customer_id, r.anonymous_id])).toEqual([
        ['product_viewed', 'visitor-c1', 'visitor-cookie-1'],
        ['cart_added', 'visitor-c1', 'visitor-cookie-1'],
        ['identified', 'visitor-c1', 'visitor-cookie-1'],
        ['checkout_started', 'visitor-c1', 'visitor-cookie-1'],
      ]);
    });
    expect(shopperRows[2]?.channel).toBe('web');
    expect(JSON.parse(shopperRows[2]?.properties ?? '{}')).toEqual({ plan: 'gold' });

    const walkInRows = await storedByAnonymousId(walkIn.anonymousId);
    expect(walkInRows.map((r) => [r.type, r.customer_id, r.channel])).toEqual([
      ['till_scanned', walkIn.anonymousId, 'store'],
      ['receipt_printed', walkIn.anonymousId, 'store'],
    ]);
  });

  it('close() sends what is buffered without waiting for the interval, then refuses more', async () => {
    const client = createTouchstreamClient({
      url: runtime.address,
      key: KEY,
      flushIntervalMs: 600_000,
    });
    const sent = events('closing', 12);
    for (const e of sent) client.track(e);
    expect(client.stats()).toMatchObject({ sent: 0, pending: 12 });
    const stats = await client.close();
    expect(stats).toMatchObject({ accepted: 12, pending: 0 });
    expect((await storedIds('closing-')).size).toBe(12);
    expect(client.track(events('closing-late', 1)[0] as ReturnType<typeof events>[number])).toBe(
      false,
    );
  });
});
