/** A partition whose records have not moved on for too long, and why. */
export interface PartitionStall {
  topic: string;
  partition: number;
  /** When the partition stopped moving on, epoch milliseconds. */
  since: number;
  reason: string;
}

/** Where a partition stands: its committed offset and the end of its log. */
export interface PartitionPosition {
  committed: bigint;
  end: bigint;
}

/** How long a partition may fail or stand still with records waiting before it is stuck. */
export const DEFAULT_STALL_AFTER_MS = 30_000;

const reasonOf = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error);

/**
 * Tells which partitions of one consumer are stuck. A partition is stuck when its batch has
 * failed for longer than the bound, or when records wait behind an offset that has not
 * moved for that long: the second catches what never reaches a handler (a batch the client
 * cannot even read) and is named by the consumer's last error.
 */
export class StallWatch {
  private readonly failing = new Map<number, { since: number; reason: string }>();
  private readonly standing = new Map<number, { committed: bigint; since: number }>();
  private clientError: { at: number; reason: string } | undefined;

  constructor(
    private readonly topic: string,
    private readonly afterMs = DEFAULT_STALL_AFTER_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A handler failed on the partition's batch. */
  failed(partition: number, error: unknown) {
    const since = this.failing.get(partition)?.since ?? this.now();
    this.failing.set(partition, { since, reason: reasonOf(error) });
  }

  /** The partition's batch was handled. */
  succeeded(partition: number) {
    this.failing.delete(partition);
  }

  /** The client failed in a way it cannot attribute to one partition (a fetch, say). */
  clientFailed(error: unknown) {
    this.clientError = { at: this.now(), reason: reasonOf(error) };
  }

  /** Where the partitions this member owns stand now; others are forgotten. */
  observe(positions: ReadonlyMap<number, PartitionPosition>) {
    for (const partition of [...this.standing.keys()]) {
      if (!positions.has(partition)) this.standing.delete(partition);
    }
    for (const [partition, { committed, end }] of positions) {
      const before = this.standing.get(partition);
      if (end <= committed) this.standing.delete(partition);
      else if (before?.committed !== committed) {
        this.standing.set(partition, { committed, since: this.now() });
      }
    }
  }

  /** The partitions stuck for longer than the bound. */
  stalls(): PartitionStall[] {
    const partitions = new Set([...this.failing.keys(), ...this.standing.keys()]);
    const deadline = this.now() - this.afterMs;
    return [...partitions].flatMap((partition) => {
      const failing = this.failing.get(partition);
      const standing = this.standing.get(partition);
      const since = Math.min(failing?.since ?? Infinity, standing?.since ?? Infinity);
      if (since > deadline) return [];
      // A client error names a standstill only if it came after the partition stopped.
      const clientError =
        this.clientError && this.clientError.at >= since ? this.clientError.reason : undefined;
      const reason = failing?.reason ?? clientError ?? 'records are waiting and none was handled';
      return [{ topic: this.topic, partition, since, reason }];
    });
  }
}
