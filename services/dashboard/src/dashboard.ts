import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { TouchstreamError } from '@touchstream/contracts';
import type { FastifyPluginAsync } from 'fastify';

/** Where `npm run build -w @touchstream/dashboard` (run by `npm install`) writes the page. */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('../dist', import.meta.url));

export interface DashboardDeps {
  /** The built page (index.html and assets/); the package's dist/ unless given. */
  assetsDir?: string;
}

/**
 * The dashboard at `GET /`: the page built by Vite, served as static files. It calls the
 * public /v1 API from the browser with the user's query key, so it needs no server-side
 * access of its own and the auth hook leaves its files open, like /docs.
 */
export function buildDashboard(deps: DashboardDeps = {}) {
  const assetsDir = deps.assetsDir ?? DEFAULT_ASSETS_DIR;
  const routes: FastifyPluginAsync = async (app) => {
    if (!existsSync(join(assetsDir, 'index.html'))) {
      // Building at request time would put Vite on the serving path: say what to run instead.
      app.log.warn({ assets_dir: assetsDir }, 'dashboard_not_built');
      app.get('/', { schema: { hide: true } }, async () => {
        throw new TouchstreamError(
          'unavailable',
          'The dashboard is not built: run `npm run build -w @touchstream/dashboard`.',
        );
      });
      return;
    }
    await app.register(fastifyStatic, {
      root: assetsDir,
      prefix: '/',
      // One route per built file rather than a catch-all `/*`: unknown paths (under /v1
      // too) keep the API's own 404 and auth answers.
      wildcard: false,
      // Swagger UI registers this plugin too; the page needs no reply.sendFile.
      decorateReply: false,
      setHeaders: (reply, path) => {
        // Vite names assets by content hash, so they never change; the page itself must
        // be fetched again to pick up a new build.
        const immutable = path.includes(`${join(assetsDir, 'assets')}`);
        reply.header(
          'cache-control',
          immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      },
    });
  };
  return { routes };
}
