import {
  type Batch,
  type BatchHandler,
  type Bus,
  type BusRecord,
  BusUnavailableError,
  type ConsumeOptions,
  type Consumer,
  type OutgoingRecord,
} from './bus.js';
import { consumerHandle } from './consumer-handle.js';
import { type Backoff, DEFAULT_BACKOFF, handleUntilDone } from './retry.js';
import { StallWatch } from './stall-watch.js';

export interface EmbeddedBusOptions {
  /** Partitions of a topic created implicitly by its first publish or consumer. */
  defaultPartitions?: number;
  /** Records held per topic, not yet handled by every group; a publish beyond it is refused. */
  maxBacklog?: number;
  /**
   * A publish none of whose records could be handled within this long is refused and its
   * records withdrawn; one partly handled is waited for to the end (all or nothing).
   */
  publishTimeoutMs?: number;
  maxBatchRecords?: number;
  backoff?: Backoff;
}

interface Waiter {
  offset: number;
  resolve: () => void;
}

/**
 * One publish, and how far its records got. A publish is answered whole: either every
 * record is handled (stored) or, when its time is up before any was, all are withdrawn and
 * never handled, so a refused publish stored none of its records.
 */
class Ticket {
  /** Successful handler calls that held some of its records. */
  handled = 0;
  /** Handler calls running now that hold some of its records. */
  inFlight = 0;
  withdrawn = false;
  private expired = false;

  constructor(private readonly refuse: (reason: string) => void) {}

  /** Its time is up: withdraw it as soon as nothing of it runs, unless some was handled. */
  expire() {
    this.expired = true;
    this.settle();
  }

  settle() {
    if (!this.expired || this.withdrawn || this.inFlight > 0 || this.handled > 0) return;
    this.withdrawn = true;
    this.refuse('none was stored and none will be');
  }

  /** The bus closes: what was not handled by now never will be. */
  abandon() {
    this.refuse('the bus closed before all were handled');
  }
}

const tickets = new WeakMap<BusRecord, Ticket>();
const live = (record: BusRecord) => !tickets.get(record)?.withdrawn;

/**
 * The handler, called with the batch's records that are not withdrawn at each attempt, and
 * keeping their publishes' tickets informed.
 */
function withTickets(handler: BatchHandler): BatchHandler {
  return async (batch: Batch) => {
    const records = batch.records.filter(live);
    if (records.length === 0) return;
    const held = new Set(records.flatMap((r) => tickets.get(r) ?? []));
    for (const ticket of held) ticket.inFlight += 1;
    let ok = false;
    try {
      await handler({ ...batch, records });
      ok = true;
    } finally {
      for (const ticket of held) {
        ticket.inFlight -= 1;
        if (ok) ticket.handled += 1;
        ticket.settle();
      }
    }
  };
}

/** One partition's log: records from `base` on, kept until every group has handled them. */
class Partition {
  base = 0;
  records: BusRecord[] = [];
  get end() {
    return this.base + this.records.length;
  }
  trimTo(offset: number) {
    if (offset <= this.base) return;
    this.records.splice(0, offset - this.base);
    this.base = offset;
  }
}

class Topic {
  readonly partitions: Partition[];
  readonly groups = new Set<Group>();
  constructor(
    readonly name: string,
    count: number,
  ) {
    this.partitions = Array.from({ length: count }, () => new Partition());
  }
  backlog() {
    return this.partitions.reduce((n, p) => n + p.records.length, 0);
  }
  trim(partition: number) {
    const committed = [...this.groups].map((g) => g.committed[partition] ?? 0);
    // With no group, records stay for the first one to subscribe, as Kafka keeps them.
    if (committed.length > 0) this.partitions[partition]?.trimTo(Math.min(...committed));
  }
}

interface Member {
  options: ConsumeOptions;
  running: boolean;
  /** Its partitions' failures, for the operator. */
  watch: StallWatch;
  /** Its handler, told which publishes each call holds (see Ticket). */
  handler: BatchHandler;
}

