-- An order to an address counts in the network's region (its last shipment's delivering site's
-- city, else its GLN), no longer in the merchant's free-text `area`, which the operator's report
-- showed across tenants and which could name a street or a person. The area stays in the order's
-- destination, for its merchant.
UPDATE orders SET region = COALESCE(
    (SELECT COALESCE(l.city, l.gln) FROM gln_owners o
     JOIN locations l ON l.tenant_id = o.tenant_id AND l.gln = o.gln
     WHERE o.gln = (CAST(orders.allocation AS jsonb) -> 'shipments' -> -1 ->> 'delivering_site')),
    '')
WHERE CAST(orders.destination AS jsonb) ->> 'pickup_point' IS NULL;
