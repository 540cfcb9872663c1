/**
 * When, within one interval, each of `count` rules is evaluated: evenly apart, so that
 * many rules never send their queries to ClickHouse at the same moment.
 */
export function evaluationOffsets(count: number, intervalMs: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.floor((i * intervalMs) / count));
}
