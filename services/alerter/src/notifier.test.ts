import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertRecord } from '@touchstream/store';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { deliverNotice } from './notifier.js';

const record = (url: string): AlertRecord => ({
  id: 'paid-broken:1',
  alert: {
    rule_id: 'paid-broken',
    journey: 'shop',
    step: 'paid',
    condition: 'no_events',
    state: 'firing',
    value: 0,
    baseline: null,
    started_at: new Date().toISOString(),
    resolved_at: null,
    message: 'No instance reached step "paid".',
  },
  firingMessage: 'No instance reached step "paid".',
  webhookUrl: url,
  firingNotice: 'pending',
  resolvedNotice: 'none',
});

const options = (signal = new AbortController().signal) => ({
  timeoutMs: 200,
  retryForMs: 1_000,
  minBackoffMs: 50,
  maxBackoffMs: 100,
  // The receivers are on 127.0.0.1.
  allowInternal: true,
  now: Date.now,
  signal,
  logger: pino({ level: 'silent' }),
});

/** A real receiver on 127.0.0.1 answering with what `answer` decides per request. */
async function receiver(answer: (n: number) => number | 'hang') {
  let requests = 0;
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    requests += 1;
    const status = answer(requests);
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      if (status !== 'hang') response.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    requests: () => requests,
    bodies: () => bodies.map((b) => JSON.parse(b)),
  };
}

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

describe('delivering a notice', () => {
  it('retries a failing receiver with backoff until it answers', async () => {
    const hook = await receiver((n) => (n < 3 ? 503 : 204));
    const result = await deliverNotice(record(hook.url), 'firing', options());
    expect(result).toEqual({ outcome: 'delivered', attempts: 3, httpStatus: 204, error: '' });
  });

  it('sends a late firing notice as the alert fired, even once it resolved', async () => {
    const hook = await receiver(() => 200);
    const fired = record(hook.url);
    const resolved = {
      ...fired,
      alert: {
        ...fired.alert,
        state: 'resolved' as const,
        resolved_at: new Date().toISOString(),
        message: 'Resolved: 3 instances reached step "paid".',
      },
    };
    await deliverNotice(resolved, 'firing', options());
    await deliverNotice(resolved, 'resolved', options());
    const [firing, done] = hook.bodies();
    expect(firing).toMatchObject({
      state: 'firing',
      resolved_at: null,
      message: fired.alert.message,
    });
    expect(done).toMatchObject({ state: 'resolved', message: resolved.alert.message });
    expect(done.text).toContain('*RESOLVED*');
  });

  it('gives up on a receiver that refuses the request, without retrying', async () => {
    const hook = await receiver(() => 404);
    const result = await deliverNotice(record(hook.url), 'firing', options());
    expect(result).toMatchObject({ outcome: 'failed', attempts: 1, httpStatus: 404 });
    expect(hook.requests()).toBe(1);
  });

  it('does not follow a redirect: the hook moved, which retrying does not fix', async () => {
    const hook = await receiver(() => 308);
    const result = await deliverNotice(record(hook.url), 'firing', options());
    expect(result).toMatchObject({ outcome: 'failed', attempts: 1, httpStatus: 308 });
  });

  it('times a hanging receiver out, and stops retrying when the time is up', async () => {
    const hook = await receiver(() => 'hang');
    const result = await deliverNotice(record(hook.url), 'firing', options());
    expect(result.outcome).toBe('failed');
    expect(result.attempts).toBeGreaterThan(1);
    expect(result.error).toMatch(/timeout|aborted/i);
  });

  it('is interrupted by a stop, leaving the notice owed', async () => {
    const hook = await receiver(() => 'hang');
    const stop = new AbortController();
    const delivering = deliverNotice(record(hook.url), 'firing', {
      ...options(stop.signal),
      timeoutMs: 5_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort();
    expect((await delivering).outcome).toBe('interrupted');
  });

  it('never posts to an internal address unless allowed, and does not retry it', async () => {
    const hook = await receiver(() => 204);
    const result = await deliverNotice(record(hook.url), 'firing', {
      ...options(),
      allowInternal: false,
    });
    expect(result).toMatchObject({ outcome: 'failed', attempts: 1, httpStatus: null });
    expect(result.error).toMatch(/^not sent: 127\.0\.0\.1 is an internal address/);
    expect(hook.requests()).toBe(0);
  });
});
