-- Cold chain: temperature readings in °C, one row per device and device time (a duplicate —
-- same device, same time — is dropped). Each keeps its three times: the device's, the corrected
-- one (bounded clock-skew correction) and when Keten received it.
CREATE TABLE readings (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    device_unix_ms INTEGER NOT NULL,
    corrected_unix_ms INTEGER NOT NULL,
    received_unix_ms INTEGER NOT NULL,
    celsius REAL NOT NULL,
    PRIMARY KEY (tenant_id, device_id, device_unix_ms)
) WITHOUT ROWID, STRICT;
