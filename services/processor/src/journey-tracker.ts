import { KeyedQueue, type Touchpoint } from '@touchstream/contracts';
import {
  type CustomerState,
  type EngineEvent,
  type EngineJourney,
  type Fact,
  PartitionEngine,
  type PartitionMeta,
  recomputeCustomer,
  toEngineJourney,
} from '@touchstream/engine';
import {
  checkpointRows,
  correctionRows,
  type FactRow,
  factRow,
  listJourneys,
  PARTITION_ROW,
  readCheckpoint,
  readFacts,
  readHistories,
  type StateRow,
  type Store,
  type Writers,
} from '@touchstream/store';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';

export interface JourneyTrackerDeps {
  store: Store;
  /** Facts and checkpoints go in through the processor's writers, sharing their inserts. */
  writers: Pick<Writers, 'facts' | 'checkpoints'>;
  /** The consumer group whose partitions the checkpoints belong to. */
  groupId: string;
  logger: Logger;
  metrics: Registry;
  allowedLatenessMs: number;
  idleWatermarkMs: number;
  /** Wall clock, in epoch milliseconds. */
  now?: () => number;
  /** How stale the journey definitions may be when a batch is processed. */
  journeysMaxAgeMs?: number;
  /**
   * Names the log the offsets belong to. Offsets compare only within one log: the
   * embedded bus numbers its records from 0 again in every process, so a checkpointed
   * offset of an earlier process says nothing about the records of this one.
   */
  offsetScope: string;
  /**
   * Sends events that waited for event time here to the partition of the customer their
   * anonymous id now belongs to (see stitching.ts).
   */
  carry?: (events: EngineEvent[], customer: string) => Promise<void>;
}

/** What stitching changed under this partition's customers. */
export interface Restitched {
  /** Customers to recompute from their stored events. */
  recompute: readonly string[];
  /** Anonymous ids of this partition filed under a customer, with that customer. */
  filed: ReadonlyMap<string, string>;
}

/** A partition's engine and where it stands in the partition. */
interface Slot {
  engine: PartitionEngine;
  /** Offset of the last record applied: a replayed record at or before it is skipped. */
  offset: bigint | null;
  version: number;
  lastEventAt: number;
}

/** What the partition's own checkpoint row holds. */
interface PartitionRow {
  meta: PartitionMeta;
  offset: string | null;
  scope?: string;
}

/**
 * Runs the journey engine over the partitions this processor owns: applies each batch,
 * writes the facts and a checkpoint before the batch is committed, reloads a partition's
 * checkpoint when the partition is (re)assigned, and moves an idle partition's event
 * time with the wall clock so that drop-offs are declared when traffic stops.
 */
export class JourneyTracker {
  private readonly slots = new Map<number, Promise<Slot>>();
  /** The batches and idle ticks of a partition run one after another. */
  private readonly queue = new KeyedQueue<number>();
  private journeys: EngineJourney[] = [];
  private journeysLoadedAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;
  private readonly factsWritten: Counter;
  private readonly seen: Counter;
  private readonly recomputed: Counter;
  private readonly correcting: Gauge;
  /** The last fact version handed out: versions grow within a process (see `versions`). */
  private lastVersion = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The idle tick in progress: stop waits for it, so the store is not closed under it. */
  private ticking: Promise<void> | undefined;

  constructor(private readonly deps: JourneyTrackerDeps) {
    this.now = deps.now ?? Date.now;
    this.factsWritten = new Counter({
      name: 'touchstream_processor_journey_facts_total',
      help: 'Journey facts written, by kind (replays included).',
      labelNames: ['kind'],
      registers: [deps.metrics],
    });
    this.seen = new Counter({
      name: 'touchstream_processor_out_of_order_events_total',
      help: 'Events the fast path could not apply where they arrived: late (older than event time), or repeats of an id already applied.',
      labelNames: ['kind'],
      registers: [deps.metrics],
    });
    this.recomputed = new Counter({
      name: 'touchstream_processor_recomputed_customers_total',
      help: 'Customers whose facts were recomputed from their stored events (corrections).',
      registers: [deps.metrics],
    });
    this.correcting = new Gauge({
      name: 'touchstream_processor_corrections_pending',
      help: 'Customers whose recomputation is under way: their figures are not yet corrected.',
      registers: [deps.metrics],
    });
  }

  /** Starts the idle clock: every partition is looked at a few times per idle period. */
  start() {
    const every = Math.max(50, Math.min(1_000, this.deps.idleWatermarkMs / 4));
    this.timer = setInterval(() => {
      if (this.ticking) return;
      this.ticking = this.tick()
        .catch((error) => this.deps.logger.warn({ err: error }, 'idle_tick_failed'))
        .finally(() => {
          this.ticking = undefined;
        });
    }, every);
  }

