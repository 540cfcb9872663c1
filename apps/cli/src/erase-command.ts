import { type ErasureResponse, parseDuration } from '@touchstream/contracts';
import { type Command, InvalidArgumentError } from 'commander';
import { cannotReach, type Io, parseUrl } from './options.js';

export interface EraseOptions {
  url: string;
  /** An admin key: it sends the erasure and follows it. */
  key?: string;
  /** How long to wait for `done`, in milliseconds. */
  timeout: number;
  /** How often to ask, in milliseconds. */
  every?: number;
}

function parseTimeout(value: string): number {
  const ms = parseDuration(value);
  if (!(ms !== undefined && ms > 0)) {
    throw new InvalidArgumentError('give a duration such as 30s, 10m or 1h');
  }
  return ms;
}

/** One call to the instance: the parsed answer, or an error sentence for the terminal. */
async function call(
  options: EraseOptions,
  method: 'DELETE' | 'GET',
  path: string,
): Promise<{ ok: true; body: ErasureResponse } | { ok: false; error: string }> {
  let response: Response;
  try {
    response = await fetch(`${options.url}${path}`, {
      method,
      headers: options.key ? { authorization: `Bearer ${options.key}` } : {},
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    return {
      ok: false,
      error:
        (error as Error).name === 'TimeoutError'
          ? `${options.url} did not answer within 60 s`
          : cannotReach(options.url, error),
    };
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return {
      ok: false,
      error: `${options.url} answered ${response.status} with something not JSON`,
    };
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string } }).error;
    return {
      ok: false,
      error: `${response.status} ${error?.code ?? 'error'}: ${error?.message ?? text}`,
    };
  }
  return { ok: true, body: body as ErasureResponse };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Erases a customer and waits until the erasure is done (its rows physically gone),
 * printing each state as it changes; returns the exit code: 0 done, 1 refused or
 * unreachable, 2 not done within the timeout (it goes on in the instance).
 */
export async function runErase(customerId: string, options: EraseOptions, io: Io): Promise<number> {
  const started = Date.now();
  const requested = await call(
    options,
    'DELETE',
    `/v1/customers/${encodeURIComponent(customerId)}`,
  );
  if (!requested.ok) {
    io.err(`touchstream: ${requested.error}\n`);
    return 1;
  }
  const { erasure_id } = requested.body;
  io.out(
    `erasure ${erasure_id} of customer ${customerId}: pending (no answer counts it any more)\n`,
  );
  let state = requested.body;
  let toldAt = Date.now();
  for (;;) {
    if (state.state === 'done') {
      io.out(
        `erasure ${erasure_id}: done at ${state.done_at}, after ${seconds(Date.now() - started)} (its rows are gone from storage)\n`,
      );
      return 0;
    }
    if (Date.now() - started >= options.timeout) {
      io.err(
        `touchstream: erasure ${erasure_id} not done within ${seconds(options.timeout)}; it goes on: GET /v1/erasures/${erasure_id} tells when it is\n`,
      );
      return 2;
    }
    await new Promise((resolve) => setTimeout(resolve, options.every ?? 1_000));
    const polled = await call(options, 'GET', `/v1/erasures/${erasure_id}`);
    if (!polled.ok) {
      // A restart of the instance is no reason to give up: it resumes the erasure.
      io.err(`touchstream: ${polled.error} (asking again)\n`);
      continue;
    }
    state = polled.body;
    // Progress every 10 s, not at every question.
    if (state.state === 'pending' && Date.now() - toldAt >= 10_000) {
      toldAt = Date.now();
      io.out(
        `erasure ${erasure_id}: pending, removing rows from storage (${seconds(Date.now() - started)})\n`,
      );
    }
  }
}

export function registerEraseCommand(program: Command) {
  program
    .command('erase')
    .description(
      "erase a customer of a running instance (its events, its anonymous ids' events, facts, state, links, dead letters) and wait until it is done",
    )
    .argument('<customer_id>', 'the customer to erase')
    .option('--url <url>', 'the instance', parseUrl, 'http://127.0.0.1:3000')
    .option('--key <key>', 'an admin key, when the instance has keys')
    .option('--timeout <duration>', 'how long to wait for done', parseTimeout, 3_600_000)
    .action(async (customerId: string, options: EraseOptions) => {
      process.exitCode = await runErase(customerId, options, {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
      });
    });
}
