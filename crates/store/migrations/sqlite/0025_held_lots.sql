-- Lots a recall put on hold because they were made from its lots (`hold_derived`). A pallet of
-- one received later into a zone where the lot has no balance comes in on hold (a recalled lot's
-- comes in recalled first); the hold ends when the whole lot is made available again
-- (`/v1/stock/lot-status` naming no location), or its product is deleted.
CREATE TABLE held_lots (
    tenant_id TEXT NOT NULL,
    gtin TEXT NOT NULL,
    lot TEXT NOT NULL,
    recall_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, gtin, lot)
) WITHOUT ROWID, STRICT;
