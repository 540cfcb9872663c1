import type { BusRecord, OutgoingRecord } from '@touchstream/bus';
import {
  encodeTouchpoint,
  IDENTITY_HEADERS,
  type IdentityMessage,
  identityMessageKey,
  type Touchpoint,
} from '@touchstream/contracts';
import {
  type EventRow,
  fileUnderCustomers,
  insertLinks,
  type Link,
  readLinks,
  type Store,
  standingLink,
  toEventRow,
} from '@touchstream/store';
import { Counter, type Registry } from 'prom-client';

/** A decoded event and the record it came in. */
export interface Incoming {
  record: BusRecord;
  event: Touchpoint;
}

/** What a batch's events become once their ids are resolved. */
export interface StitchPlan {
  /** The rows to store, with the record each came from. */
  rows: Array<{ row: EventRow; record: BusRecord }>;
  /** The events the journey engine of this partition applies, under their resolved customer. */
  applied: Map<BusRecord, Touchpoint>;
  /** Links to store before anything else of the batch is told to another partition. */
  links: Link[];
  /** Records for this topic, sent once the rows are stored: events carried to their
   *  customer's partition, and `linked` messages to the partitions of newly linked ids. */
  outgoing: OutgoingRecord[];
}

/** Anonymous ids whose links are kept in memory; beyond it the oldest are read again. */
const MAX_KNOWN_IDS = 200_000;

/** The event carried only an anonymous id: it is filed under the customer it links to. */
const isAnonymous = (e: Touchpoint) =>
  e.anonymous_id !== undefined && e.customer_id === e.anonymous_id;
/** The event carried both ids: it links them. */
const isLinking = (e: Touchpoint) =>
  e.anonymous_id !== undefined && e.customer_id !== e.anonymous_id;

export function identityRecord(message: IdentityMessage): OutgoingRecord {
  return {
    key: identityMessageKey(message),
    value: JSON.stringify(message),
    headers: { [IDENTITY_HEADERS.control]: message.kind },
  };
}

/**
 * Identity stitching (API.md, "Identities"), by the partition that owns each id. Events
 * are keyed by customer id, else anonymous id, so:
 * - the partition of a customer sees the events that link an anonymous id to it, stores
 *   the link and tells the anonymous id's partition (`linked`);
 * - the partition of an anonymous id files the id's stored events under the customer its
 *   standing link names, and asks that customer's partition to recompute it (`restitch`,
 *   the corrections of rule 7); its own facts for the id are withdrawn the same way;
 * - an anonymous event of a linked id is stored under its customer and carried to the
 *   customer's partition, whose engine applies it there.
 * Every message goes through the topic keyed by the id it concerns, so it is ordered with
 * that id's events, survives restarts with the topic, and needs no other channel.
 */
export class Stitching {
  /** Links by anonymous id, as last read or written here. */
  private readonly known = new Map<string, Link[]>();
  private readonly conflicts: Counter;

  constructor(
    private readonly store: Store,
    metrics: Registry,
  ) {
    this.conflicts = new Counter({
      name: 'touchstream_identity_conflicts_total',
      help: 'Links of an anonymous id to a customer when another customer holds the first link: counted once per pair, when first seen.',
      registers: [metrics],
    });
  }

  /** Partitions moved: what other members wrote meanwhile is read again. */
  forget() {
    this.known.clear();
  }

  /** Erased ids: their links are gone from storage, so the ones kept here go too. */
  forgetIds(ids: readonly string[]) {
    for (const id of ids) this.known.delete(id);
    for (const [anonymousId, links] of this.known) {
      if (links.some((l) => ids.includes(l.customer_id))) this.known.delete(anonymousId);
    }
  }

  async plan(items: readonly Incoming[]): Promise<StitchPlan> {
    const linking = items.filter((i) => isLinking(i.event) && !forwarded(i.record));
    await this.load(
      items.filter((i) => isAnonymous(i.event) && !forwarded(i.record)).map(anonymousId),
    );
    const links = await this.newLinks(linking.map((i) => i.event));
    const plan: StitchPlan = { rows: [], applied: new Map(), links, outgoing: [] };
    for (const { record, event } of items) {
      const to = forwarded(record);
      if (to !== undefined) {
        plan.applied.set(record, { ...event, customer_id: to });
        continue;
      }
      const standing = isAnonymous(event)
        ? standingLink(this.known.get(event.anonymous_id as string) ?? [])
        : undefined;
      if (!standing) {
        plan.rows.push({ row: toEventRow(event), record });
        plan.applied.set(record, event);
        continue;
      }
      const customer = standing.customer_id;
      plan.rows.push({ row: toEventRow(event, customer), record });
      plan.outgoing.push(carried(event, customer));
    }
    for (const link of links) {
      plan.outgoing.push(identityRecord({ kind: 'linked', anonymous_id: link.anonymous_id }));
    }
    return plan;
  }

