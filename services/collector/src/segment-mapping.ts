/**
 * Segment-compatible ingestion (API.md, v1.1): the shapes of the Segment HTTP Tracking API's
 * messages, and how each becomes a touchpoint event held to the rules of POST /v1/events.
 */
import {
  correctSkew,
  type ErrorDetail,
  eventTimeProblem,
  MAX_EVENTS_PER_REQUEST,
  MIN_EVENT_TIME,
  propertyName,
  type Touchpoint,
  touchpointInput,
} from '@touchstream/contracts';
import { z } from 'zod';

// ------------------------------------------------------------------ shapes

/** The calls a Segment library makes. `group` is taken and not stored (no mapping for it). */
export const SEGMENT_TYPES = ['track', 'identify', 'page', 'screen', 'alias', 'group'] as const;
export type SegmentType = (typeof SEGMENT_TYPES)[number];

/** The calls with a route of their own (`POST /v1/track`, ...). */
export const SINGLE_MESSAGE_TYPES = ['track', 'identify', 'page', 'screen', 'alias'] as const;

/** The event type of every call but `track`, whose type is its tokenized `event`. */
export const EVENT_TYPE_OF: Record<Exclude<SegmentType, 'track' | 'group'>, string> = {
  page: 'page_viewed',
  screen: 'screen_viewed',
  identify: 'identified',
  alias: 'aliased',
};

/** The channel of a message that names none. */
export const DEFAULT_CHANNEL = 'server';
export const MAX_PROPERTIES = 50;
/** A longer property string is cut to this many UTF-16 units, as the event schema counts. */
export const MAX_PROPERTY_TEXT = 1024;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const userIdentity = z
  .union([z.string(), z.number(), z.null()], { error: 'must be a string, a number or null' })
  .optional()
  .describe('A string (a number is taken as its decimal text); null or "" means none.');
const fields = z.record(z.string(), z.unknown()).nullable().optional();
/**
 * A time as the event schema takes it, ISO 8601 with a zone or epoch milliseconds, left as
 * sent: the mapping reads it, and the event schema checks its range.
 */
const TIME_MESSAGE = 'must be ISO 8601 with a zone, or epoch milliseconds';
const segmentTime = z.union(
  [z.iso.datetime({ offset: true, error: TIME_MESSAGE }), z.number().int({ error: TIME_MESSAGE })],
  { error: TIME_MESSAGE },
);
const time = (what: string) =>
  segmentTime.optional().describe(`${what}: ISO 8601 with a zone, or epoch milliseconds.`);

/** Epoch milliseconds of a time the schema took. */
const epochMs = (value: string | number) => (typeof value === 'number' ? value : Date.parse(value));

const envelope = {
  messageId: z
    .string({
      error: (issue) =>
        issue.input === undefined
          ? 'is required: it is the event id, the same id stored twice counts once'
          : 'must be a string',
    })
    .describe('The event id (1-64 chars): a retry with the same id is stored once.'),
  userId: userIdentity.describe('The customer id (1-128 chars).'),
  anonymousId: userIdentity.describe('The anonymous id (1-128 chars).'),
  timestamp: time('The event time, taken as it is'),
  originalTimestamp: time(
    'The event time by the client clock, when timestamp is absent: corrected by sentAt',
  ),
  sentAt: time("The client's clock when it sent the message (overrides the batch's sentAt)"),
  context: fields.describe('Not stored; context.channel is the channel when properties has none.'),
  integrations: z.unknown().optional().describe('Accepted, not stored.'),
};

const shapes = {
  track: {
    event: z
      .string({
        error: (issue) =>
          issue.input === undefined ? 'is required for a track call' : 'must be a string',
      })
      .describe('The event type, lower-cased, other characters than [a-z0-9_.:-] made `_`.'),
    properties: fields,
  },
  page: {
    name: z.string().nullable().optional(),
    category: z.string().nullable().optional(),
    properties: fields,
  },
  screen: {
    name: z.string().nullable().optional(),
    category: z.string().nullable().optional(),
    properties: fields,
  },
  identify: { traits: fields.describe('Become the properties of the `identified` event.') },
  alias: {
    previousId: userIdentity.describe('The anonymous id the customer id is linked to.'),
  },
  group: { groupId: z.unknown().optional(), traits: fields },
} as const;

