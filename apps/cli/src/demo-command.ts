import type { Command } from 'commander';
import { SERVICE_NAMES } from './runtime.js';
import {
  addSimulationOptions,
  checkSimulationFlags,
  type SimulationFlags,
  simulateFromFlags,
} from './simulate.js';
import { configOrExit, runUntilSignalled } from './start-command.js';

/** The sample journeys and alert rules: online purchase and signup. */
export const SAMPLE_JOURNEYS = new URL('../../../samples/journeys.yaml', import.meta.url).pathname;

/**
 * What the demo changes from `touchstream start`'s defaults, each still overridable by its
 * variable: the sample journeys, a data directory of its own so simulated customers never
 * mix with real data, rules evaluated every 10 s so the alert shows within a minute of its
 * window, and only warnings in the log so the progress line stays readable.
 */
const DEMO_DEFAULTS = {
  TOUCHSTREAM_JOURNEYS_FILE: SAMPLE_JOURNEYS,
  TOUCHSTREAM_DATA_DIR: '.touchstream/demo',
  TOUCHSTREAM_ALERT_INTERVAL: '10s',
  TOUCHSTREAM_LOG_LEVEL: 'warn',
};

export function registerDemoCommand(program: Command) {
  const command = program
    .command('demo')
    .description(
      'run everything on the sample journeys with simulated producers on every channel, whose customers stay anonymous until they log in, show a loyalty card or are identified on a call; a step breaks after a minute and its alert fires',
    );
  addSimulationOptions(command, { breakStep: 'paid', breakAfterMs: 60_000 }).action(
    async (flags: SimulationFlags, self: Command) => {
      // Before anything starts: a usage error must not cut the services short.
      checkSimulationFlags(flags, self);
      const config = configOrExit({ ...DEMO_DEFAULTS, ...process.env });
      let simulation: Promise<number> | undefined;
      // On Ctrl-C the producers flush what they hold before the services stop, and the
      // exit code says whether they lost events.
      const runtime = await runUntilSignalled(
        config,
        SERVICE_NAMES,
        () => simulation ?? Promise.resolve(0),
      );
      if (flags.breakStep) {
        process.stderr.write(
          `touchstream: step "${flags.breakStep}" breaks ${flags.breakAfter / 1000}s after the start; its alert fires once the rule's window has seen none. Ctrl-C stops.\n`,
        );
      }
      simulation = simulateFromFlags(flags, runtime.address, config.auth.ingestKeys[0]);
      const code = await simulation;
      // The producers are done (--duration); the instance serves on until Ctrl-C.
      if (code !== 0) process.exitCode = code;
    },
  );
}
