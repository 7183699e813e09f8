-- Dispatch: the network's vehicles and couriers, and the routes planned for each wave.
-- Rows belong to the network tenant (the operator runs the last mile for every merchant);
-- a stop names the order's own tenant.

CREATE TABLE vehicles (
    tenant_id TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    depot_gln TEXT NOT NULL,
    name TEXT NOT NULL,
    courier_name TEXT,
    courier_key_id TEXT,
    capacity_units INTEGER NOT NULL CHECK (capacity_units > 0),
    skills TEXT NOT NULL,
    shift_start TEXT NOT NULL,
    shift_end TEXT NOT NULL,
    speed_km_per_h REAL NOT NULL CHECK (speed_km_per_h > 0),
    fixed_cost_cents INTEGER NOT NULL,
    cost_per_km_cents INTEGER NOT NULL,
    cost_per_hour_cents INTEGER NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, vehicle_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX vehicles_by_depot ON vehicles (tenant_id, depot_gln, vehicle_id);
-- A courier's key drives one vehicle.
CREATE UNIQUE INDEX vehicles_by_courier_key ON vehicles (tenant_id, courier_key_id) WHERE courier_key_id IS NOT NULL;

CREATE TABLE dispatch_routes (
    tenant_id TEXT NOT NULL,
    route_id TEXT NOT NULL,
    wave_id TEXT NOT NULL,
    depot_gln TEXT NOT NULL,
    wave_unix_ms INTEGER NOT NULL,
    vehicle_id TEXT NOT NULL,
    departure_unix_ms INTEGER NOT NULL,
    return_unix_ms INTEGER NOT NULL,
    distance_m REAL NOT NULL,
    started_unix_ms INTEGER,
    created_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, route_id)
) WITHOUT ROWID, STRICT;
CREATE INDEX dispatch_routes_by_depot ON dispatch_routes (tenant_id, depot_gln, wave_unix_ms);
CREATE INDEX dispatch_routes_by_vehicle ON dispatch_routes (tenant_id, vehicle_id, departure_unix_ms);

CREATE TABLE dispatch_stops (
    tenant_id TEXT NOT NULL,
    route_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    order_tenant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    shipment INTEGER NOT NULL,
    latitude_degrees REAL NOT NULL,
    longitude_degrees REAL NOT NULL,
    pickup_point_gln TEXT,
    demand_units INTEGER NOT NULL,
    due_by_unix_ms INTEGER NOT NULL,
    planned_arrival_unix_ms INTEGER NOT NULL,
    leg_m REAL NOT NULL,
    leg_s REAL NOT NULL,
    service_s REAL NOT NULL,
    delivered_unix_ms INTEGER,
    PRIMARY KEY (tenant_id, route_id, seq)
) WITHOUT ROWID, STRICT;
-- An order's shipment is on one route only.
CREATE UNIQUE INDEX dispatch_stops_by_order ON dispatch_stops (tenant_id, order_tenant_id, order_id, shipment);

-- Orders waiting at a depot for the last mile: a small index, only packed and shipped orders.
CREATE INDEX orders_to_dispatch ON orders (status, promised_by_unix_ms) WHERE status IN ('packed', 'shipped');
