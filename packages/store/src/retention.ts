import type { ClickHouseClient } from '@clickhouse/client';

/**
 * The tables TOUCHSTREAM_RETENTION applies to, by their event-time column (dead letters:
 * see migration 0011). Identity links are not here: the link standing for an anonymous id
 * is its earliest, and deleting it by age would split a customer who comes back with the
 * same cookie years later; erasure removes links, retention keeps them.
 */
export const RETENTION_COLUMNS = {
  events: 'timestamp',
  facts: 'time',
  dead_letters: 'event_time',
} as const;

export type RetentionTable = keyof typeof RETENTION_COLUMNS;

export interface RetentionChange {
  table: RetentionTable;
  /** The table's TTL from now on, as ClickHouse prints it; null: removed. */
  ttl: string | null;
  statement: string;
}

/**
 * A table's TTL for a retention, spelt as ClickHouse prints it back in `engine_full`, so
 * that a start with an unchanged retention finds it equal and alters nothing. Rounded up
 * to whole seconds: a retention keeps rows at least as long as it says.
 */
export function retentionTtl(column: string, retentionMs: number | undefined): string | null {
  if (retentionMs === undefined) return null;
  return `${column} + toIntervalSecond(${Math.ceil(retentionMs / 1000)})`;
}

/** The table TTL in `engine_full` of system.tables (it comes after ORDER BY, before SETTINGS). */
export function tableTtl(engineFull: string): string | null {
  return / TTL (.+?)(?: SETTINGS |$)/.exec(engineFull)?.[1] ?? null;
}

/**
 * What brings each table to the retention, given the tables' `engine_full`; nothing for a
 * table already there. The TTL goes into the statement as text because DDL takes no query
 * parameters; it holds only a column name of ours and an integer.
 */
export function planRetention(
  engines: ReadonlyMap<string, string>,
  retentionMs: number | undefined,
): RetentionChange[] {
  return Object.entries(RETENTION_COLUMNS).flatMap(([table, column]) => {
    const engine = engines.get(table);
    if (engine === undefined) throw new Error(`table ${table} does not exist: migrate first`);
    const ttl = retentionTtl(column, retentionMs);
    if (tableTtl(engine) === ttl) return [];
    const statement =
      ttl === null ? `ALTER TABLE ${table} REMOVE TTL` : `ALTER TABLE ${table} MODIFY TTL ${ttl}`;
    return [{ table: table as RetentionTable, ttl, statement }];
  });
}

/**
 * Sets the TTL of events, facts and dead letters to the retention (undefined: none), after
 * the migrations, and returns what changed. A new TTL is materialized in the parts already
 * stored, or rows stored before it would never expire; the tables only recompute their TTL
 * bounds then (migration 0011), and ordinary TTL merges delete the rows. The mutation runs
 * in the background: a start does not wait for a large table.
 */
export async function applyRetention(
  client: ClickHouseClient,
  retentionMs: number | undefined,
): Promise<RetentionChange[]> {
  const tables = await (
    await client.query({
      query: `SELECT name, engine_full FROM system.tables
              WHERE database = currentDatabase() AND name IN {tables:Array(String)}`,
      query_params: { tables: Object.keys(RETENTION_COLUMNS) },
      format: 'JSONEachRow',
    })
  ).json<{ name: string; engine_full: string }>();
  const changes = planRetention(new Map(tables.map((t) => [t.name, t.engine_full])), retentionMs);
  for (const change of changes) {
    await client.command({
      query: change.statement,
      // A server profile may turn materializing off; then old parts would keep their rows.
      clickhouse_settings: { materialize_ttl_after_modify: 1 },
    });
  }
  return changes;
}
