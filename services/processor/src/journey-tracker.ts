import type { Touchpoint } from '@touchstream/contracts';
import {
  type CustomerState,
  type EngineJourney,
  type Fact,
  PartitionEngine,
  type PartitionMeta,
  toEngineJourney,
} from '@touchstream/engine';
import {
  checkpointRows,
  factRow,
  listJourneys,
  PARTITION_ROW,
  readCheckpoint,
  type StateRow,
  type Store,
  type Writers,
} from '@touchstream/store';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';

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
}

/** A partition's engine and where it stands in the partition. */
interface Slot {
  engine: PartitionEngine;
  /** Offset of the last record applied: a replayed record at or before it is skipped. */
  offset: bigint | null;
  version: number;
  lastEventAt: number;
  /** Serialises the batches and idle ticks of the partition. */
  queue: Promise<unknown>;
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
  private journeys: EngineJourney[] = [];
  private journeysLoadedAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;
  private readonly factsWritten: Counter;
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

  /** Applies a partition's records; resolves once their facts and the checkpoint are stored. */
  async process(partition: number, records: ReadonlyArray<{ offset: string; event?: Touchpoint }>) {
    await this.refreshJourneys();
    await this.withSlot(partition, async (slot) => {
      const fresh = records.filter((r) => slot.offset === null || BigInt(r.offset) > slot.offset);
      const last = records.at(-1);
      if (fresh.length === 0 || !last) return;
      const events = fresh.flatMap((r) => (r.event ? [r.event] : []));
      const facts = slot.engine.apply(events);
      slot.offset = BigInt(last.offset);
      slot.lastEventAt = this.now();
      await this.persist(partition, slot, facts);
    });
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
          await this.persist(partition, slot, facts);
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
  private async withSlot(partition: number, work: (slot: Slot) => Promise<void>) {
    let loading = this.slots.get(partition);
    if (!loading) {
      loading = this.load(partition);
      this.slots.set(partition, loading);
      loading.catch(() => this.slots.delete(partition));
    }
    const slot = await loading;
    const run = slot.queue.then(() => work(slot));
    slot.queue = run.catch(() => {});
    try {
      await run;
    } catch (error) {
      if (this.slots.get(partition) === loading) this.slots.delete(partition);
      throw error;
    }
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
      queue: Promise.resolve(),
    };
  }

  /** Facts first, then the checkpoint: a crash between them replays into the same facts. */
  private async persist(partition: number, slot: Slot, facts: readonly Fact[]) {
    const changes = slot.engine.takeChanges();
    if (facts.length === 0 && changes.upserts.length === 0 && changes.deletes.length === 0) return;
    await this.deps.writers.facts.write(facts.map(factRow));
    for (const fact of facts) this.factsWritten.inc({ kind: fact.kind });
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
