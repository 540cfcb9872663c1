import type { ClickHouseClient } from '@clickhouse/client';
import { type AlertRule, type AlertRuleBody, alertRuleBody } from '@touchstream/contracts';

/** Versions order changes; milliseconds, nudged so two changes in one process never tie. */
let lastVersion = 0;
function nextVersion() {
  lastVersion = Math.max(Date.now(), lastVersion + 1);
  return lastVersion;
}

export async function saveAlertRule(client: ClickHouseClient, id: string, body: AlertRuleBody) {
  await client.insert({
    table: 'alert_rules',
    values: [{ id, definition: JSON.stringify(body), deleted: 0, version: nextVersion() }],
    format: 'JSONEachRow',
  });
}

/** Marks the rule deleted; returns whether it existed. */
export async function deleteAlertRule(client: ClickHouseClient, id: string): Promise<boolean> {
  if (!(await getAlertRule(client, id))) return false;
  await client.insert({
    table: 'alert_rules',
    values: [{ id, definition: '', deleted: 1, version: nextVersion() }],
    format: 'JSONEachRow',
  });
  return true;
}

export async function listAlertRules(client: ClickHouseClient, id?: string): Promise<AlertRule[]> {
  const rows = await (
    await client.query({
      query: `SELECT id, definition, deleted FROM alert_rules FINAL
              WHERE {all:Bool} OR id = {id:String} ORDER BY id`,
      query_params: { all: id === undefined, id: id ?? '' },
      format: 'JSONEachRow',
    })
  ).json<{ id: string; definition: string; deleted: number }>();
  return rows
    .filter((r) => Number(r.deleted) === 0)
    .map((r) => ({ id: r.id, ...alertRuleBody.parse(JSON.parse(r.definition)) }));
}

export async function getAlertRule(client: ClickHouseClient, id: string) {
  return (await listAlertRules(client, id))[0];
}
