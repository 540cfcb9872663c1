import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@touchstream/config';
import { createStore } from '@touchstream/store';

/**
 * A ClickHouse of the test file's own: a fresh embedded-engine directory, or a fresh
 * database on the server named by TOUCHSTREAM_CLICKHOUSE_URL.
 */
export async function openTestStore() {
  const config = loadConfig(process.env);
  const dataDir = await mkdtemp(join(tmpdir(), 'touchstream-ch-'));
  const database = config.clickhouse.url
    ? `test_${process.pid}_${Date.now().toString(36)}`
    : config.clickhouse.database;
  return createStore({ dataDir, clickhouse: { ...config.clickhouse, database } });
}
