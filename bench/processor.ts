/**
 * Processor throughput against the raw kafkajs consume rate, on one broker and one topic.
 *
 * Pre-loads N touchpoints into a fresh 12-partition topic of a broker of its own, then
 * reads the whole topic from the beginning, each time with a fresh consumer group:
 *   (a) raw kafkajs, `eachBatch` no-op handler (the baseline), with 1 and with 4
 *       partitions consumed concurrently (the processor uses 4; the baseline is the mean
 *       of a run with 4 before and one after the processor);
 *   (b) the processor (decode, journey engine over two journeys, ClickHouse inserts of
 *       events, facts and checkpoints on the embedded chDB engine, commit), until its
 *       group lag is 0;
 *   and, to split the difference, the bus's Kafka consumer shell with a no-op handler.
 *
 *   npx tsx bench/processor.ts
 *   BENCH_EVENTS=200000 npx tsx bench/processor.ts
 *   BENCH_CPU_PROF=/tmp/prof npx tsx bench/processor.ts   # V8 CPU profile of phase (b)
 *
 * This is the one place outside packages/bus that imports kafkajs: it is the baseline.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Bus, createKafkaBus } from '@touchstream/bus';
import {
  decodeTouchpoint,
  encodeTouchpoint,
  type Touchpoint,
  topicNames,
} from '@touchstream/contracts';
import { buildProcessor } from '@touchstream/processor';
import {
  createStore,
  deleteJourney,
  migrate,
  type Store,
  saveJourney,
  toEventRow,
} from '@touchstream/store';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { Registry } from 'prom-client';
import {
  BENCH_JOURNEYS,
  eventSource,
  fmt,
  onCleanup,
  pct,
  processCpuSeconds,
  runMain,
  startKafka,
  table,
  tempDir,
  toTouchpoint,
} from './support.js';

const env = process.env;
const EVENTS = Number(env.BENCH_EVENTS ?? 500_000);
const PARTITIONS = 12;
const CUSTOMERS = 50_000;
/** Records per publish while pre-loading. */
const PRELOAD_BATCH = 5_000;
/** A phase that takes longer than this is stuck: fail rather than hang. */
const PHASE_TIMEOUT_MS = 120_000;

interface Phase {
  name: string;
  /** From connect/start to the end, group join included. */
  seconds: number;
  /** From the first batch received to the end. */
  secondsFromFirstBatch: number;
  cores: number;
  brokerCores: number;
}

/** CPU of this process and the broker over a phase, in cores. */
function cpuMeter(brokerPid: number | undefined) {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const broker = brokerPid ? processCpuSeconds(brokerPid) : 0;
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    return {
      cores: (used.user + used.system) / 1e6 / seconds,
      brokerCores: brokerPid ? (processCpuSeconds(brokerPid) - broker) / seconds : 0,
    };
  };
}

