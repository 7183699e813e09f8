//! Dispatch: the network's vehicles (with their couriers), the routes planned per wave and
//! their stops.
//!
//! Every row belongs to the network tenant: the operator runs the last mile for all merchants.
//! A stop names its order's tenant (`order_tenant_id`); an order's shipment is on one route only
//! (a unique index, and a check before the insert that answers `already-dispatched`).

use crate::backend::{Conn, on_pool};
use crate::writer::{Arg, PutMode, WriteError, check_mode, execute, exists, put_sql};
use crate::{StoreError, parse_stored};
use gs1::Gln;
use network::{LocalTime, Skill, TenantId, Vehicle, VehicleId};

/// Routes one wave stores, at most (one per vehicle of the depot).
pub const ROUTES_PER_WAVE_MAX: usize = Vehicle::PER_DEPOT_MAX;
/// Stops one route holds, at most.
pub const STOPS_PER_ROUTE_MAX: usize = 500;
/// Orders one due-order read answers, at most (the planner's limit per wave).
pub const DUE_ORDERS_MAX: u32 = 2000;
/// Routes a route listing answers, at most.
pub const ROUTES_LISTED_MAX: u32 = 500;

/// A change to the dispatch tables, written by the network tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchMutation {
    PutVehicle {
        vehicle: Vehicle,
        mode: PutMode,
    },
    DeleteVehicle {
        vehicle_id: VehicleId,
    },
    /// Stores a wave's planned routes; refused when a stop's shipment is on a route already.
    SaveWave {
        wave_id: String,
        depot: Gln,
        wave_unix_ms: i64,
        routes: Vec<NewRoute>,
    },
    /// The courier leaves the depot.
    StartRoute {
        route_id: String,
        at_unix_ms: i64,
    },
    /// The courier handed the stop's shipment over. Visiting a stop twice changes nothing.
    VisitStop {
        route_id: String,
        seq: i64,
        at_unix_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewRoute {
    pub route_id: String,
    pub vehicle_id: VehicleId,
    pub departure_unix_ms: i64,
    pub return_unix_ms: i64,
    pub distance_m: f64,
    pub stops: Vec<StopRecord>,
}

/// A stop of a route, as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StopRecord {
    pub seq: i64,
    pub order_tenant_id: String,
    pub order_id: String,
    /// The shipment of the order (its index in the order's allocation).
    pub shipment: i64,
    pub latitude_degrees: f64,
    pub longitude_degrees: f64,
    pub pickup_point_gln: Option<String>,
    pub demand_units: i64,
    pub due_by_unix_ms: i64,
    pub planned_arrival_unix_ms: i64,
    pub leg_m: f64,
    pub leg_s: f64,
    pub service_s: f64,
    pub delivered_unix_ms: Option<i64>,
}

const STOP_COLUMNS: &str = "seq, order_tenant_id, order_id, shipment, latitude_degrees, longitude_degrees, \
     pickup_point_gln, demand_units, due_by_unix_ms, planned_arrival_unix_ms, leg_m, leg_s, service_s, delivered_unix_ms";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RouteHeader {
    pub route_id: String,
    pub wave_id: String,
    pub depot_gln: String,
    pub wave_unix_ms: i64,
    pub vehicle_id: String,
    pub departure_unix_ms: i64,
    pub return_unix_ms: i64,
    pub distance_m: f64,
    pub started_unix_ms: Option<i64>,
    pub created_unix_ms: i64,
}

const ROUTE_COLUMNS: &str = "route_id, wave_id, depot_gln, wave_unix_ms, vehicle_id, departure_unix_ms, return_unix_ms, \
     distance_m, started_unix_ms, created_unix_ms";

/// A planned route and its stops in visiting order.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRecord {
    pub header: RouteHeader,
    pub stops: Vec<StopRecord>,
}

impl RouteRecord {
    pub fn is_finished(&self) -> bool {
        self.stops.iter().all(|stop| stop.delivered_unix_ms.is_some())
    }
}

