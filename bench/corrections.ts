/**
 * Corrections (API.md, rule 7): what the correction machinery costs traffic that needs
 * none, and how fast a backlog of late events is absorbed. DESIGN.md's targets:
 *   (a) in-order traffic keeps at least 95 % of its throughput with the correction
 *       machinery on: the processor of this tree against the processor of commit c114ecc
 *       (the last one before corrections) on the same records, alternating ABBA;
 *   (b) a day of late events for 10 % of customers is absorbed at least at 20 % of the
 *       in-order rate of the same processor.
 *
 * The traffic: a day of BENCH_EVENTS touchpoints of BENCH_CUSTOMERS customers, in time
 * order, ending a few minutes before the run. Every customer whose number ends in 0 (10 %)
 * is held back: the in-order topic has the other 90 %'s events only. Each processor runs
 * in a child process of its own, with a chDB store of its own (the two trees' schemas
 * differ: c114ecc has no fact versions) and a fresh consumer group, from the start of a
 * 12-partition topic of a broker of its own until its lag is 0. For (b), once it has
 * caught up, this process publishes the held-back day (in time order; event time has
 * passed all of it) to the same topic, and the child counts until its lag is 0 again.
 * Last, the whole day in time order through this tree: the facts the corrections must
 * come to (their count is compared).
 *
 *   npx tsx bench/corrections.ts
 *   BENCH_ROUNDS=3 BENCH_LATE_RUNS=2 BENCH_EVENTS=500000 npx tsx bench/corrections.ts
 *   BENCH_CPU_PROF=/tmp/prof npx tsx bench/corrections.ts   # V8 CPU profile of each phase
 *
 * The baseline tree: a git worktree of c114ecc at BENCH_BASE (default
 * /tmp/touchstream-base), added if missing; its node_modules are links to this tree's,
 * but for @touchstream/*, which are its own packages.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKafkaBus } from '@touchstream/bus';
import { type Touchpoint, topicNames } from '@touchstream/contracts';
import pino from 'pino';
import { Registry } from 'prom-client';
import { HandledCounter, publishTouchpoints, startKafka } from './support/bus.js';
import { forkBench, tellParent } from './support/child.js';
import { BENCH_JOURNEYS, eventSource, toTouchpoint } from './support/events.js';
import { fmt, machine, pct, table } from './support/output.js';
import { cpuMeter, onCleanup, profiled, runMain, tempDir } from './support/run.js';

const env = process.env;
const EVENTS = Number(env.BENCH_EVENTS ?? 500_000);
const CUSTOMERS = Number(env.BENCH_CUSTOMERS ?? 50_000);
/** Rounds of (a): each runs both trees, in alternating order. */
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
/** Runs of (b), each on a topic of its own. */
const LATE_RUNS = Number(env.BENCH_LATE_RUNS ?? 2);
const BASE_COMMIT = 'c114ecc';
const BASE = env.BENCH_BASE ?? '/tmp/touchstream-base';
const HERE = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const PARTITIONS = 12;
const DAY_MS = 86_400_000;
/** No idle tick moves event time during a run: only the records do. */
const IDLE_WATERMARK_MS = 600_000;
const TIMEOUT_MS = 600_000;

type Tree = 'base' | 'head';

/** A processor's run from its start until its group lag is 0. */
interface Phase {
  records: number;
  /** From `processor.start()` (group join included). */
  seconds: number;
  /** From the first batch reaching the processor (of the phase): the rate compared. */
  secondsFromFirstBatch: number;
  cores: number;
  brokerCores: number;
  /** The correction counters over the phase (0 on c114ecc, which has none). */
  late: number;
  repeats: number;
  recomputed: number;
  /** Current facts at the end (`FINAL`, withdrawn ones not counted). */
  facts: number;
}

type FromChild = { type: 'caught-up'; phase: Phase } | { type: 'absorbed'; phase: Phase };

// ------------------------------------------------------------------ the traffic

