import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const PROGRAM = new URL('./java/TouchpointProducer.java', import.meta.url).pathname;
const POM = new URL('../../infra/kafka/pom.xml', import.meta.url).pathname;

export const KAFKA_CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCodec = (typeof KAFKA_CODECS)[number];

/** Where a record landed, as the brokers acknowledged it. */
export interface Acknowledged {
  partition: number;
  offset: string;
}

/**
 * The directory kafka.sh installs the broker's jars in, found as it finds it
 * (KAFKA_CACHE_DIR, else a cache named after the pom's Kafka version): the Java client
 * there is the one the broker ships.
 */
export function kafkaLibsDir() {
  const version = /<kafka\.version>(.*)<\/kafka\.version>/.exec(readFileSync(POM, 'utf8'))?.[1];
  if (!version) throw new Error(`cannot read <kafka.version> from ${POM}`);
  const cacheDir =
    process.env.KAFKA_CACHE_DIR ||
    join(process.env.HOME || homedir(), '.cache', 'touchstream', `kafka-${version}`);
  const libs = join(cacheDir, 'libs');
  if (!existsSync(join(libs, `kafka-clients-${version}.jar`))) {
    throw new Error(`Kafka ${version} is not installed in ${libs}: run npm run kafka -- install`);
  }
  return libs;
}

/** The java kafka.sh runs: JAVA, else JAVA_HOME's, else the one on the PATH. */
function javaCommand() {
  if (process.env.JAVA) return process.env.JAVA;
  const home = process.env.JAVA_HOME;
  if (home) {
    const java = join(home, 'bin', 'java');
    try {
      accessSync(java, constants.X_OK);
      return java;
    } catch {
      // Not an executable: kafka.sh falls back to the PATH too.
    }
  }
  return 'java';
}

/**
 * Produces the records with Apache Kafka's Java client (TouchpointProducer.java), keyed,
 * compressed with the codec, idempotent with acks=all. Resolves with where each record
 * landed, in order, and the client's batching figures once every record is acknowledged;
 * rejects with the program's stderr otherwise.
 */
export async function produceWithJava(options: {
  brokers: readonly string[];
  topic: string;
  codec: KafkaCodec;
  records: ReadonlyArray<{ key: string; value: string }>;
  timeoutMs?: number;
}) {
  const child = spawn(
    javaCommand(),
    [
      // The client warns, for instance, while a topic's metadata is not yet known; errors
      // and warnings end up in the rejection, nothing else is printed.
      '-Dlog4j2.level=WARN',
      '-cp',
      `${kafkaLibsDir()}/*`,
      PROGRAM,
      options.brokers.join(','),
      options.topic,
      options.codec,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(signal ? null : code));
  });
  // A program that hangs fails the test with what it said, not with the test's timeout.
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  // Base64 keeps any key or value on its line: see TouchpointProducer.java.
  const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  // A program that died early closes stdin: its exit code and stderr say why, not EPIPE.
  child.stdin.on('error', () => {});
  child.stdin.end(options.records.map((r) => `${base64(r.key)}\t${base64(r.value)}\n`).join(''));
  const code = await exited.finally(() => clearTimeout(timer));
  const errors = Buffer.concat(stderr).toString('utf8');
  if (code !== 0) {
    throw new Error(
      `TouchpointProducer (${options.codec}) exited with ${code ?? 'a signal'}:\n${errors}`,
    );
  }

  const acknowledged: Acknowledged[] = [];
  const metrics: Record<string, number> = {};
  for (const line of Buffer.concat(stdout).toString('utf8').split('\n')) {
    const [kind, ...fields] = line.split('\t');
    if (kind === 'ack') {
      const [index, partition, offset] = fields;
      acknowledged[Number(index)] = { partition: Number(partition), offset: String(offset) };
    } else if (kind === 'metric') {
      const [name, value] = fields;
      if (name) metrics[name] = Number(value);
    }
  }
  const count = acknowledged.filter(Boolean).length;
  if (count !== options.records.length) {
    throw new Error(
      `TouchpointProducer (${options.codec}) reported ${count} of ${options.records.length} records acknowledged:\n${errors}`,
    );
  }
  return { acknowledged, metrics };
}
