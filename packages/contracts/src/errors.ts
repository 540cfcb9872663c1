import { z } from 'zod';

/** Every error code the HTTP API answers with, and its status. */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_json: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  request_timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  headers_too_large: 431,
  rate_limited: 429,
  internal_error: 500,
  unavailable: 503,
  query_limit_exceeded: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const errorDetail = z.object({
  index: z.number().int().optional(),
  path: z.string(),
  message: z.string(),
});
export type ErrorDetail = z.infer<typeof errorDetail>;

export const errorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(errorDetail),
  }),
});
export type ErrorResponse = z.infer<typeof errorResponse>;

/** An error meant for the client: its code, status and message are safe to show. */
export class TouchstreamError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
    /** Seconds after which a retry may succeed (sent as `Retry-After`). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'TouchstreamError';
    this.status = ERROR_STATUS[code];
  }

  toBody(): ErrorResponse {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

/**
 * One detail per faulty field, with its first complaint; `index` is lifted out of paths
 * like `events.3.timestamp`.
 */
export function detailsFromIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  indexedUnder?: string,
): ErrorDetail[] {
  const seen = new Set<string>();
  return issues.flatMap((issue) => {
    const key = issue.path.map(String).join('.');
    if (seen.has(key)) return [];
    seen.add(key);
    return [detailOf(issue, indexedUnder)];
  });
}

function detailOf(
  issue: { path: readonly PropertyKey[]; message: string },
  indexedUnder?: string,
): ErrorDetail {
  const path = issue.path.map(String);
  if (indexedUnder && path[0] === indexedUnder && /^\d+$/.test(path[1] ?? '')) {
    return { index: Number(path[1]), path: path.slice(2).join('.'), message: issue.message };
  }
  return { path: path.join('.'), message: issue.message };
}
