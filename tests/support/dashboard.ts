import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@touchstream/config';
import pino from 'pino';
import type { Browser, BrowserContext } from 'playwright-core';
import { build } from 'vite';
import { startRuntime } from '../../apps/cli/src/runtime.js';
import { apiService, FACTORIES } from '../../apps/cli/src/services.js';

/**
 * The dashboard built from the sources under test into a directory of its own (whatever
 * the package's dist/ holds), next to a data directory for the runtime.
 */
export async function buildDashboardAssets(name: string) {
  const dir = await mkdtemp(join(tmpdir(), `touchstream-${name}-`));
  const assetsDir = join(dir, 'dist');
  await build({
    configFile: new URL('../../services/dashboard/vite.config.ts', import.meta.url).pathname,
    build: { outDir: assetsDir, emptyOutDir: true },
    logLevel: 'warn',
  });
  return { dir, assetsDir };
}

/** `touchstream start` with every service and the dashboard serving `assetsDir`. */
export async function startWithDashboard(env: Record<string, string>, assetsDir: string) {
  const config = loadConfig({ TOUCHSTREAM_PORT: '0', TOUCHSTREAM_LOG_LEVEL: 'error', ...env });
  return startRuntime(config, pino({ level: config.logLevel }), {
    ...FACTORIES,
    api: apiService({ assetsDir }),
  });
}

/** Where the page keeps the query key (web/api.ts). */
const KEY_STORAGE = 'touchstream.query_key';

/**
 * A page context in UTC and US English (inputs and numbers read back predictably), charts
 * drawn without animation, and, when given, the query key already kept, as after a first
 * visit.
 */
export async function dashboardContext(browser: Browser, queryKey?: string) {
  const context: BrowserContext = await browser.newContext({
    timezoneId: 'UTC',
    locale: 'en-US',
    viewport: { width: 1400, height: 900 },
    reducedMotion: 'reduce',
  });
  if (queryKey) {
    // As a string: the script runs in the page, whose globals Node's types do not know.
    await context.addInitScript(
      `localStorage.setItem(${JSON.stringify(KEY_STORAGE)}, ${JSON.stringify(queryKey)});`,
    );
  }
  return context;
}
