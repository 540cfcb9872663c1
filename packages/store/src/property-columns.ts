import type { ClickHouseClient } from '@clickhouse/client';

/**
 * Event properties kept as columns of their own (`TOUCHSTREAM_PROPERTY_COLUMNS`): each a
 * MATERIALIZED column of `events` holding the property's JSON text, as `JSONExtractRaw`
 * gives it ('' when missing), computed by ClickHouse as rows are stored. A funnel that
 * holds such a property constant, or breaks down by it, reads the column rather than
 * parsing every event's JSON: the parse is most of what holding a property costs.
 *
 * Names are plain identifiers (the configuration checks), so the column is
 * `property_<name>`. A property no longer listed keeps its column; it is only not read.
 */
export type PropertyColumns = ReadonlySet<string>;

export const NO_PROPERTY_COLUMNS: PropertyColumns = new Set();

export const propertyColumn = (name: string) => `property_${name}`;

/**
 * Adds the column of each listed property that has none, after the migrations, and returns
 * the properties added. Parts stored before are materialized by a background mutation;
 * until it is done ClickHouse computes the column from the JSON when a part is read, so
 * answers are the same before and after.
 */
export async function applyPropertyColumns(
  client: ClickHouseClient,
  names: readonly string[],
): Promise<string[]> {
  const existing = new Set(
    (
      await (
        await client.query({
          query: `SELECT name FROM system.columns
                  WHERE database = currentDatabase() AND table = 'events'`,
          format: 'JSONEachRow',
        })
      ).json<{ name: string }>()
    ).map((c) => c.name),
  );
  const added = names.filter((name) => !existing.has(propertyColumn(name)));
  for (const name of added) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a plain identifier: ${name}`);
    const column = propertyColumn(name);
    await client.command({
      query: `ALTER TABLE events ADD COLUMN IF NOT EXISTS ${column} String
              MATERIALIZED JSONExtractRaw(properties, '${name}')
              COMMENT 'the property ${name} as JSON text (TOUCHSTREAM_PROPERTY_COLUMNS)'`,
    });
    await client.command({ query: `ALTER TABLE events MATERIALIZE COLUMN ${column}` });
  }
  return added;
}
