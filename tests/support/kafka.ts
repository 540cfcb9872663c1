import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inject } from 'vitest';

const run = promisify(execFile);
const KAFKA_SH = new URL('../../infra/kafka/kafka.sh', import.meta.url).pathname;

export const kafkaBrokers = () => inject('kafkaBrokers').split(',');

/** A broker of the test's own, for tests that stop and start it; kafka.sh runs it. */
export async function privateBroker(port: number, dataDir: string) {
  const env = { ...process.env, KAFKA_PORT: String(port), KAFKA_DATA_DIR: dataDir };
  const control = async (action: 'start' | 'stop') => {
    await run('bash', [KAFKA_SH, action], { env });
  };
  await control('start');
  return {
    brokers: [`127.0.0.1:${port}`],
    start: () => control('start'),
    stop: () => control('stop'),
  };
}

/** A name no other test uses, for topics and groups. */
export function uniqueName(prefix: string) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
