export { type ApiDeps, buildApi } from './api.js';
