import type { ClickHouseClient } from '@clickhouse/client';

/** The customer id of a partition's own row in journey_state. */
export const PARTITION_ROW = '';

export interface StateRow {
  customer_id: string;
  state: string;
  deleted: 0 | 1;
}

/** A row of the journey_state table. */
export interface CheckpointRow extends StateRow {
  group_id: string;
  partition: number;
  version: number;
}

/**
 * The rows of one checkpoint of a partition, to be written as one write (so one insert:
 * stored whole or not at all). `version` must grow with every checkpoint of the partition.
 */
export function checkpointRows(
  groupId: string,
  partition: number,
  version: number,
  rows: readonly StateRow[],
): CheckpointRow[] {
  return rows.map((r) => ({ group_id: groupId, partition, version, ...r }));
}

/** The latest checkpoint of a partition: its own row and its customers' rows. */
export async function readCheckpoint(client: ClickHouseClient, groupId: string, partition: number) {
  const rows = await (
    await client.query({
      query: `SELECT customer_id, state, deleted, toString(version) AS version
              FROM journey_state FINAL
              WHERE group_id = {group:String} AND partition = {partition:UInt32}`,
      query_params: { group: groupId, partition },
      format: 'JSONEachRow',
    })
  ).json<{ customer_id: string; state: string; deleted: number; version: string }>();
  const live = rows.filter((r) => Number(r.deleted) === 0);
  return {
    partitionState: live.find((r) => r.customer_id === PARTITION_ROW)?.state,
    customerStates: live.filter((r) => r.customer_id !== PARTITION_ROW).map((r) => r.state),
    version: rows.reduce((max, r) => Math.max(max, Number(r.version)), 0),
  };
}
