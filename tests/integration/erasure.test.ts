import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { DropoffResponse, Journey, Touchpoint } from '@touchstream/contracts';
import { ON_DISK, type Store } from '@touchstream/store';
import { Kafka, logLevel } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { postAll } from '../support/events.js';
import { queryFunnel, roundMedians } from '../support/funnel-client.js';
import { referenceFunnel } from '../support/funnel-reference.js';
import { callJson } from '../support/http.js';
import {
  anonymize,
  resolveIdentities,
  type SentEvent,
  stitchedCustomers,
} from '../support/identities.js';
import {
  dropoffsAt,
  expectDropoffsToMatch,
  expectedDropoffs,
  PURCHASE,
  purchaseFunnelSteps,
  purchaseTraffic,
} from '../support/journey-traffic.js';
import { kafkaBrokers, uniqueName } from '../support/kafka.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

/**
 * Erasure end to end (API.md, "Erasure and retention"): a customer with anonymous and
 * known events and journeys in progress is erased; from the 202 on no answer counts it
 * and every other customer's figures are what they would be had it never existed; the
 * erasure becomes done and nothing of it is on disk, read with the deleted-row mask off;
 * nothing comes back on a replay of the topic; events sent after it are a new history.
 */

const CLI = new URL('../../apps/cli/bin/touchstream.js', import.meta.url).pathname;

