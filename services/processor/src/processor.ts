import { randomUUID } from 'node:crypto';
import type {
  Batch,
  Bus,
  BusRecord,
  Consumer,
  OutgoingRecord,
  PartitionStall,
} from '@touchstream/bus';
import {
  DEFAULT_MAX_FUTURE_MS,
  DLQ_HEADERS,
  type IdentityMessage,
  type TopicNames,
  type Touchpoint,
} from '@touchstream/contracts';
import { createWriters, type EventRow, refusesRows, type Store } from '@touchstream/store';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ErasedEvents, erasurePass } from './erasure-pass.js';
import { JourneyTracker } from './journey-tracker.js';
import { deadLetter, isEraseRecord, outcomeOf } from './outcomes.js';
import { carried, type Incoming, identityRecord, Stitching } from './stitching.js';

export interface ProcessorDeps {
  bus: Bus;
  store: Store;
  topics: TopicNames;
  metrics: Registry;
  logger: Logger;
  /** Consumer groups are named after the topic prefix, so deployments never share one. */
  groupPrefix: string;
  writer?: { maxRows?: number; maxRetryMs?: number };
  journeys: { allowedLatenessMs: number; idleWatermarkMs: number };
  /** How far ahead of this processor's clock an event time may be (TOUCHSTREAM_MAX_FUTURE). */
  maxFutureMs?: number;
  /** How long a partition may fail or stand still before it is reported stuck. */
  stallAfterMs?: number;
  /** Wall clock, in epoch milliseconds. */
  now?: () => number;
}

/** Partitions handled at once: their batches coalesce into shared inserts. */
const CONCURRENCY = 4;

/** What ClickHouse said of a refused row, short enough for a header. */
function refusal(error: unknown): string {
  const type = (error as { type?: string }).type ?? 'unknown';
  return `${type} ${String((error as Error).message).slice(0, 200)}`;
}

/**
 * Consumes touchpoints, writes them to ClickHouse and commits offsets only after
 * ClickHouse acknowledged them (at least once; event_id makes replays harmless). Records
 * that are not touchpoints go to the dead-letter topic, whose write is awaited before the
 * commit too. A second consumer copies dead letters into the dead_letters table.
 */
