-- An SSCC names one pallet: an ASN may not announce one a merchant announced before. The check
-- looks pallets up by SSCC.
CREATE INDEX asn_pallets_by_sscc ON asn_pallets (tenant_id, sscc);
