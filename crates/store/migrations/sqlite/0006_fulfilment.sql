-- Fulfilment: the stock ledger, reservations, advance shipping notices, orders, recalls.
-- Quantities are integers (units of the GTIN); times are UTC milliseconds; dates ISO YYYY-MM-DD.

ALTER TABLE products ADD COLUMN min_remaining_shelf_life_days INTEGER;

-- One balance per (location, zone, GTIN, lot). A balance is the sum of its movements; the CHECKs
-- repeat the ledger's invariants where the write happens. Writers apply a batch's net change with a
-- conditional update guarded by the invariants (no row lock).
CREATE TABLE stock_balances (
    tenant_id TEXT NOT NULL,
    gtin TEXT NOT NULL,
    location_gln TEXT NOT NULL,
    zone TEXT NOT NULL,
    lot TEXT NOT NULL,
    expiry_date TEXT,
    status TEXT NOT NULL,
    on_hand INTEGER NOT NULL CHECK (on_hand >= 0),
    reserved INTEGER NOT NULL CHECK (reserved >= 0),
    updated_unix_ms INTEGER NOT NULL,
    CHECK (reserved <= on_hand),
    PRIMARY KEY (tenant_id, gtin, location_gln, zone, lot)
) WITHOUT ROWID, STRICT;

-- The journal: append-only. An operation (a receipt, an order's reservation, a count…) writes its
-- movements under its own id, one line each.
CREATE TABLE stock_movements (
    tenant_id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    kind TEXT NOT NULL,
    gtin TEXT NOT NULL,
    location_gln TEXT NOT NULL,
    zone TEXT NOT NULL,
    lot TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    reason TEXT,
    at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, operation_id, line)
) WITHOUT ROWID, STRICT;
CREATE INDEX stock_movements_by_lot ON stock_movements (tenant_id, gtin, lot, at_unix_ms);

-- Two-phase reservations; the lines are the `reserve` movements of the operation with this id.
CREATE TABLE reservations (
    tenant_id TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_unix_ms INTEGER,
    created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, reservation_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX reservations_due ON reservations (expires_unix_ms) WHERE state = 'pending' AND expires_unix_ms IS NOT NULL;

-- Advance shipping notices: pallets (SSCC) announced for a location, then received into a zone.
CREATE TABLE asns (
    tenant_id TEXT NOT NULL,
    asn_id TEXT NOT NULL,
    location_gln TEXT NOT NULL,
    expected_unix_ms INTEGER,
    created_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, asn_id)
) WITHOUT ROWID, STRICT;
CREATE TABLE asn_pallets (
    tenant_id TEXT NOT NULL,
    asn_id TEXT NOT NULL,
    sscc TEXT NOT NULL,
    gtin TEXT NOT NULL,
    lot TEXT NOT NULL,
    expiry_date TEXT,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    received_zone TEXT,
    received_unix_ms INTEGER,
    PRIMARY KEY (tenant_id, asn_id, sscc),
    FOREIGN KEY (tenant_id, asn_id) REFERENCES asns (tenant_id, asn_id)
) WITHOUT ROWID, STRICT;

-- Orders. Lines, destination and the allocation (shipments, picks, the decision) are stored as
-- JSON documents of the store's own format (see store::orders).
CREATE TABLE orders (
    tenant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    -- The reservation holding the order's stock (a new one after a recall re-allocates it).
    reservation_id TEXT NOT NULL,
    service TEXT NOT NULL,
    lines TEXT NOT NULL,
    destination TEXT NOT NULL,
    allocation TEXT NOT NULL,
    region TEXT NOT NULL,
    promised_by_unix_ms INTEGER NOT NULL,
    latest_delivery_unix_ms INTEGER,
    placed_unix_ms INTEGER NOT NULL,
    delivered_unix_ms INTEGER,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
) STRICT; -- a rowid table: its rows (a kilobyte or two of JSON) are appended, the key is indexed

CREATE TABLE order_events (
    tenant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, order_id, seq)
) WITHOUT ROWID, STRICT;

-- Order transitions in time order, for the merchants' webhooks.
CREATE INDEX order_events_by_time ON order_events (tenant_id, at_unix_ms, order_id, seq);

-- A merchant's webhooks for order transitions; each delivers the events after its cursor
-- (at, order, seq), and moves it only after a 2xx answer (at least once).
CREATE TABLE order_webhooks (
    tenant_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    after_at_unix_ms INTEGER NOT NULL,
    after_order_id TEXT NOT NULL,
    after_seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_unix_ms INTEGER NOT NULL,
    last_error TEXT,
    created_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX order_webhooks_due ON order_webhooks (next_attempt_unix_ms);

-- Recalls and the lots they name (the resolver's gs1:recallStatus reads recalled_lots).
CREATE TABLE recalls (
    tenant_id TEXT NOT NULL,
    recall_id TEXT NOT NULL,
    gtin TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, recall_id)
) WITHOUT ROWID, STRICT;
CREATE TABLE recalled_lots (
    tenant_id TEXT NOT NULL,
    gtin TEXT NOT NULL,
    lot TEXT NOT NULL,
    recall_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, gtin, lot)
) WITHOUT ROWID, STRICT;
