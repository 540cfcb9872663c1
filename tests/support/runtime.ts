import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadConfig } from '@touchstream/config';
import pino from 'pino';
import { SERVICE_NAMES, type ServiceName, startRuntime } from '../../apps/cli/src/runtime.js';
import { FACTORIES } from '../../apps/cli/src/services.js';
import { callJson } from './http.js';

const CLI = new URL('../../apps/cli/bin/touchstream.js', import.meta.url).pathname;

/** `touchstream start` in this process, on a free port, configured by the given variables. */
export async function startTestRuntime(
  env: Record<string, string>,
  only: readonly ServiceName[] = SERVICE_NAMES,
) {
  const config = loadConfig({ TOUCHSTREAM_PORT: '0', TOUCHSTREAM_LOG_LEVEL: 'error', ...env });
  const services = Object.fromEntries(
    only.flatMap((name) => {
      const factory = FACTORIES[name];
      return factory ? [[name, factory]] : [];
    }),
  );
  return startRuntime(config, pino({ level: config.logLevel }), services);
}

/** The signup journey, as the journeys file of the API suites starts. */
export const SIGNUP_YAML = [
  'journeys:',
  '  signup:',
  '    name: Signup',
  '    steps:',
  '      - {name: visited, event_type: landing_viewed}',
  '      - {name: registered, event_type: account_created}',
  '    step_timeout: 1h',
];

/**
 * `touchstream start` in this process on a journeys file of these YAML lines, with the
 * ingest key `ingest-key` and the query key `query-key`. `call` sends a JSON request with
 * the query key, or with the headers given instead.
 */
export async function startWithJourneysFile(name: string, yaml: readonly string[]) {
  const dir = await mkdtemp(join(tmpdir(), `touchstream-${name}-`));
  const file = join(dir, 'journeys.yaml');
  await writeFile(file, yaml.join('\n'));
  const runtime = await startTestRuntime({
    TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
    TOUCHSTREAM_JOURNEYS_FILE: file,
    TOUCHSTREAM_INGEST_KEYS: 'ingest-key',
    TOUCHSTREAM_QUERY_KEYS: 'query-key',
  });
  const query: Record<string, string> = { authorization: 'Bearer query-key' };
  const call = (method: string, path: string, body?: unknown, headers = query) =>
    callJson(runtime.address, method, path, body, headers);
  return { runtime, dir, call };
}

export type JourneysFileRuntime = Awaited<ReturnType<typeof startWithJourneysFile>>;

/**
 * `touchstream <args>` as a child process; resolves once it logged the address it serves
 * and, by default, started its services (`until: 'touchstream_listening'` does not wait
 * for them).
 */
export async function spawnTouchstream(
  args: string[],
  env: Record<string, string>,
  until: 'touchstream_started' | 'touchstream_listening' = 'touchstream_started',
) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, TOUCHSTREAM_PORT: '0', TOUCHSTREAM_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      output.push(line);
      if (line.includes(until)) resolve(JSON.parse(line).address);
    });
    child.once('exit', (code) =>
      reject(new Error(`touchstream exited with ${code} before starting:\n${output.join('\n')}`)),
    );
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return {
    address,
    output,
    /** Resolves with the exit code once the process has ended. */
    exited,
    /** Sends the signal and waits for the process to end. */
    async kill(signal: NodeJS.Signals) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}
