import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Journey, journeyBody, type Touchpoint } from '@touchstream/contracts';

const run = promisify(execFile);
const KAFKA_SH = new URL('../infra/kafka/kafka.sh', import.meta.url).pathname;

// ------------------------------------------------------------------ cleanup

const cleanups: Array<() => Promise<void>> = [];

/** Registers work to undo at exit, run last-registered first, even on error or signal. */
export function onCleanup(fn: () => Promise<void>) {
  cleanups.push(fn);
}

export async function cleanup() {
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await fn?.();
    } catch (error) {
      console.error('cleanup failed:', error);
    }
  }
}

/** Runs a benchmark's main, then cleans up and exits whatever happened. */
export function runMain(main: () => Promise<void>) {
  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    await cleanup();
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void exit(130);
    });
  }
  main().then(
    () => exit(0),
    (error) => {
      console.error(error);
      return exit(1);
    },
  );
}

export async function tempDir(prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// ------------------------------------------------------------------ kafka

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

/** CPU seconds (user + system) a process used so far, from /proc (Linux). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ", utime and stime are the 12th and 13th fields, in clock ticks.
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

// ------------------------------------------------------------------ events

/** mulberry32: the same events on every run. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = [
  'product_viewed',
  'product_viewed',
  'product_viewed',
  'cart_added',
  'checkout_started',
  'payment_submitted',
  'payment_failed',
  'order_placed',
  'email_opened',
  'call_started',
];
const CHANNELS = ['web', 'web', 'mobile', 'mobile', 'store', 'call_center', 'email'];
const DEVICES = ['desktop', 'ios', 'android', 'tablet'];
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export interface EventSource {
  /** An event as a client posts it: ISO timestamp. */
  next(): Record<string, unknown>;
}

/**
 * Touchpoints as channel services send them: a ULID-like id, a customer among `customers`,
 * a type, a channel and five properties (~260 bytes of JSON).
 */
export function eventSource(customers: number, seed = 42): EventSource {
  const rand = random(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)] as T;
  const id = (n: number) => Array.from({ length: n }, () => pick([...ALPHABET])).join('');
  let time = Date.UTC(2026, 9, 1, 8);
  return {
    next() {
      time += Math.floor(rand() * 50);
      const customer = Math.floor(rand() * customers);
      return {
        event_id: `evt_${id(26)}`,
        customer_id: `cus_${String(customer).padStart(9, '0')}`,
        type: pick(TYPES),
        channel: pick(CHANNELS),
        timestamp: new Date(time).toISOString(),
        properties: {
          session_id: `ses_${id(16)}`,
          sku: `SKU-${Math.floor(rand() * 100_000)}`,
          price: Math.round(rand() * 50_000) / 100,
          currency: 'EUR',
          device: pick(DEVICES),
        },
      };
    },
  };
}

/** The same event as it travels on the bus (timestamp in epoch milliseconds). */
export function toTouchpoint(event: Record<string, unknown>): Touchpoint {
  return { ...event, timestamp: Date.parse(event.timestamp as string) } as Touchpoint;
}

// ------------------------------------------------------------------ output

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export const pct = (ratio: number) => `${(ratio * 100).toFixed(1)}%`;

/** A markdown table, so results paste into docs/BENCHMARKS.md as they are. */
export function table(header: string[], rows: string[][]) {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The journeys the engine and processor benchmarks follow: a purchase and an assisted sale. */
export const BENCH_JOURNEYS: Journey[] = [
  {
    id: 'online-purchase',
    ...journeyBody.parse({
      name: 'Online purchase',
      steps: [
        { name: 'viewed', event_type: 'product_viewed' },
        { name: 'carted', event_type: 'cart_added' },
        { name: 'checkout', event_type: 'checkout_started' },
        { name: 'paid', event_type: 'payment_submitted' },
        { name: 'ordered', event_type: 'order_placed', where: { currency: 'EUR' } },
      ],
      step_timeout: '30m',
      failure_event_types: ['payment_failed'],
    }),
  },
  {
    id: 'assisted-sale',
    ...journeyBody.parse({
      name: 'Assisted sale',
      steps: [
        { name: 'called', event_type: 'call_started', channel: 'call_center' },
        { name: 'ordered', event_type: 'order_placed' },
      ],
      step_timeout: '2h',
    }),
  },
];
