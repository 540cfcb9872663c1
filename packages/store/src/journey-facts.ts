import type { ClickHouseClient } from '@clickhouse/client';
import { toClickHouseTime } from './events.js';
import { inSlices } from './slices.js';

/** A fact as the engine emits it (see @touchstream/engine), in storable form. */
export interface FactRow {
  journey: string;
  instance: string;
  customer_id: string;
  kind: 'reached' | 'completed' | 'dropped';
  step: number;
  time: string;
  channel: string;
  previous_channel: string;
  seconds_from_previous: number | null;
  reason: string;
  /** The value at stake in the instance as of this fact; null when none is known. */
  value: number | null;
  /** The newest version of a fact is the one that stands (see `correctionRows`). */
  version: number;
  /** 1: the fact was withdrawn by a correction. */
  deleted: 0 | 1;
}

export function factRow(
  fact: {
    kind: FactRow['kind'];
    journey: string;
    instance: string;
    customer: string;
    step: number;
    time: number;
    channel?: string;
    previousChannel?: string | null;
    secondsFromPrevious?: number | null;
    reason?: string;
    value?: number;
  },
  version: number,
): FactRow {
  return {
    journey: fact.journey,
    instance: fact.instance,
    customer_id: fact.customer,
    kind: fact.kind,
    step: fact.step,
    time: toClickHouseTime(fact.time),
    channel: fact.channel ?? '',
    previous_channel: fact.previousChannel ?? '',
    seconds_from_previous: fact.secondsFromPrevious ?? null,
    reason: fact.reason ?? '',
    value: fact.value ?? null,
    version,
    deleted: 0,
  };
}

/** A fact's identity: the sort key of the facts table (the customer is the caller's). */
const identity = (f: FactRow) => `${f.journey}\u0000${f.instance}\u0000${f.kind}\u0000${f.step}`;
const sameContent = (a: FactRow, b: FactRow) =>
  a.time === b.time &&
  a.channel === b.channel &&
  a.previous_channel === b.previous_channel &&
  a.seconds_from_previous === b.seconds_from_previous &&
  a.reason === b.reason &&
  a.value === b.value;

/**
 * The rows that turn one customer's stored facts (`current`) into its recomputed ones
 * (`fresh`): a deletion row for each fact that no longer holds, at `version`, and each
 * new or changed fact at `version + 1`. A deletion carries the withdrawn fact's own time,
 * so it lands in that fact's partition; the fact that replaces it may land elsewhere, and
 * where both land together the higher version wins. Facts that did not change are not
 * written again. `version` must be above every version in `current`.
 */
export function correctionRows(
  current: readonly FactRow[],
  fresh: readonly FactRow[],
  version: number,
): FactRow[] {
  const before = new Map(current.map((f) => [identity(f), f]));
  const after = new Map(fresh.map((f) => [identity(f), f]));
  const rows: FactRow[] = [];
  for (const [key, old] of before) {
    const next = after.get(key);
    if (next && next.time === old.time) continue;
    rows.push({ ...old, version, deleted: 1 });
  }
  for (const [key, next] of after) {
    const old = before.get(key);
    if (old && sameContent(old, next)) continue;
    rows.push({ ...next, version: version + 1, deleted: 0 });
  }
  return rows;
}

/** The current facts of these customers in these journeys, with their versions. */
export async function readFacts(
  client: ClickHouseClient,
  customers: readonly string[],
  journeys: readonly string[],
): Promise<FactRow[]> {
  if (journeys.length === 0) return [];
  return inSlices(customers, async (slice) => {
    const rows = await (
      await client.query({
        query: `SELECT journey, instance, customer_id, kind, step, time, channel, previous_channel,
                       seconds_from_previous, reason, value, version, deleted
                FROM facts FINAL
                WHERE journey IN {journeys:Array(String)} AND customer_id IN {customers:Array(String)}`,
        query_params: { journeys, customers: slice },
        format: 'JSONEachRow',
      })
    ).json<Omit<FactRow, 'version'> & { version: string }>();
    return rows.map((r) => ({ ...r, version: Number(r.version), deleted: 0 as const }));
  });
}
