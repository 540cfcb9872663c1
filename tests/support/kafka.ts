import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inject } from 'vitest';

const run = promisify(execFile);
const KAFKA_SH = new URL('../../infra/kafka/kafka.sh', import.meta.url).pathname;

export const kafkaBrokers = () => inject('kafkaBrokers').split(',');

/** Stops or starts the test run's own broker (not an external one) through kafka.sh. */
export async function kafkaControl(action: 'stop' | 'start') {
  const dataDir = inject('kafkaDataDir');
  if (!dataDir) throw new Error('the broker is external: it cannot be stopped from the tests');
  const env = { ...process.env, KAFKA_PORT: String(inject('kafkaPort')), KAFKA_DATA_DIR: dataDir };
  await run('bash', [KAFKA_SH, action], { env });
}

/** A name no other test uses, for topics and groups. */
export function uniqueName(prefix: string) {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
