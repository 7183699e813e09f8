-- Balances whose quarantine a recall's hold covers: a quarantined balance of a lot made from a
-- recalled one that the recall put on hold (`hold_derived`), or units asked into quarantine that
-- came in on hold (a lot the recall holds), and the balance units of one moved to. A release of
-- the hold there (`/v1/stock/lot-status` to available) puts the balance back in quarantine: no
-- unit waiting for its check is made sellable by lifting a hold. A release to available or
-- quarantine consumes the row.
CREATE TABLE quarantine_under_hold (
    tenant_id TEXT NOT NULL,
    gtin TEXT NOT NULL,
    lot TEXT NOT NULL,
    location_gln TEXT NOT NULL,
    zone TEXT NOT NULL,
    PRIMARY KEY (tenant_id, gtin, lot, location_gln, zone)
);
