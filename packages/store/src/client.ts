import { type ClickHouseClient, createClient } from '@clickhouse/client';
import type { Config } from '@touchstream/config';

/**
 * The one ClickHouse client of a process: a ClickHouse server over HTTP when a URL is
 * configured, else the embedded engine (chDB) in `dataDir`. Either way the same SQL runs,
 * with unqualified table names resolving to the configured database, which is created here.
 */
export async function createStore(config: Pick<Config, 'clickhouse' | 'dataDir'>) {
  const { url, user, password, database } = config.clickhouse;
  const createDatabase = `CREATE DATABASE IF NOT EXISTS ${database}`;
  if (url) {
    // An HTTP client bound to a database that does not exist yet fails every query.
    const bootstrap = createClient({ url, username: user, password });
    try {
      await bootstrap.command({ query: createDatabase });
    } finally {
      await bootstrap.close();
    }
    return createClient({ url, username: user, password, database });
  }
  // The embedded engine ignores the client's database option; USE holds for its session.
  // Loaded only here: a deployment with a ClickHouse server never loads the native engine.
  const { createChdbConnection } = await import('chdb/connection');
  // chdb types its connection against its own copy of the client's interfaces; they agree.
  const connection = createChdbConnection({ path: config.dataDir }) as unknown as NonNullable<
    Parameters<typeof createClient>[0]
  >['connection'];
  const client = createClient({ connection });
  await client.command({ query: createDatabase });
  await client.command({ query: `USE ${database}` });
  return client;
}

export type Store = ClickHouseClient;
