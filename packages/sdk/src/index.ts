export {
  type BackoffPolicy,
  DEFAULT_BACKOFF,
  isRetryableStatus,
  parseRetryAfter,
  retryDelay,
} from './backoff.js';
export {
  type ClientOptions,
  type ClientStats,
  createTouchstreamClient,
  MAX_BYTES_PER_REQUEST,
  MAX_EVENTS_PER_REQUEST,
  type TouchstreamClient,
  type TrackedEvent,
} from './client.js';
export { DeliveryError, type DeliveryErrorKind, type ErrorDetail } from './errors.js';
