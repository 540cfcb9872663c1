import { describe, expect, it } from 'vitest';
import { planRetention, retentionTtl, tableTtl } from './retention.js';

const DAY = 86_400_000;
const SETTINGS = 'SETTINGS index_granularity = 8192, materialize_ttl_recalculate_only = 1';
const engine = (partition: string, ttl?: string) =>
  `ReplacingMergeTree PARTITION BY toYYYYMM(${partition}) ORDER BY (a, b)${ttl ? ` TTL ${ttl}` : ''} ${SETTINGS}`;
const tables = (ttls: { events?: string; facts?: string; dead_letters?: string } = {}) =>
  new Map([
    ['events', engine('timestamp', ttls.events)],
    ['facts', engine('time', ttls.facts)],
    ['dead_letters', engine('received_at', ttls.dead_letters)],
  ]);
const allAt = (seconds: number) => ({
  events: `timestamp + toIntervalSecond(${seconds})`,
  facts: `time + toIntervalSecond(${seconds})`,
  dead_letters: `event_time + toIntervalSecond(${seconds})`,
});

describe('retention', () => {
  it('is a TTL in whole seconds, rounded up, or none', () => {
    expect(retentionTtl('timestamp', 400 * DAY)).toBe('timestamp + toIntervalSecond(34560000)');
    expect(retentionTtl('time', 1500)).toBe('time + toIntervalSecond(2)');
    expect(retentionTtl('time', undefined)).toBeNull();
  });

  it('reads the table TTL out of engine_full, with or without settings after it', () => {
    expect(tableTtl(engine('timestamp', 'timestamp + toIntervalSecond(60)'))).toBe(
      'timestamp + toIntervalSecond(60)',
    );
    expect(tableTtl('MergeTree ORDER BY a TTL t + toIntervalSecond(5)')).toBe(
      't + toIntervalSecond(5)',
    );
    expect(tableTtl(engine('timestamp'))).toBeNull();
  });

  it('sets the TTL of events, facts and dead letters by their event time', () => {
    expect(planRetention(tables(), 2 * DAY).map((c) => c.statement)).toEqual([
      'ALTER TABLE events MODIFY TTL timestamp + toIntervalSecond(172800)',
      'ALTER TABLE facts MODIFY TTL time + toIntervalSecond(172800)',
      'ALTER TABLE dead_letters MODIFY TTL event_time + toIntervalSecond(172800)',
    ]);
  });

  it('does nothing when the tables already have the retention', () => {
    expect(planRetention(tables(allAt(172_800)), 2 * DAY)).toEqual([]);
    expect(planRetention(tables(), undefined)).toEqual([]);
  });

  it('changes only the tables whose TTL differs', () => {
    const changes = planRetention(tables({ ...allAt(172_800), facts: undefined }), 2 * DAY);
    expect(changes.map((c) => c.table)).toEqual(['facts']);
    expect(planRetention(tables(allAt(60)), 2 * DAY)).toHaveLength(3);
  });

  it('removes the TTL when the retention is unset', () => {
    expect(planRetention(tables(allAt(60)), undefined)).toEqual([
      { table: 'events', ttl: null, statement: 'ALTER TABLE events REMOVE TTL' },
      { table: 'facts', ttl: null, statement: 'ALTER TABLE facts REMOVE TTL' },
      { table: 'dead_letters', ttl: null, statement: 'ALTER TABLE dead_letters REMOVE TTL' },
    ]);
  });

  it('refuses to run before the tables exist', () => {
    expect(() => planRetention(new Map(), 2 * DAY)).toThrowError(/migrate first/);
  });
});
