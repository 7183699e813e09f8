-- Merchant-defined links of a product for the GS1 Digital Link resolver (a recipe, instructions).
CREATE TABLE product_links (
    tenant_id TEXT NOT NULL,
    gtin TEXT NOT NULL,
    link_id TEXT NOT NULL,
    link_type TEXT NOT NULL,
    href TEXT NOT NULL,
    title TEXT NOT NULL,
    language TEXT,
    media_type TEXT,
    created_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, gtin, link_id),
    FOREIGN KEY (tenant_id, gtin) REFERENCES products (tenant_id, gtin) ON DELETE CASCADE
);
