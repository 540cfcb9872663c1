-- Raw touchpoint events, one row per event_id.
-- Ordered by customer so a funnel reads each customer's events together, in time order,
-- and aggregates in order; partitioned by month so old months can be dropped whole.
-- Replays and client retries write the same (customer_id, timestamp, event_id) again:
-- ReplacingMergeTree folds them, and queries read with FINAL or count distinct ids.
CREATE TABLE IF NOT EXISTS events
(
    event_id     String,
    customer_id  String,
    type         LowCardinality(String),
    channel      LowCardinality(String),
    timestamp    DateTime64(3, 'UTC'),
    -- The event's properties as a JSON object, read with JSONExtract* by name.
    properties   String CODEC(ZSTD(1)),
    received_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (customer_id, timestamp, event_id);
