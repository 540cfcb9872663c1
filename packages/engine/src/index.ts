export { toEngineJourney } from './journey.js';
export { matches } from './match.js';
export {
  type PartitionChanges,
  PartitionEngine,
  type PartitionEngineOptions,
  type PartitionMeta,
} from './partition-engine.js';
export { type Recomputed, recomputeCustomer } from './recompute.js';
export * from './types.js';
