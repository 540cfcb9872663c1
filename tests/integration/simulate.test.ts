import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DropoffResponse } from '@touchstream/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import type { Emitted } from '../../apps/cli/src/simulate/shopper.js';
import { runSimulation, SimulationError } from '../../apps/cli/src/simulate.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

const SAMPLES = new URL('../../samples/journeys.yaml', import.meta.url).pathname;
const INGEST_KEY = 'ingest-key';
const QUERY_KEY = 'query-key';

interface StoredRow {
  event_id: string;
  customer_id: string;
  /** '' when the event carried none. */
  anonymous_id: string;
  type: string;
  channel: string;
  time: number;
}

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

  /**
   * Stored events of one run, found by time: anonymous ones are not under the run's
   * customer ids (the runs of this file follow one another).
   */
  async function storedEvents(from: number, to: number) {
    const rows = await (
      await runtime.store.query({
        query: `SELECT event_id, customer_id, anonymous_id, type, channel, toUnixTimestamp64Milli(timestamp) AS time
          FROM events FINAL
          WHERE timestamp BETWEEN fromUnixTimestamp64Milli({from:Int64}) AND fromUnixTimestamp64Milli({to:Int64})
          ORDER BY timestamp`,
        query_params: { from, to },
        format: 'JSONEachRow',
      })
    ).json<StoredRow>();
    // By event id: while an event is stitched to its customer, its row under the anonymous
    // id may stay beside the stitched one for a while.
    const byId = new Map(rows.map((r) => [r.event_id, { ...r, time: Number(r.time) }]));
    return [...byId.values()];
  }

  /** Stored events of one run, by type. */
  async function storedTypes(from: number, to: number) {
    const types = new Map<string, { n: number; last: number }>();
    for (const e of await storedEvents(from, to)) {
      const t = types.get(e.type) ?? { n: 0, last: 0 };
      types.set(e.type, { n: t.n + 1, last: Math.max(t.last, e.time) });
    }
    return types;
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
    // Completers answer their survey seconds after completing; droppers minutes after their
    // deadline, long after this run: those are cancelled, not sent.
    expect(summary.surveys.sent).toBeGreaterThan(0);
    expect(summary.byType.csat_submitted).toBe(summary.surveys.sent);
    expect(summary.surveys.cancelled).toBeGreaterThan(0);
    // Plain periodic lines, since the output is not a terminal.
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(lines.at(-1)).toMatch(/sent \d+ {2}accepted \d+ {2}retried 0 {2}rejected 0 {2}rate/);

    const events = await storedEvents(start, Date.now());
    expect(events.length).toBe(summary.totals.accepted);

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
    // The carts that made it are worth something, in EUR.
    expect(purchase.currency).toBe('EUR');
    expect(purchase.value_completed).toBeGreaterThan(0);
    expect(purchase.transitions.some((t) => t.handoffs.length > 0)).toBe(true);
    const signup = await dropoffs('signup', start);
    expect(signup.completed).toBeGreaterThan(0);
    // Verification arrives by e-mail: every continuation into it is a hand-off.
    const verified = signup.transitions.at(-1);
    expect(verified?.handoffs.every((h) => h.to_channel === 'email')).toBe(true);
  });

  it('sends the channels’ anonymous ids, linked to the customer at login, checkout, card or call', async () => {
    const start = Date.now();
    const { output } = capture();
    const sent: (Emitted & { timestamp: number })[] = [];
    const summary = await runSimulation(
      {
        url: runtime.address,
        key: INGEST_KEY,
        rate: 300,
        customers: 60,
        durationMs: 5000,
        seed: 13,
        customerPrefix: 'ids',
        onEvent: (event) => sent.push(event),
      },
      { output },
    );
    expect(summary.totals).toMatchObject({ rejected: 0, failed: 0, refused: 0, pending: 0 });
    expect(sent.length).toBe(summary.totals.accepted);
    // Carts carry their value from the cart on; surveys a score of 1 to 5.
    for (const e of sent.filter((e) =>
      ['cart_added', 'checkout_started', 'payment_submitted', 'order_placed'].includes(e.type),
    )) {
      expect(e.properties?.cart_value).toBeGreaterThan(0);
    }
    const surveys = sent.filter((e) => e.type === 'csat_submitted');
    expect(surveys.length).toBe(summary.surveys.sent);
    expect(surveys.length).toBeGreaterThan(0);
    for (const e of surveys) expect([1, 2, 3, 4, 5]).toContain(e.properties?.score);
    // Every channel but e-mail sends anonymous events and links; e-mail the customer id.
    for (const channel of ['web', 'mobile', 'store', 'call_center'] as const) {
      expect(summary.byIds[channel].anonymous).toBeGreaterThan(0);
      expect(summary.byIds[channel].both).toBeGreaterThan(0);
      expect(summary.byIds[channel].customer).toBe(0);
    }
    expect(summary.byIds.email).toMatchObject({ anonymous: 0, both: 0 });
    expect(summary.byIds.email.customer).toBeGreaterThan(0);
    const patterns: Record<string, RegExp> = {
      web: /^ck-[0-9a-f]{16}$/,
      mobile: /^dev-[0-9a-f]{16}$/,
      store: /^(card-\d{12}|visit-[0-9a-f]{16})$/,
      call_center: /^\+447\d{9}$/,
    };
    for (const e of sent) {
      if (e.channel === 'email') expect(e.anonymous_id).toBeUndefined();
      else expect(e.anonymous_id).toMatch(patterns[e.channel] as RegExp);
    }

    // Links: an event with both ids; each anonymous id to one customer, from its first one.
    const links = new Map<string, { customer: string; at: number }>();
    for (const e of sent) {
      if (!(e.anonymous_id && e.customer_id)) continue;
      expect(e.customer_id).toMatch(/^ids-\d+$/);
      const link = links.get(e.anonymous_id);
      if (link) expect(link.customer).toBe(e.customer_id);
      else links.set(e.anonymous_id, { customer: e.customer_id, at: e.timestamp });
    }
    const linkOf = (e: Emitted) => links.get(e.anonymous_id ?? '');

    // Web and app visitors browse anonymously until they log in or check out.
    for (const channel of ['web', 'mobile']) {
      const here = sent.filter((e) => e.channel === channel);
      const beforeLogin = here.filter((e) => !e.customer_id && (linkOf(e)?.at ?? 0) > e.timestamp);
      expect(beforeLogin.some((e) => e.type === 'product_viewed')).toBe(true);
      const checkouts = here.filter((e) => e.type === 'checkout_started');
      expect(checkouts.length).toBeGreaterThan(0);
      expect(checkouts.every((e) => e.customer_id && e.anonymous_id)).toBe(true);
    }
    // Some store customers never say who they are: an unregistered card or no card at all.
    const anonymousInStore = sent.filter((e) => e.channel === 'store' && !linkOf(e));
    expect(anonymousInStore.some((e) => e.anonymous_id?.startsWith('card-'))).toBe(true);
    expect(anonymousInStore.some((e) => e.anonymous_id?.startsWith('visit-'))).toBe(true);
    // The call centre knows a caller by the number and identifies them: every step taken
    // on the phone carries the number with the customer id.
    const steps = sent.filter((e) => e.channel === 'call_center' && e.type !== 'call_received');
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.every((e) => e.customer_id && e.anonymous_id)).toBe(true);

    // Stored as sent: with its anonymous id, under the customer id it carried; without one,
    // under its anonymous id, or once stitched under the customer that id is linked to.
    const stored = await storedEvents(start, Date.now());
    expect(stored.length).toBe(sent.length);
    // E-mail events have no anonymous id: the customer id tells them apart.
    const key = (e: Emitted | StoredRow, time: number) =>
      `${e.channel} ${e.type} ${e.anonymous_id || e.customer_id} ${time}`;
    const byKey = new Map(stored.map((e) => [key(e, e.time), e]));
    for (const e of sent) {
      const row = byKey.get(key(e, e.timestamp));
      expect(row).toBeDefined();
      if (e.customer_id) expect(row?.customer_id).toBe(e.customer_id);
      else expect([e.anonymous_id, linkOf(e)?.customer]).toContain(row?.customer_id);
    }
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

    const stored = await storedTypes(start, Date.now());
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
