import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { freePortPair } from '../support/ports.js';
import { startTestRuntime } from '../support/runtime.js';

const CLI = new URL('../../apps/cli/bin/touchstream.js', import.meta.url).pathname;
const run = promisify(execFile);

/** `touchstream <args>`: its output and exit code, whatever the code. */
async function touchstream(args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const T = Date.UTC(2026, 9, 1, 12);
const at = (seconds: number) => new Date(T + seconds * 1000).toISOString();
const RANGE = ['--from', at(0), '--to', at(3600)];

describe('touchstream funnel', () => {
  let runtime: Runtime;
  let ingestKey: string;
  /** `touchstream funnel <args>` against the running instance, with the query key. */
  const funnel = (args: string[]) =>
    touchstream(['funnel', ...args, '--url', runtime.address, '--key', 'query-key']);

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-funnel-cli-'));
    ingestKey = 'ingest-key';
    runtime = await startTestRuntime(
      {
        TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
        TOUCHSTREAM_INGEST_KEYS: ingestKey,
        TOUCHSTREAM_QUERY_KEYS: 'query-key',
      },
      ['collector', 'processor', 'api'],
    );
    const events = [
      ['a', 'view', 0],
      ['a', 'cart', 30],
      ['b', 'view', 10],
      ['b', 'cart', 100],
      ['b', 'pay', 130],
      ['c', 'view', 20],
    ].map(([customer, type, seconds], i) => ({
      event_id: `cli-${i}`,
      customer_id: customer,
      type,
      channel: 'web',
      timestamp: at(seconds as number),
    }));
    const response = await fetch(`${runtime.address}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
      body: JSON.stringify({ events }),
    });
    expect(response.status).toBe(202);
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it('prints the funnel table', async () => {
    const { code, stdout } = await funnel(['--steps', 'view,cart,pay', '--window', '1h', ...RANGE]);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^step\s+customers\s+of start\s+of previous\s+dropped\s+median time$/);
    expect(lines[2]).toMatch(/^1\. view\s+3\s+100\.0%$/);
    // Medians: 30 s and 90 s -> 60 s.
    expect(lines[3]).toMatch(/^2\. cart\s+2\s+66\.7%\s+66\.7%\s+1\s+1m 0s$/);
    expect(lines[4]).toMatch(/^3\. pay\s+1\s+33\.3%\s+50\.0%\s+1\s+30s$/);
  });

  it('prints the time to convert of each step', async () => {
    const { code, stdout } = await funnel(['--steps', 'view,cart,pay', '--window', '1h', ...RANGE]);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    const header = lines.findIndex((l) => l.startsWith('time to convert'));
    expect(lines[header]).toMatch(/^time to convert\s+p25\s+p50\s+p75\s+p90\s+customers by time$/);
    // cart: 30 s (a) and 90 s (b); pay: 30 s (b).
    expect(lines[header + 2]).toMatch(
      /^2\. cart\s+45s\s+1m 0s\s+1m 15s\s+1m 24s\s+<=30s: 1, <=2m 0s: 1$/,
    );
    expect(lines[header + 3]).toMatch(/^3\. pay\s+30s\s+30s\s+30s\s+30s\s+<=30s: 1$/);
  });

  it('takes the funnel options', async () => {
    // A cart between the view and the (missing or later) pay voids a and b.
    const excluded = await funnel([
      '--steps',
      'view,cart,pay',
      '--window',
      '1h',
      '--exclude',
      'cart:0-2',
      ...RANGE,
    ]);
    expect(excluded.code).toBe(0);
    expect(excluded.stdout.split('\n')[2]).toMatch(/^1\. view\s+1\s+100\.0%$/);
    // cart optional: b reaches pay, a stops at its cart.
    const optional = await funnel([
      '--steps',
      'view,cart,pay',
      '--window',
      '1h',
      '--optional',
      '1',
      ...RANGE,
    ]);
    const lines = optional.stdout.split('\n');
    expect(lines[3]).toMatch(/^2\. cart \(optional\)\s+2\s+66\.7%\s+66\.7%\s+1\s+1m 0s$/);
    expect(lines[4]).toMatch(/^3\. pay\s+1\s+33\.3%\s+33\.3%\s+2\s+30s$/);
    const combined = await funnel([
      '--steps',
      'view,pay,cart',
      '--window',
      '1h',
      '--order',
      'any',
      '--hold',
      'plan',
      '--breakdown',
      'channel',
      '--attribution',
      'last_touch',
      ...RANGE,
    ]);
    expect(combined.code).toBe(0);
    // In any order b did pay and cart; times are from the view.
    expect(combined.stdout.split('\n')[4]).toMatch(
      /^3\. cart\s+1\s+33\.3%\s+100\.0%\s+0\s+1m 30s$/,
    );
    expect(combined.stdout).toContain('\nweb\nstep');
  });

  it('prints a table per breakdown value', async () => {
    const { code, stdout } = await funnel([
      '--steps',
      'view,cart',
      '--breakdown',
      'channel',
      ...RANGE,
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain('\nweb\nstep');
  });

  it("reports the server's error", async () => {
    const unknown = await funnel(['--journey', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('404 not_found: There is no journey "nope".');
    const noKey = await touchstream(['funnel', '--steps', 'view,cart', '--url', runtime.address]);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('401 unauthorized');
  });

  it('refuses bad flags', async () => {
    const cases = [
      ['--steps', 'view'],
      ['--steps', 'View Product,cart'],
      ['--steps', 'a,b', '--window', 'soon'],
      ['--steps', 'a,b', '--from', 'yesterday'],
      ['--steps', 'a,b', '--url', 'ftp://x'],
      ['--steps', 'a,b', '--journey', 'shop'],
      [],
      ['--steps', 'a,b', '--order', 'random'],
      ['--steps', 'a,b', '--optional', 'b'],
      ['--steps', 'a,b', '--exclude', 'x'],
      ['--steps', 'a,b', '--exclude', 'x:1'],
      ['--steps', 'a,b', '--attribution', 'middle'],
    ];
    // At once: each start of the CLI takes a few seconds of module loading.
    const results = await Promise.all(cases.map((args) => touchstream(['funnel', ...args])));
    results.forEach(({ code, stderr }, i) => {
      const args = cases[i]?.join(' ');
      expect(code, args).not.toBe(0);
      expect(stderr, args).toMatch(/invalid|give either/);
    });
  });

  it("reports the server's refusal of an option", async () => {
    const { code, stderr } = await funnel([
      '--steps',
      'view,cart',
      '--exclude',
      'pay:0-5',
      ...RANGE,
    ]);
    expect(code).toBe(1);
    expect(stderr).toContain('400 invalid_request');
    expect(stderr).toContain('exclusions.0.before_step: must be a step of the funnel (0 to 1)');
    const journey = await funnel(['--journey', 'shop', '--optional', '1']);
    expect(journey.code).not.toBe(0);
    expect(journey.stderr).toContain('--optional needs --steps');
  });

  it('says so when the server cannot be reached', async () => {
    const port = await freePortPair();
    const url = `http://127.0.0.1:${port}`;
    const { code, stderr } = await touchstream(['funnel', '--steps', 'a,b', '--url', url]);
    expect(code).toBe(1);
    expect(stderr).toContain(`touchstream: cannot reach ${url}: connection refused`);
  });
});
