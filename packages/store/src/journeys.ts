import type { ClickHouseClient } from '@clickhouse/client';
import { type Journey, type JourneyBody, journeyBody } from '@touchstream/contracts';

/** Versions order changes; milliseconds, nudged so two changes in one process never tie. */
let lastVersion = 0;
function nextVersion() {
  lastVersion = Math.max(Date.now(), lastVersion + 1);
  return lastVersion;
}

export async function saveJourney(client: ClickHouseClient, id: string, body: JourneyBody) {
  await client.insert({
    table: 'journeys',
    values: [{ id, definition: JSON.stringify(body), deleted: 0, version: nextVersion() }],
    format: 'JSONEachRow',
  });
}

/** Marks the journey deleted; returns whether it existed. */
export async function deleteJourney(client: ClickHouseClient, id: string): Promise<boolean> {
  if (!(await getJourney(client, id))) return false;
  await client.insert({
    table: 'journeys',
    values: [{ id, definition: '', deleted: 1, version: nextVersion() }],
    format: 'JSONEachRow',
  });
  return true;
}

export async function listJourneys(client: ClickHouseClient, id?: string): Promise<Journey[]> {
  const rows = await (
    await client.query({
      query: `SELECT id, definition, deleted FROM journeys FINAL
              WHERE {all:Bool} OR id = {id:String} ORDER BY id`,
      query_params: { all: id === undefined, id: id ?? '' },
      format: 'JSONEachRow',
    })
  ).json<{ id: string; definition: string; deleted: number }>();
  return rows
    .filter((r) => Number(r.deleted) === 0)
    .map((r) => ({ id: r.id, ...journeyBody.parse(JSON.parse(r.definition)) }));
}

export async function getJourney(client: ClickHouseClient, id: string) {
  return (await listJourneys(client, id))[0];
}
