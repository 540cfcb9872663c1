import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DropoffResponse } from '@touchstream/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { runSimulation, SimulationError } from '../../apps/cli/src/simulate.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const SAMPLES = new URL('../../samples/journeys.yaml', import.meta.url).pathname;
const INGEST_KEY = 'ingest-key';
const QUERY_KEY = 'query-key';

/** Captures what a non-terminal output receives. */
function capture() {
  const lines: string[] = [];
  return { lines, output: { isTTY: false, write: (text: string) => lines.push(text) } };
}

describe('touchstream simulate against a running instance with the sample journeys', () => {
  let runtime: Runtime;
  beforeAll(async () => {
    runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: await mkdtemp(join(tmpdir(), 'touchstream-simulate-')),
      TOUCHSTREAM_INGEST_KEYS: INGEST_KEY,
      TOUCHSTREAM_QUERY_KEYS: QUERY_KEY,
      TOUCHSTREAM_JOURNEYS_FILE: SAMPLES,
    });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  async function dropoffs(journey: string, from: number): Promise<DropoffResponse> {
    const query = new URLSearchParams({
      from: new Date(from).toISOString(),
      to: new Date(Date.now() + 60_000).toISOString(),
    });
    const response = await fetch(`${runtime.address}/v1/journeys/${journey}/dropoffs?${query}`, {
      headers: { authorization: `Bearer ${QUERY_KEY}` },
    });
    expect(response.status).toBe(200);
    return (await response.json()) as DropoffResponse;
  }

  /** Stored events of one run's customers, by type. */
  async function storedTypes(prefix: string) {
    const rows = await (
      await runtime.store.query({
        query:
          'SELECT type, count() AS n, max(toUnixTimestamp64Milli(timestamp)) AS last FROM events FINAL WHERE startsWith(customer_id, {p:String}) GROUP BY type',
        query_params: { p: `${prefix}-` },
        format: 'JSONEachRow',
      })
    ).json<{ type: string; n: string | number; last: string | number }>();
    return new Map(rows.map((r) => [r.type, { n: Number(r.n), last: Number(r.last) }]));
  }

  it('fills every step of the purchase and signup journeys across channels', async () => {
    const start = Date.now();
    const { lines, output } = capture();
    const summary = await runSimulation(
      {
        url: runtime.address,
        key: INGEST_KEY,
        rate: 300,
        customers: 60,
        durationMs: 5000,
        seed: 11,
        customerPrefix: 'healthy',
      },
      { output },
    );
    expect(summary.totals.sent).toBeGreaterThan(1000);
    expect(summary.totals).toMatchObject({ rejected: 0, failed: 0, refused: 0, pending: 0 });
    expect(summary.totals.accepted).toBe(summary.totals.sent);
    for (const channel of ['web', 'mobile', 'store', 'call_center', 'email'] as const) {
      expect(summary.byChannel[channel].accepted).toBeGreaterThan(0);
    }
    expect(summary.byType.payment_failed).toBeGreaterThan(0);
    expect(summary.byType.checkout_error).toBeGreaterThan(0);
    // Plain periodic lines, since the output is not a terminal.
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(lines.at(-1)).toMatch(/sent \d+ {2}accepted \d+ {2}retried 0 {2}rejected 0 {2}rate/);

    const stored = await storedTypes('healthy');
    expect([...stored.values()].reduce((sum, t) => sum + t.n, 0)).toBe(summary.totals.accepted);

    const purchase = await eventually(async () => {
      const answer = await dropoffs('online-purchase', start);
      expect(answer.completed).toBeGreaterThan(0);
      return answer;
    }, 30_000);
    expect(purchase.transitions.map((t) => t.to_step)).toEqual([
      'carted',
      'checkout',
      'paid',
      'ordered',
    ]);
    for (const t of purchase.transitions) {
      expect(t.reached).toBeGreaterThan(0);
      expect(t.continued).toBeGreaterThan(0);
    }
    expect(purchase.transitions.some((t) => t.handoffs.length > 0)).toBe(true);
    const signup = await dropoffs('signup', start);
    expect(signup.completed).toBeGreaterThan(0);
    // Verification arrives by e-mail: every continuation into it is a hand-off.
    const verified = signup.transitions.at(-1);
    expect(verified?.handoffs.every((h) => h.to_channel === 'email')).toBe(true);
  });

  it('with a broken step, nobody reaches it after the break while the steps before go on', async () => {
    const start = Date.now();
    const { lines, output } = capture();
    const summary = await runSimulation(
      {
        url: runtime.address,
        key: INGEST_KEY,
        rate: 300,
        customers: 60,
        durationMs: 6000,
        breakStep: 'payment_submitted',
        breakAfterMs: 2000,
        seed: 12,
        customerPrefix: 'broken',
      },
      { output },
    );
    expect(summary.broken).toMatchObject({ journey: 'online-purchase', step: 'paid' });
    const breakFrom = Date.parse(summary.broken?.from ?? '');
    expect(lines.some((l) => l.includes('step "paid" (payment_submitted) fails'))).toBe(true);
    expect(lines.at(-1)).toContain('[breaking online-purchase paid]');

    const stored = await storedTypes('broken');
    // Payments went through before the break, and none after it; failures instead.
    expect(stored.get('payment_submitted')?.n).toBeGreaterThan(0);
    expect(stored.get('payment_submitted')?.last).toBeLessThan(breakFrom);
    expect(stored.get('payment_failed')?.last).toBeGreaterThanOrEqual(breakFrom);
    expect(stored.get('checkout_started')?.last).toBeGreaterThanOrEqual(breakFrom);

    // Instances that reached checkout after the break never continued into "paid".
    const after = await dropoffs('online-purchase', breakFrom + 1);
    const intoPaid = after.transitions.find((t) => t.to_step === 'paid');
    expect(intoPaid?.reached).toBeGreaterThan(20);
    expect(intoPaid?.continued).toBe(0);
    // The run before the break did pay.
    const before = await dropoffs('online-purchase', start);
    expect(before.transitions.find((t) => t.to_step === 'paid')?.continued).toBeGreaterThan(0);
  });

  it('stops with one clear sentence for a refused key or an unreachable instance', async () => {
    const { output } = capture();
    const base = { rate: 50, customers: 20, durationMs: 3000, seed: 1 };
    await expect(
      runSimulation({ ...base, url: runtime.address, key: 'wrong' }, { output }),
    ).rejects.toThrow(/refused the ingest key \(401/);
    await expect(runSimulation({ ...base, url: 'http://127.0.0.1:9' }, { output })).rejects.toThrow(
      SimulationError,
    );
  });
});
