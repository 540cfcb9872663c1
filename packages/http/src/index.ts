export { type Audience, audienceOf, checkBindSafety, isLoopback, registerAuth } from './auth.js';
export { registerErrorHandling, toTouchstreamError } from './errors.js';
export { buildServer, type ReadinessCheck, type ServerDeps } from './server.js';
