import {
  eventType,
  type FunnelResponse,
  type funnelStepResult,
  parseDuration,
} from '@touchstream/contracts';
import { type Command, InvalidArgumentError } from 'commander';
import type { z } from 'zod';
import {
  describeFailure,
  describeRefusal,
  type Io,
  parseJourney,
  parseUrl,
  positiveDuration,
} from './options.js';

export interface FunnelOptions {
  journey?: string;
  steps?: string[];
  window?: string;
  from?: string;
  to?: string;
  breakdown?: string;
  order?: 'strict' | 'any';
  /** Step numbers (from 0, as in the API) a chain may skip. */
  optional?: number[];
  exclude?: Exclusion[];
  hold?: string[];
  attribution?: string;
  url: string;
  key?: string;
}

interface Exclusion {
  event_type: string;
  after_step: number;
  before_step: number;
}

/** Repeated options gather into a list. */
const collect =
  <T>(parse: (value: string) => T) =>
  (value: string, previous: T[] = []) => [...previous, parse(value)];

function parseOrder(value: string): 'strict' | 'any' {
  if (value !== 'strict' && value !== 'any') throw new InvalidArgumentError('give strict or any');
  return value;
}

function parseStepNumber(value: string): number {
  if (!/^\d{1,2}$/.test(value)) {
    throw new InvalidArgumentError('give a step number, counted from 0 as in the API');
  }
  return Number(value);
}

/** `<type>:<i>-<j>`: an event of that type between steps i and j voids an entry. */
function parseExclusion(value: string): Exclusion {
  const match = /^(.+):(\d{1,2})-(\d{1,2})$/.exec(value);
  if (!match || !eventType.safeParse(match[1]).success) {
    throw new InvalidArgumentError(
      'give <event type>:<after step>-<before step>, such as cart_removed:1-2',
    );
  }
  return {
    event_type: match[1] as string,
    after_step: Number(match[2]),
    before_step: Number(match[3]),
  };
}

function parseAttribution(value: string): string {
  if (!/^(first_touch|last_touch|step:\d{1,2})$/.test(value)) {
    throw new InvalidArgumentError('give first_touch, last_touch or step:<k>');
  }
  return value;
}

function parseSteps(value: string): string[] {
  const steps = value.split(',').map((s) => s.trim());
  if (steps.length < 2 || steps.length > 20) {
    throw new InvalidArgumentError('give 2 to 20 event types, separated by commas');
  }
  for (const step of steps) {
    if (!eventType.safeParse(step).success) {
      throw new InvalidArgumentError(`"${step}" is not an event type (a-z, 0-9, _ . : -)`);
    }
  }
  return steps;
}

const parseWindow = positiveDuration('30m, 1h or 7d');

/** An instant: ISO 8601 with a zone, or a duration meaning that long before now. */
export function parseInstant(value: string, now = Date.now()): string {
  const ago = parseDuration(value);
  if (ago !== undefined) return new Date(now - ago).toISOString();
  if (/(?:Z|[+-]\d{2}:?\d{2})$/.test(value) && !Number.isNaN(Date.parse(value))) {
    return new Date(Date.parse(value)).toISOString();
  }
  throw new InvalidArgumentError(
    'give an ISO 8601 time with a zone (2026-10-01T00:00:00Z) or a duration ago (7d)',
  );
}

/** The request body of POST /v1/funnels/query for these options. */
export function funnelRequest(options: FunnelOptions): Record<string, unknown> {
  return {
    ...(options.journey ? { journey: options.journey } : {}),
    ...(options.steps
      ? {
          steps: options.steps.map((event_type, k) => ({
            event_type,
            ...(options.optional?.includes(k) ? { optional: true } : {}),
          })),
        }
      : {}),
    ...(options.window ? { window: options.window } : {}),
    ...(options.from ? { from: options.from } : {}),
    ...(options.to ? { to: options.to } : {}),
    ...(options.breakdown ? { breakdown: options.breakdown } : {}),
    ...(options.order ? { order: options.order } : {}),
    ...(options.exclude?.length ? { exclusions: options.exclude } : {}),
    ...(options.hold?.length ? { hold_constant: options.hold } : {}),
    ...(options.attribution ? { breakdown_attribution: options.attribution } : {}),
  };
}

type StepResult = z.infer<typeof funnelStepResult>;

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

function seconds(value: number | null): string {
  if (value === null) return '-';
  if (value < 60) return `${Number(value.toFixed(1))}s`;
  if (value < 3600) return `${Math.floor(value / 60)}m ${Math.round(value % 60)}s`;
  return `${Math.floor(value / 3600)}h ${Math.round((value % 3600) / 60)}m`;
}

