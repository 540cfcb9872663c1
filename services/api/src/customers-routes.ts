import { TouchstreamError } from '@touchstream/contracts';
import { readCustomer, type Store } from '@touchstream/store';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';

const customer = z.object({
  customer_id: z.string(),
  anonymous_ids: z
    .array(z.string())
    .describe('Anonymous ids whose first link names this customer.'),
  first_seen: z.string().describe('Event time of its earliest event, ISO 8601 UTC.'),
  last_seen: z.string().describe('Event time of its latest event, ISO 8601 UTC.'),
  events: z.number().int().describe('Distinct events counted for it, its anonymous ids’ included.'),
});

/** Resolved customers (API.md, "Identities"). */
export function customersRoutes(store: Store): FastifyPluginAsync {
  return async (instance) => {
    instance.withTypeProvider<ZodTypeProvider>().get(
      '/v1/customers/:customer_id',
      {
        schema: {
          summary: 'A customer as stitched: its anonymous ids and its events',
          params: z.object({ customer_id: z.string().min(1).max(128) }),
          response: { 200: customer },
        },
      },
      async (request) => {
        const found = await readCustomer(store, request.params.customer_id);
        if (!found) {
          throw new TouchstreamError(
            'not_found',
            `No events count for the customer "${request.params.customer_id}".`,
          );
        }
        return found;
      },
    );
  };
}
