import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer } from '@touchstream/http';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { buildDashboard } from './dashboard.js';

/** A built page in miniature: the layout Vite writes. */
async function fakeBuild() {
  const dir = await mkdtemp(join(tmpdir(), 'touchstream-dashboard-unit-'));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), '<!doctype html><title>Touchstream</title>');
  await writeFile(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  return dir;
}

const serve = (assetsDir: string, queryKeys: string[] = []) =>
  buildServer({
    config: { auth: { ingestKeys: [], queryKeys, adminKeys: [] } },
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    readiness: {},
    routes: [
      buildDashboard({ assetsDir }).routes,
      async (app) => {
        app.get('/v1/journeys', async () => ({ journeys: [] }));
      },
    ],
  });

describe('buildDashboard', () => {
  it('serves the page at / for revalidation and hashed assets for good', async () => {
    const app = await serve(await fakeBuild());
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.body).toContain('<title>Touchstream</title>');
    const asset = await app.inject('/assets/index-abc123.js');
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
  });

  it('needs no key for the page, and leaves the keys and 404s of /v1 as they were', async () => {
    const app = await serve(await fakeBuild(), ['secret']);
    expect((await app.inject('/')).statusCode).toBe(200);
    expect((await app.inject('/v1/journeys')).statusCode).toBe(401);
    expect((await app.inject('/v1/nothing-here')).statusCode).toBe(401);
    const missing = await app.inject('/nothing-here');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
  });

  it('says how to build the page when it is not built', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'touchstream-dashboard-empty-'));
    const app = await serve(empty);
    const page = await app.inject('/');
    expect(page.statusCode).toBe(503);
    expect(page.json().error.message).toContain('npm run build -w @touchstream/dashboard');
    expect((await app.inject('/healthz')).statusCode).toBe(200);
  });
});
