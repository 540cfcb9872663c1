export * from './alert-counts.js';
export * from './alert-history.js';
export * from './alert-rules.js';
export { classifyClickHouseError, type ErrorClass, refusesRows } from './clickhouse-errors.js';
export { createStore, type Store } from './client.js';
export * from './dead-letters.js';
export {
  type DropoffCounts,
  type DropoffTransition,
  queryDropoffs,
  type Ratings,
} from './dropoffs.js';
export * from './erasures.js';
export * from './events.js';
export * from './funnels.js';
export * from './identities.js';
export { type CorrelationCount, type InsightCounts, queryInsights } from './insights.js';
export * from './journey-facts.js';
export * from './journey-state.js';
export * from './journeys.js';
export { type Migration, migrate, readMigrations } from './migrate.js';
export { ON_DISK } from './patch-deletes.js';
export {
  applyPropertyColumns,
  NO_PROPERTY_COLUMNS,
  type PropertyColumns,
  propertyColumn,
} from './property-columns.js';
export {
  applyRetention,
  planRetention,
  RETENTION_COLUMNS,
  type RetentionChange,
  type RetentionTable,
} from './retention.js';
export * from './review-posts.js';
export { TableWriter, type TableWriterOptions } from './table-writer.js';
export { createWriters, type EventRow, type WriterHooks, type Writers } from './writers.js';
