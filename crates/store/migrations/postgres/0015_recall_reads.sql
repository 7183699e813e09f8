-- A recall read back (`GET /v1/recalls/{id}`): its lots, space-separated (a lot's characters
-- exclude the space; NULL for recalls before this migration, whose lots are read from
-- recalled_lots), and what it did to each open order it took back.
ALTER TABLE recalls ADD COLUMN lots TEXT;
CREATE TABLE recall_orders (
    tenant_id TEXT NOT NULL,
    recall_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('reallocated', 'flagged')),
    PRIMARY KEY (tenant_id, recall_id, order_id)
);
