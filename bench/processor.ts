/**
 * Processor throughput against the rate of its parts alone, on one broker and one topic.
 * DESIGN.md's target: the processor (engine on) at least 50 % of
 * `1 / (1/raw kafkajs consume + 1/bare chDB insert)` on the same records, the rate of a
 * consumer that only read the records and then only inserted them, one after the other.
 *
 * Pre-loads N touchpoints into a fresh 12-partition topic of a broker of its own, then
 * reads the whole topic from the beginning, each time with a fresh consumer group:
 *   (a) raw kafkajs, `eachBatch` no-op handler, with 1 and with 4 partitions consumed
 *       concurrently (the processor uses 4; the part is the mean of a run with 4 before
 *       and one after the processor);
 *   (b) the bare chDB insert of the same records' rows into a copy of the events table
 *       (JSONEachRow, 1,000 rows per insert, one after the other, as bench/ingest.ts),
 *       before and after the processor, mean of the two;
 *   (c) the processor (decode, journey engine over two journeys, ClickHouse inserts of
 *       events, facts and checkpoints on the embedded chDB engine, commit), until its
 *       group lag is 0, with the journeys and without;
 *   and, to split the difference, the bus's Kafka consumer shell with a no-op handler.
 *
 *   npx tsx bench/processor.ts
 *   BENCH_EVENTS=200000 npx tsx bench/processor.ts
 *   BENCH_CPU_PROF=/tmp/prof npx tsx bench/processor.ts   # V8 CPU profile of the processor
 *
 * This is the one place outside packages/bus that imports kafkajs: it is the baseline.
 */
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
  type EventRow,
  migrate,
  type Store,
  saveJourney,
  toEventRow,
} from '@touchstream/store';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { Registry } from 'prom-client';
import { HandledCounter, publishTouchpoints, startKafka } from './support/bus.js';
import { BENCH_JOURNEYS, eventSource, toTouchpoint } from './support/events.js';
import { fmt, machine, pct, table } from './support/output.js';
import { cpuMeter, onCleanup, profiled, runMain, tempDir, waitFor } from './support/run.js';

const env = process.env;
const EVENTS = Number(env.BENCH_EVENTS ?? 500_000);
const PARTITIONS = 12;
const CUSTOMERS = 50_000;
/** Rows per bare insert: the bare chDB insert of bench/ingest.ts. */
const INSERT_BATCH = 1_000;

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
function meter(brokerPid: number | undefined) {
  const measure = cpuMeter(brokerPid);
  return () => {
    const { cores, otherCores } = measure();
    return { cores, brokerCores: otherCores };
  };
}

