import type { DropoffResponse } from '@touchstream/contracts';
import type { Command } from 'commander';
import { SERVICE_NAMES } from './runtime.js';
import { SIMULATED_JOURNEYS } from './simulate/journeys.js';
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

/** How often the demo tells what the drop-offs say. */
const REPORT_EVERY_MS = 30_000;
/**
 * Steps reached more than the step timeout and this long ago are decided (continued or
 * dropped at their deadline) and, but for a busy processor's lag, processed: a report on
 * them stays (nearly) true.
 */
const SETTLED_MS = 30_000;

/** `EUR 12,345.67`: the code first, as a report writes it. */
export function money(amount: number, currency: string | null): string {
  const figure = amount.toLocaleString('en-US', {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });
  return currency ? `${currency} ${figure}` : figure;
}

/**
 * The drop-offs in words a manager reads: the value lost at points of disconnection, and
 * each transition's conversion against its target, with its owner, the value lost there
 * and how the customers who dropped there rated the visit. Nothing while no instance is
 * decided.
 */
export function dropoffLines(report: DropoffResponse): string[] {
  const decided = report.transitions.some((t) => t.continued + t.dropped > 0);
  if (!decided) return [];
  const lines = [
    `${report.journey}, steps reached from ${report.from} to ${report.to} (all decided): ${report.entered} entered, ${report.completed} completed`,
  ];
  if (report.value_dropped !== null) {
    lines.push(
      `  value lost at points of disconnection: ${money(report.value_dropped, report.currency)}${
        report.value_completed === null
          ? ''
          : ` (completed: ${money(report.value_completed, report.currency)})`
      }`,
    );
  }
  for (const t of report.transitions) {
    if (t.continued + t.dropped === 0) continue;
    const conversion = `conversion ${t.conversion.toFixed(2)}`;
    const target =
      t.target_conversion === null
        ? ''
        : t.below_target
          ? ` below target ${t.target_conversion.toFixed(2)}`
          : t.conversion >= t.target_conversion
            ? `, target ${t.target_conversion.toFixed(2)} met`
            : `, target ${t.target_conversion.toFixed(2)} (too few decided to judge)`;
    const parts = [
      `  ${t.to_step}: ${conversion}${target}${t.owner ? ` (owner: ${t.owner})` : ''}`,
    ];
    if (t.value_dropped !== null && t.value_dropped > 0) {
      parts.push(`${money(t.value_dropped, report.currency)} lost here`);
    }
    const rated = t.feedback.dropped;
    if (rated.responses > 0 && rated.mean_score !== null) {
      parts.push(
        `those who dropped rated ${rated.mean_score.toFixed(1)}/5 (${rated.responses} answers)`,
      );
    }
    lines.push(parts.join('; '));
  }
  return lines;
}

/**
 * Every REPORT_EVERY_MS, the drop-offs of each sample journey for the steps reached since
 * `since` and decided by now, printed above the progress line, until the process exits.
 */
function reportDropoffs(address: string, key: string | undefined, since: number) {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      for (const journey of SIMULATED_JOURNEYS) {
        const to = Date.now() - journey.stepTimeoutMs - SETTLED_MS;
        if (to <= since) continue;
        const query = new URLSearchParams({
          from: new Date(since).toISOString(),
          to: new Date(to).toISOString(),
        });
        const response = await fetch(`${address}/v1/journeys/${journey.id}/dropoffs?${query}`, {
          ...(key ? { headers: { authorization: `Bearer ${key}` } } : {}),
          signal: AbortSignal.timeout(20_000),
        });
        if (!response.ok) {
          await response.body?.cancel();
          continue;
        }
        const lines = dropoffLines((await response.json()) as DropoffResponse);
        if (lines.length === 0) continue;
        // Above the progress line a terminal rewrites in place; it is redrawn next second.
        const clear = process.stdout.isTTY ? '\r\x1b[2K' : '';
        process.stdout.write(`${clear}${lines.join('\n')}\n`);
      }
    } catch {
      // The instance is stopping or busy: the next report tells.
    } finally {
      busy = false;
    }
  };
  setInterval(() => void tick(), REPORT_EVERY_MS).unref();
}

export function registerDemoCommand(program: Command) {
  const command = program
    .command('demo')
    .description(
      'run everything on the sample journeys with simulated producers on every channel, whose customers stay anonymous until they log in, show a loyalty card or are identified on a call, and rate their visit afterwards; a step breaks after a minute and its alert fires; every 30 s, once steps are decided, the value lost at points of disconnection and the steps below target',
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
      const since = Date.now();
      const first = Math.min(...SIMULATED_JOURNEYS.map((j) => j.stepTimeoutMs)) + SETTLED_MS;
      process.stderr.write(
        `touchstream: every ${REPORT_EVERY_MS / 1000}s from about ${Math.ceil(first / 60_000)}m on (a journey's steps are decided after its step timeout): the value lost at points of disconnection and each step against its target.\n`,
      );
      simulation = simulateFromFlags(flags, runtime.address, config.auth.ingestKeys[0]);
      // Runs on while the instance serves, after --duration too (drops are decided later).
      reportDropoffs(runtime.address, config.auth.queryKeys[0] ?? config.auth.adminKeys[0], since);
      const code = await simulation;
      // The producers are done (--duration); the instance serves on until Ctrl-C.
      if (code !== 0) process.exitCode = code;
    },
  );
}
