-- Journey facts with versions (API.md, rule 7): when a late, repeated or out-of-order
-- event changes a customer's history, the customer's facts are recomputed and replaced.
-- A replaced fact is written again with a higher version, a withdrawn one as a row with
-- deleted = 1; FINAL keeps each fact's newest row and hides deleted ones, so every query
-- counts current facts only. Sorted by customer within a journey, so the facts of the
-- customers being corrected are a point read.
-- Partitioned by the fact's time as before: a withdrawn fact's deletion row carries the
-- fact's own time, so it lands in the fact's partition and folds with it.
CREATE TABLE IF NOT EXISTS journey_facts
(
    journey                LowCardinality(String),
    instance               String,
    customer_id            String,
    kind                   Enum8('reached' = 1, 'completed' = 2, 'dropped' = 3),
    step                   UInt8,
    time                   DateTime64(3, 'UTC'),
    channel                LowCardinality(String) DEFAULT '',
    previous_channel       LowCardinality(String) DEFAULT '',
    seconds_from_previous  Nullable(Float64),
    reason                 LowCardinality(String) DEFAULT ''
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (journey, instance, customer_id, kind, step);

CREATE TABLE IF NOT EXISTS facts
(
    journey                LowCardinality(String),
    customer_id            String,
    instance               String,
    kind                   Enum8('reached' = 1, 'completed' = 2, 'dropped' = 3),
    step                   UInt8,
    time                   DateTime64(3, 'UTC'),
    channel                LowCardinality(String) DEFAULT '',
    previous_channel       LowCardinality(String) DEFAULT '',
    seconds_from_previous  Nullable(Float64),
    reason                 LowCardinality(String) DEFAULT '',
    version                UInt64,
    deleted                UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, deleted)
PARTITION BY toYYYYMM(time)
ORDER BY (journey, customer_id, instance, kind, step);

-- The facts of v1 become version 0. The first statement above makes this step safe to
-- run again if a start was interrupted after the last one: copies fold into one row.
INSERT INTO facts (journey, customer_id, instance, kind, step, time, channel, previous_channel,
                   seconds_from_previous, reason, version)
SELECT journey, customer_id, instance, kind, step, time, channel, previous_channel,
       seconds_from_previous, reason, 0
FROM journey_facts;

DROP TABLE IF EXISTS journey_facts;
