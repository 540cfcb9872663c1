import { setTimeout as sleep } from 'node:timers/promises';
import { parseDuration } from '@touchstream/contracts';
import {
  type ClientStats,
  createTouchstreamClient,
  type DeliveryError,
  type TouchstreamClient,
} from '@touchstream/sdk';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { cannotReach, parseUrl } from './options.js';
import {
  type BrokenStep,
  breakableSteps,
  CHANNELS,
  type Channel,
  findStep,
} from './simulate/journeys.js';
import {
  createProgressWriter,
  type ProgressOutput,
  progressLine,
  totalStats,
} from './simulate/progress.js';
import { seededRandom } from './simulate/random.js';
import {
  DEFAULT_PROBABILITIES,
  type Emitted,
  nextEvent,
  type Session,
  type Shopper,
  type StepProbabilities,
  type SurveyAnswer,
  shopperMaker,
  startSession,
  surveyAnswer,
} from './simulate/shopper.js';

export interface SimulationOptions {
  /** Base URL of a running instance. */
  url: string;
  /** An ingest key, when the instance has keys. */
  key?: string;
  /** Events per second, all channels together. */
  rate: number;
  /** Customers shopping at the same time (each one event per tick at most). */
  customers: number;
  /** How long to run; Infinity until the signal aborts. */
  durationMs: number;
  /** A step name or event type of the sample journeys that stops working. */
  breakStep?: string;
  /** How long after the start the step breaks (default at once). */
  breakAfterMs?: number;
  seed?: number;
  probabilities?: Partial<StepProbabilities>;
  /** Prefix of customer ids, so runs can be told apart. Default `sim-<random>`. */
  customerPrefix?: string;
  progressIntervalMs?: number;
  /** Passed to each producer's client. */
  flushIntervalMs?: number;
  /** Sees each event as a producer tracks it. */
  onEvent?: (event: Emitted & { timestamp: number }) => void;
}

export interface SimulationSummary {
  elapsedMs: number;
  /** All producers together. */
  totals: ClientStats;
  byChannel: Record<Channel, ClientStats>;
  /** Events generated, by type. */
  byType: Record<string, number>;
  /**
   * Events generated on each channel, by the ids they carry: an anonymous id only (a
   * cookie, device, card, store visit or phone number not yet identified), both (each
   * links its anonymous id to the customer), or the customer id only (e-mail).
   */
  byIds: Record<Channel, IdCounts>;
  sessions: { started: number; completed: number; left: number; failed: number };
  /**
   * Satisfaction surveys answered after a journey ended: sent, and not sent because they
   * were due after the run ended (a dropper answers minutes later, after their deadline;
   * a run that stops first cancels those rather than send them early or keep it open).
   */
  surveys: { sent: number; cancelled: number };
  broken?: { journey: string; step: string; eventType: string; from: string };
}

export interface IdCounts {
  anonymous: number;
  both: number;
  customer: number;
}

export class SimulationError extends Error {
  override readonly name = 'SimulationError';
}

/** A scheduling turn; a customer takes at most one action per turn. */
const TICK_MS = 100;
const MAX_RATE_PER_CUSTOMER = 1000 / TICK_MS;
/**
 * A customer who switches channel waits this long before acting again.
 * Each channel's producer batches on its own, so without the pause the next channel's
 * event could reach the collector before the previous one and arrive out of order.
 */
const HANDOFF_PAUSE_MS = 600;

/**
 * Runs one producer per channel (web, mobile, store, call centre, e-mail), each with its
 * own SDK client as separate channel services would, fed by simulated customers walking
 * the sample journeys across channels in real time. Resolves with the counts once every
 * producer has flushed; rejects when the instance cannot be reached or refuses the key.
 */
