/** Small HTTP helpers for the funnel suites. */
import { postAll } from './events.js';
import { callJson } from './http.js';

/** Stores events through the collector; on the embedded bus a 202 means stored. */
export async function ingest(baseUrl: string, events: unknown[]) {
  const batches: unknown[][] = [];
  for (let i = 0; i < events.length; i += 1000) batches.push(events.slice(i, i + 1000));
  await postAll(baseUrl, batches);
}

export const queryFunnel = (baseUrl: string, body: unknown) =>
  callJson(baseUrl, 'POST', '/v1/funnels/query', body);

const micro = (x: number | null) => (x === null ? null : Math.round(x * 1e6) / 1e6);

/**
 * Medians and time-to-convert levels compared to a millionth of a second: ClickHouse
 * interpolates in floating point.
 */
// biome-ignore lint/suspicious/noExplicitAny: a response of either side.
export function roundMedians(response: any) {
  // biome-ignore lint/suspicious/noExplicitAny: steps of either side.
  const steps = (list: any[]) =>
    list.map((s) => ({
      ...s,
      median_seconds_from_previous: micro(s.median_seconds_from_previous),
      time_to_convert: s.time_to_convert && {
        ...s.time_to_convert,
        p25: micro(s.time_to_convert.p25),
        p50: micro(s.time_to_convert.p50),
        p75: micro(s.time_to_convert.p75),
        p90: micro(s.time_to_convert.p90),
      },
    }));
  return {
    ...response,
    steps: steps(response.steps),
    ...(response.breakdown
      ? {
          // biome-ignore lint/suspicious/noExplicitAny: breakdown of either side.
          breakdown: response.breakdown.map((b: any) => ({ ...b, steps: steps(b.steps) })),
        }
      : {}),
  };
}
