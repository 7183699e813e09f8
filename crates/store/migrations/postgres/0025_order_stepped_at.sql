-- When an order's last physical step happened: the `at` its sender gave, or when it was recorded
-- (the latest of those so far). A step said to have happened before it is refused. None before
-- any step, and for orders whose steps were all recorded before this column.
ALTER TABLE orders ADD COLUMN stepped_unix_ms BIGINT;
