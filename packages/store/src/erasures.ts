import type { ClickHouseClient } from '@clickhouse/client';
import { toClickHouseTime } from './events.js';
import { standingAnonymousIds } from './identities.js';
import { ON_DISK, PATCH_DELETE } from './patch-deletes.js';
import { inSlices } from './slices.js';

/** An erasure request as stored (API.md, "Erasure and retention"). */
export interface ErasureRow {
  erasure_id: string;
  customer_id: string;
  /** The customer id and the anonymous ids whose standing link named it. */
  ids: string[];
  /** Epoch milliseconds. */
  requested_at: number;
  state: 'pending' | 'done';
  done_at: number | null;
}

/**
 * A pending row's version is its number of ids (an erasure only ever gains ids: a link
 * that was in flight at the request), and a done row's is above any: the state only moves
 * forward, whatever the writers' clocks say.
 */
const versionOf = (erasure: ErasureRow) =>
  erasure.state === 'done' ? Number.MAX_SAFE_INTEGER : erasure.ids.length;

/** The customer and every anonymous id whose standing link (first in event time) names it. */
export async function resolveErasureIds(
  client: ClickHouseClient,
  customerId: string,
): Promise<string[]> {
  const anonymous = await standingAnonymousIds(client, customerId);
  return [customerId, ...anonymous.filter((id) => id !== customerId)];
}

export async function writeErasure(client: ClickHouseClient, erasure: ErasureRow) {
  await client.insert({
    table: 'erasures',
    values: [
      {
        ...erasure,
        requested_at: toClickHouseTime(erasure.requested_at),
        done_at: erasure.done_at === null ? null : toClickHouseTime(erasure.done_at),
        version: versionOf(erasure),
      },
    ],
    format: 'JSONEachRow',
  });
}

interface StoredErasure {
  erasure_id: string;
  customer_id: string;
  ids: string[];
  requested_at: string;
  state: 'pending' | 'done';
  done_at: string | null;
}

const ERASURE_COLUMNS = `erasure_id, customer_id, ids, toUnixTimestamp64Milli(requested_at) AS requested_at,
  toString(state) AS state, toUnixTimestamp64Milli(done_at) AS done_at`;

const fromStored = (r: StoredErasure): ErasureRow => ({
  ...r,
  requested_at: Number(r.requested_at),
  done_at: r.done_at === null ? null : Number(r.done_at),
});

export async function readErasure(
  client: ClickHouseClient,
  erasureId: string,
): Promise<ErasureRow | null> {
  const [row] = await (
    await client.query({
      query: `SELECT ${ERASURE_COLUMNS} FROM erasures FINAL WHERE erasure_id = {id:String}`,
      query_params: { id: erasureId },
      format: 'JSONEachRow',
    })
  ).json<StoredErasure>();
  return row ? fromStored(row) : null;
}

export async function pendingErasures(client: ClickHouseClient): Promise<ErasureRow[]> {
  const rows = await (
    await client.query({
      query: `SELECT ${ERASURE_COLUMNS} FROM erasures FINAL WHERE state = 'pending'
              ORDER BY requested_at`,
      format: 'JSONEachRow',
    })
  ).json<StoredErasure>();
  return rows.map(fromStored);
}

/** Whether any erasure was ever requested: until then nothing needs checking. */
export async function anyErasure(client: ClickHouseClient): Promise<boolean> {
  const [row] = await (
    await client.query({ query: 'SELECT count() AS n FROM erasures', format: 'JSONEachRow' })
  ).json<{ n: string }>();
  return Number(row?.n ?? 0) > 0;
}

/** The event ids among these that an erasure removed. */
export async function erasedAmong(
  client: ClickHouseClient,
  eventIds: readonly string[],
): Promise<Set<string>> {
  if (eventIds.length === 0) return new Set();
  const rows = await inSlices([...new Set(eventIds)], async (slice) =>
    (
      await client.query({
        query: 'SELECT DISTINCT event_id FROM erased_events WHERE event_id IN {ids:Array(String)}',
        query_params: { ids: slice },
        format: 'JSONEachRow',
      })
    ).json<{ event_id: string }>(),
  );
  return new Set(rows.map((r) => r.event_id));
}

/** Marks the processor's pass of the erasure at the erase message of `id`. */
export async function recordErasurePass(client: ClickHouseClient, erasureId: string, id: string) {
  await client.insert({
    table: 'erasure_passes',
    values: [{ erasure_id: erasureId, id }],
    format: 'JSONEachRow',
  });
}

