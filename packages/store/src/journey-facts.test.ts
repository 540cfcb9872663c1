import { describe, expect, it } from 'vitest';
import { correctionRows, type FactRow, factRow } from './journey-facts.js';

const T = Date.UTC(2026, 9, 1, 12);
const reached = (step: number, time: number, version = 1, channel = 'web') =>
  factRow(
    { kind: 'reached', journey: 'j', instance: 'i1', customer: 'c1', step, time, channel },
    version,
  );
const dropped = (step: number, time: number, reason: string, version = 1): FactRow =>
  factRow(
    { kind: 'dropped', journey: 'j', instance: 'i1', customer: 'c1', step, time, reason },
    version,
  );

describe('correctionRows', () => {
  it('writes nothing when the recomputed facts are the stored ones', () => {
    const facts = [reached(0, T), reached(1, T + 60_000)];
    expect(
      correctionRows(
        facts,
        facts.map((f) => ({ ...f, version: 9 })),
        10,
      ),
    ).toEqual([]);
  });

  it('withdraws a drop-off a late event turned into a continuation', () => {
    const stored = [reached(0, T), dropped(0, T + 300_000, 'timeout')];
    const fresh = [reached(0, T, 10), reached(1, T + 200_000, 10)];
    const rows = correctionRows(stored, fresh, 10);
    expect(rows).toEqual([
      { ...dropped(0, T + 300_000, 'timeout'), version: 10, deleted: 1 },
      { ...reached(1, T + 200_000), version: 11, deleted: 0 },
    ]);
  });

  it('replaces a changed reason above the stored version, with no deletion row', () => {
    const rows = correctionRows(
      [dropped(0, T, 'timeout')],
      [dropped(0, T, 'payment_failed', 10)],
      10,
    );
    expect(rows).toEqual([{ ...dropped(0, T, 'payment_failed'), version: 11, deleted: 0 }]);
  });

  it('deletes a fact that moved in time at its old time, and writes the new one above it', () => {
    const rows = correctionRows([reached(1, T)], [reached(1, T - 31 * 86_400_000, 10)], 10);
    expect(rows.map((r) => [r.time, r.deleted, r.version])).toEqual([
      [reached(1, T).time, 1, 10],
      [reached(1, T - 31 * 86_400_000).time, 0, 11],
    ]);
  });
});
