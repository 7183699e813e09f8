-- Unconfirmed orders (a hold with a deadline) that a recall or a count flagged: their reservation
-- is voided, so the due reservations' index no longer sees their deadline. Kept here until the
-- order is allocated again or cancelled; at the deadline the writer cancels it ("the hold
-- expired"), as it does an allocated order's lapsed hold. Orders flagged before this table: read
-- from their voided reservation.
CREATE TABLE flagged_holds (
    tenant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    expires_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX flagged_holds_due ON flagged_holds (expires_unix_ms);
INSERT INTO flagged_holds (tenant_id, order_id, expires_unix_ms)
SELECT o.tenant_id, o.order_id, r.expires_unix_ms FROM orders o
JOIN reservations r ON r.tenant_id = o.tenant_id AND r.reservation_id = o.reservation_id
WHERE o.status = 'accepted' AND r.state = 'voided' AND r.expires_unix_ms IS NOT NULL;