export async function runSimulation(
  options: SimulationOptions,
  io: { signal?: AbortSignal; output: ProgressOutput },
): Promise<SimulationSummary> {
  const url = options.url.replace(/\/+$/, '');
  const p: StepProbabilities = { ...DEFAULT_PROBABILITIES, ...options.probabilities };
  const rnd = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  const prefix = options.customerPrefix ?? `sim-${Math.floor(rnd.next() * 36 ** 6).toString(36)}`;
  const broken: BrokenStep | undefined =
    options.breakStep === undefined ? undefined : findStep(options.breakStep);
  if (options.breakStep !== undefined && !broken) {
    throw new SimulationError(
      `--break-step: no step "${options.breakStep}" (one of ${breakableSteps().join(', ')})`,
    );
  }

  // One look before producing, so a wrong URL is one clear sentence, not endless retries.
  try {
    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    await health.body?.cancel();
  } catch (error) {
    throw new SimulationError(cannotReach(url, error));
  }

  const stop = new AbortController();
  const onAbort = () => stop.abort();
  io.signal?.addEventListener('abort', onAbort);
  if (io.signal?.aborted) stop.abort();
  const progress = createProgressWriter(io.output);
  let fatal: SimulationError | undefined;
  const rejections = new Map<string, number>();

  const onError = (channel: Channel) => (error: DeliveryError) => {
    if (error.kind === 'rejected' && (error.status === 401 || error.status === 403)) {
      // Every further batch would be refused the same way.
      fatal ??= new SimulationError(
        `${url} refused the ingest key (${error.status} ${error.code ?? ''}): give a valid --key`,
      );
      stop.abort();
      return;
    }
    if (error.kind === 'buffer_full') return; // counted as dropped; one line per event would flood
    const what = `${channel}: ${error.kind} ${error.message}`;
    const seen = rejections.get(what) ?? 0;
    rejections.set(what, seen + 1);
    if (seen === 0) progress.log(what);
  };
  const clients = Object.fromEntries(
    CHANNELS.map((channel) => [
      channel,
      createTouchstreamClient({
        url,
        ...(options.key ? { key: options.key } : {}),
        flushIntervalMs: options.flushIntervalMs ?? 250,
        onError: onError(channel),
      }),
    ]),
  ) as Record<Channel, TouchstreamClient>;

  const sessions: Session[] = [];
  const lastTime: number[] = [];
  /** When each customer's current session last took a step of its journey. */
  const lastStepAt: (number | undefined)[] = [];
  /** Survey answers not yet due, soonest first: sent in real time, as a customer would. */
  const surveys: SurveyAnswer[] = [];
  /** When the survey answer of each customer's last session is due, if they answer. */
  const surveyAt: (number | undefined)[] = [];
  let surveysSent = 0;
  const readyAt: number[] = [];
  /** Customers whose last visit completed, oldest first, with when it did. */
  const returning: { shopper: Shopper; at: number }[] = [];
  const counts = { started: 0, completed: 0, left: 0, failed: 0 };
  const byType: Record<string, number> = {};
  const byIds = Object.fromEntries(
    CHANNELS.map((c) => [c, { anonymous: 0, both: 0, customer: 0 }]),
  ) as Record<Channel, IdCounts>;
  const newShopper = shopperMaker(prefix, rnd, p);
  const newSession = (now: number) => {
    counts.started += 1;
    // Some customers come back; only those with nothing in progress, so a new visit never
    // continues an old journey instance by accident.
    // Their last visit's events must have left first, as after a channel switch.
    let ready = 0;
    while (ready < returning.length && (returning[ready]?.at ?? 0) <= now - HANDOFF_PAUSE_MS) {
      ready += 1;
    }
    const shopper =
      ready > 0 && rnd.chance(0.3)
        ? (returning.splice(rnd.int(0, ready - 1), 1)[0]?.shopper as Shopper)
        : newShopper();
    return startSession(shopper, rnd, p);
  };
  const finish = (session: Session, i: number) => {
    if (session.outcome) counts[session.outcome] += 1;
    if (session.outcome === 'completed' && returning.length < 1000) {
      // Back only after their survey answer, if any, has gone: it rates the visit before.
      const at = Math.max(lastTime[i] ?? 0, surveyAt[i] ?? 0);
      let k = returning.length;
      while (k > 0 && (returning[k - 1]?.at ?? 0) > at) k -= 1;
      returning.splice(k, 0, { shopper: session.shopper, at });
    }
  };
  const send = (tracked: Emitted & { timestamp: number }) => {
    byType[tracked.type] = (byType[tracked.type] ?? 0) + 1;
    byIds[tracked.channel][
      !tracked.customer_id ? 'anonymous' : tracked.anonymous_id ? 'both' : 'customer'
    ] += 1;
    clients[tracked.channel].track(tracked);
    options.onEvent?.(tracked);
  };
  for (let i = 0; i < options.customers; i++) {
    sessions.push(newSession(0));
    lastTime.push(0);
  }

  const started = Date.now();
  const breakAt = broken ? started + (options.breakAfterMs ?? 0) : Number.POSITIVE_INFINITY;
  let breakAnnounced = false;
  const isBroken = (journey: BrokenStep['journey'], step: number) =>
    broken !== undefined &&
    Date.now() >= breakAt &&
    journey === broken.journey &&
    step === broken.index;

  const progressEvery = options.progressIntervalMs ?? 1000;
  let lastReport = { at: started, accepted: 0 };
  const report = (now: number) => {
    const stats = totalStats(CHANNELS.map((c) => clients[c].stats()));
    const seconds = Math.max(0.001, (now - lastReport.at) / 1000);
    const rate = (stats.accepted - lastReport.accepted) / seconds;
    lastReport = { at: now, accepted: stats.accepted };
    progress.update(
      progressLine({
        elapsedMs: now - started,
        stats,
        rate,
        ...(broken && breakAnnounced
          ? { note: `breaking ${broken.journey.id} ${broken.step.name}` }
          : {}),
      }),
    );
  };

  let budget = 0;
  let lastTick = started;
  let nextReport = started + progressEvery;
  const used = new Uint8Array(options.customers);
  while (!stop.signal.aborted && Date.now() - started < options.durationMs) {
    const now = Date.now();
    if (broken && !breakAnnounced && now >= breakAt) {
      breakAnnounced = true;
      progress.log(
        `from ${new Date(breakAt).toISOString()}: ${broken.journey.id} step "${broken.step.name}" (${broken.step.eventType}) fails`,
      );
    }
    // Answers that have come due, stamped with their own time (at most a tick ago, or
    // more when the loop lags): so they stay in the window after the instance's end.
    // They do not count against --rate: they are the customers' replies, not visits.
    while ((surveys[0]?.timestamp ?? Number.POSITIVE_INFINITY) <= now) {
      send(surveys.shift() as SurveyAnswer);
      surveysSent += 1;
    }
    budget = Math.min(budget + (options.rate * (now - lastTick)) / 1000, options.customers);
    lastTick = now;
    used.fill(0);
    for (; budget >= 1; budget -= 1) {
      // A random customer who has not acted this turn.
      let i = rnd.int(0, options.customers - 1);
      let probes = 0;
      while ((used[i] || (readyAt[i] ?? 0) > now) && probes < options.customers) {
        i = (i + 1) % options.customers;
        probes += 1;
      }
      if (probes === options.customers) break; // everybody acted or is switching channel
      used[i] = 1;
      let session = sessions[i] as Session;
      if (session.done) {
        finish(session, i);
        session = newSession(now);
        sessions[i] = session;
        lastStepAt[i] = undefined;
        surveyAt[i] = undefined;
      }
      const event = nextEvent(session, rnd, p, isBroken);
      // Strictly increasing per customer, so equal times never reorder their steps.
      const time = Math.max(now, (lastTime[i] ?? 0) + 1);
      lastTime[i] = time;
      if (session.tookStep) lastStepAt[i] = time;
      send({ ...event, timestamp: time });
      if (session.done) {
        const answer = surveyAnswer(session, event, lastStepAt[i], rnd, p);
        if (answer) {
          surveyAt[i] = answer.timestamp;
          let k = surveys.length;
          while (k > 0 && (surveys[k - 1]?.timestamp ?? 0) > answer.timestamp) k -= 1;
          surveys.splice(k, 0, answer);
        }
      }
      if (!session.done && session.channel !== event.channel) readyAt[i] = now + HANDOFF_PAUSE_MS;
    }
    if (now >= nextReport) {
      report(now);
      nextReport = now + progressEvery;
    }
    // An abort ends the wait early; the loop's condition then ends the run.
    await sleep(TICK_MS - ((Date.now() - started) % TICK_MS), undefined, {
      signal: stop.signal,
    }).catch(() => {});
  }

  const finals = await Promise.all(CHANNELS.map((c) => clients[c].close({ timeoutMs: 15_000 })));
  io.signal?.removeEventListener('abort', onAbort);
  report(Date.now());
  progress.end();
  if (fatal) throw fatal;
  return {
    elapsedMs: Date.now() - started,
    totals: totalStats(finals),
    byChannel: Object.fromEntries(CHANNELS.map((c, i) => [c, finals[i]])) as Record<
      Channel,
      ClientStats
    >,
    byType,
    byIds,
    sessions: counts,
    surveys: { sent: surveysSent, cancelled: surveys.length },
    ...(broken && breakAnnounced
      ? {
          broken: {
            journey: broken.journey.id,
            step: broken.step.name,
            eventType: broken.step.eventType,
            from: new Date(breakAt).toISOString(),
          },
        }
      : {}),
  };
}

