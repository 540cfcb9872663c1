import { ConfigError, loadConfig } from '@touchstream/config';
import { createStore, migrate } from '@touchstream/store';
import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { registerFunnelCommand } from './funnel-command.js';
import { SERVICE_NAMES, type ServiceName, startRuntime } from './runtime.js';
import { FACTORIES } from './services.js';

function parseServices(value: string): ServiceName[] {
  const names = value.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(SERVICE_NAMES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(
        `unknown service "${name}" (one of ${SERVICE_NAMES.join(', ')})`,
      );
    }
  }
  return names as ServiceName[];
}

function configOrExit() {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`touchstream: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

const program = new Command('touchstream')
  .description(
    'Customer-journey analytics: funnels, drop-off at every point of disconnection, alerts.',
  )
  .showHelpAfterError();

program
  .command('start')
  .description('run every service in one process (embedded defaults without Kafka)')
  .option(
    '--only <services>',
    `run only these services (${SERVICE_NAMES.join(',')})`,
    parseServices,
  )
  .action(async (options: { only?: ServiceName[] }) => {
    const config = configOrExit();
    const logger = pino({ level: config.logLevel });
    if (options.only && !config.kafka.brokers) {
      program.error(
        'touchstream: --only runs part of a distributed deployment: set TOUCHSTREAM_KAFKA_BROKERS',
      );
    }
    const chosen = options.only ?? [...SERVICE_NAMES];
    const services = Object.fromEntries(
      chosen.flatMap((name) => (FACTORIES[name] ? [[name, FACTORIES[name]]] : [])),
    );
    const runtime = await startRuntime(config, logger, services).catch((error: Error) => {
      logger.fatal({ err: error }, 'start_failed');
      process.stderr.write(`touchstream: could not start: ${error.message}\n`);
      process.exit(1);
    });
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'shutdown_requested');
      runtime.stop().then(
        () => process.exit(0),
        (error) => {
          logger.error({ err: error }, 'shutdown_failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });

program
  .command('migrate')
  .description('apply the ClickHouse schema (start does it too)')
  .action(async () => {
    const config = configOrExit();
    const store = await createStore(config);
    const applied = await migrate(store);
    await store.close();
    process.stdout.write(
      applied.length === 0
        ? 'schema is up to date\n'
        : `applied ${applied.map((m) => `${m.version} ${m.name}`).join(', ')}\n`,
    );
  });

registerFunnelCommand(program);

await program.parseAsync(process.argv);
