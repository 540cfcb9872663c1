export * from './alert.js';
export * from './dropoff.js';
export * from './duration.js';
export * from './errors.js';
export * from './event.js';
export * from './funnel.js';
export * from './journey.js';
export * from './topics.js';
