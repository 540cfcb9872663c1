export { buildCollector, type CollectorDeps, DEFAULT_RATE_LIMIT } from './collector.js';
