import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

/** Reads `NNNN_name.sql` files; each holds statements separated by `;` at a line end. */
export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => {
      const sql = await readFile(`${dir}/${file}`, 'utf8');
      const statements = sql
        .split(/;\s*$/m)
        .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
        .filter((s) => s.length > 0);
      return { version: Number(file.slice(0, 4)), name: file.slice(5, -4), statements };
    }),
  );
}

/**
 * Applies the migrations not yet recorded, in version order, and returns the applied ones.
 * Every statement is idempotent (IF NOT EXISTS), so two processes migrating at once,
 * or a migration interrupted half way, converge on the same schema.
 */
export async function migrate(
  client: ClickHouseClient,
  migrations?: Migration[],
): Promise<Migration[]> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations
      (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = ReplacingMergeTree ORDER BY version`,
  });
  const rows = await (
    await client.query({ query: 'SELECT version FROM schema_migrations', format: 'JSONEachRow' })
  ).json<{ version: number }>();
  const applied = new Set(rows.map((r) => r.version));
  const pending = (migrations ?? (await readMigrations())).filter((m) => !applied.has(m.version));
  for (const migration of pending) {
    for (const statement of migration.statements) await client.command({ query: statement });
    await client.insert({
      table: 'schema_migrations',
      values: [{ version: migration.version, name: migration.name }],
      format: 'JSONEachRow',
    });
  }
  return pending;
}
