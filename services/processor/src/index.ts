export { JourneyTracker, type JourneyTrackerDeps } from './journey-tracker.js';
export { buildProcessor, type ProcessorDeps } from './processor.js';
