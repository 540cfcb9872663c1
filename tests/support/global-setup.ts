import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';

const run = promisify(execFile);
const KAFKA_SH = new URL('../../infra/kafka/kafka.sh', import.meta.url).pathname;

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
    kafkaDataDir: string;
    kafkaPort: number;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts one real Kafka broker for the whole run, unless one is given. */
export default async function setup(project: TestProject) {
  const given = process.env.TOUCHSTREAM_KAFKA_BROKERS;
  if (given) {
    project.provide('kafkaBrokers', given);
    project.provide('kafkaDataDir', '');
    project.provide('kafkaPort', 0);
    return;
  }
  // The controller listens on port + 1: find a port whose neighbour is free too.
  let port = await freePort();
  while (!(await isFree(port + 1))) port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'touchstream-kafka-'));
  const env = { ...process.env, KAFKA_PORT: String(port), KAFKA_DATA_DIR: dataDir };
  await run('bash', [KAFKA_SH, 'start'], { env, maxBuffer: 16 * 1024 * 1024 });
  project.provide('kafkaBrokers', `127.0.0.1:${port}`);
  project.provide('kafkaDataDir', dataDir);
  project.provide('kafkaPort', port);
  return async () => {
    await run('bash', [KAFKA_SH, 'stop'], { env });
    await rm(dataDir, { recursive: true, force: true });
  };
}

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
