import type { ClickHouseClient } from '@clickhouse/client';
import type { Alert, AlertState } from '@touchstream/contracts';
import { toClickHouseTime } from './events.js';
import { nextVersion } from './versions.js';

/** Where a webhook notice stands; `none` when the rule has no webhook. */
export type NoticeState = 'none' | 'pending' | 'delivered' | 'failed';

/** One firing episode of a rule, with the notices it owes. */
export interface AlertRecord {
  /** Rule and firing time: the same episode always has the same id. */
  id: string;
  alert: Alert;
  /** The message the alert fired with; `alert.message` says why it resolved, once it has. */
  firingMessage: string;
  webhookUrl: string;
  firingNotice: NoticeState;
  resolvedNotice: NoticeState;
}

const fromClickHouseTime = (text: string) => `${text.replace(' ', 'T')}Z`;

/**
 * Stores the record as it is now. Callers serialise the writes of one record: each write
 * carries a higher version, so the last one written is the one read.
 */
export async function saveAlertRecord(client: ClickHouseClient, record: AlertRecord) {
  const { alert } = record;
  await client.insert({
    table: 'alerts',
    values: [
      {
        id: record.id,
        rule_id: alert.rule_id,
        journey: alert.journey,
        step: alert.step,
        condition: alert.condition,
        state: alert.state,
        value: alert.value,
        baseline: alert.baseline,
        started_at: toClickHouseTime(Date.parse(alert.started_at)),
        resolved_at: alert.resolved_at ? toClickHouseTime(Date.parse(alert.resolved_at)) : null,
        message: alert.message,
        firing_message: record.firingMessage,
        webhook_url: record.webhookUrl,
        firing_notice: record.firingNotice,
        resolved_notice: record.resolvedNotice,
        version: await nextVersion(client, 'alerts', record.id),
      },
    ],
    format: 'JSONEachRow',
  });
}

interface Row {
  id: string;
  rule_id: string;
  journey: string;
  step: string;
  condition: Alert['condition'];
  state: AlertState;
  value: number | null;
  baseline: number | null;
  started_at: string;
  resolved_at: string | null;
  message: string;
  firing_message: string;
  webhook_url: string;
  firing_notice: NoticeState;
  resolved_notice: NoticeState;
}

const SELECT = `SELECT id, rule_id, journey, step, condition, state, value, baseline, started_at,
                       resolved_at, message, firing_message, webhook_url, firing_notice,
                       resolved_notice
                FROM alerts FINAL`;

function toRecord(row: Row): AlertRecord {
  return {
    id: row.id,
    alert: {
      rule_id: row.rule_id,
      journey: row.journey,
      step: row.step,
      condition: row.condition,
      state: row.state,
      value: row.value === null ? null : Number(row.value),
      baseline: row.baseline === null ? null : Number(row.baseline),
      started_at: fromClickHouseTime(row.started_at),
      resolved_at: row.resolved_at ? fromClickHouseTime(row.resolved_at) : null,
      message: row.message,
    },
    firingMessage: row.firing_message,
    webhookUrl: row.webhook_url,
    firingNotice: row.firing_notice,
    resolvedNotice: row.resolved_notice,
  };
}

/** GET /v1/alerts: newest first. */
export async function listAlerts(
  client: ClickHouseClient,
  state: AlertState | 'all',
): Promise<Alert[]> {
  const rows = await (
    await client.query({
      query: `${SELECT} WHERE {all:Bool} OR state = {state:String}
              ORDER BY started_at DESC, rule_id`,
      query_params: { all: state === 'all', state: state === 'all' ? '' : state },
      format: 'JSONEachRow',
    })
  ).json<Row>();
  return rows.map((r) => toRecord(r).alert);
}

/** What an alerter must pick up at start: alerts still firing and notices not yet delivered. */
export async function openAlertRecords(client: ClickHouseClient): Promise<AlertRecord[]> {
  const rows = await (
    await client.query({
      query: `${SELECT} WHERE state = 'firing' OR firing_notice = 'pending'
                           OR resolved_notice = 'pending'
              ORDER BY started_at`,
      format: 'JSONEachRow',
    })
  ).json<Row>();
  return rows.map(toRecord);
}

export interface DeliveryRow {
  alert_id: string;
  rule_id: string;
  state: AlertState;
  url: string;
  outcome: 'delivered' | 'failed';
  attempts: number;
  http_status: number | null;
  error: string;
}

export async function insertDelivery(client: ClickHouseClient, row: DeliveryRow) {
  await client.insert({ table: 'alert_deliveries', values: [row], format: 'JSONEachRow' });
}

export async function listDeliveries(client: ClickHouseClient, alertId?: string) {
  return (
    await client.query({
      query: `SELECT alert_id, rule_id, state, url, outcome, attempts, http_status, error
              FROM alert_deliveries WHERE {all:Bool} OR alert_id = {id:String} ORDER BY at`,
      query_params: { all: alertId === undefined, id: alertId ?? '' },
      format: 'JSONEachRow',
    })
  ).json<DeliveryRow>();
}
