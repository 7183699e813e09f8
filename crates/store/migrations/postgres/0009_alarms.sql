-- Devices keep their last calibration date (YYYY-MM-DD) for the temperature reports.
ALTER TABLE devices ADD COLUMN calibrated_on TEXT;

-- Cold-chain alarms. An assignment may name the product class its device watches over (the
-- class's alarm rules judge the readings taken there); none: readings are kept, not judged.
ALTER TABLE device_assignments ADD COLUMN class TEXT;

-- One row per alarm: a device's rule breached from a condition start, in the state the last
-- evaluation (of readings, acknowledgements and the clock) put it in.
CREATE TABLE alarms (
    tenant_id TEXT NOT NULL,
    alarm_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    assignment_from_unix_ms BIGINT NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    class TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    condition_start_unix_ms BIGINT NOT NULL,
    opened_unix_ms BIGINT NOT NULL,
    escalate_due_unix_ms BIGINT NOT NULL,
    escalated_unix_ms BIGINT,
    condition_end_unix_ms BIGINT,
    cleared_unix_ms BIGINT,
    peak_celsius DOUBLE PRECISION NOT NULL,
    acknowledged_by TEXT,
    acknowledged_comment TEXT,
    acknowledged_unix_ms BIGINT,
    held_lots TEXT NOT NULL,
    created_unix_ms BIGINT NOT NULL,
    updated_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, alarm_id)
);
CREATE INDEX alarms_by_device ON alarms (tenant_id, device_id, condition_start_unix_ms);
-- The escalation sweep: open alarms by their deadline, across tenants.
CREATE INDEX alarms_escalation_due ON alarms (state, escalate_due_unix_ms);

-- Where the evaluation of a device's assignment stands (coldchain::AlarmProgress as JSON):
-- the next readings after `through_unix_ms` resume from it; a reading stored before it marks it
-- stale (the next evaluation starts again from `window_start_unix_ms`). `version` moves on with
-- every change: evaluations replace it by compare-and-set.
CREATE TABLE alarm_progress (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    assignment_from_unix_ms BIGINT NOT NULL,
    through_unix_ms BIGINT NOT NULL,
    window_start_unix_ms BIGINT NOT NULL,
    version BIGINT NOT NULL,
    stale BIGINT NOT NULL,
    progress TEXT NOT NULL,
    updated_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, assignment_from_unix_ms)
);

-- Every write of a device's readings moves its version on; an alarm evaluation stores its result
-- only if the version is still the one it read (else it evaluates again, seeing those readings).
CREATE TABLE device_reading_versions (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
);

-- Alarm transitions in write order, for the webhooks; `step` orders those of one write
-- (0 opened, 1 escalated, 2 acknowledged, 3 cleared).
CREATE TABLE alarm_events (
    tenant_id TEXT NOT NULL,
    at_unix_ms BIGINT NOT NULL,
    alarm_id TEXT NOT NULL,
    step BIGINT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (tenant_id, at_unix_ms, alarm_id, step)
);

-- A merchant's webhook delivers alarm transitions too, after its own cursor.
ALTER TABLE order_webhooks ADD COLUMN alarm_after_unix_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE order_webhooks ADD COLUMN alarm_after_id TEXT NOT NULL DEFAULT '';
ALTER TABLE order_webhooks ADD COLUMN alarm_after_step BIGINT NOT NULL DEFAULT 0;
