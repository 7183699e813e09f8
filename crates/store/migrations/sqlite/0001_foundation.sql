-- Keten foundation schema, SQLite flavour. Mirrors migrations/postgres/0001_foundation.sql.
-- Rule: every tenant-owned table starts its primary key and every foreign key with tenant_id.
-- Times are UTC milliseconds since the Unix epoch (`*_unix_ms`); temperatures are degrees Celsius.

CREATE TABLE tenants (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    created_unix_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    key_id TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    revoked_unix_ms INTEGER,
    PRIMARY KEY (tenant_id, key_id)
) STRICT;

CREATE TABLE parties (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    party_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    person_name TEXT,
    publish_name INTEGER NOT NULL,
    gln TEXT,
    country TEXT,
    created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, party_id)
) STRICT;

CREATE TABLE products (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    gtin TEXT NOT NULL,
    name TEXT NOT NULL,
    brand TEXT,
    description TEXT,
    temperature_class TEXT NOT NULL,
    temperature_min_celsius REAL,
    temperature_max_celsius REAL,
    shelf_life_days INTEGER,
    energy_kj REAL,
    energy_kcal REAL,
    fat_g REAL,
    saturates_g REAL,
    carbohydrate_g REAL,
    sugars_g REAL,
    protein_g REAL,
    salt_g REAL,
    country_of_origin TEXT,
    supplier_party_id TEXT,
    created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, gtin),
    FOREIGN KEY (tenant_id, supplier_party_id) REFERENCES parties (tenant_id, party_id)
) STRICT;

CREATE TABLE locations (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    gln TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    street TEXT,
    postal_code TEXT,
    city TEXT,
    country TEXT NOT NULL,
    latitude_degrees REAL NOT NULL,
    longitude_degrees REAL NOT NULL,
    time_zone TEXT NOT NULL,
    pick_pack_lead_minutes INTEGER NOT NULL,
    party_id TEXT,
    created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, gln),
    FOREIGN KEY (tenant_id, party_id) REFERENCES parties (tenant_id, party_id)
) STRICT;

CREATE TABLE location_zones (
    tenant_id TEXT NOT NULL,
    gln TEXT NOT NULL,
    zone_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    min_celsius REAL,
    max_celsius REAL,
    capacity_pallets INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, gln, zone_name),
    FOREIGN KEY (tenant_id, gln) REFERENCES locations (tenant_id, gln) ON DELETE CASCADE
) STRICT;

CREATE TABLE location_cutoffs (
    tenant_id TEXT NOT NULL,
    gln TEXT NOT NULL,
    service TEXT NOT NULL,
    cutoff_local_time TEXT NOT NULL,
    PRIMARY KEY (tenant_id, gln, service),
    FOREIGN KEY (tenant_id, gln) REFERENCES locations (tenant_id, gln) ON DELETE CASCADE
) STRICT;

-- A lane may join a tenant's own location to a location of the shared network (tenant `network`),
-- so its ends are checked by the writer against the locations the tenant can see, not by a foreign key.
CREATE TABLE lanes (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    lane_id TEXT NOT NULL,
    from_gln TEXT NOT NULL,
    to_gln TEXT NOT NULL,
    transit_minutes INTEGER NOT NULL,
    departures TEXT NOT NULL,
    temperature_classes TEXT NOT NULL,
    cost_per_pallet_cents INTEGER NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, lane_id)
) STRICT;

CREATE TABLE devices (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    location_gln TEXT,
    zone_name TEXT,
    reading_interval_seconds INTEGER NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
) STRICT;

-- The first answer to a POST with an Idempotency-Key, replayed for a retry with the same key and body.
CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    idempotency_key TEXT NOT NULL,
    request_sha256 BLOB NOT NULL,
    response_status INTEGER NOT NULL,
    response_body BLOB NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
) STRICT;

-- Expired keys are purged by age.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_unix_ms);

-- Billable units per tenant and UTC day (the rent).
CREATE TABLE usage_counters (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    day TEXT NOT NULL,
    unit TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, unit)
) STRICT;
