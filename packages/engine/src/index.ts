export { toEngineJourney } from './journey.js';
export { matches } from './match.js';
export {
  type PartitionChanges,
  PartitionEngine,
  type PartitionEngineOptions,
  type PartitionMeta,
} from './partition-engine.js';
export * from './types.js';
