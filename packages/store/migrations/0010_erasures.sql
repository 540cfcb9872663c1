-- Erasure of a customer (API.md, "Erasure and retention"). One row per request; its state
-- moves from pending to done (a new row with a higher version) once the rows of its ids are
-- physically gone. The request is stored before anything is deleted, so it survives a
-- restart and the purge resumes from here.
CREATE TABLE IF NOT EXISTS erasures
(
    erasure_id    String,
    customer_id   String,
    -- The customer id and the anonymous ids whose standing link named it at the request.
    ids           Array(String),
    requested_at  DateTime64(3, 'UTC'),
    state         Enum8('pending' = 1, 'done' = 2),
    done_at       Nullable(DateTime64(3, 'UTC')),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY erasure_id;

-- Every event id an erasure removed. The processor never stores or applies an event whose
-- id is here: a Kafka replay, a processor restarting from older offsets or an SDK retry
-- cannot bring an erased event back. Events sent after the erasure have new ids.
CREATE TABLE IF NOT EXISTS erased_events
(
    event_id    String,
    erasure_id  String
)
ENGINE = ReplacingMergeTree
ORDER BY event_id;

-- The processor's pass of an erasure at the erase message of one id, in that id's
-- partition: done once, so a replayed erase message never removes what came after it, and
-- the purge waits for every id's pass (records that were in flight are removed by then).
CREATE TABLE IF NOT EXISTS erasure_passes
(
    erasure_id  String,
    id          String,
    passed_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (erasure_id, id);
