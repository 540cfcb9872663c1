export * from './bus.js';
export { createEmbeddedBus, type EmbeddedBusOptions } from './embedded-bus.js';
export { type BusLogger, createKafkaBus, type KafkaBusOptions } from './kafka-bus.js';
export { type Backoff, DEFAULT_BACKOFF } from './retry.js';
export { DEFAULT_STALL_AFTER_MS, type PartitionStall } from './stall-watch.js';
