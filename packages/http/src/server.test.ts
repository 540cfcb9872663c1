import { deflateSync, gzipSync } from 'node:zlib';
import { TouchstreamError } from '@touchstream/contracts';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { checkBindSafety } from './auth.js';
import { buildServer } from './server.js';

const build = (
  overrides: {
    ingestKeys?: string[];
    queryKeys?: string[];
    ready?: boolean | string;
    readyAfterMs?: number;
  } = {},
) =>
  buildServer({
    config: {
      auth: {
        ingestKeys: overrides.ingestKeys ?? [],
        queryKeys: overrides.queryKeys ?? [],
        adminKeys: [],
      },
    },
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    readiness: {
      store: async () => {
        if (overrides.readyAfterMs) await new Promise((r) => setTimeout(r, overrides.readyAfterMs));
        return overrides.ready ?? true;
      },
    },
    routes: [
      async (app) => {
        app.post('/v1/events', async () => ({ accepted: 1 }));
        app.post('/v1/echo', async (request) => request.body);
        app.get('/v1/journeys', async () => ({ journeys: [] }));
        app.get('/v1/journeys/:id', async () => ({}));
        app.get('/v1/boom', async () => {
          throw new Error('bug');
        });
        app.get('/v1/busy', async () => {
          throw new TouchstreamError('unavailable', 'busy', [], 7);
        });
      },
    ],
  });

