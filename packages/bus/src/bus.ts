import type { PartitionStall } from './stall-watch.js';

/** A record to publish. Records with one key land on one partition, in publish order. */
export interface OutgoingRecord {
  key: string;
  value: Buffer | string;
  headers?: Record<string, string>;
  /**
   * The value as the publisher already validated it. The in-process bus hands it to its
   * consumers, which need not decode the bytes again; Kafka carries only the bytes.
   */
  decoded?: unknown;
}

/** A record as a consumer receives it. */
export interface BusRecord {
  topic: string;
  partition: number;
  /** Decimal string: Kafka offsets are 64-bit. */
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
  /** What the publisher validated, when it is in this process (see OutgoingRecord). */
  decoded?: unknown;
}

/** Consecutive records of one partition, handed to a group's handler. */
export interface Batch {
  topic: string;
  partition: number;
  records: BusRecord[];
  /** False once this consumer is stopping or the partition moved to another member. */
  isActive(): boolean;
  /** Keeps the group membership alive during long work. */
  heartbeat(): Promise<void>;
}

/**
 * Handles a batch. Resolving commits the batch's offsets; throwing commits nothing and the
 * batch is handed over again (after a backoff) to whichever member owns the partition.
 */
export type BatchHandler = (batch: Batch) => Promise<void>;

export interface ConsumeOptions {
  groupId: string;
  topic: string;
  handler: BatchHandler;
  /** Called after each failed attempt, before the backoff. */
  onHandlerError?: (error: unknown, batch: Batch, attempt: number) => void;
  /** Partitions handled at once by this member (default 1). Their handlers run concurrently. */
  concurrency?: number;
  /**
   * Told the partitions this member owns after every rebalance, before their batches:
   * state kept for a partition that is not in the list is stale from now on.
   */
  onAssignment?: (partitions: number[]) => void;
  /** How long a partition may fail or stand still with records waiting before it is stuck. */
  stallAfterMs?: number;
}

export interface Consumer {
  /** Stops fetching, waits for the running handler, leaves the group. Idempotent. */
  stop(): Promise<void>;
  /** This member's partitions that are stuck now, and why: what the operator must see. */
  stalls(): PartitionStall[];
}

export interface Bus {
  readonly kind: 'kafka' | 'embedded';
  /** Creates the topics that do not exist yet. */
  ensureTopics(topics: readonly string[], partitions: number): Promise<void>;
  /** Resolves once the records are durably accepted: acknowledged by all in-sync replicas,
   *  or on the embedded bus, handled by every consumer group of the topic. */
  publish(topic: string, records: readonly OutgoingRecord[]): Promise<void>;
  /**
   * For a handler that writes to a topic it consumes itself, which must not wait for its
   * own handling. On Kafka the same as `publish`; on the embedded bus it resolves once the
   * records are in the log, held in memory like everything the embedded bus holds.
   */
  append(topic: string, records: readonly OutgoingRecord[]): Promise<void>;
  consume(options: ConsumeOptions): Promise<Consumer>;
  /** Records of the topic not yet committed by the group: its consumer lag. */
  lag(groupId: string, topic: string): Promise<number>;
  /** True when the bus can accept records now. */
  health(): Promise<boolean>;
  /** Stops every consumer, then the producer. Idempotent. */
  close(): Promise<void>;
}

/** The bus cannot take records now; the caller may retry later. */
export class BusUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusUnavailableError';
  }
}
