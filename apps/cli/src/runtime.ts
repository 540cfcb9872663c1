import { type Bus, createEmbeddedBus, createKafkaBus } from '@touchstream/bus';
import type { Config } from '@touchstream/config';
import { topicNames } from '@touchstream/contracts';
import { buildServer, checkBindSafety } from '@touchstream/http';
import { createStore, migrate, type Store } from '@touchstream/store';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
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

/** A running service: its HTTP routes, if any, and how to stop it. */
export interface Service {
  routes?: FastifyPluginAsync;
  /** Stop taking work (the HTTP server already refuses new requests). */
  stop?(): Promise<void>;
}

export type ServiceFactory = (context: ServiceContext) => Promise<Service>;

export interface Runtime {
  server: FastifyInstance;
  address: string;
  bus: Bus;
  store: Store;
  stop(): Promise<void>;
}

/** Partitions of the touchpoints topic: the most processors one consumer group can use. */
const TOUCHPOINT_PARTITIONS = 12;

export function createBus(config: Config, logger: Logger): Bus {
  const brokers = config.kafka.brokers;
  return brokers
    ? createKafkaBus({ brokers, logger: logger.child({ component: 'kafka' }) })
    : createEmbeddedBus();
}

/**
 * Starts the chosen services in this process, sharing one bus, one ClickHouse client and
 * one HTTP server. Stopping is ordered: the server stops taking requests, services stop
 * their intake and drain, then the clients close.
 */
export async function startRuntime(
  config: Config,
  logger: Logger,
  services: Partial<Record<ServiceName, ServiceFactory>>,
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
  await bus.ensureTopics([topics.touchpoints, topics.touchpointsDlq], TOUCHPOINT_PARTITIONS);
  if (config.journeysFile) {
    const loaded = await loadJourneysFile(store, config.journeysFile);
    logger.info({ file: config.journeysFile, journeys: loaded }, 'journeys_loaded');
  }

  const context: ServiceContext = { config, logger, bus, store, metrics, topics };
  const running: Service[] = [];
  for (const [name, factory] of Object.entries(services)) {
    running.push(await factory({ ...context, logger: logger.child({ service: name }) }));
  }
  const server = await buildServer({
    config,
    logger,
    metrics,
    readiness: {
      bus: () => bus.health(),
      clickhouse: async () => (await store.ping()).success,
    },
    routes: running.flatMap((s) => (s.routes ? [s.routes] : [])),
  });
  const address = await server.listen({ host: config.http.host, port: config.http.port });
  logger.info({ address, services: Object.keys(services), bus: bus.kind }, 'touchstream_started');

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await server.close();
      for (const service of [...running].reverse()) await service.stop?.();
      await bus.close();
      await store.close();
      logger.info('touchstream_stopped');
    })();
    return stopping;
  };
  return { server, address, bus, store, stop };
}
