import { MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST, touchpointInput } from '@touchstream/contracts';
import { v7 as uuidv7 } from 'uuid';
import {
  type BackoffPolicy,
  DEFAULT_BACKOFF,
  isRetryableStatus,
  parseRetryAfter,
  retryDelay,
} from './backoff.js';
import {
  type BatchLimits,
  batchSize,
  fillsRequest,
  maxEventBytes,
  type QueuedEvent,
  requestBody,
} from './batch.js';
import { DeliveryError, type ErrorDetail } from './errors.js';
import { createVisitor, type Visitor, type VisitorOptions } from './visitor.js';

type PropertyValue = string | number | boolean | null;

/**
 * A touchpoint as a channel service tracks it: `event_id` and `timestamp` may be left out.
 * It carries `customer_id`, `anonymous_id` or both (checked at `track`); with both, it links
 * the anonymous id to the customer. `client.visitor()` fills the ids in for one visitor.
 */
export interface TrackedEvent {
  /** The idempotency key; a UUIDv7 is generated when absent. */
  event_id?: string;
  /** 1-128 chars; required unless `anonymous_id` is given. */
  customer_id?: string;
  /** 1-128 chars: a cookie, device, phone or card id used before the customer is known. */
  anonymous_id?: string;
  type: string;
  channel: string;
  /** ISO 8601 with a zone, epoch milliseconds or a Date; now when absent. */
  timestamp?: string | number | Date;
  properties?: Record<string, PropertyValue>;
}

export interface ClientOptions {
  /** Base URL of the instance, e.g. `http://127.0.0.1:3000`. */
  url: string;
  /** An ingest key, sent as `Authorization: Bearer <key>`. */
  key?: string;
  /** Events per request, at most (and by default) 1000. */
  maxBatchEvents?: number;
  /** Bytes per request body, at most (and by default) 1 MiB. */
  maxBatchBytes?: number;
  /** The longest an event waits for companions before its batch is sent. Default 1 s. */
  flushIntervalMs?: number;
  /** Events held (queued or in flight) before `track` refuses more. Default 10,000. */
  maxBufferedEvents?: number;
  /** One request's time limit; a request that times out is retried. Default 30 s. */
  requestTimeoutMs?: number;
  /** How long one batch is retried before it is given up. Default 10 min. */
  maxRetryDurationMs?: number;
  backoff?: Partial<BackoffPolicy>;
  /**
   * Check each event against the contract in `track` (default true), so one bad event is
   * refused alone instead of making the server refuse the whole batch it travels in.
   */
  validate?: boolean;
  /** Every loss is reported here, once per batch or refused event (may be async). */
  onError?: (error: DeliveryError) => unknown;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Defaults to Math.random; jitter only. */
  random?: () => number;
}

/** Counts of events (not requests) since the client was made. */
export interface ClientStats {
  /** Taken in by `track`. */
  tracked: number;
  /** Refused by `track` (buffer full, invalid, closed) or `identify` (also: conflict). */
  refused: number;
  /** Sent for the first time. */
  sent: number;
  /** Answered 202. */
  accepted: number;
  /** Sent again after a retryable failure (one per event per retry). */
  retried: number;
  /** Refused by the server for good. */
  rejected: number;
  /** Given up after retrying for too long, or when `close` ran out of time. */
  failed: number;
  /** Queued or in flight. */
  pending: number;
  /** HTTP requests made, retries included. */
  requests: number;
}

export interface TouchstreamClient {
  /**
   * Queues one event. Returns false when it was not queued (buffer full, invalid, closed):
   * the reason also goes to `onError`. Never throws for those, so a busy channel service
   * keeps serving its customers.
   */
  track(event: TrackedEvent): boolean;
  /**
   * A handle for one visitor, known by `anonymousId` (a random UUID when absent), whose
   * `track` adds the visitor's ids and whose `identify` links it to a customer. Handles are
   * independent: make one per visitor; they share this client's queue. Never throws: ids
   * that break the contract make the handle's events refused, like any invalid event.
   */
  visitor(anonymousId?: string, options?: VisitorOptions): Visitor;
  /** Sends everything tracked so far; resolves once each of those events is settled. */
  flush(): Promise<void>;
  /**
   * Refuses further events, sends what is buffered (retrying as usual) and resolves with
   * the final counts. Whatever is still unsent after `timeoutMs` (default 10 s) is given up.
   */
  close(options?: { timeoutMs?: number }): Promise<ClientStats>;
  stats(): ClientStats;
}

