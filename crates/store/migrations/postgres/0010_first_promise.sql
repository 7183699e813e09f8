-- The promise made when an order was placed, kept once a later allocation (after a recall took
-- its stock) moves `promised_by_unix_ms`: the SLA measures against it. NULL: never moved.
ALTER TABLE orders ADD COLUMN first_promised_unix_ms BIGINT;
