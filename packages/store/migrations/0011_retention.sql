-- TOUCHSTREAM_RETENTION deletes by event time (API.md), and a dead letter has none of its
-- own: it is the record as read, which is often an event. Its event time is the record's
-- `timestamp` when it has one in the range events can have (epoch milliseconds or a
-- date-time string), else the time it was stored; and never later than the time it was
-- stored, so a letter refused for a time far ahead is not kept for years. Out-of-range
-- numbers are clamped before the conversion and then ignored: a merge computes this for
-- every row and must not fail on whatever bytes a producer sent.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS event_time DateTime64(3, 'UTC') MATERIALIZED
    least(received_at, ifNull(multiIf(
        JSONType(value, 'timestamp') IN ('Int64', 'UInt64', 'Double')
            AND JSONExtractFloat(value, 'timestamp') BETWEEN 0 AND 7258118400000,
        fromUnixTimestamp64Milli(
            toInt64(least(greatest(JSONExtractFloat(value, 'timestamp'), 0.), 7258118400000.)), 'UTC'),
        JSONType(value, 'timestamp') = 'String',
        parseDateTime64BestEffortOrNull(JSONExtractString(value, 'timestamp'), 3, 'UTC'),
        NULL), received_at));

-- A changed retention rewrites the TTL, and ClickHouse then materializes it in every part.
-- By default that rewrites the whole table at once; here it only recomputes each part's
-- TTL bounds from the time column, and the ordinary TTL merges delete the expired rows.
ALTER TABLE events MODIFY SETTING materialize_ttl_recalculate_only = 1;
ALTER TABLE facts MODIFY SETTING materialize_ttl_recalculate_only = 1;
ALTER TABLE dead_letters MODIFY SETTING materialize_ttl_recalculate_only = 1;
