import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DropoffResponse, Touchpoint } from '@touchstream/contracts';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../apps/cli/src/simulate/random.js';
import { postAll } from '../support/events.js';
import { putJourney } from '../support/http.js';
import {
  dropoffsAt,
  expectDropoffsToMatch,
  PURCHASE,
  PURCHASE_FILE,
  purchaseTraffic,
  rangesOver,
} from '../support/journey-traffic.js';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { spawnTouchstream, startTestRuntime } from '../support/runtime.js';

/**
 * Rule 7 end to end: figures equal the rules applied in event-time order to the distinct
 * stored events, whatever order, delay or repetition the events arrived with, and
 * `reached = continued + dropped + in_progress` holds at every read on the way.
 */

const HOUR = 3_600_000;
const IDLE = '8s';

/** The invariant at one read, for every transition, channel row and reason list. */
function expectConsistent(answer: DropoffResponse) {
  for (const t of answer.transitions) {
    expect(t.in_progress, `${t.from_step}: in_progress`).toBeGreaterThanOrEqual(0);
    expect(t.reached).toBe(t.continued + t.dropped + t.in_progress);
    expect(t.reasons.reduce((n, r) => n + r.dropped, 0)).toBe(t.dropped);
    for (const c of t.by_channel) expect(c.continued + c.dropped).toBeLessThanOrEqual(c.reached);
    expect(t.by_channel.reduce((n, c) => n + c.reached, 0)).toBe(t.reached);
  }
}

/** Posts the batches; after each, every range's answer must be consistent. */
async function postChecking(address: string, batches: Touchpoint[][], start: number) {
  const read = dropoffsAt(address);
  for (const batch of batches) {
    await postAll(address, [batch]);
    for (const { from, to } of rangesOver(start)) expectConsistent(await read(from, to));
  }
}

/** A mobile app's backlog: the mobile events of every third customer, held back. */
function splitBacklog(events: readonly Touchpoint[]) {
  const held = (e: Touchpoint) =>
    e.channel === 'mobile' && Number(e.customer_id.split('-').at(-1)) % 3 === 0;
  return { live: events.filter((e) => !held(e)), backlog: events.filter(held) };
}

/** Shuffled (seeded), in batches of `size`: an upload in no particular order. */
function shuffledBatches(events: readonly Touchpoint[], size: number, seed: number) {
  const rnd = seededRandom(seed);
  const order = events.map((event) => ({ event, key: rnd.int(0, 1_000_000) }));
  order.sort((a, b) => a.key - b.key);
  const batches: Touchpoint[][] = [];
  for (let i = 0; i < order.length; i += size) {
    batches.push(order.slice(i, i + size).map((o) => o.event));
  }
  return batches;
}

async function metric(address: string, name: string) {
  const text = await (await fetch(`${address}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

describe('corrections on the embedded bus', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('absorb a backlog hours late and a retry after the customers were forgotten', async () => {
    const runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-corrections-')),
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
      TOUCHSTREAM_LOG_LEVEL: 'warn',
    });
    cleanup.push(() => runtime.stop());
    await putJourney(runtime.address, PURCHASE);
    const start = Date.now() - 6 * HOUR;
    const events = purchaseTraffic({ customers: 300, start, seed: 15 });
    const { live, backlog } = splitBacklog(events);
    expect(backlog.length).toBeGreaterThan(50);

    // The channels that send live are decided first: drop-offs declared, instances closed.
    await postChecking(runtime.address, chunks(live, 300), start);
    await expectDropoffsToMatch(dropoffsAt(runtime.address), PURCHASE, live, start);

    // The mobile backlog arrives hours late, in no order: drops are withdrawn, instances
    // re-formed, reasons changed.
    await postChecking(runtime.address, shuffledBatches(backlog, 60, 2), start);
    await expectDropoffsToMatch(dropoffsAt(runtime.address), PURCHASE, events, start);
    expect(
      await metric(runtime.address, 'touchstream_processor_recomputed_customers_total'),
    ).toBeGreaterThan(0);

    // Hours later in event time the engine has forgotten these customers; 5% of the
    // events come again (a client's retry after an outage), and change nothing.
    const rnd = seededRandom(3);
    const retried = events.filter(() => rnd.chance(0.05));
    await postChecking(runtime.address, shuffledBatches(retried, 50, 4), start);
    await expectDropoffsToMatch(dropoffsAt(runtime.address), PURCHASE, events, start);
    expect(
      await metric(runtime.address, 'touchstream_processor_out_of_order_events_total{kind="late"}'),
    ).toBeGreaterThan(0);
  });
});

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

describe('corrections on Kafka', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  it('survive a processor killed mid-correction and a replay of the whole topic', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-corrections-kafka-'));
    const journeysFile = join(dir, 'journeys.json');
    await writeFile(journeysFile, PURCHASE_FILE);
    const prefix = `${uniqueName('corrections')}.`;
    const env = {
      TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
      TOUCHSTREAM_JOURNEYS_FILE: journeysFile,
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
      TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
      TOUCHSTREAM_TOPIC_PREFIX: prefix,
    };
    const start = Date.now() - 6 * HOUR;
    const events = purchaseTraffic({ customers: 200, start, seed: 16 });
    const { live, backlog } = splitBacklog(events);

    const first = await spawnTouchstream(['start'], env);
    cleanup.push(() => first.kill('SIGKILL'));
    await postAll(first.address, chunks(live, 300));
    await expectDropoffsToMatch(dropoffsAt(first.address), PURCHASE, live, start);
    // Killed while the late backlog is being corrected: no drain, no warning.
    const uploads = shuffledBatches(backlog, 40, 5);
    const half = Math.floor(uploads.length / 2);
    await postAll(first.address, uploads.slice(0, half));
    await first.kill('SIGKILL');

    const second = await spawnTouchstream(['start'], env);
    cleanup.push(() => second.kill('SIGTERM'));
    await postChecking(second.address, uploads.slice(half), start);
    await expectDropoffsToMatch(dropoffsAt(second.address), PURCHASE, events, start);
    await second.kill('SIGTERM');

    // An operator replays the whole topic: the processor group starts again from offset 0.
    const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.resetOffsets({
        groupId: `${prefix}processor`,
        topic: `${prefix}touchpoints`,
        earliest: true,
      });
    } finally {
      await admin.disconnect();
    }
    const third = await spawnTouchstream(['start'], env);
    cleanup.push(() => third.kill('SIGTERM'));
    await expectDropoffsToMatch(dropoffsAt(third.address), PURCHASE, events, start);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    for (const { from, to } of rangesOver(start)) {
      expectConsistent(await dropoffsAt(third.address)(from, to));
    }
    await expectDropoffsToMatch(dropoffsAt(third.address), PURCHASE, events, start);
  });
});
