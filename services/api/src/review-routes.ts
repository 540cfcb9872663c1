import {
  journeyId,
  parseDuration,
  positiveDurationText,
  reviewResponse,
  TouchstreamError,
  withinAYear,
} from '@touchstream/contracts';
import { buildReview, reviewMarkdown } from '@touchstream/reports';
import { getJourney, type Store } from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';

const idParams = z.object({ id: journeyId });

/** `?period=7d&format=markdown`: a period of at most 366d, the JSON answer by default. */
export const reviewQuery = z.object({
  period: withinAYear(positiveDurationText).default('7d'),
  format: z.enum(['json', 'markdown']).default('json'),
});

export interface ReviewRoutesDeps {
  store: Store;
  /** The wall clock: both periods end or start at the same `now`. */
  now?: () => number;
}

/** A journey's review: the last period against the one before it, as JSON or Markdown. */
export function reviewRoutes(deps: ReviewRoutesDeps): FastifyPluginAsync {
  const { store, now = Date.now } = deps;
  return async (instance) => {
    const app = instance.withTypeProvider<ZodTypeProvider>();
    app.get(
      '/v1/journeys/:id/review',
      {
        schema: {
          summary: 'Review of a journey: a period against the one before, per transition',
          description:
            'Per transition: conversion, target, change, value dropped, top reasons, owner, feedback; and the alerts fired. `format=markdown` answers the same review as Markdown for people.',
          params: idParams,
          querystring: reviewQuery,
          response: {
            200: {
              description: 'The review',
              content: {
                'application/json': { schema: reviewResponse },
                'text/markdown': { schema: z.string() },
              },
            },
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const found = await getJourney(store, id);
        if (!found) throw new TouchstreamError('not_found', `There is no journey "${id}".`);
        const periodMs = parseDuration(request.query.period) as number;
        const review = await buildReview(store, found, { periodMs, now: now() });
        if (request.query.format === 'markdown') {
          return reply.type('text/markdown; charset=utf-8').send(reviewMarkdown(review));
        }
        return reply.type('application/json; charset=utf-8').send(review);
      },
    );
  };
}
