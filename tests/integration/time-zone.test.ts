import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeEvent, postEvents } from '../support/events.js';
import { putJourney } from '../support/http.js';
import { spawnTouchstream } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

// Ranges reach ClickHouse as query parameters: a machine outside UTC must read them as UTC
// too, or every window shifts by the zone's offset and counts come out empty.
describe('touchstream start on a machine outside UTC', () => {
  let instance: Awaited<ReturnType<typeof spawnTouchstream>> | undefined;
  afterAll(async () => {
    await instance?.kill('SIGTERM');
  });

  it('counts events in the ranges asked, in UTC', async () => {
    instance = await spawnTouchstream(['start'], {
      TZ: 'America/New_York',
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-tz-')),
    });
    const base = instance.address;
    await putJourney(base, {
      id: 'view-cart',
      name: 'View to cart',
      steps: [
        { name: 'viewed', event_type: 'product_viewed' },
        { name: 'carted', event_type: 'cart_added' },
      ],
      step_timeout: '10m',
    });

    // One hour of events, 30 minutes wide on each side of the range asked for.
    const from = Date.UTC(2026, 9, 1, 12);
    const to = from + 3_600_000;
    const at = (ms: number) => new Date(ms).toISOString();
    const events = [
      makeEvent({ customer_id: 'before', timestamp: at(from - 60_000) }),
      ...['a', 'b', 'c'].flatMap((c, i) => [
        makeEvent({ customer_id: c, type: 'product_viewed', timestamp: at(from + i * 60_000) }),
        makeEvent({ customer_id: c, type: 'cart_added', timestamp: at(from + i * 60_000 + 1000) }),
      ]),
      makeEvent({ customer_id: 'after', timestamp: at(to) }),
    ];
    expect((await postEvents(base, events)).status).toBe(202);

    const funnel = await fetch(`${base}/v1/funnels/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ journey: 'view-cart', from: at(from), to: at(to) }),
    });
    const body = (await funnel.json()) as { steps: { customers: number }[] };
    expect(body.steps.map((s) => s.customers)).toEqual([3, 3]);

    await eventually(async () => {
      const query = new URLSearchParams({ from: at(from), to: at(to) });
      const answer = await fetch(`${base}/v1/journeys/view-cart/dropoffs?${query}`);
      expect(await answer.json()).toMatchObject({ entered: 3, completed: 3 });
    });
  });
});
