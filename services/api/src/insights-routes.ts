import {
  type InsightsResponse,
  insightsResponse,
  type Journey,
  journeyId,
  oddsRatio,
  parseDuration,
  roundOddsRatio,
  TouchstreamError,
} from '@touchstream/contracts';
import { rate } from '@touchstream/reports';
import { getJourney, type InsightCounts, queryInsights, type Store } from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { timeRangeQuery } from './time-range.js';

// Any text: whether it names a step is known only once the journey is read.
const params = z.object({ id: journeyId, from_step: z.string() });

/** The index of the step a transition starts from; a 400 naming the parameter otherwise. */
function transitionFrom(journey: Journey, stepName: string): number {
  const k = journey.steps.findIndex((s) => s.name === stepName);
  if (k >= 0 && k < journey.steps.length - 1) return k;
  const allowed = journey.steps
    .slice(0, -1)
    .map((s) => s.name)
    .join(', ');
  const why = k < 0 ? 'is not a step of the journey' : 'is the last step, which nothing follows';
  throw new TouchstreamError('invalid_request', 'The params is invalid: one problem.', [
    { path: 'from_step', message: `${why}; one of: ${allowed}` },
  ]);
}

/** The store's counts as API.md states them: shares, odds ratios, named steps. */
export function insightsAnswer(
  journey: Journey,
  step: number,
  from: number,
  to: number,
  counts: InsightCounts,
): InsightsResponse {
  return {
    journey: journey.id,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    from_step: journey.steps[step]?.name ?? '',
    to_step: journey.steps[step + 1]?.name ?? '',
    dropped: counts.dropped,
    continued: counts.continued,
    dropped_customers: counts.droppedCustomers,
    after_drop: counts.afterDrop.map((a) => ({
      ...a,
      share: rate(a.customers, counts.droppedCustomers),
    })),
    returned: counts.returned,
    correlations: counts.correlations.map((c) => ({
      kind: c.kind,
      name: c.name,
      value: c.value,
      dropped: c.dropped,
      continued: c.continued,
      odds_ratio: roundOddsRatio(
        oddsRatio(
          c.dropped,
          counts.dropped - c.dropped,
          c.continued,
          counts.continued - c.continued,
        ),
      ),
    })),
  };
}

/** Why instances drop after a step: what the droppers did next, and what sets them apart. */
export function insightsRoutes(store: Store): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<ZodTypeProvider>();
    app.get(
      '/v1/journeys/:id/dropoffs/:from_step/insights',
      {
        schema: {
          summary:
            'Why instances drop after a step: what the dropped customers did next, and the events, properties and channels that set them apart',
          params,
          querystring: timeRangeQuery,
          response: { 200: insightsResponse },
        },
      },
      async (request) => {
        const { id, from_step } = request.params;
        const journey = await getJourney(store, id);
        if (!journey) throw new TouchstreamError('not_found', `There is no journey "${id}".`);
        const step = transitionFrom(journey, from_step);
        // A stored journey's timeout was validated when it was stored.
        const timeoutMs = parseDuration(journey.step_timeout) ?? 0;
        const { from, to } = request.query;
        const counts = await queryInsights(store, journey.id, step, timeoutMs, from, to);
        return insightsAnswer(journey, step, from, to, counts);
      },
    );
  };
}
