-- Dispatch: the network's vehicles and couriers, the shipments waiting at depots for the last
-- mile, and the routes planned for each wave. Vehicles and routes belong to the network tenant
-- (the operator runs the last mile for every merchant); a queued shipment belongs to its order's
-- tenant; a stop names its order's tenant.

CREATE TABLE vehicles (
    tenant_id TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    depot_gln TEXT NOT NULL,
    name TEXT NOT NULL,
    courier_name TEXT,
    courier_key_id TEXT,
    capacity_units BIGINT NOT NULL CHECK (capacity_units > 0),
    skills TEXT NOT NULL,
    shift_start TEXT NOT NULL,
    shift_end TEXT NOT NULL,
    speed_km_per_h DOUBLE PRECISION NOT NULL CHECK (speed_km_per_h > 0),
    fixed_cost_cents BIGINT NOT NULL,
    cost_per_km_cents BIGINT NOT NULL,
    cost_per_hour_cents BIGINT NOT NULL,
    created_unix_ms BIGINT NOT NULL,
    updated_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, vehicle_id)
);
CREATE INDEX vehicles_by_depot ON vehicles (tenant_id, depot_gln, vehicle_id);
-- A courier's key drives one vehicle.
CREATE UNIQUE INDEX vehicles_by_courier_key ON vehicles (tenant_id, courier_key_id) WHERE courier_key_id IS NOT NULL;

-- Shipments waiting at a depot for the last mile, one row per order shipment: packing queues the
-- shipments its own site delivers, shipping queues those that travel a lane to the delivering
-- depot; any other step of the order (delivered, cancelled, allocated anew…) takes them out; a
-- wave takes its shipments out; a stop voided (a failed hand-over, a cancelled route) puts its
-- shipment back while the order still waits on the same reservation.
CREATE TABLE dispatch_queue (
    tenant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    shipment BIGINT NOT NULL,
    -- The order's reservation when it was queued: a re-allocated order is another generation.
    reservation_id TEXT NOT NULL,
    depot_gln TEXT NOT NULL,
    via_lane BIGINT NOT NULL,
    last_mile_departure_unix_ms BIGINT NOT NULL,
    promised_by_unix_ms BIGINT NOT NULL,
    queued_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, order_id, shipment)
);
-- A wave reads its depot's due shipments (the operator's read, across tenants).
CREATE INDEX dispatch_queue_by_depot ON dispatch_queue (depot_gln, last_mile_departure_unix_ms);

CREATE TABLE dispatch_routes (
    tenant_id TEXT NOT NULL,
    route_id TEXT NOT NULL,
    wave_id TEXT NOT NULL,
    depot_gln TEXT NOT NULL,
    wave_unix_ms BIGINT NOT NULL,
    vehicle_id TEXT NOT NULL,
    departure_unix_ms BIGINT NOT NULL,
    return_unix_ms BIGINT NOT NULL,
    distance_m DOUBLE PRECISION NOT NULL,
    started_unix_ms BIGINT,
    -- Stops neither handed over nor voided; the route is finished when none are left.
    open_stops BIGINT NOT NULL CHECK (open_stops >= 0),
    finished_unix_ms BIGINT,
    created_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, route_id)
);
CREATE INDEX dispatch_routes_by_depot ON dispatch_routes (tenant_id, depot_gln, wave_unix_ms);
-- A courier's current route, a vehicle's open routes: unfinished routes by departure.
CREATE INDEX dispatch_routes_by_vehicle ON dispatch_routes (tenant_id, vehicle_id, finished_unix_ms, departure_unix_ms);
-- Unfinished routes of a depot (when is each vehicle back).
CREATE INDEX dispatch_routes_open ON dispatch_routes (tenant_id, finished_unix_ms, depot_gln);

CREATE TABLE dispatch_stops (
    tenant_id TEXT NOT NULL,
    route_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    order_tenant_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    shipment BIGINT NOT NULL,
    reservation_id TEXT NOT NULL,
    via_lane BIGINT NOT NULL,
    last_mile_departure_unix_ms BIGINT NOT NULL,
    latitude_degrees DOUBLE PRECISION NOT NULL,
    longitude_degrees DOUBLE PRECISION NOT NULL,
    pickup_point_gln TEXT,
    demand_units BIGINT NOT NULL,
    due_by_unix_ms BIGINT NOT NULL,
    planned_arrival_unix_ms BIGINT NOT NULL,
    leg_m DOUBLE PRECISION NOT NULL,
    leg_s DOUBLE PRECISION NOT NULL,
    service_s DOUBLE PRECISION NOT NULL,
    delivered_unix_ms BIGINT,
    voided_unix_ms BIGINT,
    void_reason TEXT,
    PRIMARY KEY (tenant_id, route_id, seq)
);
-- An order's stops, on whichever route.
CREATE INDEX dispatch_stops_by_order ON dispatch_stops (tenant_id, order_tenant_id, order_id, shipment);
