import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { topicNames } from '@touchstream/contracts';
import { applyRetention, type Store } from '@touchstream/store';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { postAll } from '../support/events.js';
import { putJourney } from '../support/http.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const TABLES = ['events', 'facts', 'dead_letters'] as const;

const SIGNUP = {
  id: 'signup',
  name: 'Signup',
  steps: [
    { name: 'visited', event_type: 'landing_viewed' },
    { name: 'registered', event_type: 'account_created' },
  ],
  step_timeout: '1h',
};

/** A customer who signed up at `at`: two events, and the facts of a completed journey. */
const signup = (customer: string, at: number) => [
  {
    event_id: `${customer}-1`,
    customer_id: customer,
    type: 'landing_viewed',
    channel: 'web',
    timestamp: at,
  },
  {
    event_id: `${customer}-2`,
    customer_id: customer,
    type: 'account_created',
    channel: 'web',
    timestamp: at + MIN,
  },
];

/** A record the processor refuses (an unknown field), carrying an event time. */
const refused = (customer: string, at: number) => ({
  key: customer,
  value: JSON.stringify({ ...signup(customer, at)[0], event_id: `${customer}-bad`, colour: 'red' }),
});

async function rows<T>(store: Store, query: string) {
  return (await store.query({ query, format: 'JSONEachRow' })).json<T>();
}

/** What is physically stored, without FINAL: per table, the customers with rows in it. */
async function stored(store: Store) {
  const customers = async (query: string) =>
    (await rows<{ c: string }>(store, query)).map((r) => r.c).sort();
  return {
    events: await customers('SELECT DISTINCT customer_id AS c FROM events'),
    facts: await customers('SELECT DISTINCT customer_id AS c FROM facts'),
    dead_letters: await customers(`SELECT DISTINCT ifNull(record_key, '') AS c FROM dead_letters`),
  };
}

async function ttls(store: Store) {
  const tables = await rows<{ name: string; engine_full: string }>(
    store,
    `SELECT name, engine_full FROM system.tables
     WHERE database = currentDatabase() AND name IN ('events', 'facts', 'dead_letters')`,
  );
  return Object.fromEntries(
    tables.map((t) => [t.name, / TTL (.+?)(?: SETTINGS |$)/.exec(t.engine_full)?.[1] ?? null]),
  );
}

const materializations = async (store: Store) =>
  Number(
    (
      await rows<{ n: string }>(
        store,
        `SELECT count() AS n FROM system.mutations
         WHERE database = currentDatabase() AND command LIKE '%MATERIALIZE TTL%'`,
      )
    )[0]?.n,
  );

/**
 * Forces what TTL merges do in their own time: once the TTL is materialized in every part,
 * each partition is merged with the TTL applied.
 */
async function forceTtlMerges(store: Store) {
  await eventually(async () => {
    const [pending] = await rows<{ n: string }>(
      store,
      'SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() AND NOT is_done',
    );
    expect(Number(pending?.n)).toBe(0);
  });
  for (const table of TABLES) await store.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
}

describe('TOUCHSTREAM_RETENTION', () => {
  let runtime: Runtime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  it('deletes events, facts and dead letters older than it by event time, and follows its changes at start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-retention-'));
    const start = (retention?: string) =>
      startTestRuntime({
        TOUCHSTREAM_DATA_DIR: dir,
        TOUCHSTREAM_IDLE_WATERMARK: '2s',
        ...(retention ? { TOUCHSTREAM_RETENTION: retention } : {}),
      });
    const restart = async (retention?: string) => {
      await runtime?.stop();
      runtime = await start(retention);
      return runtime;
    };
    const now = Date.now();

    // Unset: kept forever. Two customers five days ago, one an hour ago, each with a
    // journey completed and a refused record; and a record with no time at all.
    let current = await restart();
    expect(await ttls(current.store)).toEqual({ events: null, facts: null, dead_letters: null });
    await putJourney(current.address, SIGNUP);
    await postAll(current.address, [
      [...signup('old-1', now - 5 * DAY), ...signup('old-2', now - 5 * DAY + 10 * MIN)],
    ]);
    await postAll(current.address, [signup('recent', now - 60 * MIN)]);
    const topics = topicNames(current.config.kafka.topicPrefix);
    await current.bus.publish(topics.touchpoints, [
      refused('old-1', now - 5 * DAY),
      refused('recent', now - 60 * MIN),
      { key: 'timeless', value: 'not json at all' },
    ]);
    const everything = {
      events: ['old-1', 'old-2', 'recent'],
      facts: ['old-1', 'old-2', 'recent'],
      dead_letters: ['old-1', 'recent', 'timeless'],
    };
    await eventually(async () => expect(await stored(current.store)).toEqual(everything));
    await forceTtlMerges(current.store);
    expect(await stored(current.store)).toEqual(everything);

    // Ten days: nothing is old enough yet.
    current = await restart('10d');
    expect(await ttls(current.store)).toEqual({
      events: 'timestamp + toIntervalSecond(864000)',
      facts: 'time + toIntervalSecond(864000)',
      dead_letters: 'event_time + toIntervalSecond(864000)',
    });
    await forceTtlMerges(current.store);
    expect(await stored(current.store)).toEqual(everything);

    // Two days: the rows stored before the change go too, by their event time.
    current = await restart('2d');
    expect(await ttls(current.store)).toEqual({
      events: 'timestamp + toIntervalSecond(172800)',
      facts: 'time + toIntervalSecond(172800)',
      dead_letters: 'event_time + toIntervalSecond(172800)',
    });
    await forceTtlMerges(current.store);
    const recentOnly = {
      events: ['recent'],
      facts: ['recent'],
      dead_letters: ['recent', 'timeless'],
    };
    expect(await stored(current.store)).toEqual(recentOnly);

    // The same value again: the start finds the TTL as it wrote it, and alters nothing.
    const before = await materializations(current.store);
    current = await restart('2d');
    expect(await applyRetention(current.store, 2 * DAY)).toEqual([]);
    expect(await materializations(current.store)).toBe(before);

    // Unset again: the TTL is gone, and an old event stored now stays.
    current = await restart();
    expect(await ttls(current.store)).toEqual({ events: null, facts: null, dead_letters: null });
    await postAll(current.address, [signup('old-3', now - 5 * DAY)]);
    await eventually(async () =>
      expect((await stored(current.store)).events).toEqual(['old-3', 'recent']),
    );
    await forceTtlMerges(current.store);
    expect((await stored(current.store)).events).toEqual(['old-3', 'recent']);
  });
});
