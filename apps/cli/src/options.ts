import { InvalidArgumentError } from 'commander';

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
