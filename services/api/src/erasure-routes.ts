import { erasureResponse as erasureSchema, TouchstreamError } from '@touchstream/contracts';
import { readErasure } from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type ErasureDeps, erasureResponse, requestErasure } from './erasure.js';

/** Erasure of a customer (API.md, "Erasure and retention"). */
export function erasureRoutes(deps: ErasureDeps): FastifyPluginAsync {
  return async (instance) => {
    const app = instance.withTypeProvider<ZodTypeProvider>();
    app.delete(
      '/v1/customers/:customer_id',
      {
        schema: {
          summary:
            'Erase a customer: its events under its id and every linked anonymous id, its journey facts and state, its links and dead letters',
          description:
            'Needs an admin key. Answers at once with a pending erasure; from then on no answer counts the customer. An unknown customer is erased too (nothing to remove): the erasure still completes and can be checked.',
          params: z.object({ customer_id: z.string().min(1).max(128) }),
          response: { 202: erasureSchema },
        },
      },
      async (request, reply) => {
        const erasure = await requestErasure(deps, request.params.customer_id);
        request.log.info(
          { erasure_id: erasure.erasure_id, ids: erasure.ids.length },
          'erasure_requested',
        );
        return reply.code(202).send(erasureResponse(erasure));
      },
    );
    app.get(
      '/v1/erasures/:erasure_id',
      {
        schema: {
          summary: 'An erasure: done once its rows are physically gone from storage',
          params: z.object({ erasure_id: z.string().min(1).max(64) }),
          response: { 200: erasureSchema },
        },
      },
      async (request) => {
        const erasure = await readErasure(deps.store, request.params.erasure_id);
        if (!erasure) {
          throw new TouchstreamError(
            'not_found',
            `No erasure "${request.params.erasure_id}" was requested.`,
          );
        }
        return erasureResponse(erasure);
      },
    );
  };
}
