/**
 * Collector throughput: `POST /v1/events` of the real collector (zod validation, rate
 * limit, metrics, bus publish) against a bare fastify route that only parses the same
 * body. Each server runs alone in a child process; autocannon loads it from this one.
 *
 *   npx tsx bench/collector.ts                 # bare, embedded, kafka
 *   BENCH_VARIANTS=bare,embedded npx tsx bench/collector.ts
 *   BENCH_CPU_PROF=/tmp/prof npx tsx bench/collector.ts   # V8 CPU profiles of each server
 *
 * Env: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, 3), BENCH_CONNECTIONS (16),
 * BENCH_BATCH (events per request, 100).
 */
import { fileURLToPath } from 'node:url';
import { createEmbeddedBus, createKafkaBus } from '@touchstream/bus';
import { buildCollector } from '@touchstream/collector';
import { encodeTouchpoint, ingestRequest, topicNames } from '@touchstream/contracts';
import { buildServer } from '@touchstream/http';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { startKafka } from './support/bus.js';
import { forkBench } from './support/child.js';
import { eventSource } from './support/events.js';
import { fmt, machine, pct, table } from './support/output.js';
import { cpuMeter, runMain } from './support/run.js';

const VARIANTS = ['bare', 'embedded', 'kafka'] as const;
type Variant = (typeof VARIANTS)[number];

const LABELS: Record<Variant, string> = {
  bare: 'bare fastify route (JSON parse only)',
  embedded: 'collector, embedded bus (no-op consumer)',
  kafka: 'collector, Kafka bus (acks=all)',
};

const env = process.env;
const DURATION = Number(env.BENCH_DURATION ?? 10);
const WARMUP = Number(env.BENCH_WARMUP ?? 3);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 16);
const BATCH = Number(env.BENCH_BATCH ?? 100);

type ToChild = { type: 'usage' } | { type: 'stop' };
/** Counters of the server so far; publish time from the collector's own histogram. */
type Usage = { cpuMicros: number; records: number; publishSeconds: number; publishes: number };
type FromChild = { type: 'ready'; port: number } | ({ type: 'usage' } & Usage);

// ------------------------------------------------------------------ server (child)

async function serve(variant: Variant) {
  let app: FastifyInstance;
  let records = 0;
  let metrics: Registry | undefined;
  let close = async () => {};
  if (variant === 'bare') {
    app = Fastify();
    app.post('/v1/events', async (request, reply) => {
      const body = request.body as { events: unknown[] };
      return reply.status(202).send({ accepted: body.events.length });
    });
  } else {
    const brokers = env.BENCH_KAFKA_BROKERS;
    const bus =
      variant === 'kafka'
        ? createKafkaBus({ brokers: (brokers ?? '').split(',') })
        : createEmbeddedBus();
    const topics = topicNames('bench.');
    await bus.ensureTopics([topics.touchpoints, topics.touchpointsDlq], 12);
    if (bus.kind === 'embedded') {
      // An embedded publish resolves once every group handled it: a no-op group keeps
      // the processor's cost out of the collector's figure.
      await bus.consume({
        groupId: 'bench-noop',
        topic: topics.touchpoints,
        concurrency: 12,
        handler: async (batch) => {
          records += batch.records.length;
        },
      });
    }
    metrics = new Registry();
    // The limiter runs (its cost is part of the collector) but never refuses: the
    // default 1000 requests/s per client would cap this one client.
    const collector = buildCollector({
      bus,
      topics,
      metrics,
      rateLimit: { max: 1_000_000_000, windowMs: 1_000 },
      maxFutureMs: 3_600_000,
    });
    app = await buildServer({
      config: { auth: { ingestKeys: [], queryKeys: [], adminKeys: [] } },
      logger: pino({ level: 'warn' }),
      metrics,
      readiness: {},
      routes: [collector.routes],
    });
    close = async () => {
      await collector.stop();
      await bus.close();
    };
  }
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const send = (message: FromChild) => process.send?.(message);
  const cpu = () => {
    const usage = process.cpuUsage();
    return usage.user + usage.system;
  };
  process.on('message', async (message: ToChild) => {
    if (message.type === 'usage') {
      const metric = await metrics?.getSingleMetric('touchstream_collector_publish_seconds')?.get();
      // A histogram's values carry the name of their series (_bucket, _sum, _count).
      const values = (metric?.values ?? []) as Array<{ metricName?: string; value: number }>;
      const value = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
      send({
        type: 'usage',
        cpuMicros: cpu(),
        records,
        publishSeconds: value('touchstream_collector_publish_seconds_sum'),
        publishes: value('touchstream_collector_publish_seconds_count'),
      });
    }
    if (message.type === 'stop') {
      await app.close();
      await close();
      process.disconnect();
    }
  });
  // The parent went away without asking: do not linger.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref());
  send({ type: 'ready', port });
}

