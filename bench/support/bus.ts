/** A Kafka broker of the benchmark's own, and loading and reading its topics. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Bus } from '@touchstream/bus';
import { encodeTouchpoint, type Touchpoint } from '@touchstream/contracts';
import { onCleanup, tempDir, waitFor } from './run.js';

const run = promisify(execFile);
const KAFKA_SH = new URL('../../infra/kafka/kafka.sh', import.meta.url).pathname;

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
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

export interface Broker {
  /** `host:port` for the bus and kafkajs. */
  brokers: string;
  /** The broker JVM's pid, to read its CPU time. */
  pid: number | undefined;
}

/** A single-node broker of our own on free ports, stopped and deleted at cleanup. */
export async function startKafka(): Promise<Broker> {
  // The controller listens on port + 1.
  let port = await freePort();
  while (!(await isFree(port + 1))) port = await freePort();
  const dataDir = await tempDir('touchstream-bench-kafka-');
  const env = { ...process.env, KAFKA_PORT: String(port), KAFKA_DATA_DIR: dataDir };
  // Registered before starting: a broker that half-started is stopped too.
  onCleanup(async () => {
    await run('bash', [KAFKA_SH, 'stop'], { env });
    console.error('kafka stopped');
  });
  const started = Date.now();
  const { stdout } = await run('bash', [KAFKA_SH, 'start'], { env, maxBuffer: 16 << 20 });
  const address = stdout.trim().split('\n').at(-1) ?? `127.0.0.1:${port}`;
  console.error(`kafka ${address} started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const pid = Number((await readFile(join(dataDir, 'kafka.pid'), 'utf8').catch(() => '')).trim());
  return { brokers: address, pid: pid > 0 ? pid : undefined };
}

/** Records per publish when loading a topic. */
const PUBLISH_BATCH = 5_000;

/** Publishes the touchpoints in order, a batch at a time; returns seconds and bytes. */
export async function publishTouchpoints(bus: Bus, topic: string, events: readonly Touchpoint[]) {
  const started = performance.now();
  let bytes = 0;
  for (let sent = 0; sent < events.length; sent += PUBLISH_BATCH) {
    const records = events.slice(sent, sent + PUBLISH_BATCH).map(encodeTouchpoint);
    for (const r of records) bytes += r.value.length;
    await bus.publish(topic, records);
  }
  return { seconds: (performance.now() - started) / 1000, bytes };
}

/**
 * Counts the records of one topic a consumer handled, through the bus it is given (each
 * handler call that finished), with the time the first batch reached the handler.
 */
export class HandledCounter {
  handled = 0;
  /** `performance.now()` when the first batch (since `restart`) reached the handler; 0 before. */
  firstAt = 0;

  constructor(readonly topic: string) {}

  /** The next batch is a first batch again (the count goes on). */
  restart() {
    this.firstAt = 0;
  }

  wrap(bus: Bus): Bus {
    return {
      ...bus,
      kind: bus.kind,
      consume: (options) =>
        bus.consume({
          ...options,
          handler: async (batch) => {
            if (batch.topic === this.topic) this.firstAt ||= performance.now();
            await options.handler(batch);
            if (batch.topic === this.topic) this.handled += batch.records.length;
          },
        }),
    };
  }

  /**
   * Waits until `records` were handled and the group's lag is 0 (offsets are committed
   * after the handler resolved); returns `performance.now()` of each.
   */
  async caughtUp(bus: Bus, group: string, records: number, timeoutMs?: number) {
    await waitFor('handled', () => this.handled >= records, { everyMs: 5, timeoutMs });
    const handledAt = performance.now();
    await waitFor('committed', async () => (await bus.lag(group, this.topic)) === 0, {
      timeoutMs,
    });
    return { handledAt, committedAt: performance.now() };
  }
}
