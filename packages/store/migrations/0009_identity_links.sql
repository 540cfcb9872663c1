-- Identities (API.md, "Identities"). An event that carried no customer id and was later
-- filled in from a link is marked: a link that moves its anonymous id (an earlier link
-- to another customer, arriving late) moves these rows, and only these.
ALTER TABLE events ADD COLUMN IF NOT EXISTS stitched UInt8 DEFAULT 0 AFTER anonymous_id;

-- Found by anonymous id when an id is linked or moved, which is rare next to reading.
ALTER TABLE events ADD INDEX IF NOT EXISTS by_anonymous_id anonymous_id TYPE bloom_filter GRANULARITY 4;

-- Every link an event made: an event carrying both ids links its anonymous id to its
-- customer. The link that stands for an anonymous id is its earliest in event time
-- (ties: the smaller event id); the others are conflicts, kept as evidence. A replayed
-- link folds into one row.
CREATE TABLE IF NOT EXISTS identity_links
(
    anonymous_id  String,
    customer_id   String,
    linked_at     DateTime64(3, 'UTC'),
    event_id      String,
    received_at   DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX by_customer customer_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree
ORDER BY (anonymous_id, customer_id, linked_at, event_id);