/** The day, split into what arrives in order and the held-back 10 % of customers. */
function dayOfTraffic(endAt: number) {
  const source = eventSource(CUSTOMERS, 42, { from: endAt - DAY_MS, meanGapMs: DAY_MS / EVENTS });
  const inOrder: Touchpoint[] = [];
  const late: Touchpoint[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const event = toTouchpoint(source.next());
    if (Number(event.customer_id.slice(4)) % 10 === 0) late.push(event);
    else inOrder.push(event);
  }
  return { inOrder, late };
}

// ------------------------------------------------------------------ the baseline tree

/** The worktree of c114ecc, with node_modules that resolve @touchstream/* to its own. */
function baseTree(): string {
  if (!existsSync(join(BASE, 'services/processor/src/processor.ts'))) {
    execFileSync('git', ['worktree', 'add', '--detach', BASE, BASE_COMMIT], {
      cwd: HERE,
      stdio: 'inherit',
    });
  }
  const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: BASE, encoding: 'utf8' });
  const want = execFileSync('git', ['rev-parse', BASE_COMMIT], { cwd: HERE, encoding: 'utf8' });
  if (head !== want) throw new Error(`${BASE} is at ${head.trim()}, not ${BASE_COMMIT}`);
  const modules = join(BASE, 'node_modules');
  if (!existsSync(modules)) {
    mkdirSync(join(modules, '@touchstream'), { recursive: true });
    for (const name of readdirSync(join(HERE, 'node_modules'))) {
      if (name !== '@touchstream')
        symlinkSync(join(HERE, 'node_modules', name), join(modules, name));
    }
    // The workspace links are relative (../../packages/x): the same text points into BASE.
    const own = join(HERE, 'node_modules/@touchstream');
    for (const name of readdirSync(own)) {
      symlinkSync(readlinkSync(join(own, name)), join(modules, '@touchstream', name));
    }
  }
  const store = realpathSync(join(modules, '@touchstream/store'));
  if (!store.startsWith(`${realpathSync(BASE)}/`)) {
    throw new Error(`${modules}/@touchstream/store leads to ${store}, not into ${BASE}`);
  }
  return BASE;
}

// ------------------------------------------------------------------ a processor (child)

/** The product's modules of one tree, loaded from its own files. */
async function loadTree(tree: string) {
  const load = <T>(path: string) => import(join(tree, path)) as Promise<T>;
  return {
    bus: await load<typeof import('@touchstream/bus')>('packages/bus/src/index.ts'),
    store: await load<typeof import('@touchstream/store')>('packages/store/src/index.ts'),
    processor: await load<typeof import('@touchstream/processor')>(
      'services/processor/src/index.ts',
    ),
  };
}