export function buildProcessor(deps: ProcessorDeps) {
  const { bus, store, topics, logger } = deps;
  const now = deps.now ?? Date.now;
  const registers = [deps.metrics];
  const consumed = new Counter({
    name: 'touchstream_processor_records_consumed_total',
    help: 'Records read from the touchpoints topic (replays included).',
    registers,
  });
  const written = new Counter({
    name: 'touchstream_processor_events_written_total',
    help: 'Events acknowledged by ClickHouse (replays included).',
    registers,
  });
  const deadLettered = new Counter({
    name: 'touchstream_processor_dead_lettered_total',
    help: 'Records sent to the dead-letter topic.',
    labelNames: ['reason'],
    registers,
  });
  const insertErrors = new Counter({
    name: 'touchstream_processor_insert_errors_total',
    help: 'Failed ClickHouse inserts, by class; their rows are retried, never dropped.',
    labelNames: ['class'],
    registers,
  });
  const skippedErased = new Counter({
    name: 'touchstream_processor_erased_records_skipped_total',
    help: 'Records of events an erasure removed (replays, retries), neither stored nor applied.',
    registers,
  });
  const erasurePasses = new Counter({
    name: 'touchstream_processor_erasure_passes_total',
    help: 'Erase messages acted on (one per erasure and id; replayed ones are not counted).',
    registers,
  });
  const batchSeconds = new Histogram({
    name: 'touchstream_processor_batch_seconds',
    help: 'Time from receiving a batch to having it stored, before the commit.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const group = `${deps.groupPrefix}processor`;
  const deadLetterGroup = `${deps.groupPrefix}dead-letters`;
  new Gauge({
    name: 'touchstream_processor_consumer_lag',
    help: 'Records of the touchpoints topic not yet committed by the processor group.',
    registers,
    async collect() {
      try {
        this.set(await bus.lag(group, topics.touchpoints));
      } catch {
        // The bus is unreachable: the gauge keeps its last value, readiness tells the rest.
      }
    },
  });

  // Every table the processor writes, through one group-commit writer each.
  const writers = createWriters(
    store,
    {
      onInsert: (table, rows) => {
        if (table === 'events') written.inc(rows);
      },
      onError: (table, error, errorClass, attempt) => {
        insertErrors.inc({ class: errorClass });
        logger.warn({ err: error, table, class: errorClass, attempt }, 'insert_failed');
      },
    },
    deps.writer,
  );

  const tracker = new JourneyTracker({
    store,
    writers,
    groupId: group,
    // Kafka keeps its offsets; the embedded bus starts from 0 in every process.
    offsetScope: bus.kind === 'kafka' ? topics.touchpoints : `embedded:${randomUUID()}`,
    logger,
    metrics: deps.metrics,
    ...deps.journeys,
    carry: (events, customer) =>
      bus.append(
        topics.touchpoints,
        events.map((e) => carried(e as Touchpoint, customer)),
      ),
  });

  const stitching = new Stitching(store, deps.metrics);
  const erased = new ErasedEvents(store, now);

  /**
   * Inserts the rows alone, halving them while ClickHouse refuses what they hold, and
   * returns the rows it refuses one by one: a poison record is dead-lettered instead of
   * holding its partition forever. Alone, because rows sharing an insert with another
   * batch's poison would be refused with it.
   */
  const isolateRefused = async (
    items: { row: EventRow; index: number }[],
  ): Promise<{ index: number; error: unknown }[]> => {
    try {
      await store.insert({
        table: 'events',
        values: items.map((i) => i.row),
        format: 'JSONEachRow',
      });
      written.inc(items.length);
      return [];
    } catch (error) {
      const [only] = items;
      if (!refusesRows(error)) throw error;
      if (items.length === 1 && only) return [{ index: only.index, error }];
      const half = Math.ceil(items.length / 2);
      return [
        ...(await isolateRefused(items.slice(0, half))),
        ...(await isolateRefused(items.slice(half))),
      ];
    }
  };

  /** Stores the rows; those ClickHouse refuses for what they hold come back by index. */
  const storeRows = async (rows: EventRow[]) => {
    try {
      await writers.events.write(rows);
      return [];
    } catch (error) {
      if (!refusesRows(error)) throw error;
      logger.warn({ err: error, rows: rows.length }, 'insert_refused_rows_isolating');
      return isolateRefused(rows.map((row, index) => ({ row, index })));
    }
  };

  /**
   * A batch is cut at each erase message: the records before it are handled first, the
   * erasure's pass runs at its position, and the records after it are a new history.
   */
  const handleTouchpoints = async (batch: Batch) => {
    const stopTimer = batchSeconds.startTimer();
    let from = 0;
    for (const [index, record] of batch.records.entries()) {
      if (!isEraseRecord(record)) continue;
      if (index > from) await handleRecords(batch, batch.records.slice(from, index));
      await handleErase(batch, record);
      from = index + 1;
    }
    if (from < batch.records.length) await handleRecords(batch, batch.records.slice(from));
    consumed.inc(batch.records.length);
    stopTimer();
  };

  const handleErase = async (batch: Batch, record: BusRecord) => {
    const outcome = outcomeOf(record, { now: now(), maxFutureMs: 0 });
    if (outcome.kind !== 'identity' || outcome.message.kind !== 'erase') {
      const letter =
        outcome.kind === 'dead_letter'
          ? outcome.letter
          : deadLetter(record, 'invalid_identity_message');
      await bus.publish(topics.touchpointsDlq, [letter]);
      deadLettered.inc({ reason: 'invalid_identity_message' });
      return;
    }
    const message = outcome.message;
    erased.exist();
    const acted = await erasurePass(
      {
        store,
        forgetJourneys: (ids) => tracker.erase(batch.partition, ids),
        forgetLinks: (ids) => stitching.forgetIds(ids),
        recompute: (customers) =>
          bus.append(
            topics.touchpoints,
            customers.map((customer) =>
              identityRecord({ kind: 'restitch', customer_id: customer }),
            ),
          ),
        announce: (erasure, ids) =>
          bus.append(
            topics.touchpoints,
            ids.map((id) =>
              identityRecord({
                kind: 'erase',
                erasure_id: erasure.erasure_id,
                id,
                customer_id: erasure.customer_id,
                ids: erasure.ids,
              }),
            ),
          ),
      },
      message,
    );
    if (acted === 'unknown') {
      await bus.publish(topics.touchpointsDlq, [deadLetter(record, 'unknown_erasure')]);
      deadLettered.inc({ reason: 'unknown_erasure' });
    } else if (acted === 'done') {
      erasurePasses.inc();
      logger.info(
        { erasure_id: message.erasure_id, partition: batch.partition, offset: record.offset },
        'erasure_pass_done',
      );
    }
  };

  const handleRecords = async (batch: Batch, records: readonly BusRecord[]) => {
    const clock = { now: now(), maxFutureMs: deps.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS };
    const decoded: Incoming[] = [];
    const messages: IdentityMessage[] = [];
    const dead: OutgoingRecord[] = [];
    for (const record of records) {
      const outcome = outcomeOf(record, clock);
      if (outcome.kind === 'ok') decoded.push(outcome);
      else if (outcome.kind === 'identity') messages.push(outcome.message);
      else dead.push(outcome.letter);
    }
    // Events an erasure removed are neither stored nor applied (API.md): not replayed, not
    // retried, not carried here from another partition.
    const gone = await erased.among(decoded.map((i) => i.event.event_id));
    const incoming = gone.size === 0 ? decoded : decoded.filter((i) => !gone.has(i.event.event_id));
    skippedErased.inc(decoded.length - incoming.length);
    const plan = await stitching.plan(incoming);
    const tracked = records.map((r) => ({ offset: r.offset, event: plan.applied.get(r) }));
    // All of it is stored before the batch is committed. A row ClickHouse refuses has
    // been through the journey engine by then; the dead letter says so for replay.
    const stored = storeRows(plan.rows.map((r) => r.row));
    // What other partitions are told goes out once this batch's rows are stored, so that
    // whatever they do in answer reads them.
    const stitched = stored.then(async () => {
      const settled = await stitching.settle(messages);
      const outgoing = [...plan.outgoing, ...settled.outgoing];
      if (outgoing.length > 0) await bus.append(topics.touchpoints, outgoing);
      return settled;
    });
    const [refused] = await Promise.all([
      stored,
      dead.length > 0 ? bus.publish(topics.touchpointsDlq, dead) : undefined,
      tracker.process(batch.partition, tracked, stored, stitched),
      stitched,
    ]);
    if (refused.length > 0) {
      const poison = refused.map(({ index, error }) =>
        deadLetter(plan.rows[index]?.record as BusRecord, `store_refused: ${refusal(error)}`),
      );
      await bus.publish(topics.touchpointsDlq, poison);
      dead.push(...poison);
    }
    for (const d of dead)
      deadLettered.inc({ reason: d.headers?.[DLQ_HEADERS.reason]?.split(':')[0] ?? 'unknown' });
  };

  const storeDeadLetters = async (batch: Batch) => {
    // A dead letter of an erased event does not come back either (a replayed topic).
    const ids = batch.records.map((r) => eventIdOf(r.value));
    const gone = await erased.among(ids.filter((id) => id !== ''));
    const kept = batch.records.filter((_, i) => !gone.has(ids[i] ?? ''));
    skippedErased.inc(batch.records.length - kept.length);
    await writers.deadLetters.write(
      kept.map((r) => ({
        topic: r.headers[DLQ_HEADERS.topic] ?? r.topic,
        partition: Number(r.headers[DLQ_HEADERS.partition] ?? r.partition),
        offset: r.headers[DLQ_HEADERS.offset] ?? r.offset,
        reason: r.headers[DLQ_HEADERS.reason] ?? 'unknown',
        record_key: r.key,
        value: r.value.toString('utf8'),
      })),
    );
  };

  const onHandlerError = (error: unknown, batch: Batch, attempt: number) =>
    logger.warn(
      { err: error, topic: batch.topic, partition: batch.partition, attempt },
      'batch_failed',
    );

  let consumers: Consumer[] = [];
  const stalls = () => consumers.flatMap((c) => c.stalls());
  new Gauge({
    name: 'touchstream_processor_partition_stuck_seconds',
    help: 'How long a partition has failed or stood still with records waiting (stuck ones only).',
    labelNames: ['topic', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const stall of stalls()) {
        const labels = { topic: stall.topic, partition: String(stall.partition) };
        this.set(labels, (now() - stall.since) / 1000);
      }
    },
  });
  // Told once when a partition gets stuck and once when it moves on again.
  let reported = new Map<string, PartitionStall>();
  const reportStalls = () => {
    const current = new Map(stalls().map((s) => [`${s.topic}/${s.partition}`, s]));
    for (const [key, stall] of current) {
      if (reported.has(key)) continue;
      const stuckSeconds = Math.round((now() - stall.since) / 1000);
      logger.error(
        {
          topic: stall.topic,
          partition: stall.partition,
          stuck_seconds: stuckSeconds,
          reason: stall.reason,
        },
        'partition_stuck',
      );
    }
    for (const [key, stall] of reported) {
      if (!current.has(key)) {
        logger.info({ topic: stall.topic, partition: stall.partition }, 'partition_resumed');
      }
    }
    reported = current;
  };
  let stallTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  return {
    /**
     * Ready unless a partition is stuck: then the answer names each one, how long and why,
     * since nothing is skipped and its records wait until someone acts.
     */
    readiness: {
      processor: async () => {
        const stuck = stalls();
        if (stuck.length === 0) return true;
        return stuck
          .map(
            (s) =>
              `partition ${s.topic}/${s.partition} stuck for ${Math.round((now() - s.since) / 1000)} s: ${s.reason}`,
          )
          .join('; ');
      },
    },
    async start() {
      consumers = [
        await bus.consume({
          groupId: group,
          topic: topics.touchpoints,
          handler: handleTouchpoints,
          onHandlerError,
          stallAfterMs: deps.stallAfterMs,
          concurrency: CONCURRENCY,
          onAssignment: (partitions) => {
            stitching.forget();
            tracker.assigned(partitions);
          },
        }),
        await bus.consume({
          groupId: deadLetterGroup,
          topic: topics.touchpointsDlq,
          handler: storeDeadLetters,
          onHandlerError,
          stallAfterMs: deps.stallAfterMs,
        }),
      ];
      tracker.start();
      stallTimer = setInterval(reportStalls, 1_000);
      stallTimer.unref();
      logger.info({ group, topic: topics.touchpoints }, 'processor_started');
    },
    /** Stops intake, lets the running batches finish and commit, then closes the writer. */
    stop() {
      stopping ??= (async () => {
        clearInterval(stallTimer);
        // The in-process bus keeps its log in memory only: what this processor appended
        // to it (identity messages, carried events) is handled before intake stops.
        if (bus.kind === 'embedded') await caughtUp(() => bus.lag(group, topics.touchpoints));
        await Promise.all(consumers.map((c) => c.stop()));
        await tracker.stop();
        await writers.close();
        logger.info('processor_stopped');
      })();
      return stopping;
    },
  };
}

/** The event id a record's JSON names, '' when it names none. */
function eventIdOf(value: Buffer): string {
  try {
    const id = (JSON.parse(value.toString('utf8')) as { event_id?: unknown })?.event_id;
    return typeof id === 'string' ? id : '';
  } catch {
    return '';
  }
}

/** Waits, for at most `limitMs`, until the group has handled everything on its topic. */
async function caughtUp(lag: () => Promise<number>, limitMs = 10_000) {
  const until = Date.now() + limitMs;
  while ((await lag()) > 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
