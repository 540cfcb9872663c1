-- Alert rules. A change or a deletion is a new row with a higher version.
CREATE TABLE IF NOT EXISTS alert_rules
(
    id          String,
    definition  String,
    deleted     UInt8 DEFAULT 0,
    version     UInt64,
    updated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- Alert history: one alert per firing episode of a rule, rewritten with a higher version
-- when it resolves or a notice's delivery state changes. The notice columns are the
-- outbox: a transition and the notice it owes are stored in one row, so a restart finds
-- every notice not yet delivered.
CREATE TABLE IF NOT EXISTS alerts
(
    id               String,
    rule_id          String,
    journey          String,
    step             String,
    condition        LowCardinality(String),
    state            Enum8('firing' = 1, 'resolved' = 2),
    value            Nullable(Float64),
    baseline         Nullable(Float64),
    started_at       DateTime64(3, 'UTC'),
    resolved_at      Nullable(DateTime64(3, 'UTC')),
    message          String,
    firing_message   String DEFAULT '',
    webhook_url      String DEFAULT '',
    firing_notice    Enum8('none' = 0, 'pending' = 1, 'delivered' = 2, 'failed' = 3),
    resolved_notice  Enum8('none' = 0, 'pending' = 1, 'delivered' = 2, 'failed' = 3),
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- What became of each webhook notice: delivered, or given up on after its retries.
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    alert_id     String,
    rule_id      String,
    state        Enum8('firing' = 1, 'resolved' = 2),
    url          String,
    outcome      Enum8('delivered' = 1, 'failed' = 2),
    attempts     UInt32,
    http_status  Nullable(UInt16),
    error        String DEFAULT '',
    at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (alert_id, at);
