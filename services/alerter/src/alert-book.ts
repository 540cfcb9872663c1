import { KeyedQueue } from '@touchstream/contracts';
import { type AlertRecord, type Store, saveAlertRecord } from '@touchstream/store';

/**
 * The open alerts (firing, or with a notice owed), each stored before it is acted on. The
 * writes of one alert run one after another, each applying its change to what the
 * previous one stored, so a delivery outcome and a resolution arriving together never undo
 * each other. An alert leaves the book once it is resolved and owes no notice.
 */
export function buildAlertBook(store: Store) {
  const records = new Map<string, AlertRecord>();
  const writes = new KeyedQueue<string>();

  const update = (id: string, change: (record: AlertRecord) => AlertRecord) =>
    writes.run(id, async () => {
      const current = records.get(id);
      if (!current) throw new Error(`alert ${id} is not open`);
      const next = change(current);
      await saveAlertRecord(store, next);
      records.set(id, next);
      const closed =
        next.alert.state === 'resolved' &&
        next.firingNotice !== 'pending' &&
        next.resolvedNotice !== 'pending';
      if (closed) records.delete(id);
      return next;
    });

  return {
    get: (id: string) => records.get(id),

    /** How many alerts are open. */
    get size() {
      return records.size;
    },

    /** An alert an earlier run stored open: it is already stored as it is. */
    adopt(record: AlertRecord) {
      records.set(record.id, record);
    },

    /** A new alert: open only once stored, so that a failed write leaves nothing behind. */
    async open(record: AlertRecord) {
      records.set(record.id, record);
      try {
        await update(record.id, (r) => r);
      } catch (error) {
        records.delete(record.id);
        throw error;
      }
    },

    update,

    /** Settles once the writes queued so far have. */
    idle: () => writes.idle(),
  };
}

export type AlertBook = ReturnType<typeof buildAlertBook>;
