import { type Config, ConfigError, loadConfig } from '@touchstream/config';
import { type Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { type Runtime, SERVICE_NAMES, type ServiceName, startRuntime } from './runtime.js';
import { FACTORIES } from './services.js';

/** The configuration from these variables, or exit 2 with the message naming the variable. */
export function configOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`touchstream: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

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

/**
 * Starts the services in this process and stops them in order on SIGINT or SIGTERM; exits
 * 1 with the reason when they cannot start.
 */
export async function runUntilSignalled(
  config: Config,
  chosen: readonly ServiceName[],
  /** Runs first on a signal; a code it resolves with becomes the exit code if higher. */
  onStop?: () => Promise<number | undefined>,
): Promise<Runtime> {
  const logger = pino({ level: config.logLevel });
  const services = Object.fromEntries(
    chosen.flatMap((name) => (FACTORIES[name] ? [[name, FACTORIES[name]]] : [])),
  );
  const runtime = await startRuntime(config, logger, services).catch((error: Error) => {
    logger.fatal({ err: error }, 'start_failed');
    process.stderr.write(`touchstream: could not start: ${error.message}\n`);
    process.exit(1);
  });
  if (chosen.includes('api')) {
    // Said outside the JSON log, for the person who just typed `npm start`.
    process.stderr.write(`touchstream: dashboard at ${runtime.address}/\n`);
  }
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutdown_requested');
    Promise.resolve(onStop?.())
      .then(async (code) => {
        await runtime.stop();
        return Math.max(code ?? 0, Number(process.exitCode ?? 0));
      })
      .then(
        (code) => process.exit(code),
        (error) => {
          logger.error({ err: error }, 'shutdown_failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return runtime;
}

export function registerStartCommand(program: Command) {
  program
    .command('start')
    .description('run every service in one process (embedded defaults without Kafka)')
    .option(
      '--only <services>',
      `run only these services (${SERVICE_NAMES.join(',')})`,
      parseServices,
    )
    .action(async (options: { only?: ServiceName[] }, command: Command) => {
      const config = configOrExit();
      if (options.only && !config.kafka.brokers) {
        command.error(
          'touchstream: --only runs part of a distributed deployment: set TOUCHSTREAM_KAFKA_BROKERS',
        );
      }
      await runUntilSignalled(config, options.only ?? SERVICE_NAMES);
    });
}
