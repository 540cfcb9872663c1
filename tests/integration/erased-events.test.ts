import { eraseRows, migrate, writeErasure } from '@touchstream/store';
import { describe, expect, it } from 'vitest';
import { ErasedEvents } from '../../services/processor/src/erasure-pass.js';
import { openTestStore } from '../support/store.js';

/**
 * The processor's no-resurrection rule against a real store: no question per batch while
 * no erasure exists; once one does, every batch is checked, also the batches that started
 * while the first question was on its way (partitions are handled four at a time).
 */
describe('ErasedEvents', () => {
  it('checks every batch once an erasure exists, none before', async () => {
    const store = await openTestStore();
    try {
      await migrate(store);
      let now = 0;
      const erased = new ErasedEvents(store, () => now);
      expect([...(await erased.among(['e1']))]).toEqual([]);

      await store.insert({
        table: 'events',
        values: [
          {
            event_id: 'e1',
            customer_id: 'c1',
            type: 'page_viewed',
            channel: 'web',
            timestamp: '2026-10-01 12:00:00.000',
            properties: '{}',
          },
        ],
        format: 'JSONEachRow',
      });
      const erasure = {
        erasure_id: 'x1',
        customer_id: 'c1',
        ids: ['c1'],
        requested_at: Date.now(),
        state: 'pending' as const,
        done_at: null,
      };
      await writeErasure(store, erasure);
      await eraseRows(store, erasure);
      // "None" was the answer less than a second ago: trusted, as documented.
      expect([...(await erased.among(['e1']))]).toEqual([]);
      now = 1_000;
      const answers = await Promise.all([
        erased.among(['e1', 'e2']),
        erased.among(['e1']),
        erased.among(['e3']),
      ]);
      expect(answers.map((a) => [...a])).toEqual([['e1'], ['e1'], []]);
    } finally {
      await store.close();
    }
  });
});
