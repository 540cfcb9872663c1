import { migrate, readMigrations } from '@touchstream/store';
import { describe, expect, it } from 'vitest';
import { openTestStore } from '../support/store.js';

// A file of its own: the embedded engine opens one data directory per process.
describe('upgrading from v1', () => {
  it('keeps the journey facts of v1 when they move to the versioned facts table', async () => {
    const upgraded = await openTestStore();
    try {
      await migrate(
        upgraded,
        (await readMigrations()).filter((m) => m.version < 7),
      );
      await upgraded.command({
        query: `INSERT INTO journey_facts (journey, instance, customer_id, kind, step, time, reason)
                VALUES ('j', 'i', 'c', 'reached', 0, '2026-10-01 00:00:00', ''),
                       ('j', 'i', 'c', 'dropped', 0, '2026-10-01 00:05:00', 'timeout')`,
      });
      expect((await migrate(upgraded)).map((m) => m.name)).toContain('versioned_facts');
      const facts = await (
        await upgraded.query({
          query: 'SELECT kind, reason, toString(version) AS version FROM facts FINAL ORDER BY kind',
          format: 'JSONEachRow',
        })
      ).json();
      expect(facts).toEqual([
        { kind: 'reached', reason: '', version: '0' },
        { kind: 'dropped', reason: 'timeout', version: '0' },
      ]);
    } finally {
      await upgraded.close();
    }
  });
});