/** UTF-8 length of a string without allocating its bytes. */
function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i += 1;
    } else n += 3;
  }
  return n;
}

async function errorOf(response: Response): Promise<{
  code?: string;
  message?: string;
  details?: ErrorDetail[];
}> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as {
      error?: { code?: string; message?: string; details?: ErrorDetail[] };
    };
    return body.error ?? { message: text };
  } catch {
    return { message: text.slice(0, 200) };
  }
}

function cancellableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * A client for channel services. Events leave in the order they were tracked, one request
 * at a time, so a customer's events reach the collector in order. A batch that failed in a
 * retryable way is sent again unchanged (same event ids): the server stores an id once, so
 * a retry of a batch that was in fact stored costs nothing.
 */
export function createTouchstreamClient(options: ClientOptions): TouchstreamClient {
  const endpoint = `${options.url.replace(/\/+$/, '')}/v1/events`;
  const limits: BatchLimits = {
    maxEvents: Math.min(MAX_EVENTS_PER_REQUEST, Math.max(1, options.maxBatchEvents ?? 1000)),
    maxBytes: Math.min(MAX_BODY_BYTES, options.maxBatchBytes ?? MAX_BODY_BYTES),
  };
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const maxBuffered = options.maxBufferedEvents ?? 10_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const maxRetryDurationMs = options.maxRetryDurationMs ?? 600_000;
  const backoff: BackoffPolicy = { ...DEFAULT_BACKOFF, ...options.backoff };
  const validate = options.validate ?? true;
  const doFetch = options.fetch ?? globalThis.fetch;
  const random = options.random ?? Math.random;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
  };

  const counts = {
    tracked: 0,
    refused: 0,
    sent: 0,
    accepted: 0,
    retried: 0,
    rejected: 0,
    failed: 0,
    requests: 0,
  };
  const queue: QueuedEvent[] = [];
  let queuedBytes = 0;
  // Events are numbered in tracking order; everything below `settled` is done with.
  let enqueued = 0;
  let settled = 0;
  let flushTarget = 0;
  let pumping = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const closeDeadline = new AbortController();
  const waiters: { target: number; resolve: () => void }[] = [];

  const report = (error: DeliveryError) => {
    try {
      // An async callback that rejects is caught too: it must not end the process.
      Promise.resolve(options.onError?.(error)).catch(() => {});
    } catch {
      // A failing callback must not stop delivery of everything else.
    }
  };

  const refuse = (error: DeliveryError): false => {
    counts.refused += 1;
    report(error);
    return false;
  };

  const settle = (n: number) => {
    settled += n;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const waiter = waiters[i];
      if (waiter && waiter.target <= settled) {
        waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  };

  const eventsOf = (batch: readonly QueuedEvent[]) => batch.map((e) => JSON.parse(e.json));

  /** Sends one batch until it is accepted, refused for good, or given up. */
  const deliver = async (batch: QueuedEvent[]) => {
    const n = batch.length;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (attempt === 1) counts.sent += n;
      else counts.retried += n;
      let retryAfterMs: number | undefined;
      let lastProblem: { status?: number; code?: string; message: string; cause?: unknown };
      try {
        counts.requests += 1;
        const response = await doFetch(endpoint, {
          method: 'POST',
          headers,
          // Stamped at each attempt: a retry's events waited, its clock did not go back.
          body: requestBody(batch, Date.now()),
          signal: AbortSignal.any([AbortSignal.timeout(requestTimeoutMs), closeDeadline.signal]),
        });
        if (response.ok) {
          await response.body?.cancel().catch(() => {});
          counts.accepted += n;
          return;
        }
        const error = await errorOf(response);
        if (!isRetryableStatus(response.status)) {
          counts.rejected += n;
          report(
            new DeliveryError(
              'rejected',
              `${response.status} ${error.code ?? ''}: ${error.message ?? 'refused'}`.trim(),
              {
                status: response.status,
                ...(error.code ? { code: error.code } : {}),
                details: error.details ?? [],
                events: eventsOf(batch),
              },
            ),
          );
          return;
        }
        retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), Date.now());
        lastProblem = {
          status: response.status,
          ...(error.code ? { code: error.code } : {}),
          message: `${response.status} ${error.code ?? ''}: ${error.message ?? ''}`.trim(),
        };
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause;
        lastProblem = {
          code: cause?.code ?? (error as Error).name,
          message: (error as Error).message,
          cause: error,
        };
      }
      const delay = retryDelay(attempt, retryAfterMs, random, backoff);
      const outOfTime = Date.now() + delay - started > maxRetryDurationMs;
      if (!outOfTime && !closeDeadline.signal.aborted) {
        await cancellableSleep(delay, closeDeadline.signal);
      }
      // close() ran out of time while waiting: no request the deadline already condemned.
      if (outOfTime || closeDeadline.signal.aborted) {
        counts.failed += n;
        report(
          new DeliveryError(
            'gave_up',
            `gave up after ${attempt} attempt(s): ${lastProblem.message}`,
            {
              ...lastProblem,
              events: eventsOf(batch),
            },
          ),
        );
        return;
      }
    }
  };

  const pump = async () => {
    pumping = true;
    try {
      while (
        queue.length > 0 &&
        (settled < flushTarget || fillsRequest(queue.length, queuedBytes, limits))
      ) {
        const batch = queue.splice(0, batchSize(queue, limits));
        for (const e of batch) queuedBytes -= e.bytes;
        await deliver(batch);
        settle(batch.length);
      }
    } finally {
      pumping = false;
    }
    if (queue.length > 0 && timer === undefined) scheduleInterval();
  };

  const kick = () => {
    if (!pumping) void pump();
  };

  function scheduleInterval() {
    timer = setTimeout(() => {
      timer = undefined;
      flushTarget = Math.max(flushTarget, enqueued);
      kick();
    }, flushIntervalMs);
  }

  const flush = () => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    const target = enqueued;
    flushTarget = Math.max(flushTarget, target);
    kick();
    if (settled >= target) return Promise.resolve();
    return new Promise<void>((resolve) => waiters.push({ target, resolve }));
  };

  const stats = (): ClientStats => ({ ...counts, pending: enqueued - settled });

  const client: TouchstreamClient = {
    track(input) {
      if (closed)
        return refuse(new DeliveryError('closed', 'the client is closed', { events: [input] }));
      if (enqueued - settled >= maxBuffered) {
        return refuse(
          new DeliveryError('buffer_full', `${maxBuffered} events are waiting to be sent`, {
            events: [input],
          }),
        );
      }
      const { timestamp, event_id, ...rest } = input;
      const event = {
        event_id: event_id ?? uuidv7(),
        ...rest,
        timestamp:
          timestamp === undefined
            ? Date.now()
            : timestamp instanceof Date
              ? timestamp.getTime()
              : timestamp,
      };
      if (validate) {
        const parsed = touchpointInput.safeParse(event);
        if (!parsed.success) {
          return refuse(
            new DeliveryError('invalid_event', 'the event breaks the contract', {
              details: parsed.error.issues.map((i) => ({
                path: i.path.join('.'),
                message: i.message,
              })),
              events: [event],
            }),
          );
        }
      }
      let json: string;
      try {
        json = JSON.stringify(event);
      } catch (error) {
        // Only without validation can a BigInt or a cycle get here; track() never throws.
        return refuse(
          new DeliveryError('invalid_event', `the event is not JSON: ${String(error)}`, {
            events: [event],
          }),
        );
      }
      const bytes = utf8Length(json);
      if (bytes > maxEventBytes(limits)) {
        return refuse(
          new DeliveryError(
            'invalid_event',
            `the event is larger than a request (${bytes} bytes)`,
            {
              events: [event],
            },
          ),
        );
      }
      queue.push({ eventId: event.event_id, json, bytes });
      queuedBytes += bytes;
      enqueued += 1;
      counts.tracked += 1;
      if (fillsRequest(queue.length, queuedBytes, limits)) kick();
      else if (timer === undefined && !pumping) scheduleInterval();
      return true;
    },
    visitor: (anonymousId, visitorOptions) =>
      createVisitor({ track: (event) => client.track(event), refuse }, anonymousId, visitorOptions),
    flush,
    async close(closeOptions = {}) {
      closed = true;
      const deadline = setTimeout(() => closeDeadline.abort(), closeOptions.timeoutMs ?? 10_000);
      try {
        await flush();
      } finally {
        clearTimeout(deadline);
      }
      return stats();
    },
    stats,
  };
  return client;
}
