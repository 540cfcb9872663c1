import { webhookTargetProblem } from '@touchstream/alerter';
import {
  dropoffResponse,
  journey,
  journeyBody,
  journeyId,
  TouchstreamError,
} from '@touchstream/contracts';
import { dropoffReport } from '@touchstream/reports';
import {
  deleteJourney,
  getJourney,
  listJourneys,
  queryDropoffs,
  type Store,
  saveJourney,
} from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { timeRangeQuery } from './time-range.js';

const idParams = z.object({ id: journeyId });

async function mustGet(store: Store, id: string) {
  const found = await getJourney(store, id);
  if (!found) throw new TouchstreamError('not_found', `There is no journey "${id}".`);
  return found;
}

/** Journey definitions and their drop-off figures. */
export function journeysRoutes(
  store: Store,
  webhooks: { allowInternal: boolean },
): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<ZodTypeProvider>();

    app.put(
      '/v1/journeys/:id',
      {
        schema: {
          summary: 'Create or replace a journey',
          params: idParams,
          body: journeyBody,
          response: { 200: journey, 201: journey },
        },
      },
      async (request, reply) => {
        // Where a review is posted is judged as an alert rule's webhook is.
        const url = request.body.review?.webhook_url;
        const refused = url ? await webhookTargetProblem(url, webhooks) : undefined;
        if (refused) {
          throw new TouchstreamError('invalid_request', 'The body is invalid: one problem.', [
            { path: 'review.webhook_url', message: refused },
          ]);
        }
        const existed = (await getJourney(store, request.params.id)) !== undefined;
        await saveJourney(store, request.params.id, request.body);
        return reply.status(existed ? 200 : 201).send({ id: request.params.id, ...request.body });
      },
    );

    app.get(
      '/v1/journeys',
      {
        schema: {
          summary: 'List journeys',
          response: { 200: z.object({ journeys: z.array(journey) }) },
        },
      },
      async () => ({ journeys: await listJourneys(store) }),
    );

    app.get(
      '/v1/journeys/:id',
      { schema: { summary: 'Get a journey', params: idParams, response: { 200: journey } } },
      async (request) => mustGet(store, request.params.id),
    );

    app.delete(
      '/v1/journeys/:id',
      { schema: { summary: 'Delete a journey', params: idParams } },
      async (request, reply) => {
        if (!(await deleteJourney(store, request.params.id))) {
          throw new TouchstreamError('not_found', `There is no journey "${request.params.id}".`);
        }
        return reply.status(204).send();
      },
    );

    app.get(
      '/v1/journeys/:id/dropoffs',
      {
        schema: {
          summary: 'Drop-off at every transition of a journey, from the streaming facts',
          params: idParams,
          querystring: timeRangeQuery,
          response: { 200: dropoffResponse },
        },
      },
      async (request) => {
        const found = await mustGet(store, request.params.id);
        const { from, to } = request.query;
        return dropoffReport(found, from, to, await queryDropoffs(store, found, from, to));
      },
    );
  };
}
