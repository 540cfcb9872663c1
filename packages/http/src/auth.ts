import { isIP } from 'node:net';
import type { Config } from '@touchstream/config';
import { TouchstreamError } from '@touchstream/contracts';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export type Audience = 'ingest' | 'query' | 'admin';

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

/** Erasure status: a reader's, and the admin who asked for it may follow it too. */
const ERASURE_STATUS_PATH = '/v1/erasures/:erasure_id';

/**
 * `POST /v1/events` and the Segment routes are for producers; erasing a customer is for
 * admins (API.md, TOUCHSTREAM_ADMIN_KEYS); the rest of /v1 for readers.
 */
export function audienceOf(request: FastifyRequest): Audience | undefined {
  const path = pathOf(request);
  if (!path.startsWith('/v1/')) return undefined;
  if (path === '/v1/events' || SEGMENT_PATHS.has(path)) return 'ingest';
  if (request.method === 'DELETE' && path.startsWith('/v1/customers/')) return 'admin';
  return 'query';
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
 * of another list is 403. An unset list leaves its endpoints open, except erasure: when
 * any key list is set, erasing needs an admin key, and with no admin keys set nobody may
 * erase (403); with no keys at all (loopback only) it is open like everything else.
 * An erasure's status is a reader's endpoint that an admin key may read as well.
 */
export function registerAuth(app: FastifyInstance, auth: Config['auth']) {
  const keys: Record<Audience, Set<string>> = {
    ingest: new Set(auth.ingestKeys),
    query: new Set(auth.queryKeys),
    admin: new Set(auth.adminKeys),
  };
  const anyKeys = keys.ingest.size + keys.query.size + keys.admin.size > 0;
  app.addHook('onRequest', async (request) => {
    const audience = audienceOf(request);
    if (!audience) return;
    const key = keyOf(request);
    if (audience === 'admin') {
      if (!anyKeys) return;
      if (keys.admin.size === 0) {
        throw new TouchstreamError(
          'forbidden',
          'Erasure is off: set TOUCHSTREAM_ADMIN_KEYS to allow it.',
        );
      }
    } else if (keys[audience].size === 0) {
      return;
    }
    if (key !== undefined && keys[audience].has(key)) return;
    if (key !== undefined && keys.admin.has(key) && isErasureStatus(request)) return;
    const other = (['ingest', 'query', 'admin'] as const).find(
      (list) => list !== audience && key !== undefined && keys[list].has(key),
    );
    if (other) {
      throw new TouchstreamError('forbidden', `This key may not call ${audience} endpoints.`);
    }
    const how = SEGMENT_PATHS.has(pathOf(request))
      ? 'Send the write key as the HTTP Basic user name, or Authorization: Bearer <key>.'
      : 'Send Authorization: Bearer <key>.';
    throw new TouchstreamError('unauthorized', key === undefined ? how : 'The key is not known.');
  });
}

const isErasureStatus = (request: FastifyRequest) => pathOf(request) === ERASURE_STATUS_PATH;

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
