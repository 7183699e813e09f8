-- Pallets announced and not received yet, by lot: a new ASN's pallet must give its lot the expiry
-- those give it (a lot has one expiry; the second date could never be received).
CREATE INDEX asn_pallets_awaited_by_lot ON asn_pallets (tenant_id, gtin, lot) WHERE received_unix_ms IS NULL;
