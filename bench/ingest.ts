/**
 * Embedded ingest: `touchstream start` on the embedded defaults with the sample journeys
 * (its own process, as `npm start` runs it), BENCH_CLIENTS clients posting batches of
 * BENCH_BATCH events for BENCH_DURATION seconds, where a 202 means stored; against the
 * bare chDB insert of the same rows (JSONEachRow, batches of the same size, one after the
 * other) into the same table schema, in this process.
 *
 *   npx tsx bench/ingest.ts
 *
 * Env: BENCH_DURATION (s, default 10), BENCH_CLIENTS (4), BENCH_BATCH (1000).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createStore, migrate, toEventRow } from '@touchstream/store';
import { eventSource, toTouchpoint } from './support/events.js';
import { fmt, machine, table } from './support/output.js';
import { onCleanup, runMain, tempDir } from './support/run.js';

const env = process.env;
const DURATION_S = Number(env.BENCH_DURATION ?? 10);
const CLIENTS = Number(env.BENCH_CLIENTS ?? 4);
const BATCH = Number(env.BENCH_BATCH ?? 1000);
const CLI = new URL('../apps/cli/bin/touchstream.js', import.meta.url).pathname;
const SAMPLES = new URL('../samples/journeys.yaml', import.meta.url).pathname;

/** Enough batches for the whole run, made before the clock starts. */
function makeBatches(count: number) {
  const source = eventSource(200_000, 11);
  return Array.from({ length: count }, () => Array.from({ length: BATCH }, () => source.next()));
}

async function startTouchstream(dataDir: string) {
  const child = spawn(process.execPath, [CLI, 'start'], {
    env: {
      PATH: env.PATH,
      TOUCHSTREAM_PORT: '0',
      TOUCHSTREAM_LOG_LEVEL: 'info',
      TOUCHSTREAM_DATA_DIR: dataDir,
      TOUCHSTREAM_JOURNEYS_FILE: SAMPLES,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onCleanup(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    if (line.includes('touchstream_started')) return JSON.parse(line).address as string;
  }
  throw new Error('touchstream exited before it started');
}

/** Events stored per second through `POST /v1/events`, every client posting in a loop. */
async function ingestRate(address: string, bodies: string[]) {
  let next = 0;
  let accepted = 0;
  const deadline = performance.now() + DURATION_S * 1000;
  const client = async () => {
    while (performance.now() < deadline && next < bodies.length) {
      const body = bodies[next++] as string;
      const response = await fetch(`${address}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      if (response.status !== 202)
        throw new Error(`answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
      accepted += BATCH;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  if (next >= bodies.length) throw new Error('ran out of batches: make more');
  return accepted / ((performance.now() - started) / 1000);
}

/** Rows stored per second by bare inserts of the same rows, batch after batch. */
async function bareInsertRate(dataDir: string, batches: Record<string, unknown>[][]) {
  const store = await createStore({
    dataDir,
    clickhouse: { user: 'default', password: '', database: 'touchstream' },
  });
  onCleanup(() => store.close());
  await migrate(store);
  const rows = batches.map((batch) => batch.map((e) => toEventRow(toTouchpoint(e))));
  let inserted = 0;
  const deadline = performance.now() + DURATION_S * 1000;
  const started = performance.now();
  for (const values of rows) {
    if (performance.now() >= deadline) break;
    await store.insert({ table: 'events', values, format: 'JSONEachRow' });
    inserted += values.length;
  }
  return inserted / ((performance.now() - started) / 1000);
}

runMain(async () => {
  const batches = makeBatches(Math.ceil((DURATION_S * 120_000) / BATCH));
  const bodies = batches.map((events) => JSON.stringify({ events }));
  const address = await startTouchstream(join(await tempDir('touchstream-bench-ingest-'), 'data'));
  // A short warm-up: the first requests pay for compiling the code paths.
  await ingestRate(address, bodies.splice(0, CLIENTS * 2)).catch(() => 0);
  const ingest = await ingestRate(address, bodies);
  const bare = await bareInsertRate(await tempDir('touchstream-bench-bare-'), batches);
  console.log(
    `${machine()}; ${CLIENTS} clients, ${fmt(BATCH)} events per request, ${DURATION_S} s each`,
  );
  console.log(
    table(
      ['path', 'events/s', 'vs bare insert'],
      [
        ['bare chDB insert (JSONEachRow, same rows)', fmt(bare), '1.00x'],
        [
          'touchstream start, POST /v1/events (202 = stored)',
          fmt(ingest),
          `${(ingest / bare).toFixed(2)}x`,
        ],
      ],
    ),
  );
});
