import TinyQueue from 'tinyqueue';
import { matches } from './match.js';
import type { CustomerState, EngineEvent, EngineJourney, Fact, InstanceState } from './types.js';

export interface PartitionEngineOptions {
  /** Event time = newest event time seen minus this (API.md, rule 5). */
  allowedLatenessMs: number;
  /** How long, in event time, a customer with nothing in progress is remembered. */
  customerRetentionMs?: number;
  /** How many of a customer's latest event ids are remembered, to ignore retries. */
  recentIds?: number;
}

/** What a partition's engine needs to resume exactly where it stopped. */
export interface PartitionMeta {
  watermark: number | null;
  maxEventTime: number | null;
  /** Events waiting for event time to reach them (allowed lateness), in arrival order. */
  pending: EngineEvent[];
  /**
   * No forgotten customer had anything in progress at or after this event time: a late
   * event of a customer not in memory is applied directly only after it.
   */
  forgottenUntil?: number | null;
}

export interface PartitionChanges {
  meta: PartitionMeta;
  /** Customers whose state changed since the last call. */
  upserts: CustomerState[];
  /** Customers forgotten since the last call. */
  deletes: string[];
}

interface Deadline {
  at: number;
  customer: string;
  journey: string;
  instance: string;
  step: number;
  /** When the step was reached: a corrected instance at the same step has another deadline. */
  stepTime: number;
}

interface Pending {
  event: EngineEvent;
  seq: number;
}

/**
 * A customer's state, copied so the caller's copy and the engine's never share an object.
 * Written out: `structuredClone` costs more than the rest of the engine per event.
 */
function copyCustomer(state: CustomerState): CustomerState {
  const instances: Record<string, InstanceState> = {};
  for (const [journey, instance] of Object.entries(state.instances)) {
    instances[journey] = { ...instance };
  }
  const copy: CustomerState = {
    customer: state.customer,
    instances,
    recent: [...state.recent],
    lastEventTime: state.lastEventTime,
  };
  if (state.droppedAt !== undefined) copy.droppedAt = state.droppedAt;
  return copy;
}