async function waitFor(what: string, done: () => boolean | Promise<boolean>, everyMs = 20) {
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what}: not done within ${PHASE_TIMEOUT_MS} ms`);
    await sleep(everyMs);
  }
}

async function preload(bus: Bus, topic: string) {
  const source = eventSource(CUSTOMERS);
  const started = performance.now();
  let bytes = 0;
  for (let sent = 0; sent < EVENTS; sent += PRELOAD_BATCH) {
    const records = Array.from({ length: Math.min(PRELOAD_BATCH, EVENTS - sent) }, () =>
      encodeTouchpoint(toTouchpoint(source.next())),
    );
    for (const r of records) bytes += r.value.length;
    await bus.publish(topic, records);
  }
  const seconds = (performance.now() - started) / 1000;
  console.error(
    `pre-loaded ${fmt(EVENTS)} events (${fmt(bytes / EVENTS)} bytes each) in ${seconds.toFixed(1)} s: ${fmt(EVENTS / seconds)} events/s through the bus`,
  );
}

/** (a) kafkajs alone: join a fresh group, read everything, do nothing with it. */
async function rawConsume(
  brokers: string,
  topic: string,
  concurrency: number,
  brokerPid: number | undefined,
  quiet = false,
): Promise<Phase> {
  const kafka = new Kafka({
    clientId: 'bench-raw',
    brokers: [brokers],
    // The first group of a fresh broker waits for the coordinator, which kafkajs logs.
    logLevel: quiet ? logLevel.NOTHING : logLevel.ERROR,
  });
  const consumer = kafka.consumer({ groupId: `bench-raw-${concurrency}-${Date.now()}` });
  onCleanup(() => consumer.disconnect());
  let received = 0;
  let firstBatchAt = 0;
  const meter = cpuMeter(brokerPid);
  const started = performance.now();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: concurrency,
    eachBatch: async ({ batch }) => {
      firstBatchAt ||= performance.now();
      received += batch.messages.length;
    },
  });
  await waitFor('raw kafkajs consume', () => received >= EVENTS, 5);
  const ended = performance.now();
  const cpu = meter();
  await consumer.disconnect();
  return {
    name: `raw kafkajs, eachBatch no-op, ${concurrency} partition${concurrency > 1 ? 's' : ''} at once`,
    seconds: (ended - started) / 1000,
    secondsFromFirstBatch: (ended - firstBatchAt) / 1000,
    ...cpu,
  };
}

/** The product's Kafka consumer shell alone: `bus.consume` with a no-op handler. */
async function busConsume(
  bus: Bus,
  topic: string,
  concurrency: number,
  brokerPid: number | undefined,
): Promise<Phase> {
  const group = `bench-bus-${Date.now()}`;
  let handled = 0;
  let firstBatchAt = 0;
  const meter = cpuMeter(brokerPid);
  const started = performance.now();
  const consumer = await bus.consume({
    groupId: group,
    topic,
    concurrency,
    handler: async (batch) => {
      firstBatchAt ||= performance.now();
      handled += batch.records.length;
    },
  });
  onCleanup(() => consumer.stop());
  await waitFor('bus consume', () => handled >= EVENTS, 5);
  await waitFor('bus commit', async () => (await bus.lag(group, topic)) === 0);
  const ended = performance.now();
  const cpu = meter();
  await consumer.stop();
  return {
    name: `bus.consume (kafka-bus.ts), no-op handler, ${concurrency} partitions at once`,
    seconds: (ended - started) / 1000,
    secondsFromFirstBatch: (ended - firstBatchAt) / 1000,
    ...cpu,
  };
}

/** The bus, with a count of the records each handler call finished. */
function countingBus(bus: Bus, onHandled: (topic: string, records: number) => void): Bus {
  return {
    ...bus,
    kind: bus.kind,
    consume: (options) =>
      bus.consume({
        ...options,
        handler: async (batch) => {
          await options.handler(batch);
          onHandled(batch.topic, batch.records.length);
        },
      }),
  };
}

/** (b) the processor, from start until its group lag is 0. */
async function processorConsume(
  bus: Bus,
  store: Store,
  topics: ReturnType<typeof topicNames>,
  brokerPid: number | undefined,
  name: string,
): Promise<Phase & { handledSeconds: number }> {
  const groupPrefix = `bench-processor-${Date.now()}.`;
  const group = `${groupPrefix}processor`;
  let handled = 0;
  let firstBatchAt = 0;
  let handledAt = 0;
  const counted = countingBus(bus, (topic, records) => {
    if (topic !== topics.touchpoints) return;
    firstBatchAt ||= performance.now();
    handled += records;
    if (handled >= EVENTS) handledAt ||= performance.now();
  });
  const processor = buildProcessor({
    bus: counted,
    store,
    topics,
    metrics: new Registry(),
    logger: pino({ level: 'warn' }),
    groupPrefix,
    journeys: { allowedLatenessMs: 0, idleWatermarkMs: 10_000 },
  });
  onCleanup(() => processor.stop());
  const meter = cpuMeter(brokerPid);
  const started = performance.now();
  await processor.start();
  await waitFor('processor', () => handled >= EVENTS, 5);
  // Offsets are committed after the handler resolved: the group is done when its lag is 0.
  await waitFor('processor commit', async () => (await bus.lag(group, topics.touchpoints)) === 0);
  const ended = performance.now();
  const cpu = meter();
  await processor.stop();
  return {
    name,
    seconds: (ended - started) / 1000,
    secondsFromFirstBatch: (ended - firstBatchAt) / 1000,
    handledSeconds: (handledAt - started) / 1000,
    ...cpu,
  };
}

async function factCount(store: Store) {
  const [row] = await (
    await store.query({ query: 'SELECT count() AS n FROM facts FINAL', format: 'JSONEachRow' })
  ).json<{ n: string }>();
  return Number(row?.n);
}

/** Journeys over the generated event types, so the journey engine has work to do. */
async function saveJourneys(store: Store) {
  for (const { id, ...body } of BENCH_JOURNEYS) await saveJourney(store, id, body);
}

/** Mean ms of `fn` over `runs` runs, after one warm-up run. */
async function timeIt(fn: () => unknown, runs: number) {
  await fn();
  const started = performance.now();
  for (let i = 0; i < runs; i++) await fn();
  return (performance.now() - started) / runs;
}

/** The receiving clock of the decode: now, with the default margin. */
const CLOCK = { now: Date.now(), maxFutureMs: 3_600_000 };

/** The processor's steps for 10,000 records, timed one at a time in this process. */
async function pieces(store: Store) {
  const source = eventSource(CUSTOMERS, 7);
  const values = Array.from({ length: 10_000 }, () =>
    Buffer.from(encodeTouchpoint(toTouchpoint(source.next())).value),
  );
  const events = values.map((v) => (decodeTouchpoint(v, CLOCK) as { event: Touchpoint }).event);
  const rows = events.map(toEventRow);
  await store.command({ query: 'CREATE TABLE IF NOT EXISTS events_bench AS events' });
  const rowsTable = [
    [
      'decodeTouchpoint (JSON.parse + zod)',
      await timeIt(() => values.map((v) => decodeTouchpoint(v, CLOCK)), 10),
    ],
    ['  of which JSON.parse', await timeIt(() => values.map((v) => JSON.parse(v.toString())), 10)],
    ['toEventRow', await timeIt(() => events.map(toEventRow), 10)],
    [
      'chDB insert (JSONEachRow) into a copy of events',
      await timeIt(
        () => store.insert({ table: 'events_bench', values: rows, format: 'JSONEachRow' }),
        5,
      ),
    ],
  ] as const;
  await store.command({ query: 'DROP TABLE events_bench' });
  return table(
    ['step, for 10,000 records', 'ms', 'µs/record'],
    rowsTable.map(([name, ms]) => [name, fmt(ms, 1), fmt((ms * 1000) / 10_000, 2)]),
  );
}

async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const dir = env.BENCH_CPU_PROF;
  if (!dir) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${name}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    session.disconnect();
    console.error(`CPU profile: ${file}`);
  }
}

async function main() {
  console.log(
    `node ${process.version}, ${availableParallelism()} cores, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const broker = await startKafka();
  const bus = createKafkaBus({ brokers: [broker.brokers] });
  onCleanup(() => bus.close());
  const topics = topicNames(`bench-${Date.now().toString(36)}.`);
  await bus.ensureTopics([topics.touchpoints, topics.touchpointsDlq], PARTITIONS);
  await preload(bus, topics.touchpoints);

  const dataDir = await tempDir('touchstream-bench-chdb-');
  const store = await createStore({
    dataDir,
    clickhouse: { database: 'touchstream', user: 'default', password: '' },
  });
  onCleanup(() => store.close());
  await migrate(store);
  await saveJourneys(store);

  // The first group of a broker creates __consumer_offsets, and the first read warms the
  // page cache: a read that is not measured.
  console.error('warm-up read ...');
  await rawConsume(broker.brokers, topics.touchpoints, 4, broker.pid, true);
  const phases: Phase[] = [];
  const raw = async (concurrency: number) => {
    console.error(`raw kafkajs, ${concurrency} partition(s) at once ...`);
    const phase = await rawConsume(broker.brokers, topics.touchpoints, concurrency, broker.pid);
    phases.push(phase);
    return phase;
  };
  await raw(1);
  const before = await raw(4);
  console.error('bus.consume, no-op handler ...');
  phases.push(await busConsume(bus, topics.touchpoints, 4, broker.pid));
  console.error('processor ...');
  const processed = await profiled('processor', () =>
    processorConsume(
      bus,
      store,
      topics,
      broker.pid,
      'processor (decode, journey engine, chDB inserts, commit)',
    ),
  );
  phases.push(processed);
  // The same with no journey defined: the engine has nothing to follow, so this is the
  // processor without it (the events are inserted again; event_id folds them).
  const storedFacts = await factCount(store);
  for (const id of ['online-purchase', 'assisted-sale']) await deleteJourney(store, id);
  console.error('processor, journey engine off ...');
  const engineOff = await processorConsume(
    bus,
    store,
    topics,
    broker.pid,
    'processor, no journeys (engine off)',
  );
  phases.push(engineOff);
  // Again after the processor, to see how much the machine drifted meanwhile.
  const after = await raw(4);

  const stored = (
    await (
      await store.query({
        query: 'SELECT uniqExact(event_id) AS ids FROM events',
        format: 'JSONEachRow',
      })
    ).json<{ ids: string }>()
  )[0];
  const stepTable = await pieces(store);

  const rate = (p: Phase) => EVENTS / p.seconds;
  // The baseline: raw kafkajs with the processor's concurrency, mean of the runs before
  // and after the processor.
  const baselineRate = (rate(before) + rate(after)) / 2;
  console.log(
    `${fmt(EVENTS)} events, ${PARTITIONS} partitions, each read from the beginning by a fresh group`,
  );
  console.log(
    table(
      [
        'consumer',
        'events/s',
        'seconds',
        'vs baseline',
        'events/s from 1st batch',
        'cores: bench process / broker',
      ],
      phases.map((p) => [
        p.name + (p === before ? ' (baseline, before)' : p === after ? ' (baseline, after)' : ''),
        fmt(rate(p)),
        fmt(p.seconds, 2),
        pct(rate(p) / baselineRate),
        fmt(EVENTS / p.secondsFromFirstBatch),
        `${fmt(p.cores, 2)} / ${fmt(p.brokerCores, 2)}`,
      ]),
    ),
  );
  console.log(
    `baseline: ${fmt(baselineRate)} events/s (mean of the runs before and after); processor / baseline = ${pct(rate(processed) / baselineRate)}`,
  );
  console.log(
    `processor: last batch handled after ${processed.handledSeconds.toFixed(2)} s, lag 0 after ${processed.seconds.toFixed(2)} s; ClickHouse holds ${stored?.ids} distinct event ids and ${storedFacts} journey facts from it`,
  );
  console.log(
    `journey engine on / off: ${pct(rate(processed) / rate(engineOff))} of the engine-off rate`,
  );
  console.log();
  console.log(stepTable);
}

runMain(main);
