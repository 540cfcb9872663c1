import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type Alert,
  type DropoffResponse,
  type Review,
  type ReviewPeriod,
  reviewResponse,
} from '@touchstream/contracts';
import { saveAlertRecord } from '@touchstream/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../apps/cli/src/runtime.js';
import { postAll } from '../support/events.js';
import { callJson, putJourney } from '../support/http.js';
import {
  batchesWithRetries,
  expectedDropoffs,
  PURCHASE,
  purchaseTraffic,
} from '../support/journey-traffic.js';
import { startTestRuntime } from '../support/runtime.js';
import { eventually } from '../support/wait.js';

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

const HOUR = 3_600_000;
// Periods of 3h: the previous period's traffic starts 5.5h ago, the current one's 2.5h ago,
// each well inside its period however long the test takes.
const PERIOD = '3h';
const ID = PURCHASE.id;

/** The drop-offs API's answer for [from, to). */
async function dropoffs(address: string, from: string, to: string): Promise<DropoffResponse> {
  const query = new URLSearchParams({ from, to });
  const { status, body } = await callJson(address, 'GET', `/v1/journeys/${ID}/dropoffs?${query}`);
  expect(status).toBe(200);
  return body;
}

/** A review period as the drop-offs answer for its range states it. */
const periodFrom = (d: DropoffResponse): ReviewPeriod => ({
  from: d.from,
  to: d.to,
  entered: d.entered,
  completed: d.completed,
  value_completed: d.value_completed,
  value_dropped: d.value_dropped,
});

const figuresFrom = (t: DropoffResponse['transitions'][number]) => ({
  reached: t.reached,
  continued: t.continued,
  dropped: t.dropped,
  conversion: t.conversion,
  below_target: t.below_target,
  value_dropped: t.value_dropped,
  value_continued: t.value_continued,
  top_reasons: t.reasons.slice(0, 3),
  feedback: t.feedback,
});

const percent = (x: number) => `${(x * 100).toFixed(1)}%`;
const euros = (x: number) =>
  `${x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} EUR`;