/** A consumer group: partitions spread over its members, one handler call per partition at a time. */
class Group {
  readonly members: Member[] = [];
  readonly committed: number[];
  readonly waiters: Waiter[][];
  private readonly wakeups: Array<(() => void) | undefined>;
  private readonly inFlight = new Map<Member, Set<Promise<unknown>>>();

  constructor(
    readonly id: string,
    readonly topic: Topic,
    private readonly maxBatchRecords: number,
    private readonly backoff: Backoff,
  ) {
    const n = topic.partitions.length;
    // A new group starts at the oldest record still held, like Kafka's earliest reset.
    this.committed = topic.partitions.map((p) => p.base);
    this.waiters = Array.from({ length: n }, () => []);
    this.wakeups = new Array(n).fill(undefined);
    for (let p = 0; p < n; p++) void this.pump(p);
  }

  owner(partition: number): Member | undefined {
    const active = this.members.filter((m) => m.running);
    return active.length === 0 ? undefined : active[partition % active.length];
  }

  wake(partition: number) {
    const wakeup = this.wakeups[partition];
    this.wakeups[partition] = undefined;
    wakeup?.();
  }

  wakeAll() {
    for (let p = 0; p < this.committed.length; p++) this.wake(p);
  }

  /** Tells every member what it owns now; called whenever membership changes. */
  rebalance() {
    for (const member of this.members) {
      if (!member.running) continue;
      const owned = this.committed.flatMap((_, p) => (this.owner(p) === member ? [p] : []));
      member.options.onAssignment?.(owned);
    }
    this.wakeAll();
  }

  async drain(member: Member) {
    await Promise.allSettled([...(this.inFlight.get(member) ?? [])]);
    this.inFlight.delete(member);
  }

  /** Delivers one partition's records in order to its current owner, forever. */
  private async pump(partition: number) {
    const log = this.topic.partitions[partition] as Partition;
    for (;;) {
      const member = this.owner(partition);
      const from = this.committed[partition] as number;
      if (!member || from >= log.end) {
        await new Promise<void>((resolve) => {
          this.wakeups[partition] = resolve;
        });
        continue;
      }
      const records = log.records.slice(from - log.base, from - log.base + this.maxBatchRecords);
      const batch: Batch = {
        topic: this.topic.name,
        partition,
        records,
        isActive: () => member.running && this.owner(partition) === member,
        heartbeat: async () => {},
      };
      const work = handleUntilDone(member.handler, batch, this.backoff, (e, b, n) => {
        member.watch.failed(partition, e);
        member.options.onHandlerError?.(e, b, n);
      });
      const running = this.inFlight.get(member) ?? new Set();
      this.inFlight.set(member, running.add(work));
      const handled = await work;
      running.delete(work);
      if (handled) {
        member.watch.succeeded(partition);
        this.commit(partition, from + records.length);
      }
    }
  }

  private commit(partition: number, offset: number) {
    this.committed[partition] = offset;
    const waiters = this.waiters[partition] as Waiter[];
    while (waiters.length > 0 && (waiters[0] as Waiter).offset < offset) waiters.shift()?.resolve();
    this.topic.trim(partition);
  }
}

/** Stable FNV-1a hash: one key always maps to one partition. */
function partitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/**
 * The in-process bus of a single-process deployment. It keeps Kafka's contract where the
 * pipeline relies on it (order per key, group membership, commit after success) and
 * nothing more: no persistence, so a publish resolves only once the records are handled.
 */
