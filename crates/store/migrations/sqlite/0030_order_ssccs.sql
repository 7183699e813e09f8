-- The SSCCs orders were packed onto. Each names that outbound pallet for good, so an ASN may not
-- announce it as an inbound pallet (packing already refuses an inbound pallet's SSCC). Kept after
-- the order is unpacked (a recall, a cancel): packing again takes a new SSCC. Filled here from the
-- orders' allocations, which name the SSCCs of the orders packed now.
CREATE TABLE order_ssccs (
    tenant_id TEXT NOT NULL,
    sscc TEXT NOT NULL,
    order_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, sscc)
) WITHOUT ROWID, STRICT;

INSERT INTO order_ssccs (tenant_id, sscc, order_id)
SELECT orders.tenant_id, json_extract(shipment.value, '$.sscc'), orders.order_id
FROM orders, json_each(orders.allocation, '$.shipments') AS shipment
WHERE json_extract(shipment.value, '$.sscc') IS NOT NULL
ON CONFLICT DO NOTHING;
