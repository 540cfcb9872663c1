/**
 * Time to convert: quartiles, p90 and a histogram of the seconds each customer took to a
 * step, aggregated in ClickHouse, read back into domain values.
 */

/** Histogram bounds in seconds: round durations a person reads at a glance. */
const BOUNDS_SECONDS = [
  1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21_600, 43_200, 86_400, 172_800, 604_800,
  1_209_600, 2_592_000, 7_776_000, 31_622_400,
];

/**
 * The bounds a funnel's histogram uses: up to the first one that holds the whole window, so
 * every time a step can take falls in a bucket and the buckets do not change with the data.
 */
export function histogramBounds(windowMs: number): number[] {
  const last = BOUNDS_SECONDS.findIndex((b) => b * 1000 >= windowMs);
  return BOUNDS_SECONDS.slice(0, last === -1 ? undefined : last + 1);
}

export const TIME_TO_CONVERT_LEVELS = [0.25, 0.5, 0.75, 0.9] as const;

/**
 * Columns `q<k>` (the levels, interpolated as a median of an even count is) and `h<k>`
 * (customers per bucket: more than the previous bound, at most this one) over `seconds`
 * for the customers `counted`. The histogram gathers each customer's bucket number and
 * counts them per group: a `countIf` per bucket costs several times more.
 */
export function timeToConvertColumns(
  k: number,
  seconds: string,
  counted: string,
  bounds: readonly number[],
): string[] {
  const bucket = `toUInt8(arrayCount(b -> b < ${seconds}, [${bounds.join(', ')}]))`;
  return [
    `quantilesExactInclusiveIf(${TIME_TO_CONVERT_LEVELS.join(', ')})(${seconds}, ${counted}) AS q${k}`,
    `arrayMap(i -> countEqual(groupArrayIf(${bucket}, ${counted}), i), range(${bounds.length})) AS h${k}`,
  ];
}

export interface TimeToConvert {
  /** p25, p50, p75, p90 in seconds; null when nobody took the step. */
  quantiles: [number, number, number, number] | null;
  histogram: { leSeconds: number; customers: number }[];
}

export function readTimeToConvert(
  quantiles: unknown,
  histogram: unknown,
  customers: number,
  bounds: readonly number[],
): TimeToConvert {
  const levels = Array.isArray(quantiles) ? quantiles.map(Number) : [];
  const counts = Array.isArray(histogram) ? histogram.map(Number) : [];
  return {
    quantiles:
      customers === 0 || levels.length !== 4 ? null : (levels as [number, number, number, number]),
    histogram: bounds.map((leSeconds, i) => ({ leSeconds, customers: counts[i] ?? 0 })),
  };
}
