export { BatchWriter, type BatchWriterOptions } from './batch-writer.js';
export { classifyClickHouseError } from './clickhouse-errors.js';
export { JourneyTracker, type JourneyTrackerDeps } from './journey-tracker.js';
export { buildProcessor, type ProcessorDeps } from './processor.js';
