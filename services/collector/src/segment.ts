/**
 * The Segment-compatible routes (API.md, v1.1): `POST /v1/batch` and the single-message
 * routes take the Segment HTTP Tracking API's shapes, so a service instrumented with a
 * Segment library sends here by changing only its host. Every message becomes a touchpoint
 * held to the rules of POST /v1/events, and a batch is taken all or nothing.
 */
import {
  detailsFromIssues,
  type ErrorDetail,
  type Touchpoint,
  TouchstreamError,
} from '@touchstream/contracts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Counter, type Registry } from 'prom-client';
import type { z } from 'zod';
import {
  type BatchContext,
  type DropReason,
  type MappedBatch,
  mapSegmentBatch,
  type SegmentMessage,
  SINGLE_MESSAGE_TYPES,
  segmentBatchRequest,
  segmentResponse,
  singleMessage,
} from './segment-mapping.js';

export interface SegmentRouteDeps {
  metrics: Registry;
  /** Wall clock, epoch milliseconds. */
  now: () => number;
  maxFutureMs: number;
  /**
   * Publishes validated events as POST /v1/events does: 503 when the bus cannot hold them
   * or the collector is stopping (also for a batch with no event to store).
   */
  publish: (request: FastifyRequest, events: Touchpoint[]) => Promise<void>;
}

const AUTH_NOTE =
  'Auth: the ingest key as the HTTP Basic user name, as Segment libraries send their write key ' +
  '(`Authorization: Basic base64(key + ":")`), or `Authorization: Bearer <key>`.';

/** The route's answer to a body its schema refuses: the same issues, as the error object. */
function refused(schema: z.ZodType, body: unknown, single: boolean): TouchstreamError {
  const result = schema.safeParse(body);
  const issues = result.success ? [] : result.error.issues;
  const details = single
    ? detailsFromIssues(issues).map((detail) => ({ index: 0, ...detail }))
    : detailsFromIssues(issues, 'batch');
  return invalid(
    details.length > 0
      ? details
      : [{ path: '', message: 'does not match the Segment HTTP Tracking API' }],
    single,
  );
}

const invalid = (details: ErrorDetail[], single: boolean) =>
  new TouchstreamError(
    'invalid_request',
    `The ${single ? 'message' : 'batch'} is invalid: ${details.length === 1 ? 'one problem' : `${details.length} problems`}; nothing of it is stored.`,
    details,
  );

export function registerSegmentRoutes(app: FastifyInstance, deps: SegmentRouteDeps) {
  const stored = new Counter({
    name: 'touchstream_collector_segment_messages_stored_total',
    help: 'Segment messages taken and published as touchpoint events, by Segment call.',
    labelNames: ['type'],
    registers: [deps.metrics],
  });
  const skipped = new Counter({
    name: 'touchstream_collector_segment_messages_skipped_total',
    help: 'Segment messages taken and not stored (calls with no mapping: group), by call.',
    labelNames: ['type'],
    registers: [deps.metrics],
  });
  const dropped = new Counter({
    name: 'touchstream_collector_segment_properties_dropped_total',
    help: 'Properties or traits of taken Segment messages left out of their event, by reason: array, nested (deeper than one level), over_limit (past 50), invalid_key, duplicate (a flattened name taken).',
    labelNames: ['reason'],
    registers: [deps.metrics],
  });
  const truncated = new Counter({
    name: 'touchstream_collector_segment_values_truncated_total',
    help: 'String property values of taken Segment messages cut to 1024 characters.',
    registers: [deps.metrics],
  });

  async function take(
    request: FastifyRequest,
    messages: readonly SegmentMessage[],
    batch: BatchContext,
    single: boolean,
  ) {
    const mapped: MappedBatch = mapSegmentBatch(messages, batch, {
      receivedAt: deps.now(),
      maxFutureMs: deps.maxFutureMs,
    });
    if (!mapped.ok) throw invalid(mapped.details, single);
    await deps.publish(request, mapped.events);
    for (const [type, n] of Object.entries(mapped.stored)) stored.inc({ type }, n);
    for (const [type, n] of Object.entries(mapped.skipped)) skipped.inc({ type }, n);
    for (const [reason, n] of Object.entries(mapped.counts.dropped) as [DropReason, number][]) {
      if (n > 0) dropped.inc({ reason }, n);
    }
    if (mapped.counts.truncated > 0) truncated.inc(mapped.counts.truncated);
  }

  const routes = app.withTypeProvider<ZodTypeProvider>();
  routes.post(
    '/v1/batch',
    {
      // The handler names a refused message by its index in the batch.
      attachValidation: true,
      schema: {
        summary: 'Ingest Segment messages (Segment HTTP Tracking API batch; all or nothing)',
        description: `Each message becomes a touchpoint event: messageId -> event_id, userId -> customer_id, anonymousId -> anonymous_id; see API.md. group messages are taken and not stored. ${AUTH_NOTE}`,
        body: segmentBatchRequest,
        response: { 200: segmentResponse },
      },
    },
    async (request, reply) => {
      if (request.validationError) throw refused(segmentBatchRequest, request.body, false);
      const body = request.body;
      await take(request, body.batch, { sentAt: body.sentAt, context: body.context }, false);
      return reply.status(200).send({ success: true });
    },
  );

  for (const type of SINGLE_MESSAGE_TYPES) {
    const schema = singleMessage(type);
    routes.post(
      `/v1/${type}`,
      {
        attachValidation: true,
        schema: {
          summary: `Ingest one Segment ${type} message`,
          description: `The message of a Segment HTTP Tracking API ${type} call, \`type\` implied. ${AUTH_NOTE}`,
          body: schema,
          response: { 200: segmentResponse },
        },
      },
      async (request, reply) => {
        if (request.validationError) throw refused(schema, request.body, true);
        const message = { ...request.body, type } as SegmentMessage;
        await take(request, [message], {}, true);
        return reply.status(200).send({ success: true });
      },
    );
  }
}