/// An order waiting for the last mile (packed, or shipped over a lane), not on any route yet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueOrder {
    pub tenant_id: String,
    pub order_id: String,
}

const VEHICLE_COLUMNS: &str = "vehicle_id, depot_gln, name, courier_name, courier_key_id, capacity_units, skills, \
     shift_start, shift_end, speed_km_per_h, fixed_cost_cents, cost_per_km_cents, cost_per_hour_cents";

#[derive(sqlx::FromRow)]
struct VehicleRow {
    vehicle_id: String,
    depot_gln: String,
    name: String,
    courier_name: Option<String>,
    courier_key_id: Option<String>,
    capacity_units: i64,
    skills: String,
    shift_start: String,
    shift_end: String,
    speed_km_per_h: f64,
    fixed_cost_cents: i64,
    cost_per_km_cents: i64,
    cost_per_hour_cents: i64,
}

impl VehicleRow {
    fn into_domain(self) -> Result<Vehicle, StoreError> {
        let number = |value: i64, field: &str| {
            u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("vehicles.{field}: {value}")))
        };
        let skills = self
            .skills
            .split_whitespace()
            .map(|name| parse_stored("vehicles.skills", name, |name| network::parse_enum(name, &Skill::VALUES)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Vehicle {
            vehicle_id: parse_stored("vehicles.vehicle_id", &self.vehicle_id, VehicleId::parse)?,
            depot: parse_stored("vehicles.depot_gln", &self.depot_gln, Gln::parse)?,
            name: self.name,
            courier_name: self.courier_name,
            courier_key_id: self.courier_key_id,
            capacity_units: number(self.capacity_units, "capacity_units")?,
            skills,
            shift_start: parse_stored("vehicles.shift_start", &self.shift_start, LocalTime::parse)?,
            shift_end: parse_stored("vehicles.shift_end", &self.shift_end, LocalTime::parse)?,
            speed_km_per_h: self.speed_km_per_h,
            fixed_cost_cents: number(self.fixed_cost_cents, "fixed_cost_cents")?,
            cost_per_km_cents: number(self.cost_per_km_cents, "cost_per_km_cents")?,
            cost_per_hour_cents: number(self.cost_per_hour_cents, "cost_per_hour_cents")?,
        })
    }
}

fn dispatched(detail: String) -> WriteError {
    WriteError::Refused { code: "already-dispatched", detail, errors: Vec::new() }
}