  async stop() {
    clearInterval(this.timer);
    await this.ticking;
  }

  /** Forgets the state of partitions this member no longer owns. */
  assigned(partitions: readonly number[]) {
    const owned = new Set(partitions);
    for (const partition of [...this.slots.keys()]) {
      if (!owned.has(partition)) this.slots.delete(partition);
    }
  }

  /**
   * Applies a partition's records; resolves once their facts and the checkpoint are
   * stored. `stored` settles once the records' events are in the events table: a
   * correction reads the customer's history from there. `restitched` names customers
   * whose events stitching filed anew: they are recomputed too.
   */
  async process(
    partition: number,
    records: ReadonlyArray<{ offset: string; event?: Touchpoint }>,
    stored: Promise<unknown> = Promise.resolve(),
    restitched?: Promise<Restitched>,
  ) {
    await this.refreshJourneys();
    await this.withSlot(partition, async (slot) => {
      const fresh = records.filter((r) => slot.offset === null || BigInt(r.offset) > slot.offset);
      const last = records.at(-1);
      if (fresh.length === 0 || !last) return;
      const events = fresh.flatMap((r) => (r.event ? [r.event] : []));
      const seen = { ...slot.engine.seen };
      let rows = this.rowsOf(slot.engine.apply(events));
      this.seen.inc({ kind: 'late' }, slot.engine.seen.late - seen.late);
      this.seen.inc({ kind: 'repeat' }, slot.engine.seen.repeats - seen.repeats);
      const stitched = await restitched;
      for (const [id, customer] of stitched?.filed ?? []) {
        const waiting = slot.engine.takePending(id);
        if (waiting.length > 0) await this.deps.carry?.(waiting, customer);
      }
      const corrections = [
        ...new Set([...slot.engine.takeCorrections(), ...(stitched?.recompute ?? [])]),
      ];
      if (corrections.length > 0) {
        await stored;
        // The recomputation reads this batch's events too, and it replaces the facts stored
        // before the batch: facts the fast path drew for these customers in this batch are
        // not stored yet, so they would stand beside it, never withdrawn.
        const recomputed = new Set(corrections);
        rows = rows.filter((row) => !recomputed.has(row.customer_id));
        rows.push(...(await this.correct(slot.engine, corrections)));
      }
      slot.offset = BigInt(last.offset);
      slot.lastEventAt = this.now();
      await this.persist(partition, slot, rows);
    });
  }

  /**
   * Erasure (API.md): forgets the customers' state in the partition's engine and writes
   * the partition's checkpoint again without their pending events, so that no checkpoint
   * read from now on brings them back. Their own checkpoint rows are the caller's to delete.
   */
  async erase(partition: number, customers: readonly string[]) {
    await this.withSlot(partition, async (slot) => {
      for (const customer of customers) slot.engine.eraseCustomer(customer);
      await this.persist(partition, slot, [], { always: true });
    });
  }

  /**
   * Recomputes customers from their stored events (API.md, rule 7), puts their state in
   * the engine and returns the rows that replace their facts. A batch's customers are
   * read together: a backfill of many customers is a few queries.
   */
  private async correct(engine: PartitionEngine, customers: string[]): Promise<FactRow[]> {
    // A partition that has seen no event yet stands at the wall clock, as when idle.
    const eventTime = engine.eventTime ?? this.now() - this.deps.allowedLatenessMs;
    this.correcting.inc(customers.length);
    try {
      const types = [
        ...new Set(
          this.journeys.flatMap((j) => [
            ...j.steps.map((s) => s.event_type),
            ...j.failureEventTypes,
          ]),
        ),
      ];
      const [histories, current] = await Promise.all([
        readHistories(this.deps.store, customers, types, eventTime),
        readFacts(
          this.deps.store,
          customers,
          this.journeys.map((j) => j.id),
        ),
      ]);
      const eventsOf = groupBy(histories, (e) => e.customer_id);
      const factsOf = groupBy(current, (f) => f.customer_id);
      const version = this.nextVersion(Math.max(0, ...current.map((f) => f.version + 1)));
      const rows: FactRow[] = [];
      for (const customer of customers) {
        const events: EngineEvent[] = eventsOf.get(customer) ?? [];
        const { facts, state } = recomputeCustomer(this.journeys, events, eventTime);
        engine.replaceCustomer(customer, state);
        const fresh = facts.map((f) => factRow(f, version));
        rows.push(...correctionRows(factsOf.get(customer) ?? [], fresh, version));
      }
      this.recomputed.inc(customers.length);
      this.deps.logger.debug(
        { customers: customers.length, rows: rows.length },
        'customers_recomputed',
      );
      return rows;
    } finally {
      this.correcting.dec(customers.length);
    }
  }

