import ms from 'ms';
import { z } from 'zod';

// A unit is required: a bare number is ambiguous in configuration files and request bodies.
const DURATION = /^\d+(?:\.\d+)?(?:ms|s|m|h|d|w)$/;

/** Parses `500ms`, `30s`, `5m`, `2h`, `7d`, `1w` into milliseconds; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  const value = ms(text as ms.StringValue);
  return Number.isFinite(value) ? value : undefined;
}

/** A duration as users write it. The text is kept, so what was sent is what is returned. */
export const durationText = z.string().refine((s) => parseDuration(s) !== undefined, {
  message: 'must be a duration such as 500ms, 30s, 5m, 2h or 7d',
});

export const positiveDurationText = durationText.refine((s) => (parseDuration(s) ?? 0) > 0, {
  message: 'must be longer than 0',
});

/**
 * The longest window a query or an alert rule may ask for: a year, as in the product
 * tools. Past it, ranges leave what ClickHouse's DateTime64 holds comfortably.
 */
export const MAX_WINDOW_MS = 366 * 86_400_000;

/** A duration text no longer than MAX_WINDOW_MS. */
export const withinAYear = <T extends z.ZodType<string>>(schema: T) =>
  schema.refine((s) => (parseDuration(s) ?? 0) <= MAX_WINDOW_MS, {
    message: 'must be at most 366d',
  });

/** A duration parsed into milliseconds. */
export const durationMs = durationText.transform((s) => parseDuration(s) as number);

/** Formats milliseconds back as the shortest exact duration text. */
export function formatDuration(millis: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (millis >= size && millis % size === 0) return `${millis / size}${unit}`;
  }
  return `${millis}ms`;
}