/** `touchstream <args>`: its output and exit code, whatever the code. */
async function touchstream(args: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const IDLE = '4s';

/** A journey whose deadline passes during the test: an instance in progress at erasure time. */
const QUICK: Journey = {
  id: 'quick-cart',
  name: 'Quick cart',
  steps: [
    { name: 'viewed', event_type: 'product_viewed' },
    { name: 'carted', event_type: 'cart_added' },
    { name: 'checkout', event_type: 'checkout_started' },
  ],
  step_timeout: '10s',
  failure_event_types: [],
};

const JOURNEYS_FILE = JSON.stringify({
  journeys: Object.fromEntries([PURCHASE, QUICK].map(({ id, ...journey }) => [id, { ...journey }])),
});

/**
 * The customer to erase: browses and carts on the web under a cookie, logs in (the link),
 * completes the purchase in the call centre; hours later is in the middle of both journeys
 * on mobile. `recent` is when that last visit happened.
 */
function victimStory(name: string, start: number, recent: number) {
  const customer = `${name}-customer`;
  const cookie = `${name}-cookie`;
  const event = (id: string, type: string, at: number, ids: Partial<SentEvent>, more = {}) => ({
    event_id: `${name}-${id}`,
    type,
    channel: ids.customer_id ? 'call_center' : 'web',
    timestamp: at,
    ...ids,
    ...more,
  });
  const web = { anonymous_id: cookie };
  const known = { customer_id: customer };
  const events: SentEvent[] = [
    event('w1', 'product_viewed', start, web),
    event('w2', 'cart_added', start + MIN, web),
    event('w3', 'identified', start + 2 * MIN, { ...web, ...known }),
    event('c1', 'checkout_started', start + 3 * MIN, known),
    event('c2', 'payment_submitted', start + 4 * MIN, known),
    event('c3', 'order_placed', start + 5 * MIN, known, { properties: { currency: 'EUR' } }),
    event('m1', 'product_viewed', recent, known, { channel: 'mobile' }),
    event('m2', 'cart_added', recent + SEC, web, { channel: 'mobile' }),
  ];
  return { customer, cookie, ids: [customer, cookie], events };
}

/** Another customer in the middle of the quick journey at the same time. */
function bystander(recent: number): SentEvent[] {
  return [
    {
      event_id: 'by-1',
      customer_id: 'bystander',
      type: 'product_viewed',
      channel: 'web',
      timestamp: recent,
    },
    {
      event_id: 'by-2',
      customer_id: 'bystander',
      type: 'cart_added',
      channel: 'web',
      timestamp: recent + SEC,
    },
  ];
}

async function count(store: Store, query: string, ids: readonly string[], maskOff = false) {
  const [row] = await (
    await store.query({
      query,
      query_params: { ids, quoted: ids.map((id) => JSON.stringify(id)) },
      format: 'JSONEachRow',
      clickhouse_settings: maskOff ? ON_DISK : {},
    })
  ).json<{ n: string }>();
  return Number(row?.n ?? 0);
}

/** Rows carrying these ids, per table (journey state: its rows or any state naming them). */
async function rowsOf(store: Store, ids: readonly string[], maskOff: boolean) {
  const carried = `has({ids:Array(String)}, ifNull(record_key, ''))
    OR has({ids:Array(String)}, JSONExtractString(value, 'customer_id'))
    OR has({ids:Array(String)}, JSONExtractString(value, 'anonymous_id'))`;
  const queries = {
    events:
      'SELECT count() AS n FROM events WHERE customer_id IN {ids:Array(String)} OR anonymous_id IN {ids:Array(String)}',
    facts: 'SELECT count() AS n FROM facts WHERE customer_id IN {ids:Array(String)}',
    identity_links:
      'SELECT count() AS n FROM identity_links WHERE customer_id IN {ids:Array(String)} OR anonymous_id IN {ids:Array(String)}',
    journey_state:
      'SELECT count() AS n FROM journey_state WHERE customer_id IN {ids:Array(String)} OR multiSearchAny(state, {quoted:Array(String)})',
    dead_letters: `SELECT count() AS n FROM dead_letters WHERE ${carried}`,
  };
  const counts: Record<string, number> = {};
  for (const [table, query] of Object.entries(queries)) {
    counts[table] = await count(store, query, ids, maskOff);
  }
  return counts;
}

const nothing = {
  events: 0,
  facts: 0,
  identity_links: 0,
  journey_state: 0,
  dead_letters: 0,
};

const iso = (ms: number) => new Date(ms).toISOString();

async function dropoffs(address: string, journey: string, from: number, to: number) {
  const query = new URLSearchParams({ from: iso(from), to: iso(to) });
  const { status, body } = await callJson(
    address,
    'GET',
    `/v1/journeys/${journey}/dropoffs?${query}`,
  );
  expect(status).toBe(200);
  return body as DropoffResponse;
}

/** The purchase funnel over the old traffic, as answered and as the reference counts it. */
async function funnelOf(address: string, start: number) {
  const from = start - HOUR;
  const to = start + 3 * HOUR;
  const steps = purchaseFunnelSteps();
  const { status, body } = await queryFunnel(address, {
    steps,
    from: iso(from),
    to: iso(to),
    window: '20m',
    breakdown: 'channel',
  });
  expect(status).toBe(200);
  return {
    answer: roundMedians(body),
    reference: (events: Touchpoint[]) =>
      roundMedians(
        referenceFunnel(
          { steps, from, to, windowMs: 20 * MIN, filters: [], breakdown: 'channel' },
          events,
        ),
      ),
  };
}

/**
 * The old range's drop-offs (every instance there is decided) equal the reference's over
 * the sent events, without the erased customers.
 */
function expectOldDropoffs(
  answer: DropoffResponse,
  sent: readonly SentEvent[],
  start: number,
  erased: readonly string[] = [],
) {
  const expected = expectedDropoffs(
    PURCHASE,
    resolveIdentities(sent).filter((e) => !erased.includes(e.customer_id)),
    start - HOUR,
    start + 3 * HOUR,
    new Set([...stitchedCustomers(sent)].filter((c) => !erased.includes(c))),
  );
  expect({
    entered: answer.entered,
    completed: answer.completed,
    stitched: answer.stitched,
    transitions: answer.transitions,
  }).toEqual({
    entered: expected.entered,
    completed: expected.completed,
    stitched: expected.stitched,
    transitions: expected.transitions,
  });
}

async function erase(address: string, customer: string, headers: Record<string, string> = {}) {
  const { status, body } = await callJson(
    address,
    'DELETE',
    `/v1/customers/${customer}`,
    undefined,
    headers,
  );
  expect(status).toBe(202);
  expect(body).toMatchObject({ customer_id: customer, state: 'pending' });
  expect(Date.parse(body.requested_at)).toBeGreaterThan(Date.now() - MIN);
  return body.erasure_id as string;
}

async function awaitDone(address: string, erasureId: string, timeoutMs = 90_000) {
  return eventually(
    async () => {
      const { status, body } = await callJson(address, 'GET', `/v1/erasures/${erasureId}`);
      expect(status).toBe(200);
      expect(body.state).toBe('done');
      expect(Date.parse(body.done_at)).toBeGreaterThanOrEqual(Date.parse(body.requested_at));
      return body;
    },
    timeoutMs,
    250,
  );
}

/** A record no event: a dead letter naming the customer, for the erasure to remove. */
async function deadLetterOf(runtime: Runtime, customer: string, eventId: string) {
  await runtime.bus.publish(`${runtime.config.kafka.topicPrefix}touchpoints`, [
    {
      key: customer,
      value: JSON.stringify({ event_id: eventId, customer_id: customer, type: 'Not A Type' }),
    },
  ]);
}

/**
 * The whole story on one running instance; returns what the later steps (restart,
 * replay) compare against.
 */
async function eraseAndCheck(runtime: Runtime, name: string) {
  const { address, store } = runtime;
  const start = Date.now() - 8 * HOUR;
  const recent = Date.now() - 2 * SEC;
  const victim = victimStory(name, start + 30 * MIN, recent);
  const others = anonymize(purchaseTraffic({ customers: 60, start, seed: 31 }), 31);
  const everyone = [...others, ...victim.events];
  await postAll(address, [
    others.slice(0, 150),
    others.slice(150),
    victim.events,
    bystander(recent),
  ]);
  await deadLetterOf(runtime, victim.customer, `${name}-bad`);

  // Before: the victim counts, in the old traffic and in progress now.
  await expectDropoffsToMatch(
    dropoffsAt(address),
    PURCHASE,
    resolveIdentities(everyone),
    start,
    stitchedCustomers(everyone),
  );
  await eventually(async () => {
    expect((await dropoffs(address, QUICK.id, recent - MIN, recent + MIN)).entered).toBe(2);
    expect((await rowsOf(store, victim.ids, false)).dead_letters).toBe(1);
  });
  expect((await callJson(address, 'GET', `/v1/customers/${victim.customer}`)).body).toMatchObject({
    anonymous_ids: [victim.cookie],
    events: 8,
  });

  const erasureId = await erase(address, victim.customer);

  // At once: nothing counts the victim, everyone else counts as before.
  expect((await callJson(address, 'GET', `/v1/customers/${victim.customer}`)).status).toBe(404);
  expect((await callJson(address, 'GET', `/v1/customers/${victim.cookie}`)).status).toBe(404);
  expectOldDropoffs(
    await dropoffs(address, PURCHASE.id, start - HOUR, start + 3 * HOUR),
    others,
    start,
  );
  const funnel = await funnelOf(address, start);
  expect(funnel.answer).toEqual(funnel.reference(resolveIdentities(others)));
  const quick = await dropoffs(address, QUICK.id, recent - MIN, recent + MIN);
  expect(quick.entered).toBe(1);
  expect(await rowsOf(store, victim.ids, false)).toEqual(nothing);

  // Done: nothing of it on disk, even with the deleted-row mask off.
  await awaitDone(address, erasureId);
  expect(await rowsOf(store, victim.ids, true)).toEqual(nothing);

  // The quick journey's deadline passes: the bystander drops, the victim's forgotten
  // instance does not come back as a drop-off.
  await eventually(async () => {
    const after = await dropoffs(address, QUICK.id, recent - MIN, recent + MIN);
    expect({ entered: after.entered, dropped: after.transitions[1]?.dropped }).toEqual({
      entered: 1,
      dropped: 1,
    });
  }, 60_000);
  expect(await rowsOf(store, victim.ids, true)).toEqual(nothing);
  return { victim, others, start, erasureId };
}

/**
 * A customer erased while its events are still arriving: what was accepted before the
 * DELETE goes, what is sent after the 202 stays (a new history, under the same ids).
 */
async function raceAndCheck(runtime: Runtime, name: string) {
  const { address, store } = runtime;
  const at = Date.now() - 3 * HOUR;
  const customer = `${name}-racer`;
  const cookie = `${name}-racer-cookie`;
  const before: SentEvent[] = Array.from({ length: 40 }, (_, i) => ({
    event_id: `${name}-before-${i}`,
    ...(i % 3 === 0 ? { anonymous_id: cookie } : { customer_id: customer }),
    ...(i === 1 ? { anonymous_id: cookie } : {}),
    type: PURCHASE.steps[i % 4]?.event_type ?? 'page_viewed',
    channel: 'web',
    timestamp: at + i * SEC,
  }));
  const after: SentEvent[] = Array.from({ length: 10 }, (_, i) => ({
    event_id: `${name}-after-${i}`,
    customer_id: customer,
    type: PURCHASE.steps[i % 4]?.event_type ?? 'page_viewed',
    channel: 'store',
    timestamp: at + (100 + i) * SEC,
  }));
  // Not waited for (on Kafka, a 202 means on the topic): the erasure races them.
  for (let i = 0; i < before.length; i += 8) await postAll(address, [before.slice(i, i + 8)]);
  const erasureId = await erase(address, customer);
  await postAll(address, [after]);
  await awaitDone(address, erasureId);
  const storedIds = async () =>
    (
      await (
        await store.query({
          query: `SELECT DISTINCT event_id FROM events
                  WHERE customer_id IN {ids:Array(String)} OR anonymous_id IN {ids:Array(String)}
                  ORDER BY event_id`,
          query_params: { ids: [customer, cookie] },
          format: 'JSONEachRow',
          clickhouse_settings: ON_DISK,
        })
      ).json<{ event_id: string }>()
    ).map((r) => r.event_id);
  const expected = after.map((e) => e.event_id).sort();
  await eventually(async () => expect(await storedIds()).toEqual(expected));
  expect((await callJson(address, 'GET', `/v1/customers/${customer}`)).body).toMatchObject({
    anonymous_ids: [],
    events: after.length,
  });
  // Retried by its SDK after the erasure: an event accepted before it stays erased.
  await postAll(address, [before.slice(0, 5)]);
  await eventually(async () =>
    expect(
      await runtime.bus.lag(
        `${runtime.config.kafka.topicPrefix}processor`,
        `${runtime.config.kafka.topicPrefix}touchpoints`,
      ),
    ).toBe(0),
  );
  expect(await storedIds()).toEqual(expected);
}

describe('erasure on the embedded bus', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function start() {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-erasure-'));
    await writeFile(join(dir, 'journeys.json'), JOURNEYS_FILE);
    const runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
      TOUCHSTREAM_JOURNEYS_FILE: join(dir, 'journeys.json'),
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
    });
    cleanup.push(() => runtime.stop());
    return runtime;
  }

  it('erases a customer with anonymous and known events and journeys in progress, at once and from disk', async () => {
    await eraseAndCheck(await start(), 'embedded');
  });

  it('erases what was accepted before the request and keeps what was sent after it', async () => {
    await raceAndCheck(await start(), 'embedded');
  });

  it('erases with an admin key only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-erasure-auth-'));
    const runtime = await startTestRuntime({
      TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
      TOUCHSTREAM_INGEST_KEYS: 'ingest-key',
      TOUCHSTREAM_QUERY_KEYS: 'query-key',
      TOUCHSTREAM_ADMIN_KEYS: 'admin-key',
    });
    cleanup.push(() => runtime.stop());
    const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
    await postAll(
      runtime.address,
      [
        [
          {
            event_id: 'auth-1',
            customer_id: 'auth-customer',
            type: 'page_viewed',
            channel: 'web',
            timestamp: Date.now(),
          },
        ],
      ],
      bearer('ingest-key'),
    );
    const del = (headers: Record<string, string>) =>
      callJson(runtime.address, 'DELETE', '/v1/customers/auth-customer', undefined, headers);
    expect((await del({})).status).toBe(401);
    expect((await del(bearer('wrong'))).status).toBe(401);
    expect((await del(bearer('query-key'))).body).toMatchObject({ error: { code: 'forbidden' } });
    expect((await del(bearer('ingest-key'))).status).toBe(403);
    const customer = () =>
      callJson(
        runtime.address,
        'GET',
        '/v1/customers/auth-customer',
        undefined,
        bearer('query-key'),
      );
    expect((await customer()).status).toBe(200);
    const accepted = await del(bearer('admin-key'));
    expect(accepted.status).toBe(202);
    expect((await customer()).status).toBe(404);
    const status = (key: string) =>
      callJson(
        runtime.address,
        'GET',
        `/v1/erasures/${accepted.body.erasure_id}`,
        undefined,
        bearer(key),
      );
    expect((await status('query-key')).status).toBe(200);
    expect((await status('admin-key')).status).toBe(200);
    expect((await status('ingest-key')).status).toBe(403);
    expect(
      (
        await callJson(
          runtime.address,
          'GET',
          '/v1/erasures/no-such-erasure',
          undefined,
          bearer('query-key'),
        )
      ).body,
    ).toMatchObject({ error: { code: 'not_found' } });

    // Documented in the OpenAPI document, from the route schemas.
    // biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document.
    const spec: any = await (await fetch(`${runtime.address}/openapi.json`)).json();
    expect(spec.paths['/v1/customers/{customer_id}'].delete.responses).toHaveProperty('202');
    expect(spec.paths['/v1/erasures/{erasure_id}'].get.responses).toHaveProperty('200');

    // The CLI: refused without the admin key, then waits for done and says so.
    await postAll(
      runtime.address,
      [
        [
          {
            event_id: 'auth-2',
            customer_id: 'cli-customer',
            type: 'page_viewed',
            channel: 'web',
            timestamp: Date.now(),
          },
        ],
      ],
      bearer('ingest-key'),
    );
    const refused = await touchstream([
      'erase',
      'cli-customer',
      '--url',
      runtime.address,
      '--key',
      'query-key',
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('403 forbidden');
    const erased = await touchstream([
      'erase',
      'cli-customer',
      '--url',
      runtime.address,
      '--key',
      'admin-key',
      '--timeout',
      '90s',
    ]);
    expect(erased.stderr).toBe('');
    expect(erased.code).toBe(0);
    expect(erased.stdout).toMatch(/erasure \S+ of customer cli-customer: pending/);
    expect(erased.stdout).toMatch(/erasure \S+: done at \S+Z, after [0-9.]+ s/);
  });
});

