import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { detailsFromIssues, TouchstreamError } from '@touchstream/contracts';
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

// Fastify's own rejections of a request, as the contract's coded errors.
const FASTIFY_CODES: Record<string, () => TouchstreamError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () =>
    new TouchstreamError('payload_too_large', 'The request body is larger than allowed.'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new TouchstreamError('unsupported_media_type', 'Send the body as application/json.'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () =>
    new TouchstreamError('invalid_request', 'The Content-Length header does not match the body.'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    new TouchstreamError('invalid_json', 'The body is empty; send a JSON document.'),
  FST_ERR_CTP_INVALID_JSON_BODY: () =>
    new TouchstreamError('invalid_json', 'The body is not valid JSON.'),
  // Path problems found before routing; the path is not echoed back.
  FST_ERR_MAX_PARAM_LENGTH: () =>
    new TouchstreamError('invalid_request', 'A segment of the path is longer than allowed.'),
  FST_ERR_BAD_URL: () =>
    new TouchstreamError('invalid_request', 'The path is not validly percent-encoded.'),
  FST_CP_ERR_INVALID_CONTENT_ENCODING: () =>
    new TouchstreamError(
      'unsupported_media_type',
      'Send the body plain, or with Content-Encoding gzip or deflate.',
    ),
  FST_CP_ERR_INVALID_CONTENT: () =>
    new TouchstreamError(
      'invalid_request',
      'The body could not be decompressed with its Content-Encoding.',
    ),
};

/**
 * Answers what Node's HTTP parser refuses before fastify sees a request (headers too large,
 * a malformed request line, a client too slow to send it) with the error object too.
 */
export function answerClientError(error: { code?: string }, socket: Duplex) {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const refusal =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new TouchstreamError('headers_too_large', 'The request headers are larger than allowed.')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new TouchstreamError('request_timeout', 'The request was not received in time.')
        : new TouchstreamError('invalid_request', 'The request could not be parsed as HTTP.');
  const body = JSON.stringify(refusal.toBody());
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Maps any thrown error to the contract's error object; a 5xx only for our own faults. */
export function toTouchstreamError(error: unknown): TouchstreamError {
  if (error instanceof TouchstreamError) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((v) => ({
      // An unknown field is named in the path, like any other field.
      path: [
        ...v.instancePath.split('/').filter((part) => part.length > 0),
        ...((v.params as { keys?: string[] }).keys ?? []).slice(0, 1),
      ],
      message: v.message ?? 'is invalid',
    }));
    const where = (error as { validationContext?: string }).validationContext ?? 'request';
    // Batch endpoints name the failing item by index, as `events.3.timestamp`; the count is
    // of what is listed, one detail per field.
    const details = detailsFromIssues(issues, 'events');
    return new TouchstreamError(
      'invalid_request',
      `The ${where} is invalid: ${details.length === 1 ? 'one problem' : `${details.length} problems`}.`,
      details,
    );
  }
  const fastifyError = error as Partial<FastifyError>;
  const known = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (known) return known();
  if (error instanceof SyntaxError || fastifyError.statusCode === 400) {
    return new TouchstreamError('invalid_json', 'The body is not valid JSON.');
  }
  if (fastifyError.statusCode === 413) {
    return new TouchstreamError('payload_too_large', 'The request body is larger than allowed.');
  }
  if (fastifyError.statusCode === 415) {
    return new TouchstreamError('unsupported_media_type', 'Send the body as application/json.');
  }
  return new TouchstreamError('internal_error', 'Something went wrong on our side.');
}

export function registerErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((error, request, reply) => {
    const mapped = toTouchstreamError(error);
    // A 503 is a dependency's state, logged where it is met; a 500 is our bug.
    if (mapped.code === 'internal_error') request.log.error({ err: error }, 'request_failed');
    if (mapped.retryAfter !== undefined) reply.header('retry-after', String(mapped.retryAfter));
    return reply.status(mapped.status).send(mapped.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new TouchstreamError('not_found', `No route ${request.method} ${request.url}.`);
    return reply.status(404).send(error.toBody());
  });
}
