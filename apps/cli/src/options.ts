import { InvalidArgumentError } from 'commander';

/** `--url`: an http(s) base URL of a running instance, without a trailing slash. */
export function parseUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value.replace(/\/+$/, '');
  } catch {}
  throw new InvalidArgumentError('give an http(s) URL such as http://127.0.0.1:3000');
}
