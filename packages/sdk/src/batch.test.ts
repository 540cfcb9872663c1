import { describe, expect, it } from 'vitest';
import { batchSize, bodyBytes, fillsRequest, type QueuedEvent, requestBody } from './batch.js';

const event = (id: number, size = 10): QueuedEvent => {
  const json = JSON.stringify({ event_id: `e${id}`, pad: 'x'.repeat(size) });
  return { eventId: `e${id}`, json, bytes: Buffer.byteLength(json) };
};

describe('batching', () => {
  it('takes at most maxEvents from the head of the queue', () => {
    const queue = Array.from({ length: 25 }, (_, i) => event(i));
    expect(batchSize(queue, { maxEvents: 10, maxBytes: 1 << 20 })).toBe(10);
    expect(batchSize(queue.slice(0, 3), { maxEvents: 10, maxBytes: 1 << 20 })).toBe(3);
  });

  it('stops before the body would exceed maxBytes, counting envelope and commas', () => {
    const queue = Array.from({ length: 10 }, (_, i) => event(i, 100));
    const three = bodyBytes(queue.slice(0, 3));
    expect(batchSize(queue, { maxEvents: 1000, maxBytes: three })).toBe(3);
    expect(batchSize(queue, { maxEvents: 1000, maxBytes: three - 1 })).toBe(2);
    expect(Buffer.byteLength(requestBody(queue.slice(0, 3), Date.now()))).toBe(three);
  });

  it('builds the body the collector expects, with the clock it was sent at', () => {
    const body = JSON.parse(requestBody([event(1), event(2)], Date.UTC(2026, 11, 4, 12)));
    expect(body.events.map((e: { event_id: string }) => e.event_id)).toEqual(['e1', 'e2']);
    expect(body.sent_at).toBe('2026-12-04T12:00:00.000Z');
  });

  it('knows when the queue fills a request, by count or by bytes', () => {
    const limits = { maxEvents: 5, maxBytes: 1000 };
    expect(fillsRequest(4, 100, limits)).toBe(false);
    expect(fillsRequest(5, 100, limits)).toBe(true);
    expect(fillsRequest(2, 990, limits)).toBe(true);
  });
});
