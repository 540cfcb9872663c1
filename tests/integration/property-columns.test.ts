/**
 * TOUCHSTREAM_PROPERTY_COLUMNS on a store that already holds events: the start adds the
 * columns, funnels that hold or break down by those properties answer as before, and a
 * later start adds nothing.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { insertEvents } from '@touchstream/store';
import { afterAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { queryFunnel } from '../support/funnel-client.js';
import { startTestRuntime } from '../support/runtime.js';

const T0 = Date.UTC(2026, 4, 1);
const CHANNELS = ['web', 'mobile', 'call_center'];
const PLANS = ['free', 'pro', 'team'];

/** 60 customers: views, then carts and orders, the plan changing between some steps. */
const events = Array.from({ length: 60 }, (_, c) =>
  ['viewed', 'carted', 'ordered'].slice(0, 1 + (c % 3)).map((type, k) => ({
    event_id: `e${c}-${k}`,
    customer_id: `c${c}`,
    type,
    channel: CHANNELS[(c + k) % 3] as string,
    timestamp: T0 + c * 60_000 + k * 1000,
    properties: { plan: PLANS[c % 7 === 0 ? k % 3 : c % 3] as string, n: c % 2 },
  })),
).flat();

const FUNNELS = [
  { hold_constant: ['plan'] },
  { hold_constant: ['plan', 'n'], breakdown: 'property:plan' },
  { breakdown: 'property:plan', breakdown_attribution: 'last_touch' },
  { breakdown: 'channel', breakdown_attribution: 'step:1' },
  { breakdown: 'channel', order: 'any' },
];

describe('property columns', () => {
  let runtime: Runtime | undefined;
  afterAll(async () => {
    await runtime?.stop();
  });

  const answers = async () =>
    Promise.all(
      FUNNELS.map(async (options) => {
        const { status, body } = await queryFunnel((runtime as Runtime).address, {
          steps: [{ event_type: 'viewed' }, { event_type: 'carted' }, { event_type: 'ordered' }],
          from: new Date(T0).toISOString(),
          to: new Date(T0 + 3_600_000).toISOString(),
          window: '1h',
          ...options,
        });
        expect(status, JSON.stringify(body)).toBe(200);
        return body;
      }),
    );
  const columns = async () =>
    (
      await (
        await (runtime as Runtime).store.query({
          query: `SELECT name FROM system.columns
                  WHERE database = currentDatabase() AND table = 'events' AND name LIKE 'property%'`,
          format: 'JSONEachRow',
        })
      ).json<{ name: string }>()
    ).map((c) => c.name);

  it('are added to stored events at start, and change no answer', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'touchstream-columns-')), 'data');
    runtime = await startTestRuntime({ TOUCHSTREAM_DATA_DIR: dir }, ['api']);
    await insertEvents(runtime.store, events);
    const before = await answers();
    // Step 1 (carted) is on call_center or web, in this data.
    expect(before[3].breakdown.map((b: { value: string | null }) => b.value)).toEqual(
      expect.arrayContaining(['call_center', 'web', null]),
    );
    expect(before[4].breakdown.map((b: { value: string | null }) => b.value).sort()).toEqual([
      'call_center',
      'mobile',
      'web',
    ]);
    expect(await columns()).toEqual([]);
    await runtime.stop();

    runtime = await startTestRuntime(
      { TOUCHSTREAM_DATA_DIR: dir, TOUCHSTREAM_PROPERTY_COLUMNS: 'plan,n' },
      ['api'],
    );
    expect((await columns()).sort()).toEqual(['property_n', 'property_plan']);
    expect(await answers()).toEqual(before);
    await runtime.stop();

    runtime = await startTestRuntime(
      { TOUCHSTREAM_DATA_DIR: dir, TOUCHSTREAM_PROPERTY_COLUMNS: 'plan' },
      ['api'],
    );
    expect(await answers()).toEqual(before);
  });
});