// ------------------------------------------------------------------ load (parent)

interface Server {
  port: number;
  pid: number;
  usage(): Promise<Usage>;
  stop(): Promise<void>;
}

async function startServer(variant: Variant, brokers: string | undefined): Promise<Server> {
  const child = forkBench<FromChild>(fileURLToPath(import.meta.url), ['serve', variant], {
    // One profile per thread (tsx's loader runs in a worker): the largest is the server's.
    execArgv: env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_CPU_PROF}/collector-${variant}`]
      : [],
    env: { ...env, BENCH_KAFKA_BROKERS: brokers ?? '' },
  });
  const { port } = await child.next('ready');
  return {
    port,
    pid: child.pid,
    async usage() {
      const reply = child.next('usage');
      child.send({ type: 'usage' } satisfies ToChild);
      return await reply;
    },
    async stop() {
      child.send({ type: 'stop' } satisfies ToChild);
      await child.exited;
    },
  };
}

interface Measured {
  variant: Variant;
  requestsPerSecond: number;
  eventsPerSecond: number;
  p50: number;
  p99: number;
  ok: number;
  failed: number;
  serverCpuPerRequestUs: number;
  serverCores: number;
  loadCores: number;
  brokerCores: number;
  published: number;
  /** Mean time of one request's bus publish, queueing included. */
  publishMs: number;
}

async function measure(
  autocannon: typeof import('autocannon').default,
  variant: Variant,
  body: string,
  brokers: string | undefined,
  brokerPid: number | undefined,
): Promise<Measured> {
  const server = await startServer(variant, brokers);
  const options = {
    url: `http://127.0.0.1:${server.port}/v1/events`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
  };
  try {
    console.error(`${variant}: warm-up ${WARMUP} s`);
    const warm = await autocannon({ ...options, duration: WARMUP });
    if (warm['2xx'] === 0) throw new Error(`${variant}: no 2xx during warm-up`);
    console.error(`${variant}: measuring ${DURATION} s`);
    const before = await server.usage();
    const cpu = cpuMeter(brokerPid);
    const result = await autocannon({ ...options, duration: DURATION });
    const after = await server.usage();
    const load = cpu();
    const ok = result['2xx'];
    const failed = result.non2xx + result.errors + result.timeouts;
    if (failed > 0) {
      console.error(`${variant}: ${failed} failed requests`, result.statusCodeStats);
    }
    return {
      variant,
      requestsPerSecond: ok / result.duration,
      eventsPerSecond: (ok * BATCH) / result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
      ok,
      failed,
      serverCpuPerRequestUs: (after.cpuMicros - before.cpuMicros) / Math.max(1, ok),
      serverCores: (after.cpuMicros - before.cpuMicros) / 1e6 / result.duration,
      loadCores: load.cores,
      brokerCores: load.otherCores,
      published: after.records - before.records,
      publishMs:
        after.publishes > before.publishes
          ? ((after.publishSeconds - before.publishSeconds) * 1000) /
            (after.publishes - before.publishes)
          : Number.NaN,
    };
  } finally {
    await server.stop();
  }
}

/** Mean µs of `fn` over about `ms` milliseconds, after a warm-up. */
function timeIt(fn: () => unknown, ms = 1_000): number {
  for (let i = 0; i < 200; i++) fn();
  let runs = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    for (let i = 0; i < 20; i++) fn();
    runs += 20;
  }
  return ((performance.now() - started) * 1000) / runs;
}

