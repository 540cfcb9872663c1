import type { Config } from '@touchstream/config';
import { MAX_BODY_BYTES } from '@touchstream/contracts';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  LogController,
} from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerAuth } from './auth.js';
import { registerErrorHandling } from './errors.js';

/** A dependency that must be reachable for the process to be ready. */
export type ReadinessCheck = () => Promise<boolean>;

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

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const results = await Promise.all(
      Object.entries(deps.readiness).map(async ([name, check]) => {
        const ok = await check().catch(() => false);
        return [name, ok ? 'ok' : 'unavailable'] as const;
      }),
    );
    const checks = Object.fromEntries(results);
    const ready = results.every(([, status]) => status === 'ok');
    if (!ready) reply.status(503).header('retry-after', '5');
    return { status: ready ? 'ready' : 'unavailable', checks };
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', deps.metrics.contentType);
    return deps.metrics.metrics();
  });

  for (const routes of deps.routes) await app.register(routes);
  return app;
}
