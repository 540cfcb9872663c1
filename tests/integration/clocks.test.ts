import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEvents } from '@touchstream/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { makeEvent } from '../support/events.js';
import { startTestRuntime } from '../support/runtime.js';

const HOUR = 3_600_000;

/** Posts a batch with the client's `sent_at`, as the SDK and Segment libraries send it. */
async function post(url: string, events: unknown[], sentAt?: number | string) {
  const response = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ events, sent_at: sentAt }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: the tests assert the shape of what comes back.
  return { status: response.status, body: (await response.json()) as any };
}

describe('event times and the clocks that wrote them (collector)', () => {
  let runtime: Runtime;
  beforeAll(async () => {
    runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-clocks-')),
    });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  const storedTimes = async (customer: string) =>
    (await readEvents(runtime.store, customer)).map((e) => Date.parse(`${e.timestamp}Z`));

  it('refuses a batch holding an event dated beyond TOUCHSTREAM_MAX_FUTURE, storing none of it', async () => {
    const now = Date.now();
    const fine = makeEvent({ customer_id: 'clock-fine', timestamp: now - 60_000 });
    const year2150 = makeEvent({ customer_id: 'clock-2150', timestamp: '2150-01-01T00:00:00Z' });
    const { status, body } = await post(runtime.address, [fine, year2150]);
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.details).toEqual([
      {
        index: 1,
        path: 'timestamp',
        message: expect.stringMatching(
          /^the event time is 449\d\d days \(\d+ ms\) ahead of the receiving clock; at most 1 hour is allowed$/,
        ),
      },
    ]);
    expect(await storedTimes('clock-fine')).toEqual([]);
    expect(await storedTimes('clock-2150')).toEqual([]);
    // At the edge: 59 minutes ahead is taken.
    const soon = makeEvent({ customer_id: 'clock-soon', timestamp: now + 59 * 60_000 });
    expect((await post(runtime.address, [soon])).status).toBe(202);
  });

  it('corrects event times by a client clock that is ahead', async () => {
    // The client's clock is 3 h fast: uncorrected, its events would be refused as future.
    const skew = 3 * HOUR;
    const before = Date.now();
    const event = makeEvent({ customer_id: 'clock-ahead', timestamp: before + skew - 60_000 });
    const { status } = await post(runtime.address, [event], new Date(before + skew).toISOString());
    const after = Date.now();
    expect(status).toBe(202);
    const [stored] = await storedTimes('clock-ahead');
    expect(stored).toBeGreaterThanOrEqual(before - 60_000);
    expect(stored).toBeLessThanOrEqual(after - 60_000);
  });

  it('corrects event times by a client clock that is behind', async () => {
    const skew = -5 * HOUR;
    const before = Date.now();
    const event = makeEvent({ customer_id: 'clock-behind', timestamp: before + skew - 60_000 });
    const { status } = await post(runtime.address, [event], before + skew);
    const after = Date.now();
    expect(status).toBe(202);
    const [stored] = await storedTimes('clock-behind');
    expect(stored).toBeGreaterThanOrEqual(before - 60_000);
    expect(stored).toBeLessThanOrEqual(after - 60_000);
  });

  it('judges the future after the correction, and says so', async () => {
    // The client's clock is 5 h slow and the event claims 2 h after its sending: 2 h ahead.
    const slow = Date.now() - 5 * HOUR;
    const event = makeEvent({ customer_id: 'clock-corrected-future', timestamp: slow + 2 * HOUR });
    const { status, body } = await post(runtime.address, [event], slow);
    expect(status).toBe(400);
    expect(body.error.details[0]).toMatchObject({
      index: 0,
      path: 'timestamp',
      message: expect.stringMatching(
        /^the event time, corrected by the client clock skew, is 2 hours/,
      ),
    });
    expect(await storedTimes('clock-corrected-future')).toEqual([]);
  });

  it('refuses a sent_at that is not a time', async () => {
    const { status, body } = await post(runtime.address, [makeEvent()], 'yesterday');
    expect(status).toBe(400);
    expect(body.error.details).toEqual([{ path: 'sent_at', message: expect.any(String) }]);
  });

  it('serves the JSON Schema of a touchpoint, the same as the one in the docs', async () => {
    const response = await fetch(`${runtime.address}/v1/schema/touchpoint.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/schema\+json/);
    const shipped = JSON.parse(
      await readFile(new URL('../../docs/touchpoint.schema.json', import.meta.url), 'utf8'),
    );
    const served = (await response.json()) as { required: string[]; anyOf: unknown };
    expect(served, 'docs/touchpoint.schema.json is stale: run `npx touchstream schema`').toEqual(
      shipped,
    );
    expect(served.required).toEqual(['event_id', 'type', 'channel', 'timestamp']);
    // A customer id, an anonymous id, or both.
    expect(served.anyOf).toEqual([{ required: ['customer_id'] }, { required: ['anonymous_id'] }]);
  });
});
