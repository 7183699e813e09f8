-- Pallets announced and not received yet, by lot: a new ASN's pallet must give its lot the expiry
-- those give it (a lot has one expiry; the second date could never be received).
CREATE INDEX asn_pallets_awaited_by_lot ON asn_pallets (tenant_id, gtin, lot) WHERE received_unix_ms IS NULL;

-- What a place holds and awaits, found by the place (any tenant's at a network location): a
-- location is not deleted, nor changed, so as to lose them. Balances holding no units are left
-- out, so the orders path (which changes only reserved units) never touches this index.
CREATE INDEX stock_balances_held_at ON stock_balances (location_gln) WHERE on_hand > 0;
CREATE INDEX asns_by_location ON asns (location_gln);

-- The planner's statistics for the awaited pallets' index (as in 0013: written only where none
-- were measured). Without them SQLite answered the lookup from the primary key's tenant prefix,
-- reading every pallet of the tenant for each pallet announced: quadratic in a large ASN (the
-- bench's network generation went from about 11 s to minutes).
INSERT INTO sqlite_stat1 (tbl, idx, stat)
SELECT 'asn_pallets', 'asn_pallets_awaited_by_lot', '100000 100000 20 2'
WHERE NOT EXISTS (SELECT 1 FROM sqlite_stat1 measured WHERE measured.idx = 'asn_pallets_awaited_by_lot');
ANALYZE sqlite_schema; -- loads them
