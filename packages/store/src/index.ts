export { createStore, type Store } from './client.js';
export * from './dead-letters.js';
export * from './events.js';
export { type Migration, migrate, readMigrations } from './migrate.js';
