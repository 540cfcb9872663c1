import type { ClickHouseClient } from '@clickhouse/client';

/**
 * The version of a new row of `id` in a ReplacingMergeTree: ClickHouse's own clock in
 * nanoseconds, and past the highest version the id already has. One clock orders the
 * changes of every process that writes (their own clocks may differ), and a change is
 * never ordered behind an earlier one of the same id, even if that clock steps back.
 * A decimal string: nanoseconds are past what a JavaScript number holds exactly.
 */
export async function nextVersion(
  client: ClickHouseClient,
  table: string,
  id: string,
): Promise<string> {
  const [row] = await (
    await client.query({
      query: `SELECT toString(greatest(toUInt64(toUnixTimestamp64Nano(now64(9))),
                (SELECT max(version) + 1 FROM ${table} WHERE id = {id:String}))) AS version`,
      query_params: { id },
      format: 'JSONEachRow',
    })
  ).json<{ version: string }>();
  if (!row) throw new Error(`no version for ${table} ${id}`);
  return row.version;
}
