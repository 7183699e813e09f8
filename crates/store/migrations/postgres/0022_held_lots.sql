-- Lots a recall put on hold because they were made from its lots (`hold_derived`). A pallet of
-- one received later, into a zone where the lot has no available balance, comes in on hold; the
-- hold ends when the lot is made available again (`/v1/stock/lot-status`), or recalled.
CREATE TABLE held_lots (
    tenant_id TEXT NOT NULL,
    gtin TEXT NOT NULL,
    lot TEXT NOT NULL,
    recall_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, gtin, lot)
);