/// Applies a dispatch change; answers whether a row was created.
pub(crate) async fn apply_dispatch(
    conn: &mut Conn,
    tenant_id: &TenantId,
    change: &DispatchMutation,
    now_unix_ms: i64,
) -> Result<Result<bool, WriteError>, sqlx::Error> {
    if !tenant_id.is_network() {
        return Ok(Err(WriteError::NotFound));
    }
    let tenant = tenant_id.as_str();
    match change {
        DispatchMutation::PutVehicle { vehicle, mode } => {
            if !exists(
                conn,
                "SELECT 1 FROM locations WHERE tenant_id = 'network' AND gln = $1 AND kind IN ('warehouse', 'cold_depot')",
                &[Arg::Text(vehicle.depot.as_str())],
            )
            .await?
            {
                return Ok(Err(WriteError::UnknownReference {
                    field: "/depot",
                    value: format!("{} (a network warehouse or cold depot)", vehicle.depot),
                }));
            }
            if let Some(key_id) = &vehicle.courier_key_id {
                if !exists(
                    conn,
                    "SELECT 1 FROM api_keys WHERE tenant_id = 'network' AND key_id = $1 AND revoked_unix_ms IS NULL",
                    &[Arg::Text(key_id)],
                )
                .await?
                {
                    return Ok(Err(WriteError::UnknownReference {
                        field: "/courier_key_id",
                        value: format!("{key_id} (a live key of the network tenant)"),
                    }));
                }
                if exists(
                    conn,
                    "SELECT 1 FROM vehicles WHERE tenant_id = $1 AND courier_key_id = $2 AND vehicle_id <> $3",
                    &[Arg::Text(tenant), Arg::Text(key_id), Arg::Text(vehicle.vehicle_id.as_str())],
                )
                .await?
                {
                    return Ok(Err(WriteError::Conflict(format!("a vehicle driven with key {key_id}"))));
                }
            }
            let found = exists(
                conn,
                "SELECT 1 FROM vehicles WHERE tenant_id = $1 AND vehicle_id = $2",
                &[Arg::Text(tenant), Arg::Text(vehicle.vehicle_id.as_str())],
            )
            .await?;
            if let Err(error) = check_mode(*mode, found, format!("vehicle {}", vehicle.vehicle_id)) {
                return Ok(Err(error));
            }
            if !found
                && exists(
                    conn,
                    &format!(
                        "SELECT 1 FROM vehicles WHERE tenant_id = $1 AND depot_gln = $2 LIMIT 1 OFFSET {}",
                        Vehicle::PER_DEPOT_MAX - 1
                    ),
                    &[Arg::Text(tenant), Arg::Text(vehicle.depot.as_str())],
                )
                .await?
            {
                return Ok(Err(WriteError::Limit(format!("a depot has at most {} vehicles", Vehicle::PER_DEPOT_MAX))));
            }
            let skills: Vec<&str> = vehicle.skills.iter().map(|skill| skill.name()).collect();
            let shift_start = vehicle.shift_start.to_string();
            let shift_end = vehicle.shift_end.to_string();
            execute(
                conn,
                put_sql(
                    "INSERT INTO vehicles (tenant_id, vehicle_id, depot_gln, name, courier_name, courier_key_id, \
                     capacity_units, skills, shift_start, shift_end, speed_km_per_h, fixed_cost_cents, cost_per_km_cents, \
                     cost_per_hour_cents, created_unix_ms, updated_unix_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) \
                     ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET depot_gln = excluded.depot_gln, name = excluded.name, \
                     courier_name = excluded.courier_name, courier_key_id = excluded.courier_key_id, \
                     capacity_units = excluded.capacity_units, skills = excluded.skills, shift_start = excluded.shift_start, \
                     shift_end = excluded.shift_end, speed_km_per_h = excluded.speed_km_per_h, \
                     fixed_cost_cents = excluded.fixed_cost_cents, cost_per_km_cents = excluded.cost_per_km_cents, \
                     cost_per_hour_cents = excluded.cost_per_hour_cents, updated_unix_ms = excluded.updated_unix_ms",
                    *mode,
                ),
                &[
                    Arg::Text(tenant),
                    Arg::Text(vehicle.vehicle_id.as_str()),
                    Arg::Text(vehicle.depot.as_str()),
                    Arg::Text(&vehicle.name),
                    Arg::OptionalText(vehicle.courier_name.as_deref()),
                    Arg::OptionalText(vehicle.courier_key_id.as_deref()),
                    Arg::Integer(i64::from(vehicle.capacity_units)),
                    Arg::Text(&skills.join(" ")),
                    Arg::Text(&shift_start),
                    Arg::Text(&shift_end),
                    Arg::Real(vehicle.speed_km_per_h),
                    Arg::Integer(i64::from(vehicle.fixed_cost_cents)),
                    Arg::Integer(i64::from(vehicle.cost_per_km_cents)),
                    Arg::Integer(i64::from(vehicle.cost_per_hour_cents)),
                    Arg::Integer(now_unix_ms),
                ],
            )
            .await?;
            Ok(Ok(!found))
        }
        DispatchMutation::DeleteVehicle { vehicle_id } => {
            if exists(
                conn,
                "SELECT 1 FROM dispatch_routes r JOIN dispatch_stops s ON s.tenant_id = r.tenant_id AND s.route_id = r.route_id \
                 WHERE r.tenant_id = $1 AND r.vehicle_id = $2 AND s.delivered_unix_ms IS NULL",
                &[Arg::Text(tenant), Arg::Text(vehicle_id.as_str())],
            )
            .await?
            {
                return Ok(Err(WriteError::InUse(format!("vehicle {vehicle_id}"), "a route with stops to go".into())));
            }
            let deleted = execute(
                conn,
                "DELETE FROM vehicles WHERE tenant_id = $1 AND vehicle_id = $2",
                &[Arg::Text(tenant), Arg::Text(vehicle_id.as_str())],
            )
            .await?;
            Ok(if deleted == 0 { Err(WriteError::NotFound) } else { Ok(false) })
        }
        DispatchMutation::SaveWave { wave_id, depot, wave_unix_ms, routes } => {
            if routes.len() > ROUTES_PER_WAVE_MAX {
                return Ok(Err(WriteError::Limit(format!("a wave stores at most {ROUTES_PER_WAVE_MAX} routes"))));
            }
            for route in routes {
                if route.stops.len() > STOPS_PER_ROUTE_MAX {
                    return Ok(Err(WriteError::Limit(format!("a route has at most {STOPS_PER_ROUTE_MAX} stops"))));
                }
                for stop in &route.stops {
                    if exists(
                        conn,
                        "SELECT 1 FROM dispatch_stops WHERE tenant_id = $1 AND order_tenant_id = $2 AND order_id = $3 \
                         AND shipment = $4",
                        &[
                            Arg::Text(tenant),
                            Arg::Text(&stop.order_tenant_id),
                            Arg::Text(&stop.order_id),
                            Arg::Integer(stop.shipment),
                        ],
                    )
                    .await?
                    {
                        return Ok(Err(dispatched(format!(
                            "shipment {} of order {} ({}) is on a route already",
                            stop.shipment, stop.order_id, stop.order_tenant_id
                        ))));
                    }
                }
            }
            for route in routes {
                execute(
                    conn,
                    "INSERT INTO dispatch_routes (tenant_id, route_id, wave_id, depot_gln, wave_unix_ms, vehicle_id, \
                     departure_unix_ms, return_unix_ms, distance_m, started_unix_ms, created_unix_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)",
                    &[
                        Arg::Text(tenant),
                        Arg::Text(&route.route_id),
                        Arg::Text(wave_id),
                        Arg::Text(depot.as_str()),
                        Arg::Integer(*wave_unix_ms),
                        Arg::Text(route.vehicle_id.as_str()),
                        Arg::Integer(route.departure_unix_ms),
                        Arg::Integer(route.return_unix_ms),
                        Arg::Real(route.distance_m),
                        Arg::Integer(now_unix_ms),
                    ],
                )
                .await?;
                for stop in &route.stops {
                    execute(
                        conn,
                        &format!(
                            "INSERT INTO dispatch_stops (tenant_id, route_id, {STOP_COLUMNS}) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL)"
                        ),
                        &[
                            Arg::Text(tenant),
                            Arg::Text(&route.route_id),
                            Arg::Integer(stop.seq),
                            Arg::Text(&stop.order_tenant_id),
                            Arg::Text(&stop.order_id),
                            Arg::Integer(stop.shipment),
                            Arg::Real(stop.latitude_degrees),
                            Arg::Real(stop.longitude_degrees),
                            Arg::OptionalText(stop.pickup_point_gln.as_deref()),
                            Arg::Integer(stop.demand_units),
                            Arg::Integer(stop.due_by_unix_ms),
                            Arg::Integer(stop.planned_arrival_unix_ms),
                            Arg::Real(stop.leg_m),
                            Arg::Real(stop.leg_s),
                            Arg::Real(stop.service_s),
                        ],
                    )
                    .await?;
                }
            }
            Ok(Ok(!routes.is_empty()))
        }
        DispatchMutation::StartRoute { route_id, at_unix_ms } => {
            let started = execute(
                conn,
                "UPDATE dispatch_routes SET started_unix_ms = $3 WHERE tenant_id = $1 AND route_id = $2 \
                 AND started_unix_ms IS NULL",
                &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(*at_unix_ms)],
            )
            .await?;
            if started == 0
                && !exists(
                    conn,
                    "SELECT 1 FROM dispatch_routes WHERE tenant_id = $1 AND route_id = $2",
                    &[Arg::Text(tenant), Arg::Text(route_id)],
                )
                .await?
            {
                return Ok(Err(WriteError::NotFound));
            }
            Ok(Ok(false))
        }
        DispatchMutation::VisitStop { route_id, seq, at_unix_ms } => {
            let visited = execute(
                conn,
                "UPDATE dispatch_stops SET delivered_unix_ms = $4 WHERE tenant_id = $1 AND route_id = $2 AND seq = $3 \
                 AND delivered_unix_ms IS NULL",
                &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(*seq), Arg::Integer(*at_unix_ms)],
            )
            .await?;
            if visited == 0
                && !exists(
                    conn,
                    "SELECT 1 FROM dispatch_stops WHERE tenant_id = $1 AND route_id = $2 AND seq = $3",
                    &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(*seq)],
                )
                .await?
            {
                return Ok(Err(WriteError::NotFound));
            }
            Ok(Ok(false))
        }
    }
}