  /**
   * A version above every one this process handed out, and above `atLeast`; it reserves
   * the next one too (a correction writes deletions at v and facts at v + 1). Microseconds
   * of the wall clock, so a process that takes over a partition continues above the
   * versions of the one before unless their clocks differ by more than the time between.
   */
  private nextVersion(atLeast = 0) {
    const version = Math.max(this.now() * 1000, this.lastVersion + 1, atLeast);
    this.lastVersion = version + 1;
    return version;
  }

  private rowsOf(facts: readonly Fact[]): FactRow[] {
    if (facts.length === 0) return [];
    const version = this.nextVersion();
    return facts.map((f) => factRow(f, version));
  }

  /** Moves idle partitions' event time with the wall clock and stores what that decides. */
  async tick() {
    const idleSince = this.now() - this.deps.idleWatermarkMs;
    await Promise.all(
      [...this.slots.keys()].map(async (partition) => {
        await this.withSlot(partition, async (slot) => {
          if (slot.lastEventAt > idleSince) return;
          await this.refreshJourneys();
          const facts = slot.engine.advanceTo(this.now() - this.deps.allowedLatenessMs);
          await this.persist(partition, slot, this.rowsOf(facts));
        });
      }),
    );
  }

  private async refreshJourneys() {
    if (this.now() - this.journeysLoadedAt < (this.deps.journeysMaxAgeMs ?? 1_000)) return;
    this.journeys = (await listJourneys(this.deps.store)).map(toEngineJourney);
    this.journeysLoadedAt = this.now();
    for (const slot of this.slots.values())
      void slot.then((s) => s.engine.setJourneys(this.journeys));
  }

  /**
   * Runs `work` on the partition's slot, one at a time. If it fails, the slot is dropped:
   * the in-memory state may be ahead of what was stored, so the retry starts again from
   * the checkpoint.
   */
  private withSlot(partition: number, work: (slot: Slot) => Promise<void>) {
    // The slot is taken inside the queue: work queued behind a failure gets the reloaded one.
    return this.queue.run(partition, async () => {
      let loading = this.slots.get(partition);
      if (!loading) {
        loading = this.load(partition);
        this.slots.set(partition, loading);
      }
      try {
        await work(await loading);
      } catch (error) {
        if (this.slots.get(partition) === loading) this.slots.delete(partition);
        throw error;
      }
    });
  }

  private async load(partition: number): Promise<Slot> {
    const checkpoint = await readCheckpoint(this.deps.store, this.deps.groupId, partition);
    const own: PartitionRow | undefined = checkpoint.partitionState
      ? JSON.parse(checkpoint.partitionState)
      : undefined;
    const customers: CustomerState[] = checkpoint.customerStates.map((s) => JSON.parse(s));
    const engine = new PartitionEngine(
      this.journeys,
      { allowedLatenessMs: this.deps.allowedLatenessMs },
      own ? { meta: own.meta, customers } : undefined,
    );
    this.deps.logger.info(
      { partition, customers: customers.length, offset: own?.offset ?? null },
      'journey_state_loaded',
    );
    return {
      engine,
      offset: own?.offset && own.scope === this.deps.offsetScope ? BigInt(own.offset) : null,
      version: checkpoint.version,
      lastEventAt: this.now(),
    };
  }

  /** Facts first, then the checkpoint: a crash between them replays into the same facts. */
  private async persist(
    partition: number,
    slot: Slot,
    facts: readonly FactRow[],
    options: { always?: boolean } = {},
  ) {
    const changes = slot.engine.takeChanges();
    const unchanged =
      facts.length === 0 && changes.upserts.length === 0 && changes.deletes.length === 0;
    if (unchanged && !options.always) return;
    await this.deps.writers.facts.write(facts);
    for (const fact of facts) {
      this.factsWritten.inc({ kind: fact.deleted ? 'withdrawn' : fact.kind });
    }
    const own: PartitionRow = {
      meta: changes.meta,
      offset: slot.offset === null ? null : slot.offset.toString(),
      scope: this.deps.offsetScope,
    };
    const rows: StateRow[] = [
      { customer_id: PARTITION_ROW, state: JSON.stringify(own), deleted: 0 },
      ...changes.upserts.map((c) => ({
        customer_id: c.customer,
        state: JSON.stringify(c),
        deleted: 0 as const,
      })),
      ...changes.deletes.map((customer) => ({
        customer_id: customer,
        state: '',
        deleted: 1 as const,
      })),
    ];
    slot.version += 1;
    await this.deps.writers.checkpoints.write(
      checkpointRows(this.deps.groupId, partition, slot.version, rows),
    );
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