export function createEmbeddedBus(options: EmbeddedBusOptions = {}): Bus {
  const defaultPartitions = options.defaultPartitions ?? 4;
  const maxBacklog = options.maxBacklog ?? 100_000;
  const publishTimeoutMs = options.publishTimeoutMs ?? 30_000;
  const maxBatchRecords = options.maxBatchRecords ?? 1_000;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const topics = new Map<string, Topic>();
  const groups = new Map<string, Group>();
  const consumers = new Set<Consumer>();
  const pendingTickets = new Set<Ticket>();
  let closed = false;

  const topicOf = (name: string, partitions = defaultPartitions) => {
    const topic = topics.get(name) ?? new Topic(name, partitions);
    topics.set(name, topic);
    return topic;
  };

  /** Puts the records in their partitions' logs and wakes the groups that read them. */
  const appendRecords = (name: string, records: readonly OutgoingRecord[], ticket?: Ticket) => {
    if (closed) throw new BusUnavailableError('the bus is closed');
    const topic = topicOf(name);
    if (topic.backlog() + records.length > maxBacklog) {
      throw new BusUnavailableError(`topic ${name} holds ${maxBacklog} unhandled records`);
    }
    const lastOffsets = new Map<number, number>();
    for (const record of records) {
      const partition = partitionOf(record.key, topic.partitions.length);
      const log = topic.partitions[partition] as Partition;
      const offset = log.end;
      const appended: BusRecord = {
        topic: name,
        partition,
        offset: String(offset),
        key: record.key,
        value: Buffer.isBuffer(record.value) ? record.value : Buffer.from(record.value),
        headers: { ...record.headers },
        decoded: record.decoded,
      };
      if (ticket) tickets.set(appended, ticket);
      log.records.push(appended);
      lastOffsets.set(partition, offset);
    }
    const handled: Promise<void>[] = [];
    for (const group of topic.groups) {
      for (const [partition, offset] of lastOffsets) {
        handled.push(
          new Promise((resolve) => {
            (group.waiters[partition] as Waiter[]).push({ offset, resolve });
          }),
        );
        group.wake(partition);
      }
    }
    return handled;
  };

  const publish = async (name: string, records: readonly OutgoingRecord[]) => {
    let refuse: (error: Error) => void = () => {};
    const refused = new Promise<never>((_, reject) => {
      refuse = reject;
    });
    const ticket = new Ticket((reason) =>
      refuse(
        new BusUnavailableError(`records not handled within ${publishTimeoutMs}ms; ${reason}`),
      ),
    );
    const handled = appendRecords(name, records, ticket);
    const timer = setTimeout(() => ticket.expire(), publishTimeoutMs);
    pendingTickets.add(ticket);
    try {
      await Promise.race([Promise.all(handled), refused]);
    } finally {
      clearTimeout(timer);
      pendingTickets.delete(ticket);
    }
  };

  const append = async (name: string, records: readonly OutgoingRecord[]) => {
    appendRecords(name, records);
  };

  const consume = async (consumeOptions: ConsumeOptions): Promise<Consumer> => {
    if (closed) throw new BusUnavailableError('the bus is closed');
    const topic = topicOf(consumeOptions.topic);
    let group = groups.get(consumeOptions.groupId);
    if (!group) {
      group = new Group(consumeOptions.groupId, topic, maxBatchRecords, backoff);
      groups.set(group.id, group);
      topic.groups.add(group);
    } else if (group.topic !== topic) {
      throw new Error(`group ${group.id} already consumes ${group.topic.name}`);
    }
    const member: Member = {
      options: consumeOptions,
      running: true,
      watch: new StallWatch(topic.name, consumeOptions.stallAfterMs),
      handler: withTickets(consumeOptions.handler),
    };
    group.members.push(member);
    group.rebalance();
    const joined = group;
    return consumerHandle(consumers, member.watch, async () => {
      member.running = false;
      joined.members.splice(joined.members.indexOf(member), 1);
      await joined.drain(member);
      // Its partitions go to the remaining members, from the last commit.
      joined.rebalance();
    });
  };

  return {
    kind: 'embedded',
    async ensureTopics(names, partitions) {
      for (const name of names) topicOf(name, partitions);
    },
    publish,
    append,
    consume,
    async lag(groupId, name) {
      const topic = topicOf(name);
      const group = groups.get(groupId);
      return topic.partitions.reduce((n, p, i) => n + p.end - (group?.committed[i] ?? p.base), 0);
    },
    async health() {
      return !closed;
    },
    async close() {
      closed = true;
      for (const ticket of pendingTickets) ticket.expire();
      await Promise.all([...consumers].map((c) => c.stop()));
      for (const ticket of pendingTickets) ticket.abandon();
    },
  };
}
