-- Every channel events were stored with, kept by a materialized view as events are
-- inserted. Funnels broken down by channel carry each event's channel as its rank in this
-- list (a number), which per-customer arrays collect several times faster than strings.
-- A channel stays listed after its events expire or are erased: the list only names the
-- ranks, and a channel name is a label of the business's own sales channels, not a
-- customer's data.
CREATE TABLE IF NOT EXISTS channels
(
    channel LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY channel;

CREATE MATERIALIZED VIEW IF NOT EXISTS channels_of_events TO channels
AS SELECT DISTINCT channel FROM events;

-- The channels of events stored before the view (those inserted since are in it already).
INSERT INTO channels SELECT DISTINCT channel FROM events;