impl crate::Store {
    fn network_tenant() -> String {
        TenantId::network().to_string()
    }

    /// The network's vehicles, of one depot or all, by id.
    pub async fn vehicles(&self, depot: Option<&Gln>) -> Result<Vec<Vehicle>, StoreError> {
        let sql = format!(
            "SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE tenant_id = $1 AND ($2 IS NULL OR depot_gln = $2) \
             ORDER BY vehicle_id LIMIT {}",
            Vehicle::PER_DEPOT_MAX * 10
        );
        let rows: Vec<VehicleRow> = on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(Self::network_tenant()).bind(depot.map(Gln::as_str)).fetch_all(pool).await)?;
        rows.into_iter().map(VehicleRow::into_domain).collect()
    }

    pub async fn vehicle(&self, vehicle_id: &VehicleId) -> Result<Option<Vehicle>, StoreError> {
        let sql = format!("SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE tenant_id = $1 AND vehicle_id = $2");
        let row: Option<VehicleRow> = on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(Self::network_tenant()).bind(vehicle_id.as_str()).fetch_optional(pool).await)?;
        row.map(VehicleRow::into_domain).transpose()
    }

    /// The vehicle a courier drives, found by the courier's key.
    pub async fn vehicle_of_courier(&self, key_id: &str) -> Result<Option<Vehicle>, StoreError> {
        let sql = format!("SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE tenant_id = $1 AND courier_key_id = $2");
        let row: Option<VehicleRow> = on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(Self::network_tenant()).bind(key_id).fetch_optional(pool).await)?;
        row.map(VehicleRow::into_domain).transpose()
    }

    /// Orders waiting for the last mile (packed, or shipped over a lane) with no shipment on a
    /// route yet, earliest promise first. The caller keeps those whose shipment the depot
    /// delivers.
    pub async fn orders_to_dispatch(&self) -> Result<Vec<DueOrder>, StoreError> {
        let sql = format!(
            "SELECT o.tenant_id, o.order_id FROM orders o WHERE o.status IN ('packed', 'shipped') \
             AND NOT EXISTS (SELECT 1 FROM dispatch_stops s WHERE s.tenant_id = $1 AND s.order_tenant_id = o.tenant_id \
             AND s.order_id = o.order_id) \
             ORDER BY o.promised_by_unix_ms, o.tenant_id, o.order_id LIMIT {DUE_ORDERS_MAX}"
        );
        Ok(on_pool!(self.pools(), pool => sqlx::query_as(&sql).bind(Self::network_tenant()).fetch_all(pool).await)?)
    }

    async fn stops_of(&self, route_id: &str) -> Result<Vec<StopRecord>, StoreError> {
        let sql = format!(
            "SELECT {STOP_COLUMNS} FROM dispatch_stops WHERE tenant_id = $1 AND route_id = $2 ORDER BY seq LIMIT {STOPS_PER_ROUTE_MAX}"
        );
        Ok(on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(Self::network_tenant()).bind(route_id).fetch_all(pool).await)?)
    }

    async fn with_stops(&self, headers: Vec<RouteHeader>) -> Result<Vec<RouteRecord>, StoreError> {
        let mut routes = Vec::with_capacity(headers.len());
        for header in headers {
            let stops = self.stops_of(&header.route_id).await?;
            routes.push(RouteRecord { header, stops });
        }
        Ok(routes)
    }

    pub async fn route(&self, route_id: &str) -> Result<Option<RouteRecord>, StoreError> {
        let sql = format!("SELECT {ROUTE_COLUMNS} FROM dispatch_routes WHERE tenant_id = $1 AND route_id = $2");
        let header: Option<RouteHeader> = on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(Self::network_tenant()).bind(route_id).fetch_optional(pool).await)?;
        Ok(self.with_stops(header.into_iter().collect()).await?.pop())
    }

    /// A depot's routes whose wave is in `[from, to)`, by wave and route.
    pub async fn routes(
        &self,
        depot: &Gln,
        from_unix_ms: i64,
        to_unix_ms: i64,
    ) -> Result<Vec<RouteRecord>, StoreError> {
        let sql = format!(
            "SELECT {ROUTE_COLUMNS} FROM dispatch_routes WHERE tenant_id = $1 AND depot_gln = $2 \
             AND wave_unix_ms >= $3 AND wave_unix_ms < $4 ORDER BY wave_unix_ms, route_id LIMIT {ROUTES_LISTED_MAX}"
        );
        let headers: Vec<RouteHeader> = on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(Self::network_tenant()).bind(depot.as_str()).bind(from_unix_ms).bind(to_unix_ms).fetch_all(pool).await)?;
        self.with_stops(headers).await
    }

    /// The vehicle's current route: the earliest with stops still to visit, else the latest.
    pub async fn current_route(&self, vehicle_id: &VehicleId) -> Result<Option<RouteRecord>, StoreError> {
        let open = format!(
            "SELECT {ROUTE_COLUMNS} FROM dispatch_routes r WHERE r.tenant_id = $1 AND r.vehicle_id = $2 AND EXISTS \
             (SELECT 1 FROM dispatch_stops s WHERE s.tenant_id = r.tenant_id AND s.route_id = r.route_id \
             AND s.delivered_unix_ms IS NULL) ORDER BY r.departure_unix_ms, r.route_id LIMIT 1"
        );
        let latest = format!(
            "SELECT {ROUTE_COLUMNS} FROM dispatch_routes WHERE tenant_id = $1 AND vehicle_id = $2 \
             ORDER BY departure_unix_ms DESC, route_id DESC LIMIT 1"
        );
        for sql in [open, latest] {
            let header: Option<RouteHeader> = on_pool!(self.pools(), pool => sqlx::query_as(&sql)
                .bind(Self::network_tenant()).bind(vehicle_id.as_str()).fetch_optional(pool).await)?;
            if header.is_some() {
                return Ok(self.with_stops(header.into_iter().collect()).await?.pop());
            }
        }
        Ok(None)
    }

    /// Every stop of an order, on whichever route.
    pub async fn stops_of_order(&self, order_tenant: &TenantId, order_id: &str) -> Result<Vec<StopRecord>, StoreError> {
        let sql = format!(
            "SELECT {STOP_COLUMNS} FROM dispatch_stops WHERE tenant_id = $1 AND order_tenant_id = $2 AND order_id = $3 \
             ORDER BY shipment LIMIT 16"
        );
        Ok(on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(Self::network_tenant()).bind(order_tenant.as_str()).bind(order_id).fetch_all(pool).await)?)
    }
}