const messageOf = <T extends SegmentType>(type: T) =>
  z.looseObject({ type: z.literal(type), ...envelope, ...shapes[type] });

/** One message of a batch: its `type` says which call it is. */
export const segmentMessage = z.discriminatedUnion(
  'type',
  [
    messageOf('track'),
    messageOf('identify'),
    messageOf('page'),
    messageOf('screen'),
    messageOf('alias'),
    messageOf('group'),
  ],
  {
    error: (issue) =>
      !isObject(issue.input)
        ? 'must be an object: a Segment message'
        : `must be one of ${SEGMENT_TYPES.join(', ')}`,
  },
);
export type SegmentMessage = z.output<typeof segmentMessage>;

/** The body of a single-message route: the route says the type; a `type` must agree. */
export const singleMessage = <T extends (typeof SINGLE_MESSAGE_TYPES)[number]>(type: T) =>
  z.looseObject({ ...envelope, ...shapes[type], type: z.literal(type).optional() });

/** `POST /v1/batch`. Fields beside these (`writeKey`, `integrations`, ...) are not stored. */
export const segmentBatchRequest = z.looseObject({
  batch: z.array(segmentMessage).min(1).max(MAX_EVENTS_PER_REQUEST),
  sentAt: time("The client's clock when it sent the batch"),
  context: fields.describe(
    'Not stored; its channel is the channel of messages that name none (theirs come first).',
  ),
});
export type SegmentBatchRequest = z.output<typeof segmentBatchRequest>;

export const segmentResponse = z.object({ success: z.literal(true) });

// ------------------------------------------------------------------ mapping

/**
 * An event type or channel from a name: lower-cased, every run of other characters than
 * `[a-z0-9_.:-]` made one `_` ("Order Completed" -> `order_completed`).
 */
export function toToken(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_.:-]+/g, '_');
}

/** Why a property of the message was left out of its event. */
export type DropReason = 'array' | 'nested' | 'over_limit' | 'invalid_key' | 'duplicate';

export interface PropertyCounts {
  dropped: Record<DropReason, number>;
  /** String values cut to MAX_PROPERTY_TEXT. */
  truncated: number;
}

const noCounts = (): PropertyCounts => ({
  dropped: { array: 0, nested: 0, over_limit: 0, invalid_key: 0, duplicate: 0 },
  truncated: 0,
});

type Scalar = string | number | boolean | null;

/** Cut to MAX_PROPERTY_TEXT without splitting a surrogate pair. */
function truncated(value: string): string {
  let end = MAX_PROPERTY_TEXT;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return value.slice(0, end);
}

/** Properties of one event as they are built, with where each came from in the message. */
class PropertiesBuilder {
  readonly entries: Array<[string, Scalar]> = [];
  /** Property name -> the path of the message it came from, for error details. */
  readonly sources = new Map<string, string>();
  readonly counts = noCounts();

  /** Scalars kept, objects flattened one level with `.`, arrays and deeper objects dropped. */
  addAll(source: Record<string, unknown> | null | undefined, path: string) {
    if (!source) return;
    for (const [key, value] of Object.entries(source)) {
      if (Array.isArray(value)) this.counts.dropped.array += 1;
      else if (isObject(value)) {
        for (const [inner, innerValue] of Object.entries(value)) {
          if (Array.isArray(innerValue)) this.counts.dropped.array += 1;
          else if (isObject(innerValue)) this.counts.dropped.nested += 1;
          else this.add(`${key}.${inner}`, innerValue, `${path}.${key}.${inner}`);
        }
      } else this.add(key, value, `${path}.${key}`);
    }
  }

  /** Adds one scalar when its name is valid and new and there is room; counts it otherwise. */
  add(key: string, value: unknown, path: string) {
    if (value === undefined) return;
    if (!propertyName.safeParse(key).success) this.counts.dropped.invalid_key += 1;
    else if (this.sources.has(key)) this.counts.dropped.duplicate += 1;
    else if (this.entries.length >= MAX_PROPERTIES) this.counts.dropped.over_limit += 1;
    else {
      let kept = value as Scalar;
      if (typeof kept === 'string' && kept.length > MAX_PROPERTY_TEXT) {
        kept = truncated(kept);
        this.counts.truncated += 1;
      }
      this.entries.push([key, kept]);
      this.sources.set(key, path);
    }
  }

