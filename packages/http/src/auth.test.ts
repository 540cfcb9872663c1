import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { basicUser } from './auth.js';
import { buildServer } from './server.js';

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;

describe('basicUser', () => {
  it('reads the user name of Basic credentials, as Segment libraries send a write key', () => {
    expect(basicUser(basic('write-key:'))).toBe('write-key');
    expect(basicUser(basic('write-key:secret'))).toBe('write-key');
    expect(basicUser(basic('write-key'))).toBe('write-key');
    expect(basicUser(`basic  ${Buffer.from('k:').toString('base64')} `)).toBe('k');
  });

  it('is undefined for no Basic credentials or an empty user name', () => {
    expect(basicUser(undefined)).toBeUndefined();
    expect(basicUser('Bearer k')).toBeUndefined();
    expect(basicUser('Basic')).toBeUndefined();
    expect(basicUser('Basic ')).toBeUndefined();
    expect(basicUser(basic(':password'))).toBeUndefined();
    expect(basicUser('Basic a b')).toBeUndefined();
  });
});

describe('auth of the Segment-compatible routes', () => {
  const build = () =>
    buildServer({
      config: { auth: { ingestKeys: ['ingest-key'], queryKeys: ['query-key'], adminKeys: [] } },
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      readiness: {},
      routes: [
        async (app) => {
          for (const path of ['batch', 'track', 'identify', 'page', 'screen', 'alias', 'events']) {
            app.post(`/v1/${path}`, async () => ({ ok: true }));
          }
          app.get('/v1/journeys', async () => ({ journeys: [] }));
        },
      ],
    });

  it('are ingest endpoints that take the key as Basic user name or Bearer token', async () => {
    const app = await build();
    for (const path of ['batch', 'track', 'identify', 'page', 'screen', 'alias']) {
      const call = (authorization?: string) =>
        app.inject({
          method: 'POST',
          url: `/v1/${path}`,
          payload: {},
          headers: authorization ? { authorization } : {},
        });
      expect((await call(basic('ingest-key:'))).statusCode, path).toBe(200);
      expect((await call('Bearer ingest-key')).statusCode, path).toBe(200);
      expect((await call(basic('other:'))).statusCode, path).toBe(401);
      expect((await call()).statusCode, path).toBe(401);
      expect((await call(basic('query-key:'))).statusCode, path).toBe(403);
      expect((await call('Bearer query-key')).statusCode, path).toBe(403);
    }
  });

  it('takes Basic credentials nowhere else', async () => {
    const app = await build();
    const events = await app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: {},
      headers: { authorization: basic('ingest-key:') },
    });
    expect(events.statusCode).toBe(401);
    const journeys = await app.inject({
      url: '/v1/journeys',
      headers: { authorization: basic('query-key:') },
    });
    expect(journeys.statusCode).toBe(401);
  });
});

describe('auth of erasure (TOUCHSTREAM_ADMIN_KEYS)', () => {
  const build = (auth: { ingestKeys: string[]; queryKeys: string[]; adminKeys: string[] }) =>
    buildServer({
      config: { auth },
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      readiness: {},
      routes: [
        async (app) => {
          app.delete('/v1/customers/:customer_id', async (_request, reply) =>
            reply.code(202).send({ ok: true }),
          );
          app.get('/v1/customers/:customer_id', async () => ({ ok: true }));
          app.get('/v1/erasures/:erasure_id', async () => ({ ok: true }));
        },
      ],
    });
  const keys = { ingestKeys: ['ingest-key'], queryKeys: ['query-key'], adminKeys: ['admin-key'] };
  const call = async (
    app: Awaited<ReturnType<typeof build>>,
    method: 'GET' | 'DELETE',
    url: string,
    key?: string,
  ) =>
    (
      await app.inject({
        method,
        url,
        headers: key ? { authorization: `Bearer ${key}` } : {},
      })
    ).statusCode;

  it('erases with an admin key only: no key or an unknown one 401, another list’s 403', async () => {
    const app = await build(keys);
    expect(await call(app, 'DELETE', '/v1/customers/c1', 'admin-key')).toBe(202);
    expect(await call(app, 'DELETE', '/v1/customers/c1')).toBe(401);
    expect(await call(app, 'DELETE', '/v1/customers/c1', 'nope')).toBe(401);
    expect(await call(app, 'DELETE', '/v1/customers/c1', 'query-key')).toBe(403);
    expect(await call(app, 'DELETE', '/v1/customers/c1', 'ingest-key')).toBe(403);
  });

  it('refuses erasure with 403 when key lists are set and admin keys are not', async () => {
    for (const auth of [
      { ...keys, adminKeys: [] },
      { ingestKeys: ['ingest-key'], queryKeys: [], adminKeys: [] },
    ]) {
      const app = await build(auth);
      expect(await call(app, 'DELETE', '/v1/customers/c1')).toBe(403);
      expect(await call(app, 'DELETE', '/v1/customers/c1', 'query-key')).toBe(403);
      expect(await call(app, 'DELETE', '/v1/customers/c1', 'ingest-key')).toBe(403);
    }
  });

  it('is open with no keys at all (loopback open mode)', async () => {
    const app = await build({ ingestKeys: [], queryKeys: [], adminKeys: [] });
    expect(await call(app, 'DELETE', '/v1/customers/c1')).toBe(202);
    expect(await call(app, 'GET', '/v1/erasures/e1')).toBe(200);
  });

  it('admin keys open erasure only: no other endpoint, but an erasure’s status', async () => {
    const app = await build(keys);
    expect(await call(app, 'GET', '/v1/erasures/e1', 'admin-key')).toBe(200);
    expect(await call(app, 'GET', '/v1/erasures/e1', 'query-key')).toBe(200);
    expect(await call(app, 'GET', '/v1/erasures/e1', 'ingest-key')).toBe(403);
    expect(await call(app, 'GET', '/v1/erasures/e1')).toBe(401);
    expect(await call(app, 'GET', '/v1/customers/c1', 'admin-key')).toBe(403);
    expect(await call(app, 'GET', '/v1/customers/c1', 'query-key')).toBe(200);
  });
});
