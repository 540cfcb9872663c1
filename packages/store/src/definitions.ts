import type { ClickHouseClient } from '@clickhouse/client';
import type { z } from 'zod';
import { nextVersion } from './versions.js';

/**
 * Definitions kept by id in a ReplacingMergeTree on `version` (journeys, alert rules): a
 * change or a deletion is a new row, and `FINAL` reads the latest of each id.
 */
export function definitionTable<S extends z.ZodType>(table: string, schema: S) {
  type Definition = z.output<S> & { id: string };

  const list = async (client: ClickHouseClient, id?: string): Promise<Definition[]> => {
    const rows = await (
      await client.query({
        query: `SELECT id, definition, deleted FROM ${table} FINAL
                WHERE {all:Bool} OR id = {id:String} ORDER BY id`,
        query_params: { all: id === undefined, id: id ?? '' },
        format: 'JSONEachRow',
      })
    ).json<{ id: string; definition: string; deleted: number }>();
    return rows
      .filter((r) => Number(r.deleted) === 0)
      .map(
        (r) => Object.assign({ id: r.id }, schema.parse(JSON.parse(r.definition))) as Definition,
      );
  };

  const get = async (client: ClickHouseClient, id: string) => (await list(client, id))[0];

  const save = async (client: ClickHouseClient, id: string, body: z.output<S>) => {
    await client.insert({
      table,
      values: [
        {
          id,
          definition: JSON.stringify(body),
          deleted: 0,
          version: await nextVersion(client, table, id),
        },
      ],
      format: 'JSONEachRow',
    });
  };

  /** Marks the definition deleted; returns whether it existed. */
  const remove = async (client: ClickHouseClient, id: string): Promise<boolean> => {
    if (!(await get(client, id))) return false;
    await client.insert({
      table,
      values: [{ id, definition: '', deleted: 1, version: await nextVersion(client, table, id) }],
      format: 'JSONEachRow',
    });
    return true;
  };

  return { list, get, save, remove };
}
