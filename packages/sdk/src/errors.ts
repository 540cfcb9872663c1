/**
 * Why events did not reach Touchstream:
 * - `rejected`: the server refused the batch for good (400, 401, 403, 413, ...); never retried.
 * - `gave_up`: retries went on past `maxRetryDurationMs`, or `close()` ran out of time.
 * - `buffer_full`: `track` refused the event because the buffer is at `maxBufferedEvents`.
 * - `invalid_event`: `track` refused the event because it breaks the contract.
 * - `closed`: `track` was called after `close()`.
 * - `identity_conflict`: a visitor's `identify` named another customer than the one it is
 *   already identified as; its `identified` event was not sent.
 */
export type DeliveryErrorKind =
  | 'rejected'
  | 'gave_up'
  | 'buffer_full'
  | 'invalid_event'
  | 'closed'
  | 'identity_conflict';

export interface ErrorDetail {
  index?: number;
  path: string;
  message: string;
}

export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  readonly kind: DeliveryErrorKind;
  /** HTTP status of the last answer, when there was one. */
  readonly status: number | undefined;
  /** The error code of the answer (`{"error": {"code"}}`), or of the last network failure. */
  readonly code: string | undefined;
  readonly details: ErrorDetail[];
  /** The events concerned, as they were (or would have been) sent. */
  readonly events: readonly unknown[];

  constructor(
    kind: DeliveryErrorKind,
    message: string,
    init: {
      status?: number;
      code?: string;
      details?: ErrorDetail[];
      events?: readonly unknown[];
      cause?: unknown;
    } = {},
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = kind;
    this.status = init.status;
    this.code = init.code;
    this.details = init.details ?? [];
    this.events = init.events ?? [];
  }
}
