import {
  detailsFromIssues,
  type FunnelQuery,
  type FunnelResponse,
  funnelOptionIssues,
  funnelQuery,
  funnelResponse,
  parseDuration,
  TouchstreamError,
} from '@touchstream/contracts';
import { rate } from '@touchstream/reports';
import {
  DEFAULT_FUNNEL_LIMITS,
  type FunnelCounts,
  type FunnelLimits,
  type FunnelSpec,
  type FunnelStepCount,
  getJourney,
  type PropertyColumns,
  QueryLimitError,
  queryFunnel,
  type Store,
} from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';

const DAY_MS = 86_400_000;
/** Without `from`, the range is the week before `to`, as for drop-offs. */
const DEFAULT_RANGE_MS = 7 * DAY_MS;

/** The request resolved against the stored journeys: what the store runs. */
async function specOf(store: Store, query: FunnelQuery, now: number): Promise<FunnelSpec> {
  let steps: FunnelSpec['steps'];
  let defaultWindow = DAY_MS;
  if (query.journey !== undefined) {
    const journey = await getJourney(store, query.journey);
    if (!journey)
      throw new TouchstreamError('not_found', `There is no journey "${query.journey}".`);
    steps = journey.steps;
    // The schema checks these against `steps`; a journey's steps are only known now.
    const issues = funnelOptionIssues(query, journey.steps.length);
    if (issues.length > 0) {
      const details = detailsFromIssues(issues);
      throw new TouchstreamError(
        'invalid_request',
        `The body is invalid: ${details.length === 1 ? 'one problem' : `${details.length} problems`}.`,
        details,
      );
    }
    defaultWindow = (parseDuration(journey.step_timeout) ?? DAY_MS) * (journey.steps.length - 1);
  } else {
    // Unnamed steps are reported under their event type.
    steps = (query.steps ?? []).map((s) => ({ ...s, name: s.name ?? s.event_type }));
  }
  const to = query.to ?? now;
  const from = query.from ?? to - DEFAULT_RANGE_MS;
  if (from >= to) {
    throw new TouchstreamError('invalid_request', 'The body is invalid: one problem.', [
      { path: query.from === undefined ? 'to' : 'from', message: 'from must be before to' },
    ]);
  }
  const windowMs = query.window === undefined ? defaultWindow : (parseDuration(query.window) ?? 0);
  const breakdown: FunnelSpec['breakdown'] =
    query.breakdown === undefined
      ? undefined
      : query.breakdown === 'channel'
        ? { by: 'channel' }
        : { by: 'property', name: query.breakdown.slice('property:'.length) };
  const attribution = query.breakdown_attribution ?? 'first_touch';
  return {
    steps,
    from,
    to,
    windowMs,
    breakdown,
    filters: query.filters ?? [],
    order: query.order ?? 'strict',
    exclusions: (query.exclusions ?? []).map(({ after_step, before_step, ...matcher }) => ({
      matcher,
      afterStep: after_step,
      beforeStep: before_step,
    })),
    holdConstant: query.hold_constant ?? [],
    attribution: attribution.startsWith('step:')
      ? { by: 'step', step: Number(attribution.slice('step:'.length)) }
      : { by: attribution as 'first_touch' | 'last_touch' },
  };
}

/**
 * The answer's steps: the counts with their conversions and drops, as the API states them.
 * "Previous" is the previous required step: customers may pass an optional step by, so a
 * step after one is compared with the last step every one of them did.
 */
function stepsOf(counts: readonly FunnelStepCount[]): FunnelResponse['steps'] {
  const first = counts[0]?.customers ?? 0;
  let required = counts[0];
  return counts.map(({ name, customers, medianSeconds, timeToConvert, optional }, k) => {
    const previous = k === 0 ? customers : (required?.customers ?? 0);
    if (!optional) required = counts[k];
    return {
      name,
      customers,
      conversion_from_start: rate(customers, first),
      conversion_from_previous: rate(customers, previous),
      dropped_from_previous: previous - customers,
      median_seconds_from_previous: medianSeconds,
      ...(optional ? { optional: true as const } : {}),
      time_to_convert: timeToConvert && {
        p25: timeToConvert.quantiles?.[0] ?? null,
        p50: timeToConvert.quantiles?.[1] ?? null,
        p75: timeToConvert.quantiles?.[2] ?? null,
        p90: timeToConvert.quantiles?.[3] ?? null,
        histogram: timeToConvert.histogram.map((b) => ({
          le_seconds: b.leSeconds,
          customers: b.customers,
        })),
      },
    };
  });
}

function answerOf(counts: FunnelCounts): FunnelResponse {
  const answer: FunnelResponse = { steps: stepsOf(counts.steps) };
  if (counts.breakdown) {
    answer.breakdown = counts.breakdown.map((b) => ({ value: b.value, steps: stepsOf(b.steps) }));
  }
  return answer;
}

/** A query stopped at a limit is the client's to narrow (or retry): 503, not a fault. */
function limitExceeded(error: QueryLimitError) {
  const { maxExecutionSeconds, maxMemoryBytes } = error.limits;
  return new TouchstreamError(
    'query_limit_exceeded',
    `The funnel query ${error.reason} (${maxExecutionSeconds} s, ${maxMemoryBytes / 2 ** 30} GiB); narrow the time range or retry later.`,
    [],
    5,
  );
}

export interface FunnelRoutesDeps {
  store: Store;
  limits?: FunnelLimits;
  /** The properties stored as columns of their own (applied at start). */
  columns?: PropertyColumns;
  /** The wall clock, for the default range. */
  now?: () => number;
}

/** Ad-hoc funnels over the stored events. */
export function funnelRoutes(deps: FunnelRoutesDeps): FastifyPluginAsync {
  const { store, limits = DEFAULT_FUNNEL_LIMITS, columns, now = Date.now } = deps;
  return async (instance) => {
    const app = instance.withTypeProvider<ZodTypeProvider>();
    app.post(
      '/v1/funnels/query',
      {
        schema: {
          summary: 'Customers at every step of a funnel, over the stored events',
          body: funnelQuery,
          response: { 200: funnelResponse },
        },
      },
      async (request) => {
        const spec = await specOf(store, request.body, now());
        try {
          return answerOf(await queryFunnel(store, spec, limits, columns));
        } catch (error) {
          throw error instanceof QueryLimitError ? limitExceeded(error) : error;
        }
      },
    );
  };
}
