-- Owners, targets and value (API.md): a fact carries the value at stake in its instance, the
-- latest value of the journey's value property among the instance's step events up to the
-- fact. NULL when the journey has no value property or no step event carried a number.
-- Facts written before this column existed have none: their value is unknown, not zero.
ALTER TABLE facts ADD COLUMN IF NOT EXISTS value Nullable(Float64) AFTER reason;
