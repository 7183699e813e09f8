-- GS1 company prefixes the operator verified as a tenant's (its GS1 licence), one holder each,
-- platform-wide. A GTIN claim under a verified prefix of the claimer is verified; only a verified
-- claim lets a tenant see other tenants' events that name the GTIN (a claim alone, first come,
-- proves nothing). Existing claims start unverified.
CREATE TABLE verified_company_prefixes (
    company_prefix TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    verified_unix_ms INTEGER NOT NULL
) STRICT;

ALTER TABLE gtin_owners ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
