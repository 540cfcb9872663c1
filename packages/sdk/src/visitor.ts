import { randomUUID } from 'node:crypto';
import { type PropertyValue, text } from '@touchstream/contracts';
import type { TrackedEvent } from './client.js';
import { DeliveryError } from './errors.js';

/** The event type `identify` sends: the same as the Segment-compatible `/v1/identify`. */
export const IDENTIFIED_EVENT_TYPE = 'identified';

/** The channel of an `identified` event when neither `identify` nor the visitor names one. */
export const DEFAULT_IDENTIFY_CHANNEL = 'server';

/** What `visitor.track` takes: a tracked event without ids of the person, which the handle adds. */
export interface VisitorEvent {
  /** The idempotency key; a UUIDv7 is generated when absent. */
  event_id?: string;
  type: string;
  /** The visitor's `channel` when absent. */
  channel?: string;
  /** ISO 8601 with a zone, epoch milliseconds or a Date; now when absent. */
  timestamp?: string | number | Date;
  properties?: Record<string, PropertyValue>;
}

export interface VisitorOptions {
  /** The channel of this visitor's events and of its `identified` event, unless they name one. */
  channel?: string;
  /**
   * The customer id when it is already known, e.g. from the session of an earlier request:
   * the events carry both ids at once and no `identified` event is sent.
   */
  customerId?: string;
}

export interface IdentifyOptions {
  /** The channel of the `identified` event; else the visitor's, else `server`. */
  channel?: string;
  /** The time of the `identified` event; now when absent. */
  timestamp?: string | number | Date;
  /** The idempotency key of the `identified` event; a UUIDv7 is generated when absent. */
  event_id?: string;
}

/**
 * One visitor, known by an anonymous id (a cookie, device, phone or card id) until
 * `identify` says which customer it is. A handle holds the state of one visitor only:
 * a server makes one per visitor it serves, as many as it likes, from one client.
 */
export interface Visitor {
  readonly anonymousId: string;
  /** The customer id once known (`identify` or `customerId`), else undefined. */
  readonly customerId: string | undefined;
  /**
   * Queues one event of this visitor: with `anonymous_id` always, and `customer_id` once the
   * visitor is identified. Returns false when it was not queued, like the client's `track`.
   */
  track(event: VisitorEvent): boolean;
  /**
   * Says which customer this visitor is. From then on its events carry both ids; at once an
   * `identified` event carrying both ids (and `traits` as its properties) is queued, which
   * links the anonymous id to the customer even if no other event follows.
   *
   * - Identifying again with the same id is allowed: it sends another `identified` event
   *   (e.g. new traits).
   * - Identifying with another id is refused (`identity_conflict`, returns false, nothing is
   *   sent, the handle keeps its customer): the server keeps the first link of an anonymous
   *   id for good, so a second customer on the same anonymous id would only be counted as a
   *   conflict. A new person on the same device or till is a new `client.visitor()`.
   * - An id that breaks the contract (1-128 chars of valid Unicode) is refused
   *   (`invalid_event`, path `customer_id`), even with `validate: false`; the handle is
   *   unchanged.
   *
   * Returns whether the `identified` event was queued. A valid id identifies the handle even
   * when that event itself is refused (buffer full, traits that break the contract, client
   * closed): the following events carry both ids, and any of them makes the link.
   */
  identify(
    customerId: string,
    traits?: Record<string, PropertyValue>,
    options?: IdentifyOptions,
  ): boolean;
}

/** What a visitor needs of its client. */
export interface VisitorHost {
  track(event: TrackedEvent): boolean;
  /** Counts and reports an event refused before `track`. */
  refuse(error: DeliveryError): false;
}

const customerIdRule = text(1, 128);

export function createVisitor(
  host: VisitorHost,
  anonymousId: string = randomUUID(),
  options: VisitorOptions = {},
): Visitor {
  let customerId = options.customerId;
  const defaultChannel = options.channel;

  const withIds = <T extends object>(event: T) => ({
    ...event,
    ...(customerId === undefined ? {} : { customer_id: customerId }),
    anonymous_id: anonymousId,
  });

  return {
    anonymousId,
    get customerId() {
      return customerId;
    },
    track(input) {
      // Ids a caller without types slipped in never override the handle's.
      const {
        customer_id: _c,
        anonymous_id: _a,
        channel,
        ...rest
      } = input as VisitorEvent & { customer_id?: unknown; anonymous_id?: unknown };
      const eventChannel = channel ?? defaultChannel;
      // Without a channel anywhere, the contract check refuses the event and says why.
      return host.track(
        withIds({
          ...rest,
          ...(eventChannel === undefined ? {} : { channel: eventChannel }),
        }) as TrackedEvent,
      );
    },
    identify(newCustomerId, traits, identifyOptions = {}) {
      const event = {
        ...(identifyOptions.event_id === undefined ? {} : { event_id: identifyOptions.event_id }),
        customer_id: newCustomerId,
        anonymous_id: anonymousId,
        type: IDENTIFIED_EVENT_TYPE,
        channel: identifyOptions.channel ?? defaultChannel ?? DEFAULT_IDENTIFY_CHANNEL,
        ...(identifyOptions.timestamp === undefined
          ? {}
          : { timestamp: identifyOptions.timestamp }),
        ...(traits === undefined ? {} : { properties: traits }),
      };
      const checked = customerIdRule.safeParse(newCustomerId);
      if (!checked.success) {
        return host.refuse(
          new DeliveryError('invalid_event', 'the customer id breaks the contract', {
            details: checked.error.issues.map((i) => ({
              path: ['customer_id', ...i.path].join('.'),
              message: i.message,
            })),
            events: [event],
          }),
        );
      }
      if (customerId !== undefined && customerId !== newCustomerId) {
        return host.refuse(
          new DeliveryError(
            'identity_conflict',
            'the visitor is already identified as another customer: the first link of an anonymous id wins',
            {
              details: [
                {
                  path: 'customer_id',
                  message: `the visitor ${anonymousId} is already ${customerId}`,
                },
              ],
              events: [event],
            },
          ),
        );
      }
      customerId = newCustomerId;
      return host.track(event);
    },
  };
}