/** The summary as the terminal shows it at the end of a run. */
export function formatSummary(summary: SimulationSummary): string {
  const t = summary.totals;
  const ids = { anonymous: 0, both: 0, customer: 0 };
  for (const c of CHANNELS) {
    for (const key of ['anonymous', 'both', 'customer'] as const) ids[key] += summary.byIds[c][key];
  }
  const lines = [
    `simulated ${(summary.elapsedMs / 1000).toFixed(1)}s: ${t.sent} events sent, ${t.accepted} accepted, ${t.retried} retried, ${t.rejected} rejected, ${t.refused} dropped, ${t.failed} given up`,
    `customers: ${summary.sessions.started} visits, ${summary.sessions.completed} completed, ${summary.sessions.left} left, ${summary.sessions.failed} failed`,
    `by channel: ${CHANNELS.map((c) => `${c} ${summary.byChannel[c].accepted}`).join(', ')}`,
    `by ids: ${ids.anonymous} anonymous, ${ids.both} with a customer id linking an anonymous one, ${ids.customer} with the customer id only`,
    `surveys: ${summary.surveys.sent} answered after a journey ended, ${summary.surveys.cancelled} not sent (due after the run ended)`,
  ];
  if (summary.broken) {
    lines.push(
      `broken: ${summary.broken.journey} step "${summary.broken.step}" from ${summary.broken.from}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function positiveNumber(what: string, max: number, integer: boolean) {
  return (value: string): number => {
    const n = Number(value);
    if (
      !/^\d+(?:\.\d+)?$/.test(value.trim()) ||
      !(n > 0) ||
      n > max ||
      (integer && !Number.isInteger(n))
    ) {
      throw new InvalidArgumentError(
        `give ${integer ? 'a whole number' : 'a number'} of ${what} above 0, at most ${max}`,
      );
    }
    return n;
  };
}

function parseRunDuration(value: string): number {
  if (value === 'forever') return Number.POSITIVE_INFINITY;
  const ms = parseDuration(value);
  if (!(ms !== undefined && ms > 0)) {
    throw new InvalidArgumentError('give a duration such as 30s or 5m, or "forever"');
  }
  return ms;
}

function parseBreakAfter(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('give a duration such as 0s, 30s or 2m');
  return ms;
}

function parseBreakStep(value: string): string {
  if (!findStep(value)) {
    throw new InvalidArgumentError(`no such step; one of ${breakableSteps().join(', ')}`);
  }
  return value;
}

function parseSeed(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 2 ** 32 - 1) {
    throw new InvalidArgumentError('give a whole number from 0 to 4294967295');
  }
  return Number(value);
}

export interface SimulationFlags {
  rate: number;
  customers: number;
  duration: number;
  breakStep?: string;
  breakAfter: number;
  seed?: number;
}

/** What the simulated customers do: the options `simulate` and `demo` share. */
export function addSimulationOptions(
  command: Command,
  defaults: { breakStep?: string; breakAfterMs?: number } = {},
): Command {
  const breakStep = new Option(
    '--break-step <step>',
    `make this step fail (${breakableSteps().join(', ')})`,
  ).argParser(parseBreakStep);
  const breakAfter = new Option(
    '--break-after <duration>',
    'break the step this long after the start',
  ).argParser(parseBreakAfter);
  if (defaults.breakStep) breakStep.default(defaults.breakStep);
  breakAfter.default(
    defaults.breakAfterMs ?? 0,
    defaults.breakAfterMs ? `${defaults.breakAfterMs / 1000}s` : 'at once',
  );
  return command
    .option(
      '--rate <n>',
      'events per second, all channels together',
      positiveNumber('events per second', 100_000, false),
      50,
    )
    .option(
      '--customers <n>',
      'customers shopping at the same time',
      positiveNumber('customers', 1_000_000, true),
      100,
    )
    .addOption(
      new Option('--duration <duration>', 'how long to run: 30s, 5m, ... or forever')
        .argParser(parseRunDuration)
        .default(Number.POSITIVE_INFINITY, 'forever'),
    )
    .addOption(breakStep)
    .addOption(breakAfter)
    .option('--seed <n>', 'make the same customers as a previous run', parseSeed);
}

/** Exits with a usage error for flags that cannot make a run; warns about odd ones. */
export function checkSimulationFlags(flags: SimulationFlags, command: Command) {
  if (flags.breakAfter > 0 && flags.breakStep === undefined) {
    command.error('touchstream: --break-after needs --break-step <step>');
  }
  if (flags.rate > flags.customers * MAX_RATE_PER_CUSTOMER) {
    command.error(
      `touchstream: --rate ${flags.rate} needs at least ${Math.ceil(flags.rate / MAX_RATE_PER_CUSTOMER)} --customers (each acts at most ${MAX_RATE_PER_CUSTOMER} times a second)`,
    );
  }
  const secondsPerStep = flags.customers / flags.rate;
  if (secondsPerStep > 60) {
    process.stderr.write(
      `touchstream: each customer acts about every ${Math.round(secondsPerStep)}s; journeys with short step timeouts will mostly time out (raise --rate or lower --customers)\n`,
    );
  }
}

/**
 * Runs the simulation the flags describe against `url` until its duration ends or the
 * process is asked to stop (SIGINT, SIGTERM), with progress on stdout. Resolves with the
 * exit code: 1 when the instance refused or lost events.
 */
export async function simulateFromFlags(
  flags: SimulationFlags,
  url: string,
  key?: string,
): Promise<number> {
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const summary = await runSimulation(
      {
        url,
        ...(key ? { key } : {}),
        rate: flags.rate,
        customers: flags.customers,
        durationMs: flags.duration,
        ...(flags.breakStep ? { breakStep: flags.breakStep, breakAfterMs: flags.breakAfter } : {}),
        ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
      },
      { signal: interrupt.signal, output: process.stdout },
    );
    process.stdout.write(formatSummary(summary));
    const lost = summary.totals.rejected + summary.totals.failed + summary.totals.refused;
    return lost > 0 ? 1 : 0;
  } catch (error) {
    if (!(error instanceof SimulationError)) throw error;
    process.stderr.write(`touchstream: ${error.message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function registerSimulateCommand(program: Command) {
  const command = program
    .command('simulate')
    .description(
      'run web, mobile, store, call centre and e-mail producers that send customer journeys to a running instance',
    )
    .option('--url <url>', 'the instance', parseUrl, 'http://127.0.0.1:3000')
    .option('--key <key>', 'an ingest key, when the instance has keys');
  addSimulationOptions(command).action(
    async (flags: SimulationFlags & { url: string; key?: string }, self: Command) => {
      checkSimulationFlags(flags, self);
      process.exitCode = await simulateFromFlags(flags, flags.url, flags.key);
    },
  );
}
