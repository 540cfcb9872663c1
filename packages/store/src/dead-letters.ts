import type { ClickHouseClient } from '@clickhouse/client';

export interface DeadLetter {
  /** Where the record was first read, from the dead-letter provenance headers. */
  topic: string;
  partition: number;
  offset: string;
  reason: string;
  record_key: string | null;
  /** The record's bytes as text; bytes that are not UTF-8 are replaced. */
  value: string;
}

export async function readDeadLetters(client: ClickHouseClient, topic: string) {
  return (
    await client.query({
      query: `SELECT topic, partition, toString(offset) AS offset, reason, record_key, value
              FROM dead_letters FINAL WHERE topic = {topic:String} ORDER BY partition, offset`,
      query_params: { topic },
      format: 'JSONEachRow',
    })
  ).json<DeadLetter>();
}
