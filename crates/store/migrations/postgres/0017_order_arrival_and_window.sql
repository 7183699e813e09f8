-- When an order reached its destination: handed over at the door (`delivered`) or arrived at its
-- pickup point (`at_pickup_point`, its last shipment), whichever came first. The promise and the
-- 24 hours are measured against it (the SLA); a pickup point's customer collects the order later,
-- at `delivered_unix_ms`. Orders before this column: the history's arrival at the pickup point
-- (the write's time), else the delivery. Only orders that can have arrived are rewritten.
ALTER TABLE orders ADD COLUMN arrived_unix_ms BIGINT;
UPDATE orders SET arrived_unix_ms = COALESCE(
    (SELECT MAX(e.at_unix_ms) FROM order_events e
     WHERE e.tenant_id = orders.tenant_id AND e.order_id = orders.order_id AND e.status = 'at_pickup_point'),
    delivered_unix_ms)
WHERE status IN ('at_pickup_point', 'delivered', 'returned');

-- When the order's service window (`same_day`, `next_day`, 12 h, 5 days) started, if not when it
-- was placed: a merchant who has a flagged order allocated again takes a new promise from then.
-- An allocation made again on its own (a recall, a count) keeps the window. Null: placed_unix_ms.
ALTER TABLE orders ADD COLUMN window_from_unix_ms BIGINT;
