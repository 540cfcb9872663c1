import {
  type Admin,
  CompressionTypes,
  Kafka,
  type KafkaMessage,
  type LogEntry,
  logLevel,
  Partitioners,
  type Producer,
} from 'kafkajs';
import {
  type Bus,
  type BusRecord,
  BusUnavailableError,
  type ConsumeOptions,
  type Consumer,
  type OutgoingRecord,
} from './bus.js';
import { registerKafkaCodecs } from './codecs.js';
import { consumerHandle } from './consumer-handle.js';
import { type Backoff, DEFAULT_BACKOFF, handleUntilDone } from './retry.js';
import { type PartitionPosition, StallWatch } from './stall-watch.js';

/** The slice of a pino logger the bus writes to. */
export interface BusLogger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface KafkaBusOptions {
  brokers: string[];
  clientId?: string;
  logger?: BusLogger;
  backoff?: Backoff;
  /** How long the group coordinator waits for a heartbeat before moving partitions away. */
  sessionTimeoutMs?: number;
}

// kafkajs logs every refused connection and retried request as an error, though it
// retries them: what really failed surfaces as a failed publish or handler, logged by
// their callers. Its errors are warnings here.
const LEVELS: Record<number, keyof BusLogger> = {
  [logLevel.ERROR]: 'warn',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

function headersOf(message: KafkaMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (value !== undefined) headers[name] = String(Array.isArray(value) ? value[0] : value);
  }
  return headers;
}

/**
 * Publishes sent together in one produce request, at most: the broker's default
 * `message.max.bytes` (1 MiB) bounds each partition's batch, and no partition's share of
 * a group can exceed the whole. A larger publish goes alone.
 */
const MAX_GROUP_BYTES = 1_000_000;

/** How often a consumer compares its group's offsets with the ends of its partitions. */
const WATCHDOG_INTERVAL_MS = 5_000;

