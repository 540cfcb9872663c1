-- Records the processor could not use, copied from the dead-letter topic so they can be
-- inspected with SQL on either bus. (topic, partition, offset) identifies a record: a
-- replayed copy folds into the first.
CREATE TABLE IF NOT EXISTS dead_letters
(
    topic        LowCardinality(String),
    partition    UInt32,
    offset       UInt64,
    reason       String,
    record_key   Nullable(String),
    value        String CODEC(ZSTD(1)),
    received_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (topic, partition, offset);
