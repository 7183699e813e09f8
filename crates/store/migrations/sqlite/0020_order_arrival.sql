-- When an order reached its destination: handed over at the door (`delivered`) or arrived at its
-- pickup point (`at_pickup_point`, its last shipment), whichever came first. The promise and the
-- 24 hours are measured against it (the SLA); a pickup point's customer collects the order later,
-- at `delivered_unix_ms`. Orders before this column: the history's arrival at the pickup point
-- (the write's time), else the delivery.
ALTER TABLE orders ADD COLUMN arrived_unix_ms INTEGER;
UPDATE orders SET arrived_unix_ms = COALESCE(
    (SELECT MAX(e.at_unix_ms) FROM order_events e
     WHERE e.tenant_id = orders.tenant_id AND e.order_id = orders.order_id AND e.status = 'at_pickup_point'),
    delivered_unix_ms);
