/** Small HTTP helpers for the funnel suites. */

export async function postJson(
  baseUrl: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: the tests assert the shape of what comes back.
  const parsed: any = text ? JSON.parse(text) : undefined;
  return { status: response.status, headers: response.headers, body: parsed };
}

/** Stores events through the collector; on the embedded bus a 202 means stored. */
export async function ingest(baseUrl: string, events: unknown[]) {
  for (let i = 0; i < events.length; i += 1000) {
    const { status, body } = await postJson(baseUrl, '/v1/events', {
      events: events.slice(i, i + 1000),
    });
    if (status !== 202) throw new Error(`ingest answered ${status}: ${JSON.stringify(body)}`);
  }
}

export const queryFunnel = (baseUrl: string, body: unknown) =>
  postJson(baseUrl, '/v1/funnels/query', body);

/** Medians compared to a millionth of a second: ClickHouse interpolates in floating point. */
// biome-ignore lint/suspicious/noExplicitAny: a response of either side.
export function roundMedians(response: any) {
  // biome-ignore lint/suspicious/noExplicitAny: steps of either side.
  const steps = (list: any[]) =>
    list.map((s) => ({
      ...s,
      median_seconds_from_previous:
        s.median_seconds_from_previous === null
          ? null
          : Math.round(s.median_seconds_from_previous * 1e6) / 1e6,
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