describe('buildServer', () => {
  it('serves health, readiness and metrics', async () => {
    const app = await build();
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { store: 'ok' } });
    const metrics = await app.inject('/metrics');
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
  });

  it('is not ready while a dependency is unreachable', async () => {
    const app = await build({ ready: false });
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks).toEqual({ store: 'unavailable' });
  });

  it('says why it is not ready when a check tells, and does not wait on a silent one', async () => {
    const told = await (await build({ ready: 'partition t/3 stuck for 31 s: no disk' })).inject(
      '/readyz',
    );
    expect(told.statusCode).toBe(503);
    expect(told.json().checks).toEqual({
      store: 'unavailable: partition t/3 stuck for 31 s: no disk',
    });
    const silent = await (await build({ readyAfterMs: 60_000 })).inject('/readyz');
    expect(silent.statusCode).toBe(503);
    expect(silent.json().checks).toEqual({ store: 'unavailable: no answer within 800 ms' });
  });

  it('answers unknown routes, bad JSON and wrong media types with the error object', async () => {
    const app = await build();
    const missing = await app.inject('/v1/nothing');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');

    const badJson = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': 'application/json' },
      payload: '{"events": [',
    });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json()).toMatchObject({ error: { code: 'invalid_json', details: [] } });

    const text = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('unsupported_media_type');

    const huge = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ events: 'x'.repeat(1024 * 1024 + 10) }),
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('payload_too_large');
  });

  it('takes gzip and deflate bodies within the limit, decompressed', async () => {
    const app = await build();
    const body = JSON.stringify({ events: [{ event_id: 'e-1' }] });
    for (const [encoding, payload] of [
      ['gzip', gzipSync(body)],
      ['deflate', deflateSync(body)],
    ] as const) {
      const echoed = await app.inject({
        method: 'POST',
        url: '/v1/echo',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        payload,
      });
      expect(echoed.statusCode).toBe(200);
      expect(echoed.json()).toEqual(JSON.parse(body));
    }
    // 10 KB that inflate to 10 MB: refused once past the limit, never held whole.
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 32));
    expect(bomb.length).toBeLessThan(20_000);
    for (const [encoding, payload, status, code] of [
      ['gzip', bomb, 413, 'payload_too_large'],
      ['gzip', Buffer.from('not gzip at all'), 400, 'invalid_request'],
      ['compress', body, 415, 'unsupported_media_type'],
    ] as const) {
      const refused = await app.inject({
        method: 'POST',
        url: '/v1/echo',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        payload,
      });
      expect(refused.statusCode, code).toBe(status);
      expect(refused.json().error.code).toBe(code);
    }
  });

  it('says what is wrong with a prototype key instead of calling the JSON invalid', async () => {
    const app = await build();
    for (const payload of ['{"__proto__": {"x": 1}}', '{"a": {"constructor": {"prototype": 1}}}']) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/echo',
        headers: { 'content-type': 'application/json' },
        payload,
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toEqual({
        code: 'invalid_request',
        message: 'The body holds a "__proto__" or "constructor" key, which is refused.',
        details: [],
      });
    }
  });

  it('answers what is refused before routing with the error object, path not echoed', async () => {
    const app = await build();
    for (const [url, status, message] of [
      [`/v1/journeys/${'x'.repeat(101)}`, 400, 'A segment of the path is longer than allowed.'],
      ['/v1/journeys/%', 400, 'The path is not validly percent-encoded.'],
      ['/v1/journeys/%ED%A0%BD', 400, 'The path is not validly percent-encoded.'],
    ] as const) {
      const response = await app.inject(url);
      expect(response.statusCode).toBe(status);
      expect(response.json()).toEqual({
        error: { code: 'invalid_request', message, details: [] },
      });
    }
  });

  it("answers headers past the HTTP parser's limit with 431 and the error object", async () => {
    const app = await build();
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const response = await fetch(`${address}/v1/journeys?x=${'a'.repeat(20_000)}`);
      expect(response.status).toBe(431);
      expect(await response.json()).toEqual({
        error: {
          code: 'headers_too_large',
          message: 'The request headers are larger than allowed.',
          details: [],
        },
      });
    } finally {
      await app.close();
    }
  });

  it('hides internal errors and sends Retry-After when asked', async () => {
    const app = await build();
    const boom = await app.inject('/v1/boom');
    expect(boom.statusCode).toBe(500);
    expect(boom.json().error).toEqual({
      code: 'internal_error',
      message: 'Something went wrong on our side.',
      details: [],
    });
    const busy = await app.inject('/v1/busy');
    expect(busy.statusCode).toBe(503);
    expect(busy.headers['retry-after']).toBe('7');
  });

  it('tells 401 from 403 by which key list knows the key', async () => {
    const app = await build({ ingestKeys: ['in-1'], queryKeys: ['q-1'] });
    const post = (key?: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: key ? { authorization: `Bearer ${key}` } : {},
        payload: {},
      });
    expect((await post()).statusCode).toBe(401);
    expect((await post('nope')).statusCode).toBe(401);
    expect((await post('q-1')).statusCode).toBe(403);
    expect((await post('q-1')).json().error.code).toBe('forbidden');
    expect((await post('in-1')).statusCode).toBe(200);

    const get = (key: string) =>
      app.inject({ url: '/v1/journeys', headers: { authorization: `Bearer ${key}` } });
    expect((await get('in-1')).statusCode).toBe(403);
    expect((await get('q-1')).statusCode).toBe(200);
    // Operational endpoints stay open for probes.
    expect((await app.inject('/healthz')).statusCode).toBe(200);
  });

  it('leaves endpoints open when their key list is unset', async () => {
    const app = await build({ ingestKeys: ['in-1'] });
    expect((await app.inject('/v1/journeys')).statusCode).toBe(200);
  });
});

describe('checkBindSafety', () => {
  const auth = (keys: boolean) => ({
    ingestKeys: keys ? ['a'] : [],
    queryKeys: keys ? ['b'] : [],
    adminKeys: [],
  });
  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1'])('allows open access on %s', (host) => {
    expect(checkBindSafety({ http: { host, port: 0 }, auth: auth(false) })).toBe('open');
  });
  it.each(['0.0.0.0', '10.1.2.3', '::', 'example.org'])('refuses open access on %s', (host) => {
    expect(() => checkBindSafety({ http: { host, port: 0 }, auth: auth(false) })).toThrow(
      /TOUCHSTREAM_INGEST_KEYS/,
    );
    expect(checkBindSafety({ http: { host, port: 0 }, auth: auth(true) })).toBe('keys');
  });
});