/** The bus on Apache Kafka. This file is the only place that knows kafkajs. */
export function createKafkaBus(options: KafkaBusOptions): Bus {
  registerKafkaCodecs();
  const logger = options.logger;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const kafka = new Kafka({
    clientId: options.clientId ?? 'touchstream',
    brokers: options.brokers,
    connectionTimeout: 3_000,
    retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 8 },
    logLevel: logLevel.INFO,
    logCreator:
      () =>
      ({ namespace, level, log }: LogEntry) => {
        const { message, ...extra } = log;
        logger?.[LEVELS[level] ?? 'info']({ kafka: namespace, ...extra }, message);
      },
  });

  // Idempotent with one request in flight: the broker drops the duplicates a retry would
  // write, and a retried request cannot overtake a later one, so order per key holds.
  // Retries are bounded so that a publish fails (and the collector answers 503) rather
  // than hanging while the broker is away; what a retry might duplicate, event_id folds.
  const newProducer = (): Producer =>
    kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Java's murmur2 partitioner: a key lands where any other Kafka client would put it.
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 8 },
    });
  let producer = newProducer();
  let producerReady: Promise<void> | undefined;
  const connectProducer = () => {
    producerReady ??= producer.connect().catch((error) => {
      producerReady = undefined;
      throw error;
    });
    return producerReady;
  };

  // When a produce request fails, kafkajs rolls the sequence numbers of all its partitions
  // back, also of those the broker did store (a broker shutting down answers
  // NOT_LEADER_OR_FOLLOWER for some partitions of a request and stores the others). Resent
  // as they were, those records are recognised as duplicates, as they should be; but other
  // records sent with the same numbers are "recognised" too: acknowledged and never
  // written. So one send is in flight at a time, and after a send failed the next goes out
  // on a new producer: a new producer id, whose numbers nothing on the broker shares.
  //
  // One at a time would make every publish wait for the round trips of those ahead of it,
  // so the publishes that queue up meanwhile go out together as one request (group
  // commit, as Kafka's own producer lingers to batch): one round trip acknowledges them all.
  interface QueuedPublish {
    topic: string;
    records: readonly OutgoingRecord[];
    bytes: number;
    resolve(): void;
    reject(error: unknown): void;
  }
  let queue: QueuedPublish[] = [];
  let sending: Promise<void> | undefined;

  const sizeOf = (records: readonly OutgoingRecord[]) =>
    records.reduce((n, r) => n + r.key.length + r.value.length, 0);

  /** The next publishes to send together: in order, within the request size limit. */
  const takeGroup = () => {
    let bytes = 0;
    let count = 0;
    for (const queued of queue) {
      if (count > 0 && bytes + queued.bytes > MAX_GROUP_BYTES) break;
      bytes += queued.bytes;
      count++;
    }
    return queue.splice(0, count);
  };

  const sendGroup = async (group: QueuedPublish[]) => {
    const byTopic = new Map<string, OutgoingRecord[]>();
    for (const { topic, records } of group) {
      const list = byTopic.get(topic);
      if (list) list.push(...records);
      else byTopic.set(topic, [...records]);
    }
    await connectProducer();
    await producer.sendBatch({
      acks: -1,
      compression: CompressionTypes.None,
      topicMessages: [...byTopic].map(([topic, records]) => ({
        topic,
        messages: records.map((r) => ({ key: r.key, value: r.value, headers: r.headers })),
      })),
    });
  };

  const drain = async () => {
    while (queue.length > 0) {
      const group = takeGroup();
      try {
        await sendGroup(group);
        for (const queued of group) queued.resolve();
      } catch (error) {
        // Those queued behind a failed send fail with it: the broker is likely away, and
        // answering them now beats each spending a retry budget of its own.
        const failed = [...group, ...queue];
        queue = [];
        logger?.warn(
          { err: error, publishes: failed.length },
          'producer_replaced_after_failed_send',
        );
        const old = producer;
        producer = newProducer();
        producerReady = undefined;
        await old.disconnect().catch(() => {});
        for (const queued of failed) queued.reject(error);
      }
    }
  };

  const kick = () => {
    sending ??= drain().finally(() => {
      sending = undefined;
      // A publish queued just as the drain ended found it still running: drain again.
      if (queue.length > 0) kick();
    });
  };

  const send = (topic: string, records: readonly OutgoingRecord[]) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ topic, records, bytes: sizeOf(records), resolve, reject });
      kick();
    });

  let admin: Admin | undefined;
  const adminClient = async () => {
    if (!admin) {
      const created = kafka.admin();
      await created.connect();
      admin = created;
    }
    return admin;
  };

  /** Where the group stands in each partition of the topic. */
  const positions = async (groupId: string, topic: string) => {
    const client = await adminClient();
    const [ends, groups] = await Promise.all([
      client.fetchTopicOffsets(topic),
      client.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    const committed = new Map(
      (groups[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]),
    );
    const result = new Map<number, PartitionPosition>();
    for (const end of ends) {
      // -1: nothing committed yet, so the group starts from the oldest record kept.
      const from = committed.get(end.partition) ?? -1n;
      result.set(end.partition, {
        committed: from < 0n ? BigInt(end.low) : from,
        end: BigInt(end.high),
      });
    }
    return result;
  };

  const consumers = new Set<Consumer>();
  let closed = false;

  const publish = async (topic: string, records: readonly OutgoingRecord[]) => {
    if (closed) throw new BusUnavailableError('the bus is closed');
    try {
      await send(topic, records);
    } catch (error) {
      throw new BusUnavailableError(`Kafka did not accept the records: ${String(error)}`, {
        cause: error,
      });
    }
  };

  const consume = async ({
    groupId,
    topic,
    handler,
    onHandlerError,
    concurrency,
    onAssignment,
    stallAfterMs,
  }: ConsumeOptions) => {
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: 1_000,
      // Long polls delay joins, leaves and rebalances by as much; a quarter second costs
      // an idle consumer four fetches a second and keeps hand-overs quick.
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    const watch = new StallWatch(topic, stallAfterMs);
    let owned: number[] = [];
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      owned = payload.memberAssignment[topic] ?? [];
      onAssignment?.(owned);
    });
    // A batch kafkajs cannot read (a codec it lacks, a corrupt batch) never reaches the
    // handler: the consumer crashes and restarts on it. Its error names the standstill.
    consumer.on(consumer.events.CRASH, ({ payload }) => watch.clientFailed(payload.error));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let running = true;
    await consumer.run({
      partitionsConsumedConcurrently: concurrency ?? 1,
      // Offsets move only when the handler succeeded: nothing is resolved or committed
      // behind its back, not even on errors or rebalances.
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({
        batch,
        resolveOffset,
        heartbeat,
        commitOffsetsIfNecessary,
        isRunning,
        isStale,
      }) => {
        if (batch.messages.length === 0) return;
        const records: BusRecord[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key ? m.key.toString() : null,
          value: m.value ?? Buffer.alloc(0),
          headers: headersOf(m),
        }));
        const handled = await handleUntilDone(
          handler,
          {
            topic: batch.topic,
            partition: batch.partition,
            records,
            isActive: () => running && isRunning() && !isStale(),
            heartbeat,
          },
          backoff,
          (error, failed, attempt) => {
            watch.failed(batch.partition, error);
            onHandlerError?.(error, failed, attempt);
          },
        );
        if (!handled) return;
        watch.succeeded(batch.partition);
        const last = batch.lastOffset();
        resolveOffset(last);
        await commitOffsetsIfNecessary({
          topics: [
            {
              topic: batch.topic,
              partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }],
            },
          ],
        });
      },
    });
    // Whether records wait behind offsets that do not move, looked at from outside the
    // consumer: that also sees what never reaches a handler.
    const watchdog = setInterval(() => {
      positions(groupId, topic)
        .then((all) => {
          const mine = new Set(owned);
          watch.observe(new Map([...all].filter(([partition]) => mine.has(partition))));
        })
        .catch(() => {
          // The broker is unreachable: readiness says so on its own.
        });
    }, WATCHDOG_INTERVAL_MS);
    watchdog.unref();
    return consumerHandle(consumers, watch, async () => {
      clearInterval(watchdog);
      running = false;
      // disconnect waits for the running batch, then leaves the group.
      await consumer.disconnect();
    });
  };

  return {
    kind: 'kafka',
    async ensureTopics(topics, partitions) {
      const client = await adminClient();
      const existing = new Set(await client.listTopics());
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length === 0) return;
      await client.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: partitions })),
      });
    },
    publish,
    append: publish,
    consume,
    async lag(groupId, topic) {
      let lag = 0n;
      for (const { committed, end } of (await positions(groupId, topic)).values()) {
        lag += end - committed;
      }
      return Number(lag);
    },
    async health() {
      try {
        await (await adminClient()).describeCluster();
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...consumers].map((c) => c.stop()));
      while (sending) await sending;
      await producer.disconnect();
      await admin?.disconnect();
    },
  };
}