/** Columns padded to their widest cell: the first left-aligned, numbers right-aligned. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const stepLabel = (s: StepResult, k: number) =>
  `${k + 1}. ${s.name}${s.optional ? ' (optional)' : ''}`;

/**
 * Time to convert per step: the percentiles, then the histogram's non-empty buckets
 * (customers who took at most that long, and longer than the bucket before).
 */
function timeTable(steps: StepResult[]): string {
  const rows = steps.flatMap((s, k) => {
    const t = s.time_to_convert;
    if (!t) return [];
    const buckets = t.histogram
      .filter((b) => b.customers > 0)
      .map((b) => `<=${seconds(b.le_seconds)}: ${b.customers}`)
      .join(', ');
    return [
      [stepLabel(s, k), seconds(t.p25), seconds(t.p50), seconds(t.p75), seconds(t.p90), buckets],
    ];
  });
  return table(['time to convert', 'p25', 'p50', 'p75', 'p90', 'customers by time'], rows);
}

function stepTable(steps: StepResult[]): string {
  const header = ['step', 'customers', 'of start', 'of previous', 'dropped', 'median time'];
  const rows = steps.map((s, k) => [
    stepLabel(s, k),
    String(s.customers),
    percent(s.conversion_from_start),
    k === 0 ? '' : percent(s.conversion_from_previous),
    k === 0 ? '' : String(s.dropped_from_previous),
    k === 0 ? '' : seconds(s.median_seconds_from_previous),
  ]);
  return table(header, rows);
}

/** A breakdown group's title: no value is "(none)"; null, customers who did not reach the step. */
const groupTitle = (value: string | null) =>
  value === null ? '(did not reach the step)' : value === '' ? '(none)' : value;

/**
 * The funnel as the terminal shows it: the steps and their times to convert, then the
 * steps per breakdown value.
 */
export function formatFunnel(response: FunnelResponse): string {
  const parts = [stepTable(response.steps), `\n${timeTable(response.steps)}`];
  for (const group of response.breakdown ?? []) {
    parts.push(`\n${groupTitle(group.value)}\n${stepTable(group.steps)}`);
  }
  return `${parts.join('\n')}\n`;
}

/** Runs the query; returns the exit code. */
export async function runFunnel(options: FunnelOptions, io: Io): Promise<number> {
  let response: Response;
  try {
    response = await fetch(`${options.url}/v1/funnels/query`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
      },
      body: JSON.stringify(funnelRequest(options)),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    io.err(`touchstream: ${describeFailure(options.url, error)}\n`);
    return 1;
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    io.err(`touchstream: ${options.url} answered ${response.status} with something not JSON\n`);
    return 1;
  }
  if (!response.ok) {
    io.err(`touchstream: ${describeRefusal(response.status, text)}`);
    return 1;
  }
  io.out(formatFunnel(body as FunnelResponse));
  return 0;
}

export function registerFunnelCommand(program: Command) {
  program
    .command('funnel')
    .description('print a funnel of a running instance: customers at every step')
    .option('--journey <id>', 'the steps of this journey (and its window)', parseJourney)
    .option('--steps <types>', 'event types, in order, separated by commas', parseSteps)
    .option(
      '--window <duration>',
      "time from entry to the last step (default: the journey's, else 1d)",
      parseWindow,
    )
    .option('--from <time>', 'entries from (ISO 8601, or a duration ago such as 7d)', (v) =>
      parseInstant(v),
    )
    .option('--to <time>', 'entries before (ISO 8601, or a duration ago; default now)', (v) =>
      parseInstant(v),
    )
    .option('--breakdown <by>', 'channel or property:<name>')
    .option(
      '--order <order>',
      'strict (default) or any: steps after the entry in any order',
      parseOrder,
    )
    .option(
      '--optional <step>',
      'a step a customer may skip, numbered from 0 (repeatable; needs --steps)',
      collect(parseStepNumber),
    )
    .option(
      '--exclude <type:i-j>',
      'an event type that voids an entry between steps i and j (repeatable)',
      collect(parseExclusion),
    )
    .option(
      '--hold <property>',
      'a property every step must share with the entry (repeatable)',
      collect(String),
    )
    .option(
      '--attribution <how>',
      'the breakdown value of first_touch (default), last_touch or step:<k>',
      parseAttribution,
    )
    .option('--url <url>', 'the instance', parseUrl, 'http://127.0.0.1:3000')
    .option('--key <key>', 'a query key, when the instance has keys')
    .action(async (options: FunnelOptions, command: Command) => {
      if ((options.journey === undefined) === (options.steps === undefined)) {
        command.error('touchstream: give either --journey <id> or --steps a,b,c');
      }
      if (options.optional?.length && options.steps === undefined) {
        command.error("touchstream: --optional needs --steps (a journey's steps are all required)");
      }
      process.exitCode = await runFunnel(options, {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
      });
    });
}
