-- Erasure deletes rows of a few ids from tables that take a steady stream of inserts. As a
-- mutation, a lightweight delete waits on the merges of every part and held the embedded
-- engine (one query at a time) for up to a second each, stalling every answer meanwhile.
-- With these columns a delete writes a small patch part instead, in milliseconds; the
-- rows are hidden at once, and the purge applies the patches and the deleted-row mask.
ALTER TABLE events MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
ALTER TABLE facts MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
ALTER TABLE journey_state MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
ALTER TABLE identity_links MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
ALTER TABLE dead_letters MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;
