-- A funnel groups every event of a customer, and reading many parts costs more than one:
-- each part is read and merged on its own. A month partition that has had no insert for
-- an hour is merged into a single part, whatever the merge heuristics would pick.
-- Only whole partitions: the current month keeps its ordinary merges, so a large part is
-- not rewritten every hour to absorb the newest small ones.
ALTER TABLE events MODIFY SETTING
    min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;
