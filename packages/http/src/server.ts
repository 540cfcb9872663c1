import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { Config } from '@touchstream/config';
import { errorResponse, MAX_BODY_BYTES } from '@touchstream/contracts';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  LogController,
} from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { registerAuth } from './auth.js';
import { registerErrorHandling } from './errors.js';

/**
 * /openapi.json and /docs, generated from the zod schemas routes declare. Registered before
 * the routes so it sees them all. Both are open like /healthz (the auth hook guards /v1
 * only): they describe the API, they hold no data.
 */
async function registerOpenApi(app: FastifyInstance) {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Touchstream',
        description:
          'Customer-journey analytics. Every error is `{"error": {"code", "message", "details"}}`.',
        version: '1',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
        schemas: { Error: z.toJSONSchema(errorResponse) as Record<string, unknown> },
      },
    },
    transform: (input) => {
      const output = jsonSchemaTransform(input);
      // Keys guard /v1 only; the operational endpoints stay open.
      if (input.url.startsWith('/v1/')) {
        output.schema = { ...output.schema, security: [{ bearer: [] }] };
      }
      return output;
    },
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

/**
 * A dependency that must be reachable for the process to be ready: true when it is, false or
 * a sentence saying what is wrong when it is not.
 */
export type ReadinessCheck = () => Promise<boolean | string>;

/** A check that has not answered by then is unavailable: a probe must not hang on it. */
const READINESS_TIMEOUT_MS = 2_000;

async function runCheck(check: ReadinessCheck): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('unavailable: no answer within 2 s'), READINESS_TIMEOUT_MS);
  });
  const answer = check().then(
    (result) =>
      result === true ? 'ok' : result === false ? 'unavailable' : `unavailable: ${result}`,
    () => 'unavailable',
  );
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ServerDeps {
  config: Pick<Config, 'auth'>;
  logger: Logger;
  metrics: Registry;
  readiness: Record<string, ReadinessCheck>;
  /** Route plugins of the services this process runs. */
  routes: FastifyPluginAsync[];
}

/**
 * The one HTTP server of a process: the routes of the services it runs, plus the
 * operational endpoints every process serves (/healthz, /readyz, /metrics).
 */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // Widened to fastify's logger type so plugins see the default instance type.
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One line per request would drown the log of an ingest service; metrics count them.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    // Answer a slow client with 408 rather than holding a socket forever.
    requestTimeout: 30_000,
  });
  // The API speaks JSON only: anything else is 415 rather than a string handed to a route.
  app.removeContentTypeParser('text/plain');
  // Routes declare zod schemas; requests and responses are checked against them.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  registerAuth(app, deps.config.auth);
  await registerOpenApi(app);

  app.get('/healthz', { schema: { summary: 'The process is up' } }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    { schema: { summary: 'Kafka and ClickHouse are reachable' } },
    async (_request, reply) => {
      const results = await Promise.all(
        Object.entries(deps.readiness).map(async ([name, check]) => [name, await runCheck(check)]),
      );
      const checks = Object.fromEntries(results);
      const ready = results.every(([, status]) => status === 'ok');
      if (!ready) reply.status(503).header('retry-after', '5');
      return { status: ready ? 'ready' : 'unavailable', checks };
    },
  );
  app.get('/metrics', { schema: { summary: 'Prometheus metrics' } }, async (_request, reply) => {
    reply.header('content-type', deps.metrics.contentType);
    return deps.metrics.metrics();
  });

  for (const routes of deps.routes) await app.register(routes);
  return app;
}