/** The sum of a counter's series with these labels (0 where the metric does not exist). */
async function counter(metrics: Registry, name: string, labels: Record<string, string> = {}) {
  const metric = await metrics.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/**
 * One processor of `tree` over the topic: the in-order records until its lag is 0, then,
 * if `late` > 0, the late records this process's parent publishes once told it caught up.
 */
async function child(tree: string, label: string, prefix: string, inOrder: number, late: number) {
  const brokerPid = Number(env.BENCH_BROKER_PID) || undefined;
  const { bus: busModule, store: storeModule, processor: processorModule } = await loadTree(tree);
  const bus = busModule.createKafkaBus({ brokers: [env.BENCH_KAFKA_BROKERS ?? ''] });
  onCleanup(() => bus.close());
  const store = await storeModule.createStore({
    dataDir: await tempDir('touchstream-bench-corrections-'),
    clickhouse: { database: 'touchstream', user: 'default', password: '' },
  });
  onCleanup(() => store.close());
  await storeModule.migrate(store);
  for (const { id, ...body } of BENCH_JOURNEYS) await storeModule.saveJourney(store, id, body);
  // c114ecc has journey_facts; this tree moved them to facts, with versions.
  const [{ name: factsTable } = { name: 'facts' }] = await (
    await store.query({
      query: `SELECT name FROM system.tables WHERE database = currentDatabase()
                AND name IN ('facts', 'journey_facts') ORDER BY name LIMIT 1`,
      format: 'JSONEachRow',
    })
  ).json<{ name: string }>();

  const topics = topicNames(prefix);
  const handled = new HandledCounter(topics.touchpoints);
  const metrics = new Registry();
  const groupPrefix = `bench-corrections-${label}.`;
  const processor = processorModule.buildProcessor({
    bus: handled.wrap(bus),
    store,
    topics,
    metrics,
    logger: pino({ level: 'warn' }),
    groupPrefix,
    journeys: { allowedLatenessMs: 0, idleWatermarkMs: IDLE_WATERMARK_MS },
  });
  onCleanup(() => processor.stop());

  const counters = async () => ({
    late: await counter(metrics, 'touchstream_processor_out_of_order_events_total', {
      kind: 'late',
    }),
    repeats: await counter(metrics, 'touchstream_processor_out_of_order_events_total', {
      kind: 'repeat',
    }),
    recomputed: await counter(metrics, 'touchstream_processor_recomputed_customers_total'),
  });
  const facts = async () => {
    const [row] = await (
      await store.query({
        query: `SELECT count() AS n FROM ${factsTable} FINAL`,
        format: 'JSONEachRow',
      })
    ).json<{ n: string }>();
    return Number(row?.n);
  };
  /** Runs `start`, then waits until `records` in all were handled and committed. */
  const phase = async (name: string, records: number, start: () => Promise<unknown>) => {
    const before = await counters();
    const handledBefore = handled.handled;
    handled.restart();
    const cpu = cpuMeter(brokerPid);
    const startedAt = performance.now();
    const done = await profiled(`corrections-${label}-${name}`, async () => {
      await start();
      return handled.caughtUp(bus, `${groupPrefix}processor`, records, TIMEOUT_MS);
    });
    const used = cpu();
    const after = await counters();
    return {
      records: records - handledBefore,
      seconds: (done.committedAt - startedAt) / 1000,
      secondsFromFirstBatch: (done.committedAt - handled.firstAt) / 1000,
      cores: used.cores,
      brokerCores: used.otherCores,
      late: after.late - before.late,
      repeats: after.repeats - before.repeats,
      recomputed: after.recomputed - before.recomputed,
      facts: await facts(),
    } satisfies Phase;
  };

  const caughtUp = await phase('in-order', inOrder, () => processor.start());
  if (late === 0) {
    await tellParent({ type: 'caught-up', phase: caughtUp });
  } else {
    // The parent publishes the late day as soon as it hears this: the clock starts now.
    const absorbed = await phase('late', inOrder + late, () =>
      tellParent({ type: 'caught-up', phase: caughtUp }),
    );
    await tellParent({ type: 'absorbed', phase: absorbed });
  }
  await processor.stop();
}

// ------------------------------------------------------------------ the runs (parent)

interface Context {
  brokers: string;
  brokerPid: number | undefined;
  trees: Record<Tree, string>;
  /** The in-order records every topic holds. */
  inOrder: number;
}

function startChild(ctx: Context, tree: Tree, label: string, prefix: string, late: number) {
  const args = ['child', ctx.trees[tree], label, prefix, String(ctx.inOrder), String(late)];
  return forkBench<FromChild>(fileURLToPath(import.meta.url), args, {
    env: {
      ...env,
      BENCH_KAFKA_BROKERS: ctx.brokers,
      BENCH_BROKER_PID: String(ctx.brokerPid ?? ''),
    },
  });
}

const rate = (p: Phase) => p.records / p.secondsFromFirstBatch;

async function main() {
  console.log(machine());
  const trees: Record<Tree, string> = { base: baseTree(), head: HERE };
  const endAt = Date.now() - 5 * 60_000;
  const day = dayOfTraffic(endAt);
  const inOrderCount = day.inOrder.length;
  const broker = await startKafka();
  const ctx: Context = {
    brokers: broker.brokers,
    brokerPid: broker.pid,
    trees,
    inOrder: inOrderCount,
  };
  const bus = createKafkaBus({ brokers: [broker.brokers] });
  onCleanup(() => bus.close());
  const stamp = Date.now().toString(36);
  const load = async (prefix: string) => {
    const topics = topicNames(prefix);
    await bus.ensureTopics([topics.touchpoints, topics.touchpointsDlq], PARTITIONS);
    const { seconds } = await publishTouchpoints(bus, topics.touchpoints, day.inOrder);
    console.error(
      `${prefix}: ${fmt(inOrderCount)} in-order events loaded in ${seconds.toFixed(1)} s`,
    );
    return topics;
  };

  // (a) one topic, read from the beginning by every run. A first read by a no-op group
  // creates __consumer_offsets and warms the page cache.
  const shared = `corrections-${stamp}-a.`;
  const sharedTopics = await load(shared);
  const warm = new HandledCounter(sharedTopics.touchpoints);
  const warmConsumer = await warm.wrap(bus).consume({
    groupId: `bench-corrections-warm-${stamp}`,
    topic: sharedTopics.touchpoints,
    concurrency: 4,
    handler: async () => {},
  });
  await warm.caughtUp(bus, `bench-corrections-warm-${stamp}`, inOrderCount);
  await warmConsumer.stop();

  const inOrderRuns: Array<{ round: number; tree: Tree; phase: Phase; load: string }> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order: Tree[] = round % 2 === 1 ? ['base', 'head'] : ['head', 'base'];
    for (const tree of order) {
      const loadBefore = loadavg()
        .map((l) => l.toFixed(2))
        .join(' ');
      const name = tree === 'base' ? BASE_COMMIT : 'this tree';
      console.error(`(a) round ${round}: ${name}, load ${loadBefore}`);
      const run = startChild(ctx, tree, `${tree}-${round}-${stamp}`, shared, 0);
      const { phase } = await run.next('caught-up');
      await run.exited;
      inOrderRuns.push({ round, tree, phase, load: loadBefore });
    }
  }

  // (b) a topic of its own per run: the late day is published into it.
  const lateRuns: Array<{ inOrder: Phase; absorbed: Phase; publishSeconds: number }> = [];
  for (let n = 1; n <= LATE_RUNS; n++) {
    const prefix = `corrections-${stamp}-b${n}.`;
    const topics = await load(prefix);
    console.error(`(b) run ${n}: head, then ${fmt(day.late.length)} late events`);
    const run = startChild(ctx, 'head', `late-${n}-${stamp}`, prefix, day.late.length);
    const { phase: inOrder } = await run.next('caught-up');
    const { seconds: publishSeconds } = await publishTouchpoints(bus, topics.touchpoints, day.late);
    const { phase: absorbed } = await run.next('absorbed');
    await run.exited;
    lateRuns.push({ inOrder, absorbed, publishSeconds });
  }

  // What the facts must come to: the whole day, in order, through this tree.
  const whole = `corrections-${stamp}-whole.`;
  const wholeTopics = topicNames(whole);
  await bus.ensureTopics([wholeTopics.touchpoints, wholeTopics.touchpointsDlq], PARTITIONS);
  const everything = [...day.inOrder, ...day.late].sort((a, b) => a.timestamp - b.timestamp);
  await publishTouchpoints(bus, wholeTopics.touchpoints, everything);
  console.error('the whole day in order, for the facts it gives ...');
  const reference = startChild(
    { ...ctx, inOrder: everything.length },
    'head',
    `whole-${stamp}`,
    whole,
    0,
  );
  const { phase: wholeDay } = await reference.next('caught-up');
  await reference.exited;

  const lateCustomers = new Set(day.late.map((e) => e.customer_id)).size;
  console.log(
    `a day (${new Date(endAt - DAY_MS).toISOString()} to ${new Date(endAt).toISOString()}) of ${fmt(EVENTS)} events of ${fmt(CUSTOMERS)} customers: ${fmt(inOrderCount)} in order, ${fmt(day.late.length)} of ${fmt(lateCustomers)} customers held back; ${PARTITIONS} partitions; rates from the first batch to lag 0`,
  );
  console.log();
  console.log(`(a) in-order traffic, ${BASE_COMMIT} (before corrections) against this tree`);
  console.log(
    table(
      [
        'round',
        'processor',
        'events/s',
        'from start s',
        'cores: processor / broker',
        'late / repeats / recomputed',
        'facts',
        'load before',
      ],
      inOrderRuns.map(({ round, tree, phase, load }) => [
        String(round),
        tree === 'base' ? `${BASE_COMMIT} (no corrections)` : 'this tree (corrections on)',
        fmt(rate(phase)),
        fmt(phase.seconds, 2),
        `${fmt(phase.cores, 2)} / ${fmt(phase.brokerCores, 2)}`,
        `${fmt(phase.late)} / ${fmt(phase.repeats)} / ${fmt(phase.recomputed)}`,
        fmt(phase.facts),
        load,
      ]),
    ),
  );
  const ratios = Array.from({ length: ROUNDS }, (_, i) => {
    const of = (tree: Tree) =>
      inOrderRuns.find((r) => r.round === i + 1 && r.tree === tree)?.phase as Phase;
    return rate(of('head')) / rate(of('base'));
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const meanOf = (tree: Tree) =>
    mean(inOrderRuns.filter((r) => r.tree === tree).map((r) => rate(r.phase)));
  console.log(
    `this tree / ${BASE_COMMIT}, by round: ${ratios.map(pct).join(', ')}; of the means (${fmt(meanOf('head'))} / ${fmt(meanOf('base'))} events/s): ${pct(meanOf('head') / meanOf('base'))} (target 95%)`,
  );
  const factCounts = new Set(inOrderRuns.map((r) => r.phase.facts));
  if (factCounts.size > 1) {
    console.log(`warning: the runs disagree on the facts: ${[...factCounts].join(', ')}`);
  }
  console.log();
  console.log(`(b) the held-back day delivered late, after the in-order day, this tree`);
  console.log(
    table(
      [
        'run',
        'in-order events/s',
        'late events',
        'late / repeats / recomputed',
        'absorbed events/s',
        'vs in-order',
        'publish s / absorbed s',
        'cores: processor / broker',
        'facts: before / after',
      ],
      lateRuns.map(({ inOrder, absorbed, publishSeconds }, i) => [
        String(i + 1),
        fmt(rate(inOrder)),
        fmt(absorbed.records),
        `${fmt(absorbed.late)} / ${fmt(absorbed.repeats)} / ${fmt(absorbed.recomputed)}`,
        fmt(rate(absorbed)),
        pct(rate(absorbed) / rate(inOrder)),
        `${fmt(publishSeconds, 2)} / ${fmt(absorbed.secondsFromFirstBatch, 2)}`,
        `${fmt(absorbed.cores, 2)} / ${fmt(absorbed.brokerCores, 2)}`,
        `${fmt(inOrder.facts)} / ${fmt(absorbed.facts)}`,
      ]),
    ),
  );
  const agree = lateRuns.every((r) => r.absorbed.facts === wholeDay.facts);
  console.log(
    `the whole day in order gives ${fmt(wholeDay.facts)} facts: ${agree ? 'every run above came to the same' : 'WARNING: a run above came to other facts'}`,
  );
  console.log(
    `absorbed / in-order: ${lateRuns.map((r) => pct(rate(r.absorbed) / rate(r.inOrder))).join(', ')} (target 20%); ${fmt(day.late.length)} events of ${fmt(lateCustomers)} customers, every one older than event time: 'late' ones sent their customer to a recomputation, the others were applied where they arrived (their customer recomputed by then, or a type no journey follows)`,
  );
  console.log(machine());
}

if (process.argv[2] === 'child') {
  const [tree, label, prefix, inOrder, late] = process.argv.slice(3);
  runMain(() => child(tree ?? HERE, label ?? 'run', prefix ?? '', Number(inOrder), Number(late)));
} else {
  runMain(main);
}
