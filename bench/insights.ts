/**
 * Insights (GET /v1/journeys/{id}/dropoffs/{from_step}/insights) against the drop-off query
 * of the same range, on a month of the demo's traffic. The target: within 2x.
 *
 * The traffic is the demo's: `touchstream simulate`'s shoppers (apps/cli/src/simulate) on
 * the sample journeys, BENCH_CUSTOMERS of them shopping at once and BENCH_RATE events a
 * second all together (the demo's defaults: 100 and 50; fewer customers at a lower rate
 * keep each one's pace), over BENCH_DAYS days of event time instead of the wall clock. Events are stored under the customer id (as stitching
 * files them once the anonymous ids are linked).
 *
 * Facts are written by a fast faithful route: the processor's own journey engine
 * (`PartitionEngine`, the code that decides every fact in production) is fed the events in
 * event-time order, and its facts are inserted as the processor's fact writer would insert
 * them (`factRow`, version 0). What is skipped is the bus, the HTTP collector and the
 * checkpoints, none of which changes a fact.
 *
 * The queries then run interleaved, BENCH_ROUNDS rounds of: drop-offs, then insights of
 * every transition of the purchase journey, over the whole month.
 *
 *   npx tsx bench/insights.ts
 * Env: BENCH_RATE (50), BENCH_CUSTOMERS (2 x BENCH_RATE), BENCH_DAYS (30), BENCH_ROUNDS (5).
 * The demo's full rate is 130 million events a month; `BENCH_RATE=2` keeps its pace per
 * customer at a 25th of the volume (5 million events), which loads in minutes.
 */
import { join } from 'node:path';
import { loadConfig } from '@touchstream/config';
import { type Journey, parseDuration, type Touchpoint } from '@touchstream/contracts';
import { type Fact, PartitionEngine, toEngineJourney } from '@touchstream/engine';
import {
  createStore,
  factRow,
  listJourneys,
  migrate,
  queryDropoffs,
  queryInsights,
  type Store,
  toEventRow,
} from '@touchstream/store';
import { SAMPLE_JOURNEYS } from '../apps/cli/src/demo-command.js';
import { loadJourneysFile } from '../apps/cli/src/journeys-file.js';
import { seededRandom } from '../apps/cli/src/simulate/random.js';
import {
  DEFAULT_PROBABILITIES,
  nextEvent,
  type Session,
  type Shopper,
  shopperMaker,
  startSession,
} from '../apps/cli/src/simulate/shopper.js';
import { fmt, machine, median, table } from './support/output.js';
import { runMain, tempDir } from './support/run.js';

const env = process.env;
const RATE = Number(env.BENCH_RATE ?? 50);
/** The demo's pace per customer (100 customers at 50 events/s: an action every 2 s). */
const CUSTOMERS = Number(env.BENCH_CUSTOMERS ?? Math.max(1, Math.round(RATE * 2)));
const DAYS = Number(env.BENCH_DAYS ?? 30);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 5);
const START = Date.UTC(2026, 9, 1);
const END = START + DAYS * 86_400_000;
/** Events per insert: large parts, as the processor's group commit makes under load. */
const CHUNK = 200_000;

/**
 * The demo's shoppers in event time: each of the CUSTOMERS acts as a Poisson process,
 * RATE events a second together; a finished visit makes room for a new one, by a
 * returning customer 30% of the time (as `simulate` does).
 */
function* demoTraffic(): Generator<Touchpoint> {
  const rnd = seededRandom(7);
  const p = DEFAULT_PROBABILITIES;
  const newShopper = shopperMaker('sim', rnd, p);
  const returning: Shopper[] = [];
  const visit = () =>
    startSession(
      returning.length > 0 && rnd.chance(0.3)
        ? (returning.splice(rnd.int(0, returning.length - 1), 1)[0] as Shopper)
        : newShopper(),
      rnd,
      p,
    );
  const sessions: Session[] = Array.from({ length: CUSTOMERS }, visit);
  let time = START;
  let n = 0;
  while (time < END) {
    time += Math.max(1, Math.round((-Math.log(1 - rnd.next()) * 1000) / RATE));
    const i = rnd.int(0, CUSTOMERS - 1);
    const session = sessions[i] as Session;
    const emitted = nextEvent(session, rnd, p, () => false);
    n += 1;
    yield {
      event_id: `evt-${n}`,
      customer_id: session.shopper.customer,
      type: emitted.type,
      channel: emitted.channel,
      timestamp: time,
      ...(emitted.properties ? { properties: emitted.properties } : {}),
    } as Touchpoint;
    if (session.done) {
      if (session.outcome === 'completed' && returning.length < 1000) {
        returning.push(session.shopper);
      }
      sessions[i] = visit();
    }
  }
}

