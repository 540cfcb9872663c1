-- Journey reviews posted on their schedules: one row per journey and tick, rewritten with a
-- higher version as its delivery goes on. A tick is stored `pending`, with the body to
-- post, before it is posted (the outbox: a restart finds the posts it still owes), and then
-- `delivered` or `failed` after its retries. Two markers, rows at the moment they were
-- written: `started` when the alerter began following a schedule (a new review, or a
-- changed schedule: ticks before it are not owed) and `stopped` when the review or its
-- journey went away. The latest row of a journey says from when its ticks are owed.
CREATE TABLE IF NOT EXISTS review_posts
(
    id           String,
    journey      String,
    tick         DateTime64(3, 'UTC'),
    schedule     String,
    webhook_url  String,
    outcome      Enum8('started' = 1, 'stopped' = 2, 'pending' = 3, 'delivered' = 4, 'failed' = 5),
    body         String DEFAULT '' CODEC(ZSTD(1)),
    attempts     UInt32 DEFAULT 0,
    http_status  Nullable(UInt16),
    error        String DEFAULT '',
    version      UInt64,
    updated_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (journey, id);