  /**
   * Acts on the messages this partition was sent; returns the customers of this partition
   * to recompute and the messages for other partitions. Runs after the batch's own events
   * are stored, so filing an anonymous id's events takes all of them.
   */
  async settle(messages: readonly IdentityMessage[]) {
    const local = new Set<string>();
    const linked = new Set<string>();
    for (const m of messages) {
      if (m.kind === 'restitch') local.add(m.customer_id);
      else if (m.kind === 'linked') linked.add(m.anonymous_id);
    }
    const outgoing: OutgoingRecord[] = [];
    const filed = new Map<string, string>();
    if (linked.size > 0) {
      const ids = [...linked];
      await this.load(ids, { fresh: true });
      const moves = ids.flatMap((id) => {
        const standing = standingLink(this.known.get(id) ?? []);
        return standing ? [{ anonymous_id: id, customer_id: standing.customer_id }] : [];
      });
      for (const move of moves) filed.set(move.anonymous_id, move.customer_id);
      const { from, to } = await fileUnderCustomers(this.store, moves);
      for (const customer of new Set([...to, ...from])) {
        // The anonymous ids themselves are this partition's; their facts are withdrawn here.
        if (linked.has(customer)) local.add(customer);
        else outgoing.push(identityRecord({ kind: 'restitch', customer_id: customer }));
      }
    }
    return { recompute: [...local], filed, outgoing };
  }

  /** Links new to this partition: a pair not stored before at the same time or earlier. */
  private async newLinks(events: readonly Touchpoint[]): Promise<Link[]> {
    const candidates = events.map((e) => ({
      anonymous_id: e.anonymous_id as string,
      customer_id: e.customer_id,
      linked_at: e.timestamp,
      event_id: e.event_id,
    }));
    await this.load(candidates.map((c) => c.anonymous_id));
    const unknown = candidates.filter((c) => !this.covers(c));
    if (unknown.length === 0) return [];
    // Read again: another member may have linked the id since (a conflict to count).
    await this.load(
      unknown.map((c) => c.anonymous_id),
      { fresh: true },
    );
    const links: Link[] = [];
    for (const link of unknown) {
      if (this.covers(link)) continue;
      const known = this.known.get(link.anonymous_id) ?? [];
      const pairSeen = known.some((l) => l.customer_id === link.customer_id);
      if (!pairSeen && known.some((l) => l.customer_id !== link.customer_id)) {
        this.conflicts.inc();
      }
      known.push(link);
      this.known.set(link.anonymous_id, known);
      links.push(link);
    }
    await insertLinks(this.store, links);
    return links;
  }

  /** A link of the same pair at the same time or earlier is stored: this one changes nothing. */
  private covers(link: Link) {
    return (this.known.get(link.anonymous_id) ?? []).some(
      (l) =>
        l.customer_id === link.customer_id &&
        (l.linked_at < link.linked_at ||
          (l.linked_at === link.linked_at && l.event_id <= link.event_id)),
    );
  }

  private async load(ids: readonly string[], options: { fresh?: boolean } = {}) {
    const wanted = [...new Set(ids)].filter((id) => options.fresh || !this.known.has(id));
    if (wanted.length === 0) return;
    const links = await readLinks(this.store, wanted);
    for (const id of wanted) this.known.delete(id);
    for (const id of wanted) this.known.set(id, []);
    for (const link of links) this.known.get(link.anonymous_id)?.push(link);
    for (const id of this.known.keys()) {
      if (this.known.size <= MAX_KNOWN_IDS) break;
      this.known.delete(id);
    }
  }
}

/** An anonymous event on its way to the partition of the customer its id is linked to. */
export function carried(event: Touchpoint, customer: string): OutgoingRecord {
  return {
    key: customer,
    value: encodeTouchpoint(event).value,
    headers: { [IDENTITY_HEADERS.customer]: customer },
    decoded: event,
  };
}

const anonymousId = (i: Incoming) => i.event.anonymous_id as string;

/** The customer an event was carried here for, by the partition of its anonymous id. */
function forwarded(record: BusRecord): string | undefined {
  return record.headers[IDENTITY_HEADERS.customer];
}
