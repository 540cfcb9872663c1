import { isIP } from 'node:net';
import type { Config } from '@touchstream/config';
import { TouchstreamError } from '@touchstream/contracts';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export type Audience = 'ingest' | 'query';

/**
 * The Segment-compatible ingestion routes (API.md, v1.1): for producers, who may send the key
 * the way Segment libraries send their write key, as the HTTP Basic user name.
 */
const SEGMENT_PATHS = new Set([
  '/v1/batch',
  '/v1/track',
  '/v1/identify',
  '/v1/page',
  '/v1/screen',
  '/v1/alias',
]);

const pathOf = (request: FastifyRequest) =>
  request.routeOptions.url ?? request.url.split('?')[0] ?? '';

/** `POST /v1/events` and the Segment routes are for producers; the rest of /v1 for readers. */
export function audienceOf(request: FastifyRequest): Audience | undefined {
  const path = pathOf(request);
  if (!path.startsWith('/v1/')) return undefined;
  return path === '/v1/events' || SEGMENT_PATHS.has(path) ? 'ingest' : 'query';
}

/**
 * The user name of `Authorization: Basic base64(user:password)`, or undefined. Segment
 * libraries send `base64(writeKey + ':')`: the password is empty and not read.
 */
export function basicUser(header: string | undefined): string | undefined {
  const match = header?.match(/^Basic\s+(\S+)\s*$/i);
  if (!match?.[1]) return undefined;
  const credentials = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  const user = colon < 0 ? credentials : credentials.slice(0, colon);
  return user.length > 0 ? user : undefined;
}

/** The key a request carries: a Bearer token, or on the Segment routes a Basic user name. */
function keyOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = header?.match(/^Bearer\s+(.+)$/i);
  if (match?.[1]) return match[1].trim();
  return SEGMENT_PATHS.has(pathOf(request)) ? basicUser(header) : undefined;
}

/**
 * A key list that is set guards its endpoints: no key or an unknown key is 401, a key
 * of the other list is 403. An unset list leaves its endpoints open.
 */
export function registerAuth(app: FastifyInstance, auth: Config['auth']) {
  const keys: Record<Audience, Set<string>> = {
    ingest: new Set(auth.ingestKeys),
    query: new Set(auth.queryKeys),
  };
  app.addHook('onRequest', async (request) => {
    const audience = audienceOf(request);
    if (!audience || keys[audience].size === 0) return;
    const key = keyOf(request);
    if (key !== undefined && keys[audience].has(key)) return;
    const other = audience === 'ingest' ? 'query' : 'ingest';
    if (key !== undefined && keys[other].has(key)) {
      throw new TouchstreamError('forbidden', `This key may not call ${audience} endpoints.`);
    }
    const how = SEGMENT_PATHS.has(pathOf(request))
      ? 'Send the write key as the HTTP Basic user name, or Authorization: Bearer <key>.'
      : 'Send Authorization: Bearer <key>.';
    throw new TouchstreamError('unauthorized', key === undefined ? how : 'The key is not known.');
  });
}

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost', 'ip6-loopback']);

export function isLoopback(host: string): boolean {
  if (LOOPBACK_NAMES.has(host)) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** Open endpoints are tolerable on loopback only: anywhere else the keys are mandatory. */
export function checkBindSafety(config: Pick<Config, 'http' | 'auth'>): 'keys' | 'open' {
  const { ingestKeys, queryKeys } = config.auth;
  if (ingestKeys.length > 0 && queryKeys.length > 0) return 'keys';
  if (isLoopback(config.http.host)) return 'open';
  throw new Error(
    `TOUCHSTREAM_HOST=${config.http.host} is not a loopback address: set TOUCHSTREAM_INGEST_KEYS and TOUCHSTREAM_QUERY_KEYS to serve it`,
  );
}
