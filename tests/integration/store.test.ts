import type { Touchpoint } from '@touchstream/contracts';
import {
  getJourney,
  insertEvents,
  migrate,
  readEvents,
  readMigrations,
  type Store,
  saveJourney,
} from '@touchstream/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestStore } from '../support/store.js';

const event = (overrides: Partial<Touchpoint> = {}): Touchpoint => ({
  event_id: 'e-1',
  customer_id: 'c-1',
  type: 'product_viewed',
  channel: 'web',
  timestamp: Date.UTC(2026, 9, 1, 12, 0, 0, 123),
  properties: { plan: 'pro', amount: 12.5, first: true, note: null },
  ...overrides,
});

describe('store', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openTestStore();
  });
  afterAll(async () => {
    await store.close();
  });

  it('applies every migration once, and again nothing', async () => {
    const all = await readMigrations();
    expect(all.length).toBeGreaterThan(0);
    const first = await migrate(store);
    expect(first.map((m) => m.version)).toEqual(all.map((m) => m.version));
    expect(await migrate(store)).toEqual([]);
    const rows = await (
      await store.query({
        query: 'SELECT version FROM schema_migrations FINAL ORDER BY version',
        format: 'JSONEachRow',
      })
    ).json<{ version: number }>();
    expect(rows.map((r) => r.version)).toEqual(all.map((m) => m.version));
  });

  it('sets the events table to merge a month into one part an hour after its last insert', async () => {
    const [table] = await (
      await store.query({
        query:
          "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'events'",
        format: 'JSONEachRow',
      })
    ).json<{ engine_full: string }>();
    expect(table?.engine_full).toContain('PARTITION BY toYYYYMM(timestamp)');
    expect(table?.engine_full).toContain('min_age_to_force_merge_seconds = 3600');
    expect(table?.engine_full).toContain('min_age_to_force_merge_on_partition_only = 1');
  });

  it('reads back what it stored, with time in milliseconds and typed properties', async () => {
    await insertEvents(store, [event()]);
    const [stored] = await readEvents(store, 'c-1');
    expect(stored).toMatchObject({
      event_id: 'e-1',
      customer_id: 'c-1',
      type: 'product_viewed',
      channel: 'web',
      timestamp: '2026-10-01 12:00:00.123',
    });
    expect(JSON.parse(stored?.properties ?? '')).toEqual({
      plan: 'pro',
      amount: 12.5,
      first: true,
      note: null,
    });
    const [typed] = await (
      await store.query({
        query: `SELECT JSONExtractFloat(properties, {key:String}) AS amount
                FROM events FINAL WHERE event_id = {id:String}`,
        query_params: { key: 'amount', id: 'e-1' },
        format: 'JSONEachRow',
      })
    ).json<{ amount: number }>();
    expect(typed?.amount).toBe(12.5);
  });

  it('counts an event_id stored twice once', async () => {
    const twice = event({ event_id: 'dup-1', customer_id: 'c-dup' });
    await insertEvents(store, [twice]);
    await insertEvents(store, [twice, event({ event_id: 'dup-2', customer_id: 'c-dup' })]);
    const [row] = await (
      await store.query({
        query: 'SELECT count() AS n FROM events FINAL WHERE customer_id = {c:String}',
        query_params: { c: 'c-dup' },
        format: 'JSONEachRow',
      })
    ).json<{ n: number | string }>();
    expect(Number(row?.n)).toBe(2);
    expect((await readEvents(store, 'c-dup')).map((e) => e.event_id)).toEqual(['dup-1', 'dup-2']);
  });

  it('keeps values that look like SQL as plain data', async () => {
    const nasty = "x'); DROP TABLE events; --";
    await insertEvents(store, [event({ event_id: nasty, customer_id: nasty })]);
    const [stored] = await readEvents(store, nasty);
    expect(stored?.event_id).toBe(nasty);
  });

  it('orders changes of a definition by one clock, never behind a stored change', async () => {
    const journey = (name: string) => ({
      name,
      steps: [
        { name: 'a', event_type: 'a' },
        { name: 'b', event_type: 'b' },
      ],
      step_timeout: '30m',
      failure_event_types: [],
    });
    // A change written by a process whose clock runs a day ahead of ClickHouse's.
    const ahead = (BigInt(Date.now() + 86_400_000) * 1_000_000n).toString();
    await store.insert({
      table: 'journeys',
      values: [
        { id: 'clocks', definition: JSON.stringify(journey('ahead')), deleted: 0, version: ahead },
      ],
      format: 'JSONEachRow',
    });
    await saveJourney(store, 'clocks', journey('later'));
    expect((await getJourney(store, 'clocks'))?.name).toBe('later');
    for (const name of ['one', 'two', 'three']) await saveJourney(store, 'clocks', journey(name));
    expect((await getJourney(store, 'clocks'))?.name).toBe('three');
  });
});