/** The journey's value property on a step event, when it is a finite number. */
function valueIn(journey: EngineJourney, event: EngineEvent): number | undefined {
  if (journey.valueProperty === undefined) return undefined;
  const value = event.properties?.[journey.valueProperty];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** A fact's value field: present only when the instance has a value. */
const withValue = (instance: InstanceState) =>
  instance.value === undefined ? {} : { value: instance.value };

const byTimeThenArrival = (a: Pending, b: Pending) =>
  a.event.timestamp - b.event.timestamp || a.seq - b.seq;

const DEFAULT_RETENTION_MS = 3_600_000;
const DEFAULT_RECENT_IDS = 32;

/**
 * The journey rules of API.md for the customers of one partition: the streaming state
 * machine, with no I/O. Events go in, facts come out; deadlines fire when event time,
 * driven by the events or by `advanceTo` when the partition is idle, passes them.
 */
export class PartitionEngine {
  private journeys = new Map<string, EngineJourney>();
  /** Event types some journey looks at; other events only move event time. */
  private relevantTypes = new Set<string>();
  private readonly customers = new Map<string, CustomerState>();
  private readonly deadlines = new TinyQueue<Deadline>([], (a, b) => a.at - b.at);
  private readonly forgettable = new TinyQueue<{ at: number; customer: string }>(
    [],
    (a, b) => a.at - b.at,
  );
  private pending = new TinyQueue<Pending>([], byTimeThenArrival);
  private seq = 0;
  private watermark: number | null = null;
  private forgottenUntil: number | null = null;
  private maxEventTime: number | null = null;
  private readonly changed = new Set<string>();
  private readonly forgotten = new Set<string>();
  /**
   * Customers an event reached too late for the fast path (API.md, rule 7): deadlines
   * before its time may have fired already. Their facts of this call are withheld, and
   * the caller recomputes them from their stored events (`recomputeCustomer`).
   */
  private readonly corrections = new Set<string>();
  /** Events seen by the fast path: late ones, and repeats of an id it had applied. */
  readonly seen = { late: 0, repeats: 0 };
  private readonly retentionMs: number;
  private readonly recentIds: number;

  constructor(
    journeys: readonly EngineJourney[],
    private readonly options: PartitionEngineOptions,
    restored?: { meta: PartitionMeta; customers: readonly CustomerState[] },
  ) {
    this.retentionMs = options.customerRetentionMs ?? DEFAULT_RETENTION_MS;
    this.recentIds = options.recentIds ?? DEFAULT_RECENT_IDS;
    this.setJourneys(journeys);
    if (restored) this.restore(restored.meta, restored.customers);
  }

  /** Rule 6: a journey created or changed applies to the events processed from now on. */
  setJourneys(journeys: readonly EngineJourney[]) {
    this.journeys = new Map(journeys.map((j) => [j.id, j]));
    this.relevantTypes = new Set(
      journeys.flatMap((j) => [...j.steps.map((s) => s.event_type), ...j.failureEventTypes]),
    );
  }

  /** Event time: the newest event time seen minus the allowed lateness. */
  get eventTime(): number | null {
    return this.watermark;
  }

  /** Applies events in arrival order; returns the facts they and the moved event time produce. */
  apply(events: readonly EngineEvent[]): Fact[] {
    const facts: Fact[] = [];
    for (const event of events) {
      if (this.maxEventTime === null || event.timestamp > this.maxEventTime) {
        this.maxEventTime = event.timestamp;
      }
    }
    if (this.maxEventTime === null) return facts;
    const now = Math.max(
      this.watermark ?? Number.NEGATIVE_INFINITY,
      this.maxEventTime - this.options.allowedLatenessMs,
    );
    // Events event time already reached are applied now, in time order (ties: arrival
    // order); only later ones wait in the heap. A batch mostly arrives in time order, so
    // sorting it is nearly linear, where a heap costs a log per event.
    const ready: Pending[] = [];
    for (let next = this.pending.peek(); next && next.event.timestamp <= now; ) {
      ready.push(this.pending.pop() as Pending);
      next = this.pending.peek();
    }
    for (const event of events) {
      const item = { event, seq: this.seq++ };
      if (event.timestamp <= now) ready.push(item);
      else this.pending.push(item);
    }
    ready.sort(byTimeThenArrival);
    const decidedUntil = this.watermark;
    this.watermark = now;
    for (const { event } of ready) {
      if (decidedUntil !== null && event.timestamp < decidedUntil && this.isLate(event)) continue;
      // Deadlines before this event's time passed before it happened.
      this.fireDeadlines(event.timestamp, facts);
      this.applyEvent(event, facts);
    }
    this.fireDeadlines(now, facts);
    this.forgetIdleCustomers(now);
    if (this.corrections.size === 0) return facts;
    return facts.filter((fact) => !this.corrections.has(fact.customer));
  }

  /**
   * An event older than what event time already decided: unless it repeats an id the
   * customer's state already holds, its customer goes to corrections, and so do the rest
   * of the customer's events until the caller took them.
   */
  private isLate(event: EngineEvent): boolean {
    if (!this.relevantTypes.has(event.type)) return true;
    const customer = this.customers.get(event.customer_id);
    if (customer?.recent.includes(event.event_id)) {
      this.seen.repeats += 1;
      return true;
    }
    // Applied where it arrived, the event gives what the rules give in event-time order
    // when nothing of its customer was decided at or after its time: no later event
    // applied, no drop declared, and, for a customer not in memory, none forgotten since.
    const decided = customer
      ? Math.max(customer.lastEventTime - 1, customer.droppedAt ?? Number.NEGATIVE_INFINITY)
      : (this.forgottenUntil ?? Number.NEGATIVE_INFINITY);
    if (event.timestamp > decided && !this.corrections.has(event.customer_id)) return false;
    this.seen.late += 1;
    this.corrections.add(event.customer_id);
    return true;
  }

  /** Customers to recompute from their stored events, since the last call. */
  takeCorrections(): string[] {
    const customers = [...this.corrections];
    this.corrections.clear();
    return customers;
  }

  /**
   * Puts a recomputed customer's state in place of what the fast path had (none: the
   * customer has nothing to remember). Event time does not move.
   */
  replaceCustomer(customer: string, state: CustomerState | undefined) {
    if (!state) {
      if (this.customers.delete(customer)) this.forgotten.add(customer);
      this.changed.delete(customer);
      return;
    }
    const copy = copyCustomer(state);
    this.customers.set(customer, copy);
    this.changed.add(customer);
    this.forgettable.push({ at: copy.lastEventTime + this.retentionMs, customer });
    for (const [journey, instance] of Object.entries(copy.instances)) {
      this.schedule(customer, journey, instance);
    }
  }

  /**
   * Takes out the events of a customer still waiting for event time: its id now belongs to
   * another customer (stitching), whose partition applies them instead.
   */
  takePending(customer: string): EngineEvent[] {
    const [taken, kept] = [[] as Pending[], [] as Pending[]];
    for (const p of this.pending.data) (p.event.customer_id === customer ? taken : kept).push(p);
    if (taken.length === 0) return [];
    this.pending = new TinyQueue(kept, byTimeThenArrival);
    return taken.sort((a, b) => a.seq - b.seq).map((p) => p.event);
  }

  /**
   * Forgets a customer as if it had never been seen (erasure, API.md): its state, its
   * instances in progress and its events waiting for event time. Unlike a forgotten idle
   * customer it leaves no row to checkpoint: the caller deletes its checkpoint rows.
   */
  eraseCustomer(customer: string) {
    this.customers.delete(customer);
    this.changed.delete(customer);
    this.forgotten.delete(customer);
    this.corrections.delete(customer);
    this.takePending(customer);
  }

  /** Moves event time forward with no event, as the wall clock does for an idle partition. */
  advanceTo(eventTime: number): Fact[] {
    const facts: Fact[] = [];
    this.advance(eventTime, facts);
    return facts;
  }

  /** The state to checkpoint: what changed since the last call, and the partition's meta. */
  takeChanges(): PartitionChanges {
    const upserts = [...this.changed].flatMap((id) => {
      const state = this.customers.get(id);
      return state ? [copyCustomer(state)] : [];
    });
    const deletes = [...this.forgotten].filter((id) => !this.customers.has(id));
    this.changed.clear();
    this.forgotten.clear();
    return { meta: this.meta(), upserts, deletes };
  }

  meta(): PartitionMeta {
    const pending = [...this.pending.data].sort((a, b) => a.seq - b.seq).map((p) => p.event);
    return {
      watermark: this.watermark,
      maxEventTime: this.maxEventTime,
      pending,
      forgottenUntil: this.forgottenUntil,
    };
  }

  /** In-progress instances, for inspection and tests. */
  inProgress(): Array<{ customer: string; journey: string; state: InstanceState }> {
    return [...this.customers.values()].flatMap((c) =>
      Object.entries(c.instances).map(([journey, state]) => ({
        customer: c.customer,
        journey,
        state,
      })),
    );
  }

  private restore(meta: PartitionMeta, customers: readonly CustomerState[]) {
    this.watermark = meta.watermark;
    this.maxEventTime = meta.maxEventTime;
    this.forgottenUntil = meta.forgottenUntil ?? null;
    for (const event of meta.pending) this.pending.push({ event, seq: this.seq++ });
    for (const state of customers) {
      const copy = copyCustomer(state);
      this.customers.set(copy.customer, copy);
      this.forgettable.push({ at: copy.lastEventTime + this.retentionMs, customer: copy.customer });
      for (const [journey, instance] of Object.entries(copy.instances)) {
        this.schedule(copy.customer, journey, instance);
      }
    }
  }

  private advance(to: number, facts: Fact[]) {
    // Event time never goes back: a late event does not reopen what was decided.
    const now = this.watermark === null ? to : Math.max(this.watermark, to);
    this.watermark = now;
    for (
      let next = this.pending.peek();
      next && next.event.timestamp <= now;
      next = this.pending.peek()
    ) {
      this.pending.pop();
      // Deadlines before this event's time passed before it happened.
      this.fireDeadlines(next.event.timestamp, facts);
      this.applyEvent(next.event, facts);
    }
    this.fireDeadlines(now, facts);
    this.forgetIdleCustomers(now);
  }

  /** Rule 4: drops every instance whose deadline is strictly before `time`. */
  private fireDeadlines(time: number, facts: Fact[]) {
    for (let d = this.deadlines.peek(); d && d.at < time; d = this.deadlines.peek()) {
      this.deadlines.pop();
      const customer = this.customers.get(d.customer);
      const instance = customer?.instances[d.journey];
      // Stale entries (the instance moved on, ended or was discarded) are skipped.
      if (
        !customer ||
        !instance ||
        instance.instance !== d.instance ||
        instance.step !== d.step ||
        instance.stepTime !== d.stepTime
      ) {
        continue;
      }
      delete customer.instances[d.journey];
      customer.droppedAt = Math.max(customer.droppedAt ?? d.at, d.at);
      this.changed.add(customer.customer);
      if (this.journeys.get(d.journey)?.version !== instance.version) continue;
      facts.push({
        kind: 'dropped',
        journey: d.journey,
        customer: d.customer,
        instance: d.instance,
        step: d.step,
        time: d.at,
        reason: instance.failure ?? 'timeout',
        ...withValue(instance),
      });
    }
  }

  private applyEvent(event: EngineEvent, facts: Fact[]) {
    if (!this.relevantTypes.has(event.type)) return;
    let customer = this.customers.get(event.customer_id);
    if (!customer) {
      customer = {
        customer: event.customer_id,
        instances: {},
        recent: [],
        lastEventTime: event.timestamp,
      };
      this.customers.set(customer.customer, customer);
      this.forgettable.push({
        at: customer.lastEventTime + this.retentionMs,
        customer: customer.customer,
      });
    }
    if (customer.recent.includes(event.event_id)) {
      this.seen.repeats += 1;
      return;
    }
    customer.recent.push(event.event_id);
    if (customer.recent.length > this.recentIds) customer.recent.shift();
    if (event.timestamp > customer.lastEventTime) customer.lastEventTime = event.timestamp;
    this.changed.add(customer.customer);

    for (const journey of this.journeys.values()) {
      const current = customer.instances[journey.id];
      if (current && current.version !== journey.version) delete customer.instances[journey.id];
      const instance = customer.instances[journey.id];
      if (instance) this.continueInstance(journey, customer, instance, event, facts);
      else this.maybeEnter(journey, customer, event, facts);
    }
  }

  /** Rule 1: a step-0 event starts an instance when none is in progress. */
  private maybeEnter(
    journey: EngineJourney,
    customer: CustomerState,
    event: EngineEvent,
    facts: Fact[],
  ) {
    const entry = journey.steps[0];
    if (!entry || !matches(entry, event)) return;
    const instance: InstanceState = {
      instance: event.event_id,
      version: journey.version,
      step: 0,
      stepTime: event.timestamp,
      channel: event.channel,
    };
    const value = valueIn(journey, event);
    if (value !== undefined) instance.value = value;
    customer.instances[journey.id] = instance;
    facts.push({
      kind: 'reached',
      journey: journey.id,
      customer: customer.customer,
      instance: instance.instance,
      step: 0,
      time: event.timestamp,
      channel: event.channel,
      previousChannel: null,
      secondsFromPrevious: null,
      ...withValue(instance),
    });
    this.schedule(customer.customer, journey.id, instance);
  }

  /** Rules 2-3: only the next step advances, within the timeout; the last step completes. */
  private continueInstance(
    journey: EngineJourney,
    customer: CustomerState,
    instance: InstanceState,
    event: EngineEvent,
    facts: Fact[],
  ) {
    const next = journey.steps[instance.step + 1];
    const elapsed = event.timestamp - instance.stepTime;
    if (next && matches(next, event) && elapsed >= 0 && elapsed <= journey.stepTimeoutMs) {
      const value = valueIn(journey, event);
      if (value !== undefined) instance.value = value;
      facts.push({
        kind: 'reached',
        journey: journey.id,
        customer: customer.customer,
        instance: instance.instance,
        step: instance.step + 1,
        time: event.timestamp,
        channel: event.channel,
        previousChannel: instance.channel,
        secondsFromPrevious: elapsed / 1000,
        ...withValue(instance),
      });
      instance.step += 1;
      instance.stepTime = event.timestamp;
      instance.channel = event.channel;
      instance.failure = undefined;
      if (instance.step === journey.steps.length - 1) {
        facts.push({
          kind: 'completed',
          journey: journey.id,
          customer: customer.customer,
          instance: instance.instance,
          step: instance.step,
          time: event.timestamp,
          ...withValue(instance),
        });
        delete customer.instances[journey.id];
      } else {
        this.schedule(customer.customer, journey.id, instance);
      }
      return;
    }
    if (journey.failureEventTypes.has(event.type) && elapsed >= 0) instance.failure = event.type;
  }

  private schedule(customer: string, journey: string, instance: InstanceState) {
    const definition = this.journeys.get(journey);
    if (!definition) return;
    this.deadlines.push({
      at: instance.stepTime + definition.stepTimeoutMs,
      customer,
      journey,
      instance: instance.instance,
      step: instance.step,
      stepTime: instance.stepTime,
    });
  }

  /** One entry per customer in `forgettable`: an active customer's entry is pushed back. */
  private forgetIdleCustomers(now: number) {
    for (let f = this.forgettable.peek(); f && f.at < now; f = this.forgettable.peek()) {
      this.forgettable.pop();
      const customer = this.customers.get(f.customer);
      if (!customer) continue;
      const until = customer.lastEventTime + this.retentionMs;
      if (until >= now || Object.keys(customer.instances).length > 0) {
        this.forgettable.push({
          at: Math.max(until, now + this.retentionMs),
          customer: f.customer,
        });
        continue;
      }
      this.customers.delete(f.customer);
      this.changed.delete(f.customer);
      this.forgotten.add(f.customer);
      const decided = Math.max(
        customer.lastEventTime,
        customer.droppedAt ?? customer.lastEventTime,
      );
      this.forgottenUntil = Math.max(this.forgottenUntil ?? decided, decided);
    }
  }
}