/** Stores the month: events, and the facts the engine derives from them. */
async function load(store: Store, journeys: Journey[]) {
  const engine = new PartitionEngine(journeys.map(toEngineJourney), { allowedLatenessMs: 0 });
  let events: Touchpoint[] = [];
  const totals = { events: 0, facts: 0 };
  const write = async (facts: Fact[]) => {
    if (events.length > 0) {
      await store.insert({
        table: 'events',
        values: events.map((e) => toEventRow(e)),
        format: 'JSONEachRow',
      });
    }
    if (facts.length > 0) {
      await store.insert({
        table: 'facts',
        values: facts.map((f) => factRow(f, 0)),
        format: 'JSONEachRow',
      });
    }
    totals.events += events.length;
    totals.facts += facts.length;
    events = [];
  };
  for (const event of demoTraffic()) {
    events.push(event);
    if (events.length === CHUNK) {
      await write(engine.apply(events));
      process.stderr.write(
        `\r${fmt(totals.events)} events, ${new Date(event.timestamp).toISOString()}`,
      );
    }
  }
  // Every instance decided: event time a day past the last event.
  await write([...engine.apply(events), ...engine.advanceTo(END + 86_400_000)]);
  process.stderr.write('\n');
  return totals;
}

async function main() {
  console.log(machine());
  const dir = await tempDir('touchstream-bench-insights-');
  const store = await createStore(loadConfig({ TOUCHSTREAM_DATA_DIR: join(dir, 'data') }));
  try {
    await migrate(store);
    await loadJourneysFile(store, SAMPLE_JOURNEYS);
    const journeys = await listJourneys(store);
    const purchase = journeys.find((j) => j.id === 'online-purchase') as Journey;
    const loadStarted = performance.now();
    const totals = await load(store, journeys);
    await store.command({ query: 'OPTIMIZE TABLE facts FINAL' });
    console.log(
      `${fmt(totals.events)} events, ${fmt(totals.facts)} facts over ${DAYS} days (rate ${RATE}/s, ${CUSTOMERS} shopping at once), loaded in ${fmt((performance.now() - loadStarted) / 1000)} s`,
    );

    const timeoutMs = parseDuration(purchase.step_timeout) ?? 0;
    const transitions = purchase.steps.slice(0, -1).map((s, k) => ({ name: s.name, k }));
    const times: Record<string, number[]> = { dropoffs: [] };
    const timed = async (name: string, run: () => Promise<unknown>) => {
      const started = performance.now();
      await run();
      times[name] = [...(times[name] ?? []), performance.now() - started];
    };
    // One unmeasured round warms the caches both read.
    for (let round = 0; round <= ROUNDS; round++) {
      const keep = round > 0;
      await timed(keep ? 'dropoffs' : 'warm', () => queryDropoffs(store, purchase, START, END));
      for (const { name, k } of transitions) {
        await timed(keep ? name : 'warm', () =>
          queryInsights(store, purchase.id, k, timeoutMs, START, END),
        );
      }
    }
    const example = await queryInsights(store, purchase.id, 0, timeoutMs, START, END);
    const base = median(times.dropoffs ?? []);
    console.log(
      table(
        ['query', 'median ms', 'ratio to drop-offs'],
        [
          ['drop-offs (all transitions)', fmt(base), '1.00x'],
          ...transitions.map(({ name }) => {
            const ms = median(times[name] ?? []);
            return [`insights from \`${name}\``, fmt(ms), `${(ms / base).toFixed(2)}x`];
          }),
        ],
      ),
    );
    console.log(
      `insights from viewed: ${example.dropped} dropped, ${example.continued} continued, ${example.afterDrop.length} next events, ${example.correlations.length} correlations`,
    );
    console.log(machine());
  } finally {
    await store.close();
  }
}

runMain(main);
