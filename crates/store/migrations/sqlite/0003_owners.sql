-- A GTIN belongs to one brand and a GLN to one party: the first tenant to register it holds it,
-- platform-wide. These are platform tables (keyed by the identifier, not by tenant): the
-- resolver finds an item's owner here, and the primary key refuses a second claim, also when two
-- API nodes race.
CREATE TABLE gtin_owners (
    gtin TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id)
) STRICT;

CREATE TABLE gln_owners (
    gln TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id)
) STRICT;

-- Existing rows: the earliest registration holds the identifier.
INSERT INTO gtin_owners (gtin, tenant_id)
SELECT gtin, tenant_id FROM products p
WHERE created_unix_ms = (SELECT MIN(created_unix_ms) FROM products q WHERE q.gtin = p.gtin)
ON CONFLICT (gtin) DO NOTHING;

INSERT INTO gln_owners (gln, tenant_id)
SELECT gln, tenant_id FROM locations l
WHERE created_unix_ms = (SELECT MIN(created_unix_ms) FROM locations m WHERE m.gln = l.gln)
ON CONFLICT (gln) DO NOTHING;