/** The events of the topic, published in order. */
async function preload(bus: Bus, topic: string) {
  const source = eventSource(CUSTOMERS);
  const events = Array.from({ length: EVENTS }, () => toTouchpoint(source.next()));
  const { seconds, bytes } = await publishTouchpoints(bus, topic, events);
  console.error(
    `pre-loaded ${fmt(EVENTS)} events (${fmt(bytes / EVENTS)} bytes each) in ${seconds.toFixed(1)} s: ${fmt(EVENTS / seconds)} events/s through the bus`,
  );
  return events;
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
  const cpu = meter(brokerPid);
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
  await waitFor('raw kafkajs consume', () => received >= EVENTS, { everyMs: 5 });
  const ended = performance.now();
  const used = cpu();
  await consumer.disconnect();
  return {
    name: `raw kafkajs, eachBatch no-op, ${concurrency} partition${concurrency > 1 ? 's' : ''} at once`,
    seconds: (ended - started) / 1000,
    secondsFromFirstBatch: (ended - firstBatchAt) / 1000,
    ...used,
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
  const counter = new HandledCounter(topic);
  const cpu = meter(brokerPid);
  const started = performance.now();
  const consumer = await counter.wrap(bus).consume({
    groupId: group,
    topic,
    concurrency,
    handler: async () => {},
  });
  onCleanup(() => consumer.stop());
  const { committedAt } = await counter.caughtUp(bus, group, EVENTS);
  const used = cpu();
  await consumer.stop();
  return {
    name: `bus.consume (kafka-bus.ts), no-op handler, ${concurrency} partitions at once`,
    seconds: (committedAt - started) / 1000,
    secondsFromFirstBatch: (committedAt - counter.firstAt) / 1000,
    ...used,
  };
}

/** (c) the processor, from start until its group lag is 0. */
async function processorConsume(
  bus: Bus,
  store: Store,
  topics: ReturnType<typeof topicNames>,
  brokerPid: number | undefined,
  name: string,
): Promise<Phase & { handledSeconds: number }> {
  const groupPrefix = `bench-processor-${Date.now()}.`;
  const counter = new HandledCounter(topics.touchpoints);
  const processor = buildProcessor({
    bus: counter.wrap(bus),
    store,
    topics,
    metrics: new Registry(),
    logger: pino({ level: 'warn' }),
    groupPrefix,
    journeys: { allowedLatenessMs: 0, idleWatermarkMs: 10_000 },
  });
  onCleanup(() => processor.stop());
  const cpu = meter(brokerPid);
  const started = performance.now();
  await processor.start();
  const done = await counter.caughtUp(bus, `${groupPrefix}processor`, EVENTS);
  const used = cpu();
  await processor.stop();
  return {
    name,
    seconds: (done.committedAt - started) / 1000,
    secondsFromFirstBatch: (done.committedAt - counter.firstAt) / 1000,
    handledSeconds: (done.handledAt - started) / 1000,
    ...used,
  };
}

/** (b) the bare chDB insert of the records' rows, in order, into a fresh copy of events. */
async function bareInsert(store: Store, rows: readonly EventRow[]): Promise<Phase> {
  await store.command({ query: 'DROP TABLE IF EXISTS events_bare' });
  await store.command({ query: 'CREATE TABLE events_bare AS events' });
  const cpu = meter(undefined);
  const started = performance.now();
  for (let i = 0; i < rows.length; i += INSERT_BATCH) {
    const values = rows.slice(i, i + INSERT_BATCH);
    await store.insert({ table: 'events_bare', values, format: 'JSONEachRow' });
  }
  const seconds = (performance.now() - started) / 1000;
  const used = cpu();
  // Dropped at once, so its background merges do not run into the next phase.
  await store.command({ query: 'DROP TABLE events_bare' });
  return {
    name: `bare chDB insert (JSONEachRow, ${fmt(INSERT_BATCH)} rows per insert)`,
    seconds,
    secondsFromFirstBatch: seconds,
    ...used,
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
  const rows = events.map((e) => toEventRow(e));
  await store.command({ query: 'CREATE TABLE IF NOT EXISTS events_bench AS events' });
  const rowsTable = [
    [
      'decodeTouchpoint (JSON.parse + zod)',
      await timeIt(() => values.map((v) => decodeTouchpoint(v, CLOCK)), 10),
    ],
    ['  of which JSON.parse', await timeIt(() => values.map((v) => JSON.parse(v.toString())), 10)],
    ['toEventRow', await timeIt(() => events.map((e) => toEventRow(e)), 10)],
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

async function main() {
  console.log(machine());
  const broker = await startKafka();
  const bus = createKafkaBus({ brokers: [broker.brokers] });
  onCleanup(() => bus.close());
  const topics = topicNames(`bench-${Date.now().toString(36)}.`);
  await bus.ensureTopics([topics.touchpoints, topics.touchpointsDlq], PARTITIONS);
  const rows = (await preload(bus, topics.touchpoints)).map((e) => toEventRow(e));

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
  const insert = async () => {
    console.error('bare chDB insert ...');
    const phase = await bareInsert(store, rows);
    phases.push(phase);
    return phase;
  };
  await raw(1);
  const before = await raw(4);
  const insertBefore = await insert();
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
  // The parts again after the processor, to see how much the machine drifted meanwhile.
  const after = await raw(4);
  const insertAfter = await insert();

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
  // The parts: raw kafkajs with the processor's concurrency and the bare insert, each the
  // mean of its runs before and after the processor; the baseline is the two in a row.
  const consumeRate = (rate(before) + rate(after)) / 2;
  const insertRate = (rate(insertBefore) + rate(insertAfter)) / 2;
  const baselineRate = 1 / (1 / consumeRate + 1 / insertRate);
  const marks = new Map([
    [before, ' (part, before)'],
    [after, ' (part, after)'],
    [insertBefore, ' (part, before)'],
    [insertAfter, ' (part, after)'],
  ]);
  console.log(
    `${fmt(EVENTS)} events, ${PARTITIONS} partitions, each read from the beginning by a fresh group`,
  );
  console.log(
    table(
      [
        'consumer',
        'events/s',
        'seconds',
        'vs raw consume',
        'vs parts in a row',
        'events/s from 1st batch',
        'cores: bench process / broker',
      ],
      phases.map((p) => [
        p.name + (marks.get(p) ?? ''),
        fmt(rate(p)),
        fmt(p.seconds, 2),
        pct(rate(p) / consumeRate),
        pct(rate(p) / baselineRate),
        fmt(EVENTS / p.secondsFromFirstBatch),
        `${fmt(p.cores, 2)} / ${fmt(p.brokerCores, 2)}`,
      ]),
    ),
  );
  console.log(
    `parts: raw kafkajs consume ${fmt(consumeRate)} events/s, bare chDB insert ${fmt(insertRate)} rows/s (means of the runs before and after); in a row, 1 / (1/consume + 1/insert) = ${fmt(baselineRate)} events/s`,
  );
  console.log(
    `processor (engine on) / parts in a row = ${pct(rate(processed) / baselineRate)} (target 50%); engine off: ${pct(rate(engineOff) / baselineRate)}; processor / raw consume alone = ${pct(rate(processed) / consumeRate)}`,
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
