import type { Command } from 'commander';
import {
  describeFailure,
  describeRefusal,
  type Io,
  parseJourney,
  parseUrl,
  positiveDuration,
} from './options.js';

export interface ReviewOptions {
  /** The period as the API takes it, such as 7d. */
  period: string;
  /** Print the JSON answer instead of the Markdown. */
  json?: boolean;
  url: string;
  key?: string;
}

const parsePeriod = positiveDuration('24h, 7d or 30d');

/** Fetches the review and prints it (Markdown, or JSON with --json); returns the exit code. */
export async function runReview(journey: string, options: ReviewOptions, io: Io): Promise<number> {
  const format = options.json ? 'json' : 'markdown';
  const query = new URLSearchParams({ period: options.period, format });
  let response: Response;
  try {
    response = await fetch(
      `${options.url}/v1/journeys/${encodeURIComponent(journey)}/review?${query}`,
      {
        headers: options.key ? { authorization: `Bearer ${options.key}` } : {},
        signal: AbortSignal.timeout(60_000),
      },
    );
  } catch (error) {
    io.err(`touchstream: ${describeFailure(options.url, error)}\n`);
    return 1;
  }
  const text = await response.text();
  if (!response.ok) {
    io.err(`touchstream: ${describeRefusal(response.status, text)}`);
    return 1;
  }
  if (format === 'markdown') {
    io.out(text.endsWith('\n') ? text : `${text}\n`);
    return 0;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    io.err(`touchstream: ${options.url} answered ${response.status} with something not JSON\n`);
    return 1;
  }
  io.out(`${JSON.stringify(body, null, 2)}\n`);
  return 0;
}

export function registerReviewCommand(program: Command) {
  program
    .command('review')
    .description(
      "print a journey's review of a running instance: the last period against the one before, per step",
    )
    .argument('<journey>', 'the journey id', parseJourney)
    .option('--period <duration>', 'the period, such as 24h, 7d or 30d', parsePeriod, '7d')
    .option('--json', 'print the JSON answer instead of the Markdown')
    .option('--url <url>', 'the instance', parseUrl, 'http://127.0.0.1:3000')
    .option('--key <key>', 'a query key, when the instance has keys')
    .action(async (journey: string, options: ReviewOptions) => {
      process.exitCode = await runReview(journey, options, {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
      });
    });
}
