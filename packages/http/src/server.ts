import fastifyCompress from '@fastify/compress';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { Config } from '@touchstream/config';
import { errorResponse, MAX_BODY_BYTES, TouchstreamError } from '@touchstream/contracts';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
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
import secureJson from 'secure-json-parse';
import { z } from 'zod';
import { registerAuth } from './auth.js';
import { answerClientError, registerErrorHandling, toTouchstreamError } from './errors.js';

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
 * fastify's own JSON parsing, with its answers kept: its default parser reports a
 * prototype-poisoning key as "not valid JSON", which it is; the client should hear what
 * is refused instead.
 */
function parseJsonBody(
  _request: unknown,
  body: string | Buffer,
  done: (error: Error | null, value?: unknown) => void,
) {
  const text = body.toString();
  if (text.trim() === '') {
    done(new TouchstreamError('invalid_json', 'The body is empty; send a JSON document.'));
    return;
  }
  try {
    done(
      null,
      secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }),
    );
  } catch (error) {
    done(
      error instanceof SyntaxError && /forbidden prototype property/.test(error.message)
        ? new TouchstreamError(
            'invalid_request',
            'The body holds a "__proto__" or "constructor" key, which is refused.',
          )
        : new TouchstreamError('invalid_json', 'The body is not valid JSON.'),
    );
  }
}

/**
 * A dependency that must be reachable for the process to be ready: true when it is, false or
 * a sentence saying what is wrong when it is not.
 */
export type ReadinessCheck = () => Promise<boolean | string>;

/**
 * A check that has not answered by then is unavailable: a probe (often with a 1 s timeout)
 * must get its answer while a dependency is down, not wait on the client's retries.
 */
const READINESS_TIMEOUT_MS = 800;

async function runCheck(check: ReadinessCheck): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(
      () => resolve(`unavailable: no answer within ${READINESS_TIMEOUT_MS} ms`),
      READINESS_TIMEOUT_MS,
    );
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
    // What is refused before a route is found gets the error object like everything else.
    frameworkErrors: (error, _request, reply) => {
      const mapped = toTouchstreamError(error);
      (reply as FastifyReply).status(mapped.status).send(mapped.toBody());
    },
    clientErrorHandler: answerClientError,
  });
  // The API speaks JSON only: anything else is 415 rather than a string handed to a route.
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);
  // Routes declare zod schemas; requests and responses are checked against them.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  // SDKs compress their batches (Segment's and PostHog's do). The body limit counts the
  // decompressed bytes, so a small body that inflates past it is a 413: no bomb gets in.
  // Large answers (funnels, metrics) go back compressed to clients that ask for it.
  await app.register(fastifyCompress, { requestEncodings: ['gzip', 'deflate'] });
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