describe('the journey review', () => {
  let runtime: Runtime;
  let t0: number;
  let events: ReturnType<typeof purchaseTraffic>;
  const get = (path: string) => callJson(runtime.address, 'GET', path);

  const alertAt = (overrides: Partial<Alert>, id: string) =>
    saveAlertRecord(runtime.store, {
      id,
      alert: {
        rule_id: id,
        journey: ID,
        step: 'carted',
        condition: 'below_target',
        state: 'firing',
        value: 0.7,
        baseline: 0.99,
        started_at: new Date(t0 - HOUR).toISOString(),
        resolved_at: null,
        message: `${id} fired`,
        ...overrides,
      },
      firingMessage: `${id} fired`,
      webhookUrl: '',
      firingNotice: 'none',
      resolvedNotice: 'none',
    });

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'touchstream-review-'));
    runtime = await startTestRuntime(
      { TOUCHSTREAM_DATA_DIR: join(dir, 'data'), TOUCHSTREAM_IDLE_WATERMARK: '5s' },
      ['collector', 'processor', 'api'],
    );
    await putJourney(runtime.address, PURCHASE);
    t0 = Date.now();
    events = [
      ...purchaseTraffic({ customers: 150, start: t0 - 5.5 * HOUR, seed: 31 }),
      ...purchaseTraffic({ customers: 150, start: t0 - 2.5 * HOUR, seed: 32 }),
    ].sort((a, b) => a.timestamp - b.timestamp);
    await postAll(runtime.address, batchesWithRetries(events, 200));

    // Alerts: two fired in the current period (one since resolved), one in the previous
    // period, one of another journey.
    await alertAt({ started_at: new Date(t0 - 1.5 * HOUR).toISOString() }, 'quiet-carts');
    await alertAt(
      {
        step: 'paid',
        condition: 'no_events',
        state: 'resolved',
        started_at: new Date(t0 - 2 * HOUR).toISOString(),
        resolved_at: new Date(t0 - 1.9 * HOUR).toISOString(),
        message: 'events again',
      },
      'quiet-payments',
    );
    await alertAt({ started_at: new Date(t0 - 4 * HOUR).toISOString() }, 'long-ago');
    await alertAt({ journey: 'another' }, 'elsewhere');

    // Every instance decided: the drop-offs of the whole traffic are the reference model's.
    const from = t0 - 7 * HOUR;
    const expected = expectedDropoffs(PURCHASE, events, from, t0);
    await eventually(async () => {
      const actual = await dropoffs(
        runtime.address,
        new Date(from).toISOString(),
        new Date(t0).toISOString(),
      );
      expect(actual.transitions).toEqual(expected.transitions);
    }, 90_000);
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it("states both periods with exactly the drop-offs API's figures for their ranges", async () => {
    const before = Date.now();
    const { status, body } = await get(`/v1/journeys/${ID}/review?period=${PERIOD}`);
    const after = Date.now();
    expect(status).toBe(200);
    const review: Review = reviewResponse.parse(body);
    expect(review).toEqual(body);
    expect(review).toMatchObject({
      journey: ID,
      name: 'Online purchase',
      currency: 'EUR',
      period: PERIOD,
    });

    // One `now`: [now - 2p, now - p) and [now - p, now).
    const now = Date.parse(review.current.to);
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(after);
    expect(Date.parse(review.current.from)).toBe(now - 3 * HOUR);
    expect(review.previous.to).toBe(review.current.from);
    expect(Date.parse(review.previous.from)).toBe(now - 6 * HOUR);

    const current = await dropoffs(runtime.address, review.current.from, review.current.to);
    const previous = await dropoffs(runtime.address, review.previous.from, review.previous.to);
    expect(review.current).toEqual(periodFrom(current));
    expect(review.previous).toEqual(periodFrom(previous));
    // Both periods had traffic, and not the same.
    expect(current.entered).toBeGreaterThan(100);
    expect(previous.entered).toBeGreaterThan(100);
    expect(review.current.value_dropped).not.toBe(review.previous.value_dropped);

    expect(review.transitions).toHaveLength(PURCHASE.steps.length - 1);
    review.transitions.forEach((t, k) => {
      const c = current.transitions[k];
      const p = previous.transitions[k];
      if (!c || !p) throw new Error(`no transition ${k} in the drop-offs`);
      expect(t).toEqual({
        from_step: c.from_step,
        to_step: c.to_step,
        owner: c.owner,
        target_conversion: c.target_conversion,
        current: figuresFrom(c),
        previous: figuresFrom(p),
        change: Math.round((c.conversion - p.conversion) * 10_000) / 10_000,
      });
    });
    // And the drop-offs are the reference model's for those ranges.
    const reference = expectedDropoffs(PURCHASE, events, now - 3 * HOUR, now);
    expect(current.transitions).toEqual(reference.transitions);

    expect(review.transitions.map((t) => t.owner)).toEqual(['web team', null, 'payments', null]);
    expect(review.transitions[0]?.current.below_target).toBe(true);
    expect(review.transitions[1]?.current.below_target).toBe(false);
    expect(review.transitions.some((t) => t.current.top_reasons.length > 0)).toBe(true);
    expect(review.transitions.every((t) => t.current.top_reasons.length <= 3)).toBe(true);
  });

  it('lists the alerts of the journey that fired in the current period, oldest first', async () => {
    const { body } = await get(`/v1/journeys/${ID}/review?period=${PERIOD}`);
    expect(body.alerts).toEqual([
      {
        rule_id: 'quiet-payments',
        step: 'paid',
        condition: 'no_events',
        state: 'resolved',
        started_at: new Date(t0 - 2 * HOUR).toISOString(),
        resolved_at: new Date(t0 - 1.9 * HOUR).toISOString(),
        message: 'events again',
      },
      {
        rule_id: 'quiet-carts',
        step: 'carted',
        condition: 'below_target',
        state: 'firing',
        started_at: new Date(t0 - 1.5 * HOUR).toISOString(),
        resolved_at: null,
        message: 'quiet-carts fired',
      },
    ]);
    // A longer period reaches back to the older one.
    const day = await get(`/v1/journeys/${ID}/review?period=1d`);
    expect(day.body.alerts.map((a: Alert) => a.rule_id)).toEqual([
      'long-ago',
      'quiet-payments',
      'quiet-carts',
    ]);
    // The default period is 7d.
    const week = await get(`/v1/journeys/${ID}/review`);
    expect(week.status).toBe(200);
    expect(week.body.period).toBe('7d');
    expect(Date.parse(week.body.current.to) - Date.parse(week.body.current.from)).toBe(
      7 * 24 * HOUR,
    );
  });

  it('answers Markdown for people with the same figures', async () => {
    const json: Review = (await get(`/v1/journeys/${ID}/review?period=${PERIOD}`)).body;
    const response = await fetch(
      `${runtime.address}/v1/journeys/${ID}/review?period=${PERIOD}&format=markdown`,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
    const text = await response.text();
    expect(text.split('\n')[0]).toMatch(
      /^# Journey review: Online purchase, \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}$/,
    );
    expect(text).toContain(
      `Value lost at points of disconnection: ${euros(json.current.value_dropped ?? 0)}`,
    );
    expect(text).toContain(`(previous 3h: ${euros(json.previous.value_dropped ?? 0)};`);
    for (const t of json.transitions) {
      const row = text.split('\n').find((l) => l.startsWith(`| ${t.from_step} → ${t.to_step} |`));
      expect(row).toBeDefined();
      expect(row).toContain(`| ${percent(t.current.conversion)}`);
      expect(row).toContain(`| ${euros(t.current.value_dropped ?? 0)} |`);
      if (t.owner) expect(row).toContain(`| ${t.owner} |`);
      if (t.target_conversion !== null)
        expect(row).toContain(`| ${percent(t.target_conversion)} |`);
      if (t.current.below_target) expect(row).toContain('⚠ below target');
      const reason = t.current.top_reasons[0];
      if (reason) expect(row).toContain(`${reason.reason} (${reason.dropped})`);
    }
    expect(text).toContain('## Alerts fired (2)');
    expect(text).toContain('`quiet-carts` (below_target) at step carted, **firing**');
    expect(text).not.toContain('long-ago');
  });

  it('refuses a bad period or format with details, and an unknown journey with 404', async () => {
    for (const [query, path] of [
      ['period=0d', 'period'],
      ['period=367d', 'period'],
      ['period=7', 'period'],
      ['period=soon', 'period'],
      ['format=html', 'format'],
    ]) {
      const { status, body } = await get(`/v1/journeys/${ID}/review?${query}`);
      expect(status, query).toBe(400);
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.details.map((d: { path: string }) => d.path)).toEqual([path]);
    }
    expect((await get(`/v1/journeys/${ID}/review?period=366d`)).status).toBe(200);
    const missing = await get('/v1/journeys/nope/review');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({
      code: 'not_found',
      message: 'There is no journey "nope".',
    });
  });

  it('is in the OpenAPI document, JSON and Markdown', async () => {
    const { body } = await get('/openapi.json');
    const route = body.paths['/v1/journeys/{id}/review'].get;
    const content = route.responses['200'].content;
    expect(Object.keys(content).sort()).toEqual(['application/json', 'text/markdown']);
    expect(Object.keys(content['application/json'].schema.properties)).toContain('transitions');
    expect(route.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'format',
      'id',
      'period',
    ]);
  });

  it('prints from the CLI: Markdown, JSON, and errors with exit code 1', async () => {
    const url = ['--url', runtime.address];
    const markdown = await touchstream(['review', ID, '--period', PERIOD, ...url]);
    expect(markdown.code).toBe(0);
    expect(markdown.stdout).toMatch(/^# Journey review: Online purchase, /);
    expect(markdown.stdout).toContain('| viewed → carted | web team |');
    expect(markdown.stdout).toContain('## Alerts fired (2)');

    const json = await touchstream(['review', ID, '--period', PERIOD, '--json', ...url]);
    expect(json.code).toBe(0);
    const review = reviewResponse.parse(JSON.parse(json.stdout));
    const api: Review = (await get(`/v1/journeys/${ID}/review?period=${PERIOD}`)).body;
    expect(review.transitions).toEqual(api.transitions);

    const missing = await touchstream(['review', 'nope', ...url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404 not_found: There is no journey "nope".');

    const tooLong = await touchstream(['review', ID, '--period', '400d', ...url]);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain('400 invalid_request');
    expect(tooLong.stderr).toContain('period: must be at most 366d');

    const notADuration = await touchstream(['review', ID, '--period', 'soon', ...url]);
    expect(notADuration.code).not.toBe(0);
    expect(notADuration.stderr).toContain('give a duration');
  });
});
