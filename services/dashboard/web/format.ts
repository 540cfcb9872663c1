// The browser's locale decides separators: numbers read the way the user writes them.
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const short = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});

export const formatCount = (n: number) => integer.format(n);

/** A fraction as a percentage; nothing to divide reads as a dash, not 0 %. */
export const formatRate = (n: number | null | undefined) =>
  n === null || n === undefined || Number.isNaN(n) ? '–' : percent.format(n);

export const ratio = (part: number, whole: number) => (whole > 0 ? part / whole : null);

/** Seconds as the two largest units: `45 s`, `5 min 12 s`, `2 h 3 min`, `3 d 4 h`. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '–';
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3_600],
    ['min', 60],
    ['s', 1],
  ];
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  let rest = Math.round(seconds);
  const parts: string[] = [];
  for (const [unit, size] of units) {
    if (rest >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

export const formatTime = (iso: string | number | null) =>
  iso === null ? '–' : dateTime.format(new Date(iso));

export const formatShortTime = (ms: number) => short.format(new Date(ms));

const oneDecimal = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});

/** A ratio as a multiple with one decimal: `4.1x`. */
export const formatTimes = (n: number) => `${oneDecimal.format(n)}x`;

const BOUND_UNITS: Array<[string, number]> = [
  ['d', 86_400],
  ['h', 3_600],
  ['min', 60],
];

/**
 * A histogram bound in its largest whole unit: `5 min`, `2 h`, `366 d`. The API's bounds
 * are round durations, so one unit always says them exactly.
 */
export function formatBound(seconds: number): string {
  for (const [unit, size] of BOUND_UNITS) {
    if (seconds >= size && seconds % size === 0) return `${formatCount(seconds / size)} ${unit}`;
  }
  return `${formatCount(seconds)} s`;
}