describe('erasure on Kafka', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  it('erases the same way, resumes a pending erasure after a restart, and a replay of the topic brings nothing back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-erasure-kafka-'));
    await writeFile(join(dir, 'journeys.json'), JOURNEYS_FILE);
    const prefix = `${uniqueName('erasure')}.`;
    const env = {
      TOUCHSTREAM_DATA_DIR: join(dir, 'data'),
      TOUCHSTREAM_JOURNEYS_FILE: join(dir, 'journeys.json'),
      TOUCHSTREAM_IDLE_WATERMARK: IDLE,
      TOUCHSTREAM_KAFKA_BROKERS: kafkaBrokers().join(','),
      TOUCHSTREAM_TOPIC_PREFIX: prefix,
    };
    let runtime = await startTestRuntime(env);
    cleanup.push(() => runtime.stop());
    const { victim, others, start } = await eraseAndCheck(runtime, 'kafka');
    await raceAndCheck(runtime, 'kafka');
    await runtime.stop();

    // Requested while no processor runs: it stays pending, and is done after a restart.
    const second = others.find((e) => e.customer_id && e.customer_id !== e.anonymous_id)
      ?.customer_id as string;
    runtime = await startTestRuntime(env, ['collector', 'api']);
    const pendingId = await erase(runtime.address, second);
    expect((await callJson(runtime.address, 'GET', `/v1/erasures/${pendingId}`)).body.state).toBe(
      'pending',
    );
    await runtime.stop();
    runtime = await startTestRuntime(env);
    await awaitDone(runtime.address, pendingId);
    expectOldDropoffs(
      await dropoffs(runtime.address, PURCHASE.id, start - HOUR, start + 3 * HOUR),
      others,
      start,
      [second],
    );
    await runtime.stop();

    // An operator replays the whole topic: the processor group starts again from offset 0.
    const admin = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      for (const group of ['processor', 'dead-letters']) {
        await admin.resetOffsets({
          groupId: `${prefix}${group}`,
          topic: `${prefix}${group === 'processor' ? 'touchpoints' : 'touchpoints_dlq'}`,
          earliest: true,
        });
      }
    } finally {
      await admin.disconnect();
    }
    runtime = await startTestRuntime(env);
    await eventually(
      async () =>
        expect(await runtime.bus.lag(`${prefix}processor`, `${prefix}touchpoints`)).toBe(0),
      90_000,
    );
    await sleep(2_000);
    expect(await rowsOf(runtime.store, victim.ids, true)).toEqual(nothing);
    expect((await rowsOf(runtime.store, [second], false)).events).toBe(0);
    expect(
      (await callJson(runtime.address, 'GET', `/v1/customers/${victim.customer}`)).status,
    ).toBe(404);
    expectOldDropoffs(
      await dropoffs(runtime.address, PURCHASE.id, start - HOUR, start + 3 * HOUR),
      others,
      start,
      [second],
    );
  });
});
