import { z } from 'zod';

/**
 * Lone UTF-16 surrogates: JSON can carry them (`"\ud83d"`), but they are not Unicode, UTF-8
 * cannot encode them and ClickHouse refuses any insert holding one. Refused at the door.
 */
const LONE_SURROGATE = /\p{Cs}/u;

/** A string of `min` to `max` UTF-16 units that is valid Unicode. */
export const text = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine((s) => !LONE_SURROGATE.test(s), {
      message: 'must be valid Unicode: it holds a lone UTF-16 surrogate',
    });

/** Lowercase tokens for event types and channels, so `Web` and `web` never split a funnel. */
const TOKEN = /^[a-z0-9_.:-]+$/;
const TOKEN_MESSAGE = 'must contain only a-z, 0-9, _ . : -';

export const eventType = z.string().min(1).max(64).regex(TOKEN, TOKEN_MESSAGE);
export const channelName = z.string().min(1).max(32).regex(TOKEN, TOKEN_MESSAGE);

export const propertyValue = z.union([text(0, 1024), z.number(), z.boolean(), z.null()]);
export type PropertyValue = z.infer<typeof propertyValue>;

export const propertyName = text(1, 64);

/**
 * A number a query compares with. Past 2^53 a double no longer holds every integer, and
 * ClickHouse parameters refuse such a number rather than round it: refused at the door.
 */
export const queryNumber = z.number().refine((n) => Math.abs(n) <= Number.MAX_SAFE_INTEGER, {
  message: 'must be between -(2^53 - 1) and 2^53 - 1',
});

/** A property value a query matches: as stored, with numbers a query can compare. */
export const queryValue = z.union([text(0, 1024), queryNumber, z.boolean(), z.null()]);

/** At most this many property conditions on one step. */
export const MAX_WHERE_KEYS = 20;

/** Property equality conditions of a step. */
export const whereConditions = z
  .record(propertyName, queryValue)
  .refine((o) => Object.keys(o).length <= MAX_WHERE_KEYS, {
    message: `must have at most ${MAX_WHERE_KEYS} keys`,
  })
  .meta({ maxProperties: MAX_WHERE_KEYS });

export const properties = z
  .record(propertyName, propertyValue)
  .refine((o) => Object.keys(o).length <= 50, { message: 'must have at most 50 keys' })
  .meta({ maxProperties: 50 });

// The range ClickHouse DateTime64(3) holds comfortably; anything outside is a client bug.
export const MIN_EVENT_TIME = Date.UTC(1970, 0, 1);
const MAX_EVENT_TIME = Date.UTC(2200, 0, 1);
const timeInRange = (t: number) => t >= MIN_EVENT_TIME && t < MAX_EVENT_TIME;
const RANGE_MESSAGE = 'must be between 1970 and 2200';

/** ISO 8601 with a zone, or epoch milliseconds; normalised to epoch milliseconds. */
/** A time of a query's range, ISO 8601 with a zone, within the range events can have. */
export const isoTimeInRange = z.iso
  .datetime({ offset: true })
  .transform((s) => Date.parse(s))
  .refine(timeInRange, { message: RANGE_MESSAGE });

export const timestamp = z.union(
  [
    z.iso
      .datetime({ offset: true, message: 'must be ISO 8601 with a zone, or epoch milliseconds' })
      .transform((s) => Date.parse(s))
      .refine(timeInRange, { message: RANGE_MESSAGE }),
    z
      .number()
      .int()
      .refine(timeInRange, { message: RANGE_MESSAGE })
      .meta({ minimum: MIN_EVENT_TIME, maximum: MAX_EVENT_TIME - 1 }),
  ],
  { message: 'must be ISO 8601 with a zone, or epoch milliseconds' },
);

/** A touchpoint event as clients send it. Unknown fields are refused, not dropped: a
 *  misspelt `propertes` must not lose data quietly. */
export const touchpointInput = z
  .strictObject({
    event_id: text(1, 64).describe('Idempotency key: events with the same id count once.'),
    customer_id: text(1, 128)
      .optional()
      .describe(
        'Who did it: the id the business knows them by. Required unless anonymous_id is given.',
      ),
    anonymous_id: text(1, 128)
      .optional()
      .describe(
        'A device, cookie, phone or card id used before the customer is known. An event without customer_id counts for this id as a customer of its own.',
      ),
    type: eventType.describe('What they did, e.g. product_viewed.'),
    channel: channelName.describe('Where: web, mobile, store, call_center, email, ...'),
    timestamp: timestamp.describe(
      'When: ISO 8601 with a zone, or epoch milliseconds; at most TOUCHSTREAM_MAX_FUTURE ahead.',
    ),
    properties: properties
      .optional()
      .describe('At most 50 keys; values string (≤ 1024 chars), number, boolean or null.'),
  })
  .meta({
    title: 'Touchstream touchpoint event',
    description:
      'One thing a customer did on one sales channel: one item of POST /v1/events, or the value of one record on the touchpoints topic.',
    anyOf: [{ required: ['customer_id'] }, { required: ['anonymous_id'] }],
  })
  .refine((e) => e.customer_id !== undefined || e.anonymous_id !== undefined, {
    message: 'is required unless anonymous_id is given',
    path: ['customer_id'],
  })
  // Downstream every event has a customer: until the anonymous id is linked, the anonymous
  // id is that customer. `customer_id === anonymous_id` then says no customer id was given.
  .transform(({ customer_id, ...event }) => ({
    ...event,
    customer_id: customer_id ?? (event.anonymous_id as string),
  }));

/** The JSON Schema of a touchpoint event, as producers write it. */
export const touchpointJsonSchema = () =>
  z.toJSONSchema(touchpointInput, { io: 'input', target: 'draft-2020-12' });

/** A validated touchpoint, as it travels on the bus: timestamp in epoch milliseconds. */
export type Touchpoint = z.output<typeof touchpointInput>;

export const MAX_EVENTS_PER_REQUEST = 1000;
export const MAX_BODY_BYTES = 1024 * 1024;

/** Unknown fields beside `events` are refused, like unknown event fields. */
export const ingestRequest = z.strictObject({
  events: z.array(touchpointInput).min(1).max(MAX_EVENTS_PER_REQUEST),
  /** The client's clock when it sent the batch: event times are corrected by its skew. */
  sent_at: timestamp.optional(),
});

export const ingestResponse = z.object({ accepted: z.number().int() });
