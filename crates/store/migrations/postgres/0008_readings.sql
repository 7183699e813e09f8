-- Cold chain: temperature readings in °C, one row per device and device time (a duplicate —
-- same device, same time — is dropped). Each keeps its three times: the device's, the corrected
-- one (bounded clock-skew correction) and when Keten received it.
CREATE TABLE readings (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    device_unix_ms BIGINT NOT NULL,
    corrected_unix_ms BIGINT NOT NULL,
    received_unix_ms BIGINT NOT NULL,
    celsius DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, device_id, device_unix_ms)
);

-- Where a device measured, over time: a location zone (target "GLN/zone"), a vehicle or a
-- container (an SSCC). A new assignment ends the open one; history is kept, never rewritten.
CREATE TABLE device_assignments (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    from_unix_ms BIGINT NOT NULL,
    to_unix_ms BIGINT,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    created_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, from_unix_ms)
);
-- The devices that measured at a target (a zone, a vehicle, an SSCC) in a period.
CREATE INDEX device_assignments_by_target ON device_assignments (tenant_id, target_kind, target, from_unix_ms);
