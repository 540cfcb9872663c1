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

/**
 * ClickHouse error types about the rows an insert carries, not about the server or the
 * table: the same rows fail the same way however often they are sent, while other rows
 * would go in. Only these make the processor look for the rows at fault.
 */
const ROW_TYPES = new Set([
  'INCORRECT_DATA',
  'TOO_LARGE_STRING_SIZE',
  'CANNOT_READ_ALL_DATA',
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
  'ATTEMPT_TO_READ_AFTER_EOF',
  'INCORRECT_JSON',
]);

/** True when ClickHouse refused the insert for what some of its rows hold. */
export function refusesRows(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' && (type.startsWith('CANNOT_PARSE') || ROW_TYPES.has(type));
}

/**
 * What a query limit of ours says when ClickHouse stopped a query for it, or undefined for
 * any other error: the query was too heavy (or the server too busy), not a fault.
 */
export function queryLimitReason(error: unknown): string | undefined {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? QUERY_LIMITS[type] : undefined;
}

const QUERY_LIMITS: Record<string, string> = {
  TIMEOUT_EXCEEDED: 'took longer than the time limit',
  MEMORY_LIMIT_EXCEEDED: 'needed more memory than allowed',
  TOO_MANY_ROWS_OR_BYTES: 'read more data than allowed',
};
