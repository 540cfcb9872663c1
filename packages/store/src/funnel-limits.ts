/** What one funnel query may use, and the settings that hold it to that. */

export interface FunnelLimits {
  /** Seconds ClickHouse may spend on one funnel before it gives up. */
  maxExecutionSeconds: number;
  /** Memory one funnel may use: beyond it the query fails rather than the process. */
  maxMemoryBytes: number;
  /** Breakdown values returned, the largest first. */
  maxBreakdownValues: number;
}

export const DEFAULT_FUNNEL_LIMITS: FunnelLimits = {
  maxExecutionSeconds: 10,
  maxMemoryBytes: 4 * 2 ** 30,
  maxBreakdownValues: 50,
};

/** Limits and the in-order aggregation every funnel query runs with. */
export function funnelSettings(limits: FunnelLimits): string[] {
  return [
    `max_execution_time = ${limits.maxExecutionSeconds}`,
    `timeout_overflow_mode = 'throw'`,
    `max_memory_usage = ${limits.maxMemoryBytes}`,
    // The table is sorted by customer: aggregate in that order, without a hash table.
    'optimize_aggregation_in_order = 1',
    `max_result_rows = ${limits.maxBreakdownValues + 1}`,
    `result_overflow_mode = 'throw'`,
  ];
}
