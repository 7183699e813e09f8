-- What a recall tells consumers (the provenance page, `/recall-status`, the till's scan), in the
-- brand's words; none for recalls made before, or without one.
ALTER TABLE recalls ADD COLUMN public_notice TEXT;
