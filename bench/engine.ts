/**
 * The journey engine alone, in this process: events per second through one partition's
 * `PartitionEngine` (two journeys, batches of 500, the checkpoint changes taken after
 * every batch as the processor does), against a baseline that only keeps the newest
 * event time per customer in a Map: the least any per-customer streaming state costs.
 *
 *   npx tsx bench/engine.ts
 *   BENCH_EVENTS=2000000 npx tsx bench/engine.ts
 */
import { env } from 'node:process';
import type { Touchpoint } from '@touchstream/contracts';
import { PartitionEngine, toEngineJourney } from '@touchstream/engine';
import { BENCH_JOURNEYS, eventSource, toTouchpoint } from './support/events.js';
import { fmt, machine, pct, table } from './support/output.js';
import { runMain } from './support/run.js';

const EVENTS = Number(env.BENCH_EVENTS ?? 1_000_000);
const CUSTOMERS = 50_000;
const BATCH = 500;
const RUNS = 3;

const journeys = BENCH_JOURNEYS.map(toEngineJourney);

function batches(events: Touchpoint[]) {
  const out: Touchpoint[][] = [];
  for (let i = 0; i < events.length; i += BATCH) out.push(events.slice(i, i + BATCH));
  return out;
}

/** Best of `RUNS` runs, in events per second; `run` returns a number so nothing is elided. */
function measure(run: () => number) {
  let best = 0;
  let check = 0;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    check += run();
    best = Math.max(best, EVENTS / ((performance.now() - started) / 1000));
  }
  return { rate: best, check };
}

async function main() {
  console.log(machine());
  const source = eventSource(CUSTOMERS);
  const input = batches(Array.from({ length: EVENTS }, () => toTouchpoint(source.next())));

  const baseline = measure(() => {
    const newest = new Map<string, number>();
    for (const batch of input) {
      for (const event of batch) {
        const seen = newest.get(event.customer_id);
        if (seen === undefined || event.timestamp > seen) {
          newest.set(event.customer_id, event.timestamp);
        }
      }
    }
    return newest.size;
  });

  let facts = 0;
  const engine = measure(() => {
    const partition = new PartitionEngine(journeys, { allowedLatenessMs: 0 });
    let n = 0;
    for (const batch of input) {
      n += partition.apply(batch).length;
      partition.takeChanges();
    }
    facts = n;
    return n;
  });

  console.log(
    `${fmt(EVENTS)} events of ${fmt(CUSTOMERS)} customers, batches of ${BATCH}, best of ${RUNS}`,
  );
  console.log(
    table(
      ['run', 'events/s', 'vs baseline'],
      [
        ['baseline: newest time per customer in a Map', fmt(baseline.rate), '100.0%'],
        [
          `PartitionEngine, 2 journeys (${fmt(facts)} facts)`,
          fmt(engine.rate),
          pct(engine.rate / baseline.rate),
        ],
      ],
    ),
  );
}

runMain(main);
