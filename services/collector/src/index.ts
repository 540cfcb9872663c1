export { buildCollector, type CollectorDeps, DEFAULT_RATE_LIMIT } from './collector.js';
export {
  DEFAULT_CHANNEL,
  EVENT_TYPE_OF,
  mapSegmentBatch,
  mapSegmentMessage,
  SEGMENT_TYPES,
  type SegmentMessage,
  segmentBatchRequest,
  segmentMessage,
  toToken,
} from './segment-mapping.js';
