import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { CONFIG_VARIABLES, loadConfig } from '@touchstream/config';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// There is no Docker engine here: these checks read docker-compose.yml and the Dockerfile
// the way Docker would, so a broken deployment file fails in CI, not on a user's machine.

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

const ROLES = ['collector', 'processor', 'api', 'alerter'];
const WORKSPACE_ROOTS = ['packages', 'services', 'apps'];

interface Service {
  build?: unknown;
  image?: string;
  restart?: string;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  depends_on?: string[] | Record<string, { condition?: string }>;
}

/**
 * Compose interpolation of the two forms the file uses, `${NAME}` and `${NAME:-default}`
 * (`$$` is a literal `$`). Anything else throws, so this test cannot quietly misread it.
 */
const INTERPOLATION = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$/g;

function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(INTERPOLATION, (match, name?: string, fallback?: string) => {
    if (match === '$$') return '$';
    if (name === undefined) throw new Error(`unsupported interpolation: ${value}`);
    const given = env[name];
    if (fallback !== undefined) return given === undefined || given === '' ? fallback : given;
    return given ?? '';
  });
}

/** A service's environment as the container sees it, map or list form. */
function environmentOf(service: Service, env: Record<string, string | undefined>) {
  const resolved: Record<string, string> = {};
  const entries: [string, unknown][] = Array.isArray(service.environment)
    ? service.environment.map((item) => {
        const at = item.indexOf('=');
        // `- NAME` alone passes NAME through from the host: empty here.
        return at < 0 ? [item, undefined] : [item.slice(0, at), item.slice(at + 1)];
      })
    : Object.entries(service.environment ?? {});
  for (const [name, value] of entries) {
    resolved[name] = value === undefined || value === null ? '' : interpolate(String(value), env);
  }
  return resolved;
}

function commandOf(service: Service): string[] {
  const { command } = service;
  if (command === undefined) return [];
  return Array.isArray(command) ? command : command.split(/\s+/).filter(Boolean);
}

function dependenciesOf(service: Service): string[] {
  const { depends_on: dependsOn } = service;
  if (dependsOn === undefined) return [];
  return Array.isArray(dependsOn) ? dependsOn : Object.keys(dependsOn);
}

/** Dockerfile instructions, with line continuations joined and comments dropped. */
function dockerfileInstructions(text: string) {
  return text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/** Source and destination of each COPY, in shell or JSON form, without its --flags. */
function copies(instructions: ReturnType<typeof dockerfileInstructions>) {
  return instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.startsWith('[')
        ? (JSON.parse(i.args) as string[])
        : i.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const normal = words.map((word) => word.replace(/^\.\//, '').replace(/\/$/, '') || '.');
      return { sources: normal.slice(0, -1), destination: normal.at(-1) ?? '' };
    });
}

function workspaceDirectories(): string[] {
  return WORKSPACE_ROOTS.flatMap((root) => {
    if (!existsSync(new URL(`${root}/`, ROOT))) return [];
    return readdirSync(new URL(`${root}/`, ROOT), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => `${root}/${entry.name}`)
      .filter((dir) => existsSync(new URL(`${dir}/package.json`, ROOT)));
  });
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as {
    services: Record<string, Service>;
  };
  const services = compose.services;
  const touchstream = Object.entries(services).filter(([, service]) => service.build);
  // Defaults apply, as for a user who sets nothing.
  const hostEnv: Record<string, string | undefined> = {};

  it('runs every role from the Dockerfile, with two processors and a migration', () => {
    expect(touchstream.length).toBeGreaterThan(0);
    const commands = touchstream.map(([, service]) => commandOf(service).join(' '));
    for (const role of ROLES) expect(commands).toContain(`start --only ${role}`);
    expect(commands.filter((c) => c === 'start --only processor')).toHaveLength(2);
    expect(commands).toContain('migrate');
  });

  it.each(touchstream)('%s is configured only by valid TOUCHSTREAM_* variables', (_, service) => {
    const env = environmentOf(service, hostEnv);
    for (const name of Object.keys(env)) expect(CONFIG_VARIABLES).toContain(name);
    const config = loadConfig(env);
    expect(config.kafka.brokers?.length).toBeGreaterThan(0);
    expect(config.clickhouse.url).toBeTruthy();
    if (config.http.host === '0.0.0.0') {
      expect(config.auth.ingestKeys.length).toBeGreaterThan(0);
      expect(config.auth.queryKeys.length).toBeGreaterThan(0);
    }
    // The brokers and the ClickHouse server are services of this file, with the same credentials.
    for (const broker of config.kafka.brokers ?? []) {
      expect(Object.keys(services)).toContain(broker.split(':')[0]);
    }
    const clickhouseHost = new URL(config.clickhouse.url ?? '').hostname;
    const clickhouse = services[clickhouseHost];
    expect(clickhouse, `service ${clickhouseHost}`).toBeDefined();
    const serverEnv = environmentOf(clickhouse ?? {}, hostEnv);
    expect(serverEnv.CLICKHOUSE_USER ?? 'default').toBe(config.clickhouse.user);
    expect(serverEnv.CLICKHOUSE_PASSWORD ?? '').toBe(config.clickhouse.password);
  });

  it.each(touchstream)('%s runs a known command and is health-checked', (_, service) => {
    const command = commandOf(service);
    if (command[0] === 'migrate') {
      expect(command).toEqual(['migrate']);
      // A one-shot job must not be restarted once it has succeeded.
      expect([undefined, 'no', 'on-failure']).toContain(service.restart?.split(':')[0]);
      expect(service.healthcheck).toBeDefined();
      return;
    }
    expect(command.slice(0, 2)).toEqual(['start', '--only']);
    expect(command).toHaveLength(3);
    for (const role of (command[2] ?? '').split(',')) expect(ROLES).toContain(role);
    const test = service.healthcheck?.test;
    expect(service.healthcheck?.disable).not.toBe(true);
    const port = loadConfig(environmentOf(service, hostEnv)).http.port;
    expect(Array.isArray(test) ? test.join(' ') : test).toContain(`:${port}/healthz`);
  });

  it('has a health check on every service and waits only for services that exist', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.healthcheck, `healthcheck of ${name}`).toBeDefined();
      for (const target of dependenciesOf(service)) {
        expect(Object.keys(services), `${name} depends on ${target}`).toContain(target);
      }
    }
  });
});

describe('Dockerfile', () => {
  const instructions = dockerfileInstructions(read('Dockerfile'));

  it('runs the touchstream CLI', () => {
    const entrypoint = instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
    expect(entrypoint).toBeDefined();
    const argv = JSON.parse(entrypoint?.args ?? '[]') as string[];
    expect(argv).toContain('apps/cli/bin/touchstream.js');
    expect(existsSync(new URL('apps/cli/bin/touchstream.js', ROOT))).toBe(true);
  });

  it('copies the manifest and the sources of every workspace', () => {
    const copied = copies(instructions);
    const sources = copied.flatMap((c) => c.sources);
    const workspaces = workspaceDirectories();
    expect(workspaces).toContain('apps/cli');
    expect(sources).toContain('package-lock.json');
    for (const dir of workspaces) {
      // npm ci fails unless every workspace of the lock file has its package.json.
      expect(sources, `COPY ${dir}/package.json`).toContain(`${dir}/package.json`);
      const root = dir.split('/')[0] ?? '';
      expect(
        sources.some((source) => source === '.' || source === root || source === dir),
        `sources of ${dir} copied`,
      ).toBe(true);
    }
  });
});
