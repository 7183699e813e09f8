-- The lots that came into a zone (temperature reports: custody by place). Only the movements
-- that bring stock in, so orders' reservations and shipments do not pay for it.
CREATE INDEX stock_movements_into_place ON stock_movements (tenant_id, location_gln, zone, gtin, lot, at_unix_ms)
    WHERE kind IN ('receipt', 'transfer_in', 'return', 'adjust');
