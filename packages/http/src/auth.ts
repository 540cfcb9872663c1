import { isIP } from 'node:net';
import type { Config } from '@touchstream/config';
import { TouchstreamError } from '@touchstream/contracts';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export type Audience = 'ingest' | 'query';

/** `POST /v1/events` is for producers; everything else under /v1 is for readers. */
export function audienceOf(request: FastifyRequest): Audience | undefined {
  const path = request.routeOptions.url ?? request.url.split('?')[0] ?? '';
  if (!path.startsWith('/v1/')) return undefined;
  return path === '/v1/events' ? 'ingest' : 'query';
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = header?.match(/^Bearer\s+(.+)$/i);
  return match?.[1]?.trim();
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
    const key = bearer(request);
    if (key !== undefined && keys[audience].has(key)) return;
    const other = audience === 'ingest' ? 'query' : 'ingest';
    if (key !== undefined && keys[other].has(key)) {
      throw new TouchstreamError('forbidden', `This key may not call ${audience} endpoints.`);
    }
    throw new TouchstreamError(
      'unauthorized',
      key === undefined ? 'Send Authorization: Bearer <key>.' : 'The key is not known.',
    );
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