/** The ids whose pass of these erasures is done (all pending erasures' when not given). */
export async function erasurePasses(
  client: ClickHouseClient,
  erasureIds?: readonly string[],
): Promise<Map<string, Set<string>>> {
  const passes = new Map<string, Set<string>>((erasureIds ?? []).map((id) => [id, new Set()]));
  if (erasureIds?.length === 0) return passes;
  const rows = await (
    await client.query({
      query: `SELECT DISTINCT erasure_id, id FROM erasure_passes
              WHERE erasure_id IN ${
                erasureIds
                  ? '{ids:Array(String)}'
                  : `(SELECT erasure_id FROM erasures FINAL WHERE state = 'pending')`
              }`,
      query_params: { ids: erasureIds ?? [] },
      format: 'JSONEachRow',
    })
  ).json<{ erasure_id: string; id: string }>();
  for (const row of rows) {
    const ids = passes.get(row.erasure_id) ?? new Set<string>();
    ids.add(row.id);
    passes.set(row.erasure_id, ids);
  }
  return passes;
}

/**
 * What rows of an erasure's ids are, table by table, as SQL over the parameters `ids`
 * (the erasure's ids) and, for the pass of one id, `id`. Without `id`: everything of the
 * ids. With it: only what that id's partition owns, so that each partition's pass removes
 * its own records up to its erase message and nothing another partition stored after its
 * own erase message. An event carrying another customer's id stays that customer's; so
 * does a link made by another customer's event.
 */
function scopes(one: boolean) {
  const events = one
    ? '(customer_id = {id:String} OR (anonymous_id = {id:String} AND customer_id IN {ids:Array(String)}))'
    : 'customer_id IN {ids:Array(String)}';
  const mine = one ? 'customer_id = {id:String}' : 'customer_id IN {ids:Array(String)}';
  const links = one
    ? '(customer_id = {id:String} OR (anonymous_id = {id:String} AND customer_id IN {ids:Array(String)}))'
    : 'customer_id IN {ids:Array(String)}';
  const carriers = one ? '[{id:String}]' : '{ids:Array(String)}';
  // A dead letter is whatever bytes were sent: it counts as the ids' when its key or the
  // ids it names are theirs.
  const deadLetters = `(has(${carriers}, ifNull(record_key, ''))
    OR has(${carriers}, JSONExtractString(value, 'customer_id'))
    OR has(${carriers}, JSONExtractString(value, 'anonymous_id')))`;
  return {
    events,
    facts: mine,
    journey_state: mine,
    identity_links: links,
    dead_letters: deadLetters,
  };
}

export type ErasedTable = keyof ReturnType<typeof scopes>;
export const ERASED_TABLES: readonly ErasedTable[] = [
  'events',
  'facts',
  'journey_state',
  'identity_links',
  'dead_letters',
];

/**
 * Erases the rows of an erasure's ids (`id` set: only the rows that id's partition owns):
 * records the event ids it removes in erased_events first, so that nothing removed can
 * come back, then deletes the rows with lightweight deletes, which hide them from every
 * query at once. Returns the customers (other than `id`) under which removed events had
 * been filed: their partitions recompute them.
 */
export async function eraseRows(
  client: ClickHouseClient,
  erasure: { erasure_id: string; ids: readonly string[] },
  id?: string,
): Promise<{ events: number; filedUnder: string[] }> {
  const where = scopes(id !== undefined);
  const query_params = { ids: erasure.ids, id: id ?? '', erasure: erasure.erasure_id };
  const removed = await (
    await client.query({
      query: `SELECT DISTINCT customer_id FROM events WHERE ${where.events}`,
      query_params,
      format: 'JSONEachRow',
    })
  ).json<{ customer_id: string }>();
  // Dead letters that were events carry their event id: a replay of them stays out too.
  await client.command({
    query: `INSERT INTO erased_events (event_id, erasure_id)
            SELECT event_id, {erasure:String} FROM events WHERE ${where.events}
            UNION ALL
            SELECT JSONExtractString(value, 'event_id') AS event_id, {erasure:String}
            FROM dead_letters WHERE ${where.dead_letters} AND event_id != ''`,
    query_params,
  });
  const [counted] = await (
    await client.query({
      query: `SELECT count() AS n FROM events WHERE ${where.events}`,
      query_params,
      format: 'JSONEachRow',
    })
  ).json<{ n: string }>();
  for (const table of ERASED_TABLES) {
    await client.command({
      query: `DELETE FROM ${table} WHERE ${where[table]}`,
      query_params,
      clickhouse_settings: PATCH_DELETE,
    });
  }
  return {
    events: Number(counted?.n ?? 0),
    filedUnder: removed.map((r) => r.customer_id).filter((c) => c !== id),
  };
}

