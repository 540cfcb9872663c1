import { type Bus, createEmbeddedBus, createKafkaBus } from '@touchstream/bus';
import type { Config } from '@touchstream/config';
import { topicNames } from '@touchstream/contracts';
import { buildServer, checkBindSafety, type ReadinessCheck } from '@touchstream/http';
import {
  applyPropertyColumns,
  applyRetention,
  createStore,
  migrate,
  type Store,
} from '@touchstream/store';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { loadJourneysFile } from './journeys-file.js';

export const SERVICE_NAMES = ['collector', 'processor', 'api', 'alerter'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** What a service gets to work with: the process's shared clients. */
export interface ServiceContext {
  config: Config;
  logger: Logger;
  bus: Bus;
  store: Store;
  metrics: Registry;
  topics: ReturnType<typeof topicNames>;
}

/** A service: its HTTP routes, if any, what it needs to be ready, how to start and stop it. */
export interface Service {
  routes?: FastifyPluginAsync;
  /** Checks added to /readyz while the service runs. */
  readiness?: Record<string, ReadinessCheck>;
  /** Start taking work; called once the bus is reachable. */
  start?(): Promise<void>;
  /** Stop taking work (the HTTP server already refuses new requests). */
  stop?(): Promise<void>;
}

export type ServiceFactory = (context: ServiceContext) => Promise<Service>;

export interface Runtime {
  config: Config;
  server: FastifyInstance;
  address: string;
  bus: Bus;
  store: Store;
  stop(): Promise<void>;
}

/** Partitions of the touchpoints topic: the most processors one consumer group can use. */
const TOUCHPOINT_PARTITIONS = 12;

/**
 * How long a process waits at start for Kafka: long enough for a broker started alongside
 * it (compose, a restarting cluster), short enough that a wrong address fails visibly.
 */
export const BROKER_WAIT_MS = 60_000;

export function createBus(config: Config, logger: Logger): Bus {
  const brokers = config.kafka.brokers;
  return brokers
    ? createKafkaBus({ brokers, logger: logger.child({ component: 'kafka' }) })
    : createEmbeddedBus();
}

/**
 * Creates the topics, retrying with backoff while the brokers are unreachable or refuse the
 * first connections, for at most `waitMs`; then gives up with the last error.
 */
async function awaitBroker(bus: Bus, topics: readonly string[], waitMs: number, logger: Logger) {
  await pRetry(() => bus.ensureTopics(topics, TOUCHPOINT_PARTITIONS), {
    retries: Number.POSITIVE_INFINITY,
    minTimeout: 500,
    maxTimeout: 5_000,
    maxRetryTime: waitMs,
    onFailedAttempt: ({ error, attemptNumber }) =>
      logger.warn({ err: error, attempt: attemptNumber }, 'kafka_unreachable_retrying'),
  }).catch((error: Error) => {
    throw new Error(`Kafka was not reachable within ${waitMs / 1000} s: ${error.message}`, {
      cause: error,
    });
  });
}

/**
 * Starts the chosen services in this process, sharing one bus, one ClickHouse client and
 * one HTTP server. The server listens before Kafka is reached, answering /readyz with 503
 * until the services run. Stopping is ordered: the server stops taking requests, services
 * stop their intake and drain, then the clients close.
 */
export async function startRuntime(
  config: Config,
  logger: Logger,
  services: Partial<Record<ServiceName, ServiceFactory>>,
  options: { brokerWaitMs?: number } = {},
): Promise<Runtime> {
  const access = checkBindSafety(config);
  if (access === 'open') {
    logger.warn(
      { host: config.http.host },
      'auth_disabled: no keys are set, every endpoint is open',
    );
  }
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const topics = topicNames(config.kafka.topicPrefix);
  const bus = createBus(config, logger);
  const store = await createStore(config);
  const applied = await migrate(store);
  if (applied.length > 0) {
    logger.info({ versions: applied.map((m) => m.version) }, 'schema_migrated');
  }
  for (const { table, ttl } of await applyRetention(store, config.retentionMs)) {
    logger.info({ table, ttl }, 'retention_changed');
  }
  const columns = await applyPropertyColumns(store, config.propertyColumns);
  if (columns.length > 0) logger.info({ properties: columns }, 'property_columns_added');
  if (config.journeysFile) {
    const loaded = await loadJourneysFile(store, config.journeysFile);
    logger.info({ file: config.journeysFile, journeys: loaded }, 'journeys_loaded');
  }

  const context: ServiceContext = { config, logger, bus, store, metrics, topics };
  const running: Service[] = [];
  for (const [name, factory] of Object.entries(services)) {
    running.push(await factory({ ...context, logger: logger.child({ service: name }) }));
  }
  let started = false;
  const server = await buildServer({
    config,
    logger,
    metrics,
    readiness: Object.assign(
      {
        bus: () => bus.health(),
        clickhouse: async () => (await store.ping()).success,
        services: async () => started || 'starting',
      },
      ...running.map((s) => s.readiness ?? {}),
    ),
    routes: running.flatMap((s) => (s.routes ? [s.routes] : [])),
  });
  const address = await server.listen({ host: config.http.host, port: config.http.port });
  logger.info({ address }, 'touchstream_listening');

  const closeAll = async () => {
    await server.close();
    for (const service of [...running].reverse()) await service.stop?.();
    await bus.close();
    await store.close();
  };
  try {
    await awaitBroker(
      bus,
      [topics.touchpoints, topics.touchpointsDlq],
      options.brokerWaitMs ?? BROKER_WAIT_MS,
      logger,
    );
    for (const service of running) await service.start?.();
  } catch (error) {
    await closeAll().catch(() => {});
    throw error;
  }
  started = true;
  logger.info({ address, services: Object.keys(services), bus: bus.kind }, 'touchstream_started');

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await closeAll();
      logger.info('touchstream_stopped');
    })();
    return stopping;
  };
  return { config, server, address, bus, store, stop };
}
