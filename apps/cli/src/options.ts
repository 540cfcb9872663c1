import { journeyId, parseDuration } from '@touchstream/contracts';
import { InvalidArgumentError } from 'commander';

/** Where a command writes: its output, and what goes wrong. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** `--url`: an http(s) base URL of a running instance, without a trailing slash. */
export function parseUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value.replace(/\/+$/, '');
  } catch {}
  throw new InvalidArgumentError('give an http(s) URL such as http://127.0.0.1:3000');
}

/** Why the instance at `--url` could not be reached, as one clear sentence. */
export function cannotReach(url: string, error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED')
    return `cannot reach ${url}: connection refused (is it running?)`;
  if (cause?.code === 'ENOTFOUND') return `cannot reach ${url}: unknown host`;
  return `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`;
}

/** A failed call as one clear sentence: no answer in time, or no connection. */
export function describeFailure(url: string, error: unknown): string {
  if ((error as Error).name === 'TimeoutError') return `${url} did not answer within 60 s`;
  return cannotReach(url, error);
}

/** The error object of a refused call as the terminal shows it: code, message, details. */
export function describeRefusal(status: number, text: string): string {
  let error: { code?: string; message?: string; details?: unknown[] } | undefined;
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error;
  } catch {}
  const details = (error?.details ?? []) as { path?: string; message?: string }[];
  return `${status} ${error?.code ?? 'error'}: ${error?.message ?? text}\n${details
    .map((d) => `  ${d.path ? `${d.path}: ` : ''}${d.message ?? ''}\n`)
    .join('')}`;
}

export function parseJourney(value: string): string {
  if (!journeyId.safeParse(value).success) {
    throw new InvalidArgumentError('a journey id is 1-64 chars of a-z, 0-9, _ -');
  }
  return value;
}

/** A parser of durations longer than 0; `examples` show the kind expected, such as "30m, 1h or 7d". */
export const positiveDuration = (examples: string) => (value: string) => {
  if (!((parseDuration(value) ?? 0) > 0)) {
    throw new InvalidArgumentError(`give a duration such as ${examples}`);
  }
  return value;
};
