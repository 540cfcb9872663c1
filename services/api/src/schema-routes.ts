import { touchpointJsonSchema } from '@touchstream/contracts';
import type { FastifyPluginAsync } from 'fastify';

/**
 * `GET /v1/schema/touchpoint.json`: the JSON Schema of one touchpoint event, for producer
 * services that write to Kafka directly and validate before they send. Made from the same
 * zod schema the collector and the processor validate with, so it cannot drift from them.
 */
export function schemaRoutes(): FastifyPluginAsync {
  const schema = touchpointJsonSchema();
  return async (app) => {
    app.get(
      '/v1/schema/touchpoint.json',
      { schema: { summary: 'JSON Schema of one touchpoint event' } },
      async (_request, reply) => reply.type('application/schema+json').send(schema),
    );
  };
}
