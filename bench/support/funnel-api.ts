import { join } from 'node:path';
import { loadConfig } from '@touchstream/config';
import pino from 'pino';
import { startRuntime } from '../../apps/cli/src/runtime.js';
import { FACTORIES } from '../../apps/cli/src/services.js';
import { generateSql } from './funnel-data.js';
import { fmt } from './output.js';
import { onCleanup, tempDir } from './run.js';

/**
 * The API alone on the funnel benchmark's data, in BENCH_DATA_DIR when set (kept between
 * runs, generated only when empty) or in a directory of its own. Returns the runtime and
 * how long generating took (0 when the data was there). `env`: more configuration.
 */
export async function startFunnelApi(
  name: string,
  events: number,
  customers: number,
  env: Record<string, string> = {},
) {
  const dataDir =
    process.env.BENCH_DATA_DIR ?? join(await tempDir(`touchstream-bench-${name}-`), 'data');
  const config = loadConfig({
    TOUCHSTREAM_DATA_DIR: dataDir,
    TOUCHSTREAM_PORT: '0',
    TOUCHSTREAM_LOG_LEVEL: 'warn',
    ...env,
  });
  const api = FACTORIES.api;
  if (!api) throw new Error('no api service');
  const runtime = await startRuntime(config, pino({ level: 'warn' }), { api });
  onCleanup(() => runtime.stop());
  const count = async () => {
    const rows = await (
      await runtime.store.query({ query: 'SELECT count() AS n FROM events', format: 'JSONEachRow' })
    ).json<{ n: string }>();
    return Number(rows[0]?.n ?? 0);
  };
  let generatedMs = 0;
  if ((await count()) === 0) {
    console.error(`generating ${fmt(events)} events of ${fmt(customers)} customers ...`);
    const started = performance.now();
    await runtime.store.command({ query: generateSql(events, customers) });
    generatedMs = performance.now() - started;
    console.error(`generated in ${fmt(generatedMs / 1000, 1)} s`);
  }
  return { runtime, store: runtime.store, rows: await count(), generatedMs };
}
