export { createStore, type Store } from './client.js';
export * from './dead-letters.js';
export { queryDropoffs } from './dropoffs.js';
export * from './events.js';
export * from './journey-facts.js';
export * from './journey-state.js';
export * from './journeys.js';
export { type Migration, migrate, readMigrations } from './migrate.js';
