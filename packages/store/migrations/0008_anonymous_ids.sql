-- The anonymous id an event carried (a device, cookie, phone or card id), '' when none.
-- An event without a customer id is stored under its anonymous id as the customer.
ALTER TABLE events ADD COLUMN IF NOT EXISTS anonymous_id String DEFAULT '' AFTER customer_id;