  /** Adds the value only if there is room and the name is not taken; never counted. */
  addIfRoom(key: string, value: unknown, path: string) {
    if (typeof value !== 'string' || this.sources.has(key)) return;
    if (this.entries.length >= MAX_PROPERTIES) return;
    this.add(key, value, path);
  }

  build(): Record<string, Scalar> | undefined {
    // fromEntries defines own properties: no key can reach a prototype.
    return this.entries.length > 0 ? Object.fromEntries(this.entries) : undefined;
  }
}

/** The text of an identity field, or undefined when it names none (absent, null or ""). */
function identity(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export interface MappingClock {
  /** When the request was received, epoch milliseconds. */
  receivedAt: number;
  /** TOUCHSTREAM_MAX_FUTURE. */
  maxFutureMs: number;
}

export interface BatchContext {
  /** The batch's sentAt. */
  sentAt?: string | number | undefined;
  /** The batch's context: its channel is a fallback for every message. */
  context?: Record<string, unknown> | null | undefined;
}

/** One message mapped: the event to publish (none for `group`), or what is wrong with it. */
export interface MappedMessage {
  event?: Touchpoint;
  problems: Array<{ path: string; message: string }>;
  counts: PropertyCounts;
}

/** Where the event's channel comes from: properties.channel, context.channel, batch context. */
function channelOf(message: SegmentMessage, batch: BatchContext): { value: string; path: string } {
  const properties =
    'properties' in message && isObject(message.properties) ? message.properties : {};
  if (typeof properties.channel === 'string') {
    return { value: properties.channel, path: 'properties.channel' };
  }
  if (typeof message.context?.channel === 'string') {
    return { value: message.context.channel, path: 'context.channel' };
  }
  if (typeof batch.context?.channel === 'string') {
    return { value: batch.context.channel, path: 'context.channel' };
  }
  return { value: DEFAULT_CHANNEL, path: 'type' };
}

/**
 * The event time: `timestamp` as it is; else `originalTimestamp` corrected by the clock skew
 * `sentAt` shows (the message's, else the batch's); else the time the request was received.
 */
function timeOf(
  message: SegmentMessage,
  batch: BatchContext,
  clock: MappingClock,
): { value: number; path: string; corrected: boolean } {
  if (message.timestamp !== undefined) {
    return { value: epochMs(message.timestamp), path: 'timestamp', corrected: false };
  }
  if (message.originalTimestamp !== undefined) {
    const sent = message.sentAt ?? batch.sentAt;
    const sentAt = sent === undefined ? undefined : epochMs(sent);
    return {
      value: correctSkew(epochMs(message.originalTimestamp), sentAt, clock.receivedAt),
      path: 'originalTimestamp',
      corrected: sentAt !== undefined,
    };
  }
  return { value: clock.receivedAt, path: 'timestamp', corrected: false };
}

/**
 * One Segment message as a touchpoint event, validated as POST /v1/events validates its
 * events. Problems are named by the message's own fields (`userId`, `event`, `traits.plan`).
 */
export function mapSegmentMessage(
  message: SegmentMessage,
  batch: BatchContext,
  clock: MappingClock,
): MappedMessage {
  const problems: MappedMessage['problems'] = [];
  const customerId = identity(message.userId);
  const anonymousField =
    message.type === 'alias' && identity(message.previousId) !== undefined
      ? 'previousId'
      : 'anonymousId';
  const anonymousId = identity(message[anonymousField]);
  if (customerId === undefined && anonymousId === undefined) {
    problems.push({
      path: 'userId',
      message:
        message.type === 'alias'
          ? 'is required unless previousId is given'
          : 'is required unless anonymousId is given',
    });
  }
  const properties = new PropertiesBuilder();
  if (message.type === 'group') return { problems, counts: properties.counts };

  if (message.type === 'identify') properties.addAll(message.traits, 'traits');
  if (message.type === 'track' || message.type === 'page' || message.type === 'screen') {
    properties.addAll(message.properties, 'properties');
  }
  if (message.type === 'page' || message.type === 'screen') {
    properties.addIfRoom('name', message.name, 'name');
    properties.addIfRoom('category', message.category, 'category');
  }

  const type = message.type === 'track' ? toToken(message.event) : EVENT_TYPE_OF[message.type];
  const channel = channelOf(message, batch);
  const time = timeOf(message, batch, clock);
  const problem = eventTimeProblem(time.value, {
    now: clock.receivedAt,
    maxFutureMs: clock.maxFutureMs,
  });
  // A time before 1970 as sent is out of the event schema's range, which says so below.
  if (problem && (time.corrected || time.value >= MIN_EVENT_TIME)) {
    const corrected = time.corrected ? ', corrected by the client clock skew,' : '';
    problems.push({ path: time.path, message: `the event time${corrected} ${problem}` });
  }

  const parsed = touchpointInput.safeParse({
    event_id: message.messageId,
    customer_id: customerId,
    anonymous_id: anonymousId,
    type,
    channel: toToken(channel.value),
    timestamp: time.value,
    properties: properties.build(),
  });
  if (!parsed.success) {
    const sourceOf = (path: readonly PropertyKey[]): string => {
      const [field, key] = path.map(String);
      switch (field) {
        case 'event_id':
          return 'messageId';
        case 'customer_id':
          return 'userId';
        case 'anonymous_id':
          return anonymousField;
        case 'type':
          return 'event';
        case 'channel':
          return channel.path;
        case 'timestamp':
          return time.path;
        case 'properties':
          return (key !== undefined && properties.sources.get(key)) || 'properties';
        default:
          return path.map(String).join('.');
      }
    };
    for (const issue of parsed.error.issues) {
      const path = sourceOf(issue.path);
      if (problems.some((p) => p.path === path)) continue;
      // The type is ASCII once tokenized: a long one is shown cut, not echoed whole.
      const shown = type.length > 80 ? `${type.slice(0, 64)}...` : type;
      const what =
        path === 'event' ? `as event type "${shown}"` : path === channel.path ? 'as channel' : '';
      problems.push({ path, message: what ? `${what}: ${issue.message}` : issue.message });
    }
  }
  if (problems.length > 0 || !parsed.success) return { problems, counts: properties.counts };
  return { event: parsed.data, problems, counts: properties.counts };
}

/** A batch mapped: all its events, or every problem (all or nothing). */
export type MappedBatch =
  | {
      ok: true;
      events: Touchpoint[];
      /** Messages taken and not stored (`group`), by type. */
      skipped: Partial<Record<SegmentType, number>>;
      /** Events stored, by the Segment call they came from. */
      stored: Partial<Record<SegmentType, number>>;
      counts: PropertyCounts;
    }
  | { ok: false; details: ErrorDetail[] };

export function mapSegmentBatch(
  messages: readonly SegmentMessage[],
  batch: BatchContext,
  clock: MappingClock,
): MappedBatch {
  const details: ErrorDetail[] = [];
  const events: Touchpoint[] = [];
  const skipped: Partial<Record<SegmentType, number>> = {};
  const stored: Partial<Record<SegmentType, number>> = {};
  const counts = noCounts();
  messages.forEach((message, index) => {
    const mapped = mapSegmentMessage(message, batch, clock);
    for (const problem of mapped.problems) details.push({ index, ...problem });
    for (const reason of Object.keys(counts.dropped) as DropReason[]) {
      counts.dropped[reason] += mapped.counts.dropped[reason];
    }
    counts.truncated += mapped.counts.truncated;
    if (mapped.event) {
      events.push(mapped.event);
      stored[message.type] = (stored[message.type] ?? 0) + 1;
    } else if (mapped.problems.length === 0) {
      skipped[message.type] = (skipped[message.type] ?? 0) + 1;
    }
  });
  if (details.length > 0) return { ok: false, details };
  return { ok: true, events, skipped, stored, counts };
}
