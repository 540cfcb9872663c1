/** The contract's limits for one `POST /v1/events`, under the names the SDK gave them. */
export {
  MAX_BODY_BYTES as MAX_BYTES_PER_REQUEST,
  MAX_EVENTS_PER_REQUEST,
} from '@touchstream/contracts';
export * from './backoff.js';
export * from './client.js';
export * from './errors.js';
export {
  DEFAULT_IDENTIFY_CHANNEL,
  IDENTIFIED_EVENT_TYPE,
  type IdentifyOptions,
  type Visitor,
  type VisitorEvent,
  type VisitorOptions,
} from './visitor.js';
