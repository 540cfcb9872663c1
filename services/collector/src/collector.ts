import rateLimit from '@fastify/rate-limit';
import { type Bus, BusUnavailableError } from '@touchstream/bus';
import {
  correctSkew,
  DEFAULT_MAX_FUTURE_MS,
  type ErrorDetail,
  encodeTouchpoint,
  eventTimeProblem,
  ingestRequest,
  ingestResponse,
  type TopicNames,
  type Touchpoint,
  TouchstreamError,
} from '@touchstream/contracts';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Counter, Histogram, type Registry } from 'prom-client';
import { registerSegmentRoutes } from './segment.js';

export interface CollectorDeps {
  bus: Bus;
  topics: Pick<TopicNames, 'touchpoints'>;
  metrics: Registry;
  /** How far ahead of the receiving clock an event time may be (TOUCHSTREAM_MAX_FUTURE). */
  maxFutureMs?: number;
  /** Wall clock, in epoch milliseconds. */
  now?: () => number;
  /** Requests per window per key (or per address when keys are off). */
  rateLimit?: { max: number; windowMs: number };
}

/** Generous for producers that batch, tight enough to stop one runaway client. */
export const DEFAULT_RATE_LIMIT = { max: 1_000, windowMs: 1_000 };

/**
 * Who a request counts against: its key, sent as a Bearer token or, as Segment libraries send
 * their write key, as the HTTP Basic user name; else its address.
 */
export function clientKey(request: Pick<FastifyRequest, 'headers' | 'ip'>): string {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return `key:${header.slice(7).trim()}`;
  const basic = header?.match(/^Basic\s+(\S+)\s*$/i)?.[1];
  if (basic) {
    const user = Buffer.from(basic, 'base64').toString('utf8').split(':', 1)[0];
    if (user) return `key:${user}`;
  }
  return `ip:${request.ip}`;
}

/**
 * `POST /v1/events`: validates a whole batch, publishes it keyed by customer, and answers
 * 202 only once the bus holds it durably. Nothing of an invalid batch is published. The
 * Segment-compatible routes (`POST /v1/batch`, `/v1/track`, ...) publish the same way.
 */
export function buildCollector(deps: CollectorDeps) {
  const accepted = new Counter({
    name: 'touchstream_collector_events_accepted_total',
    help: 'Events answered with 202.',
    registers: [deps.metrics],
  });
  const requests = new Counter({
    name: 'touchstream_collector_requests_total',
    help: 'Ingest requests by HTTP status.',
    labelNames: ['status'],
    registers: [deps.metrics],
  });
  const publishSeconds = new Histogram({
    name: 'touchstream_collector_publish_seconds',
    help: 'Time for the bus to durably accept one request’s events.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [deps.metrics],
  });
  let stopping = false;
  const now = deps.now ?? Date.now;

  /**
   * Publishes validated events keyed by customer; resolves once the bus holds them durably.
   * Shared by every ingest route, so all answer a bus that cannot take them alike.
   */
  async function publish(request: FastifyRequest, events: Touchpoint[]) {
    if (stopping) {
      throw new TouchstreamError('unavailable', 'The collector is shutting down.', [], 1);
    }
    if (events.length === 0) return;
    const timer = publishSeconds.startTimer();
    try {
      await deps.bus.publish(
        deps.topics.touchpoints,
        events.map((event) => ({ ...encodeTouchpoint(event), decoded: event })),
      );
    } catch (error) {
      if (!(error instanceof BusUnavailableError)) throw error;
      request.log.warn({ err: error }, 'publish_unavailable');
      throw new TouchstreamError(
        'unavailable',
        'The events could not all be stored durably now. Retry the whole batch later: event ids make a retry safe.',
        [],
        1,
      );
    } finally {
      timer();
    }
  }

  const routes: FastifyPluginAsync = async (app) => {
    const limit = deps.rateLimit ?? DEFAULT_RATE_LIMIT;
    await app.register(rateLimit, {
      max: limit.max,
      timeWindow: limit.windowMs,
      keyGenerator: clientKey,
      errorResponseBuilder: (_request, context) =>
        new TouchstreamError(
          'rate_limited',
          `More than ${context.max} requests in ${context.after}; slow down.`,
          [],
          Math.max(1, Math.ceil(context.ttl / 1000)),
        ),
    });
    app.addHook('onResponse', async (_request, reply) => {
      requests.inc({ status: String(reply.statusCode) });
    });

    app.withTypeProvider<ZodTypeProvider>().post(
      '/v1/events',
      {
        schema: {
          summary: 'Ingest touchpoint events (all or nothing)',
          body: ingestRequest,
          response: { 202: ingestResponse },
        },
      },
      async (request, reply) => {
        if (stopping) {
          throw new TouchstreamError('unavailable', 'The collector is shutting down.', [], 1);
        }
        const events = withEventTimes(
          request.body,
          now(),
          deps.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS,
        );
        await publish(request, events);
        accepted.inc(events.length);
        return reply.status(202).send({ accepted: events.length });
      },
    );

    registerSegmentRoutes(app, {
      metrics: deps.metrics,
      now,
      maxFutureMs: deps.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS,
      publish,
    });
  };

  return {
    routes,
    async stop() {
      stopping = true;
    },
  };
}

/**
 * The batch's events with their times corrected by the client's clock skew, or a 400 naming
 * every event dated too far ahead: all or nothing, like the schema's own checks.
 */
function withEventTimes(
  body: { events: Touchpoint[]; sent_at?: number },
  receivedAt: number,
  maxFutureMs: number,
): Touchpoint[] {
  const details: ErrorDetail[] = [];
  const events = body.events.map((event, index) => {
    const timestamp = correctSkew(event.timestamp, body.sent_at, receivedAt);
    const problem = eventTimeProblem(timestamp, { now: receivedAt, maxFutureMs });
    if (problem) {
      const corrected = body.sent_at === undefined ? '' : ', corrected by the client clock skew,';
      details.push({ index, path: 'timestamp', message: `the event time${corrected} ${problem}` });
    }
    return timestamp === event.timestamp ? event : { ...event, timestamp };
  });
  if (details.length > 0) {
    throw new TouchstreamError(
      'invalid_request',
      'Some event times cannot be taken: check the sending clock.',
      details,
    );
  }
  return events;
}