/** CPU of the collector's steps for one request, timed in this process, one at a time. */
function pieces(body: string) {
  const parsed = JSON.parse(body) as { events: Array<Record<string, unknown>> };
  const withoutProperties = JSON.parse(body) as typeof parsed;
  for (const e of withoutProperties.events) delete e.properties;
  const validated = ingestRequest.parse(parsed);
  const encoded = validated.events.map(encodeTouchpoint);
  const rows: Array<[string, number]> = [
    ['JSON.parse of the body', timeIt(() => JSON.parse(body))],
    ['zod: ingestRequest.parse', timeIt(() => ingestRequest.parse(parsed))],
    [
      'zod: ingestRequest.parse, events without properties',
      timeIt(() => ingestRequest.parse(withoutProperties)),
    ],
    [
      'encodeTouchpoint (JSON.stringify per event)',
      timeIt(() => validated.events.map(encodeTouchpoint)),
    ],
    [
      'Buffer.from per record (embedded bus copy)',
      timeIt(() => encoded.map((r) => Buffer.from(r.value))),
    ],
  ];
  return table(
    ['step, for one request of the body', 'µs'],
    rows.map(([name, us]) => [name, fmt(us, 1)]),
  );
}

async function main() {
  const { default: autocannon } = await import('autocannon');
  const selected = (env.BENCH_VARIANTS?.split(',') ?? VARIANTS) as Variant[];
  const source = eventSource(10_000);
  const body = JSON.stringify({ events: Array.from({ length: BATCH }, () => source.next()) });
  console.log(machine());
  console.log(
    `body: ${BATCH} events, ${fmt(Buffer.byteLength(body))} bytes; ${CONNECTIONS} connections, ${DURATION} s after ${WARMUP} s warm-up`,
  );

  const stepTable = pieces(body);
  let brokers: string | undefined;
  let brokerPid: number | undefined;
  const results: Measured[] = [];
  for (const variant of selected) {
    if (variant === 'kafka' && !brokers) {
      const broker = await startKafka();
      brokers = broker.brokers;
      brokerPid = broker.pid;
    }
    results.push(
      await measure(
        autocannon,
        variant,
        body,
        brokers,
        variant === 'kafka' ? brokerPid : undefined,
      ),
    );
  }

  const baseline = results.find((r) => r.variant === 'bare');
  const rows = results.map((r) => [
    LABELS[r.variant],
    fmt(r.eventsPerSecond),
    fmt(r.requestsPerSecond),
    fmt(r.p50, 1),
    fmt(r.p99, 1),
    baseline ? pct(r.eventsPerSecond / baseline.eventsPerSecond) : '-',
    fmt(r.serverCpuPerRequestUs),
    Number.isNaN(r.publishMs) ? '-' : fmt(r.publishMs, 1),
    `${fmt(r.serverCores, 2)} / ${fmt(r.loadCores, 2)}${r.variant === 'kafka' ? ` / ${fmt(r.brokerCores, 2)}` : ''}`,
    r.failed > 0 ? `${r.failed} failed` : 'all 202',
  ]);
  console.log(
    table(
      [
        'variant',
        'events/s',
        'requests/s',
        'p50 ms',
        'p99 ms',
        'vs bare',
        'server CPU µs/request',
        'publish ms (mean)',
        'cores: server / autocannon / broker',
        'responses',
      ],
      rows,
    ),
  );
  console.log();
  console.log(stepTable);
  const embedded = results.find((r) => r.variant === 'embedded');
  // Requests cut off when autocannon stops are published but not counted as answered.
  const slack = CONNECTIONS * BATCH;
  if (embedded && Math.abs(embedded.published - embedded.ok * BATCH) > slack) {
    console.log(
      `warning: the no-op consumer saw ${embedded.published} records for ${embedded.ok * BATCH} accepted events`,
    );
  }
}

if (process.argv[2] === 'serve') {
  await serve(process.argv[3] as Variant);
} else {
  runMain(main);
}