/** How long each step of a purge took, in milliseconds, for the log and the benchmark. */
export interface PurgeTimings {
  redelete: number;
  apply: number;
  verify: number;
}

/**
 * Removes the rows of these erasures from disk and proves it: deletes again what may have
 * been stored since their passes (events they erased, facts of instances those events
 * began, dead letters of their ids), applies the deleted-row mask of every table, rewrites
 * journey_state (its older checkpoint rows held the ids' pending events), then reads with
 * the mask off. Returns the ids of the erasures with nothing of theirs left on disk.
 */
export async function purgeErasures(
  client: ClickHouseClient,
  erasures: readonly ErasureRow[],
): Promise<{ done: string[]; timings: PurgeTimings }> {
  const ids = [...new Set(erasures.flatMap((e) => e.ids))];
  const query_params = { ids, erasures: erasures.map((e) => e.erasure_id) };
  const erasedIds = `(SELECT event_id FROM erased_events WHERE erasure_id IN {erasures:Array(String)})`;
  const t0 = performance.now();
  await client.command({
    query: `DELETE FROM events WHERE customer_id IN {ids:Array(String)} AND event_id IN ${erasedIds}`,
    query_params,
    clickhouse_settings: PATCH_DELETE,
  });
  await client.command({
    query: `DELETE FROM facts WHERE customer_id IN {ids:Array(String)} AND instance IN ${erasedIds}`,
    query_params,
    clickhouse_settings: PATCH_DELETE,
  });
  await client.command({
    query: `DELETE FROM dead_letters WHERE ${scopes(false).dead_letters}`,
    query_params,
    clickhouse_settings: PATCH_DELETE,
  });
  const t1 = performance.now();
  for (const table of ['events', 'facts', 'identity_links', 'dead_letters']) {
    // The patches first (they mark the rows deleted in the parts), then the mask (it
    // rewrites the parts without them). Waited for: a server runs them in the background.
    for (const step of ['APPLY PATCHES', 'APPLY DELETED MASK']) {
      await client.command({
        query: `ALTER TABLE ${table} ${step}`,
        clickhouse_settings: { mutations_sync: '2' },
      });
    }
  }
  // A merge applies the patches too.
  await client.command({ query: 'OPTIMIZE TABLE journey_state FINAL' });
  const t2 = performance.now();
  const left = await leftOnDisk(client, erasures);
  const t3 = performance.now();
  return {
    done: erasures.filter((e) => !left.has(e.erasure_id)).map((e) => e.erasure_id),
    timings: { redelete: t1 - t0, apply: t2 - t1, verify: t3 - t2 },
  };
}

/**
 * The erasures with something of theirs still on disk, read with the deleted-row mask
 * off: an event they erased, or a row of their ids that is deleted but not yet gone.
 * Rows of the ids stored after an erasure (a new history) are live and not counted.
 */
export async function leftOnDisk(
  client: ClickHouseClient,
  erasures: readonly ErasureRow[],
): Promise<Set<string>> {
  const where = scopes(false);
  const countAll = async (maskOff: boolean, group: readonly ErasureRow[]) => {
    const parts = [
      `(SELECT count() FROM events
        WHERE event_id IN (SELECT event_id FROM erased_events
                           WHERE erasure_id IN {erasures:Array(String)})
          AND customer_id IN {ids:Array(String)})`,
      ...ERASED_TABLES.map((table) => `(SELECT count() FROM ${table} WHERE ${where[table]})`),
    ];
    const [row] = await (
      await client.query({
        query: `SELECT [${parts.join(', ')}] AS n`,
        query_params: {
          ids: [...new Set(group.flatMap((e) => e.ids))],
          erasures: group.map((e) => e.erasure_id),
          id: '',
        },
        format: 'JSONEachRow',
        clickhouse_settings: maskOff ? ON_DISK : {},
      })
    ).json<{ n: string[] }>();
    return (row?.n ?? []).map(Number);
  };
  const anyLeft = async (group: readonly ErasureRow[]) => {
    const [onDisk, visible] = await Promise.all([countAll(true, group), countAll(false, group)]);
    // Erased events: none may be on disk. Other rows: none deleted but still on disk.
    const [erasedEvents = 0, ...rest] = onDisk;
    return erasedEvents > 0 || rest.some((n, i) => n !== (visible[i + 1] ?? 0));
  };
  // All together first: the usual answer, "nothing", in two queries for any number.
  if (erasures.length === 0 || !(await anyLeft(erasures))) return new Set();
  const left = new Set<string>();
  for (const erasure of erasures) {
    if (await anyLeft([erasure])) left.add(erasure.erasure_id);
  }
  return left;
}
