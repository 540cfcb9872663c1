/**
 * ClickHouse error types worth retrying as they are: the server was busy, slow or
 * briefly unreachable. Anything else from ClickHouse (a type mismatch, a syntax error,
 * an unknown table) fails the same way again until someone changes something.
 */
const TRANSIENT_TYPES = new Set([
  'TIMEOUT_EXCEEDED',
  'TOO_MANY_SIMULTANEOUS_QUERIES',
  'TOO_MANY_PARTS',
  'MEMORY_LIMIT_EXCEEDED',
  'NETWORK_ERROR',
  'SOCKET_TIMEOUT',
  'ALL_CONNECTION_TRIES_FAILED',
  'KEEPER_EXCEPTION',
  'TABLE_IS_READ_ONLY',
  'ABORTED',
  'QUERY_WAS_CANCELLED',
  'SERVER_OVERLOADED',
  'CANNOT_ALLOCATE_MEMORY',
]);

export type ErrorClass = 'transient' | 'permanent';

/** Errors without a ClickHouse type are the transport's (refused, reset, timed out): transient. */
export function classifyClickHouseError(error: unknown): ErrorClass {
  const type = (error as { type?: unknown } | null)?.type;
  if (typeof type !== 'string') return 'transient';
  return TRANSIENT_TYPES.has(type) ? 'transient' : 'permanent';
}
