import type { EraseMessage } from '@touchstream/contracts';
import {
  anyErasure,
  type ErasureRow,
  erasedAmong,
  eraseRows,
  erasurePasses,
  readErasure,
  recordErasurePass,
  resolveErasureIds,
  type Store,
  writeErasure,
} from '@touchstream/store';

/** How long "no erasure was ever requested" is trusted before it is asked again. */
const NONE_TRUSTED_MS = 1_000;

/**
 * The no-resurrection rule (API.md, "Erasure and retention"): the processor never stores
 * or applies an event an erasure removed. One query per batch, and none at all while no
 * erasure was ever requested (checked again every second: another process's API may
 * store one, and its erase message may be handled by another processor).
 */
export class ErasedEvents {
  private known = false;
  /** The last question "was any erasure requested?": batches asking meanwhile share it. */
  private asked: { at: number; answer: Promise<boolean> } | undefined;

  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /** An erase message was handled here: erasures exist from now on. */
  exist() {
    this.known = true;
  }

  /** The erased ids among these event ids. */
  async among(eventIds: readonly string[]): Promise<Set<string>> {
    if (eventIds.length === 0) return new Set();
    if (!this.known) {
      if (!this.asked || this.now() - this.asked.at >= NONE_TRUSTED_MS) {
        this.asked = { at: this.now(), answer: anyErasure(this.store) };
      }
      const asked = this.asked;
      // A failed question is asked again by the next batch, not trusted for a second.
      const exists = await asked.answer.catch((error) => {
        if (this.asked === asked) this.asked = undefined;
        throw error;
      });
      if (exists) this.known = true;
    }
    return this.known ? erasedAmong(this.store, eventIds) : new Set();
  }
}

export interface ErasurePassParts {
  store: Store;
  /** Forgets the ids in the partition's journey engine and rewrites its checkpoint. */
  forgetJourneys(ids: readonly string[]): Promise<void>;
  /** Forgets the ids' links kept in memory. */
  forgetLinks(ids: readonly string[]): void;
  /** Asks the partitions of these customers to recompute them (events filed under them went). */
  recompute(customers: readonly string[]): Promise<void>;
  /** Sends these ids' partitions the erase message of the erasure (ids it gained). */
  announce(erasure: ErasureRow, ids: readonly string[]): Promise<void>;
}

/**
 * The pass of an erasure in the partition of one of its ids, at the erase message's
 * position: everything of the id before it in the partition was handled, nothing after
 * it yet. Forgets the id's journey state and links in memory, then erases what of the id
 * was stored since the API's pass (records that were in flight). Done once per erasure
 * and id: a replayed erase message must not remove the new history that followed it.
 * The stored request is what counts, not the message: a record that names no stored
 * erasure of that id (written to the topic by someone else) erases nothing.
 */
export async function erasurePass(
  parts: ErasurePassParts,
  message: EraseMessage,
): Promise<'done' | 'repeated' | 'unknown'> {
  const erasure = await readErasure(parts.store, message.erasure_id);
  if (!erasure?.ids.includes(message.id)) return 'unknown';
  const passes = await erasurePasses(parts.store, [message.erasure_id]);
  if (passes.get(message.erasure_id)?.has(message.id)) return 'repeated';
  let scope = erasure;
  if (message.id === erasure.customer_id) {
    // Links this partition stored from records that were in flight at the request name
    // anonymous ids the API did not know of: the erasure takes them too, before the links go.
    const ids = await resolveErasureIds(parts.store, erasure.customer_id);
    const gained = ids.filter((id) => !erasure.ids.includes(id));
    if (gained.length > 0) {
      scope = { ...erasure, ids: [...erasure.ids, ...gained] };
      await writeErasure(parts.store, scope);
      await parts.announce(scope, gained);
    }
  }
  await parts.forgetJourneys([message.id]);
  parts.forgetLinks(scope.ids);
  const { filedUnder } = await eraseRows(parts.store, scope, message.id);
  // Anonymous events filed under the customer and carried to its partition while this
  // id's erase message was on its way: the customer's partition recomputes without them.
  if (filedUnder.length > 0) await parts.recompute(filedUnder);
  await recordErasurePass(parts.store, message.erasure_id, message.id);
  return 'done';
}
