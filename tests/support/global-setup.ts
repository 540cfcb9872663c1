import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { freePortPair } from './ports.js';

const run = promisify(execFile);
const KAFKA_SH = new URL('../../infra/kafka/kafka.sh', import.meta.url).pathname;

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
  }
}

/** Starts one real Kafka broker for the whole run, unless one is given. */
export default async function setup(project: TestProject) {
  const given = process.env.TOUCHSTREAM_KAFKA_BROKERS;
  if (given) {
    project.provide('kafkaBrokers', given);
    return;
  }
  const port = await freePortPair();
  const dataDir = await mkdtemp(join(tmpdir(), 'touchstream-kafka-'));
  const env = { ...process.env, KAFKA_PORT: String(port), KAFKA_DATA_DIR: dataDir };
  await run('bash', [KAFKA_SH, 'start'], { env, maxBuffer: 16 * 1024 * 1024 });
  project.provide('kafkaBrokers', `127.0.0.1:${port}`);
  return async () => {
    await run('bash', [KAFKA_SH, 'stop'], { env });
    await rm(dataDir, { recursive: true, force: true });
  };
}
