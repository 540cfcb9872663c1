-- Journey definitions. A change or a deletion is a new row with a higher version.
CREATE TABLE IF NOT EXISTS journeys
(
    id          String,
    definition  String,
    deleted     UInt8 DEFAULT 0,
    version     UInt64,
    updated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- What the journey engine declared, one row per instance, step and kind. The sort key
-- is the fact's identity: a fact written again after a replay folds into the first.
-- Partitioned by the fact's own event time, which a replay reproduces exactly.
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

-- The engine's checkpoint: per consumer group and partition, one row per customer with
-- something to remember, and one row (customer_id = '') for the partition itself.
CREATE TABLE IF NOT EXISTS journey_state
(
    group_id     LowCardinality(String),
    partition    UInt32,
    customer_id  String,
    state        String CODEC(ZSTD(1)),
    deleted      UInt8 DEFAULT 0,
    version      UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (group_id, partition, customer_id);
