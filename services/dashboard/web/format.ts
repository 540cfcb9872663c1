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

const money = new Map<string, Intl.NumberFormat>();
const plainMoney = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});

/**
 * An amount of the journey's value property in its currency, with its ISO code first as
 * people write it in reports: `EUR 1,234.50`. Without a currency, the amount alone.
 */
export function formatMoney(amount: number | null | undefined, currency: string | null): string {
  if (amount === null || amount === undefined || Number.isNaN(amount)) return '–';
  if (!currency) return plainMoney.format(amount);
  let format = money.get(currency);
  if (!format) {
    try {
      format = new Intl.NumberFormat(undefined, {
        style: 'currency',
        currency,
        currencyDisplay: 'code',
      });
    } catch {
      // A code the browser does not know: the amount and the code as they are.
      return `${currency} ${plainMoney.format(amount)}`;
    }
    money.set(currency, format);
  }
  // Some locales put the code after the amount, or glue it with a no-break space: either
  // reads fine, but one ordinary space keeps copied figures plain text.
  return format.format(amount).replace(/\u00a0/g, ' ');
}

const score = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** A mean rating as the API rounds it (2 decimals at most): `4.3`, `2.15`. */
export const formatScore = (n: number | null | undefined) =>
  n === null || n === undefined || Number.isNaN(n) ? '–' : score.format(n);

const signedPoints = new Intl.NumberFormat(undefined, {
  maximumFractionDigits: 1,
  signDisplay: 'exceptZero',
});

/**
 * A change of a rate in percentage points, with an arrow and a sign: `▲ +3.2 pp`,
 * `▼ −1.5 pp`, `= 0 pp`. Nothing to compare reads as a dash.
 */
export function formatChange(change: number | null | undefined): string {
  if (change === null || change === undefined || Number.isNaN(change)) return '–';
  const points = Math.round(change * 1000) / 10;
  const arrow = points > 0 ? '▲' : points < 0 ? '▼' : '=';
  return `${arrow} ${signedPoints.format(points)} pp`;
}
