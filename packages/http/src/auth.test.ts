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
