-- An SSCC names one pallet: the writer refuses an ASN announcing one the merchant announced
-- before, and the index now says so too, so that two ASNs written at the same moment (on
-- PostgreSQL, by two API nodes) cannot both announce it.
DROP INDEX asn_pallets_by_sscc;
CREATE UNIQUE INDEX asn_pallets_by_sscc ON asn_pallets (tenant_id, sscc);
