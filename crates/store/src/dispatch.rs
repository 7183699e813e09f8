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
/// Queued shipments one wave reads, at most (the planner's limit per wave).
pub const QUEUED_READ_MAX: u32 = 2000;
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
    /// Stores a wave's planned routes and takes their shipments out of the queue; refused when a
    /// shipment is no longer queued (on a route already, or its order cancelled meanwhile).
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
    /// The stop will not be handed over on this route (the consignee was out, the order was
    /// cancelled); with `requeue`, its shipment waits at the depot for another wave.
    VoidStop {
        route_id: String,
        seq: i64,
        at_unix_ms: i64,
        reason: String,
        requeue: bool,
    },
    /// Calls off a route that has not left: its shipments go back to the queue.
    CancelRoute {
        route_id: String,
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
    /// The order's reservation when the stop was planned (a re-allocated order is another).
    pub reservation_id: String,
    /// 1 when the shipment reached the depot over a lane.
    pub via_lane: i64,
    pub last_mile_departure_unix_ms: i64,
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
    pub voided_unix_ms: Option<i64>,
    pub void_reason: Option<String>,
}

impl StopRecord {
    /// Neither handed over nor voided.
    pub fn is_open(&self) -> bool {
        self.delivered_unix_ms.is_none() && self.voided_unix_ms.is_none()
    }
}

const STOP_COLUMNS: &str = "seq, order_tenant_id, order_id, shipment, reservation_id, via_lane, last_mile_departure_unix_ms, \
     latitude_degrees, longitude_degrees, pickup_point_gln, demand_units, due_by_unix_ms, planned_arrival_unix_ms, \
     leg_m, leg_s, service_s, delivered_unix_ms, voided_unix_ms, void_reason";

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
    pub open_stops: i64,
    pub finished_unix_ms: Option<i64>,
    pub created_unix_ms: i64,
}

const ROUTE_COLUMNS: &str = "route_id, wave_id, depot_gln, wave_unix_ms, vehicle_id, departure_unix_ms, return_unix_ms, \
     distance_m, started_unix_ms, open_stops, finished_unix_ms, created_unix_ms";

/// A planned route and its stops in visiting order.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRecord {
    pub header: RouteHeader,
    pub stops: Vec<StopRecord>,
}

/// A shipment waiting at a depot for the last mile.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedShipment {
    pub tenant_id: String,
    pub order_id: String,
    pub shipment: i64,
    pub reservation_id: String,
    pub via_lane: i64,
    pub last_mile_departure_unix_ms: i64,
    pub promised_by_unix_ms: i64,
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

/// Counts a stop closed (handed over or voided) on its route; the route finishes with its last.
async fn close_stop(conn: &mut Conn, tenant: &str, route_id: &str, at_unix_ms: i64) -> Result<(), sqlx::Error> {
    execute(
        conn,
        "UPDATE dispatch_routes SET open_stops = open_stops - 1, \
         finished_unix_ms = CASE WHEN open_stops = 1 THEN $3 ELSE finished_unix_ms END \
         WHERE tenant_id = $1 AND route_id = $2 AND open_stops > 0",
        &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(at_unix_ms)],
    )
    .await?;
    Ok(())
}

/// Voids an open stop; with `requeue`, its shipment waits at the route's depot again. Answers
/// whether the stop was open.
async fn void_stop(
    conn: &mut Conn,
    tenant: &str,
    route_id: &str,
    seq: i64,
    at_unix_ms: i64,
    reason: &str,
    requeue: bool,
) -> Result<bool, sqlx::Error> {
    let voided = execute(
        conn,
        "UPDATE dispatch_stops SET voided_unix_ms = $4, void_reason = $5 WHERE tenant_id = $1 AND route_id = $2 \
         AND seq = $3 AND delivered_unix_ms IS NULL AND voided_unix_ms IS NULL",
        &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(seq), Arg::Integer(at_unix_ms), Arg::Text(reason)],
    )
    .await?;
    if voided == 0 {
        return Ok(false);
    }
    close_stop(conn, tenant, route_id, at_unix_ms).await?;
    // A parcel with units of a recalled lot goes back, not out again.
    if requeue && recalled_parcel(conn, tenant, route_id, seq, at_unix_ms).await?.is_none() {
        execute(
            conn,
            "INSERT INTO dispatch_queue (tenant_id, order_id, shipment, reservation_id, depot_gln, via_lane, \
             last_mile_departure_unix_ms, promised_by_unix_ms, queued_unix_ms) \
             SELECT s.order_tenant_id, s.order_id, s.shipment, s.reservation_id, r.depot_gln, s.via_lane, \
             s.last_mile_departure_unix_ms, s.due_by_unix_ms, $4 FROM dispatch_stops s JOIN dispatch_routes r \
             ON r.tenant_id = s.tenant_id AND r.route_id = s.route_id JOIN orders o ON o.tenant_id = s.order_tenant_id \
             AND o.order_id = s.order_id WHERE s.tenant_id = $1 AND s.route_id = $2 AND s.seq = $3 \
             AND o.reservation_id = s.reservation_id AND o.status IN ('packed', 'shipped', 'out_for_delivery') \
             ON CONFLICT (tenant_id, order_id, shipment) DO NOTHING",
            &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(seq), Arg::Integer(at_unix_ms)],
        )
        .await?;
    }
    Ok(true)
}

/// A stop's parcel that carries shipped units of a recalled lot.
struct RecalledParcel {
    order_id: String,
    gtin: String,
    lot: String,
    recall_id: String,
    /// Handed over at the door (not at a pickup point), and not yet.
    at_door: bool,
}

/// The shipments (by index) of an order's reservation that couriers handed to the consumer at
/// the door: their stops visited. A parcel a courier left at a pickup point is not the
/// consumer's yet (they collect it: `delivered`), so it does not count.
pub(crate) async fn shipments_handed_over(
    conn: &mut Conn,
    order_tenant: &str,
    order_id: &str,
    reservation_id: &str,
) -> Result<Vec<usize>, sqlx::Error> {
    let rows: Vec<(i64,)> = crate::backend::on_conn!(conn, connection => sqlx::query_as(
        "SELECT DISTINCT shipment FROM dispatch_stops WHERE tenant_id = $1 AND order_tenant_id = $2 \
         AND order_id = $3 AND reservation_id = $4 AND delivered_unix_ms IS NOT NULL AND pickup_point_gln IS NULL")
        .bind(TenantId::network().as_str()).bind(order_tenant).bind(order_id).bind(reservation_id)
        .fetch_all(&mut *connection).await)?;
    Ok(rows.into_iter().filter_map(|(shipment,)| usize::try_from(shipment).ok()).collect())
}

/// Whether the parcel of stop `seq` (its shipment) shipped units of a recalled lot (read under the lots' locks,
/// see `fulfilment::recalled_in_parcel`).
async fn recalled_parcel(
    conn: &mut Conn,
    tenant: &str,
    route_id: &str,
    seq: i64,
    now_unix_ms: i64,
) -> Result<Option<RecalledParcel>, sqlx::Error> {
    type StopRow = (String, String, i64, Option<String>, Option<i64>);
    let stop: Option<StopRow> = crate::backend::on_conn!(conn, connection =>
        sqlx::query_as("SELECT order_tenant_id, order_id, shipment, pickup_point_gln, delivered_unix_ms \
                        FROM dispatch_stops WHERE tenant_id = $1 AND route_id = $2 AND seq = $3")
            .bind(tenant).bind(route_id).bind(seq).fetch_optional(&mut *connection).await)?;
    let Some((order_tenant, order_id, shipment, pickup_point, delivered)) = stop else { return Ok(None) };
    let Some((order, _)) = crate::fulfilment::read_order(conn, &order_tenant, &order_id, now_unix_ms).await? else {
        return Ok(None);
    };
    // The stop's own parcel: a split order's other one is handed over at its own stop.
    let shipment = usize::try_from(shipment).map_err(|_| sqlx::Error::Decode("a stop's shipment".into()))?;
    let recalled = crate::fulfilment::recalled_in_parcel(conn, &order_tenant, &order, &[shipment]).await?;
    Ok(recalled.map(|(gtin, lot, recall_id)| RecalledParcel {
        order_id,
        gtin,
        lot,
        recall_id,
        at_door: pickup_point.is_none() && delivered.is_none(),
    }))
}

fn route_exists_sql() -> &'static str {
    "SELECT 1 FROM dispatch_routes WHERE tenant_id = $1 AND route_id = $2"
}

/// Applies a dispatch change; answers whether a row was created. Every refusal comes before the
/// first change.
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
        DispatchMutation::PutVehicle { vehicle, mode } => put_vehicle(conn, tenant, vehicle, *mode, now_unix_ms).await,
        DispatchMutation::DeleteVehicle { vehicle_id } => {
            if exists(
                conn,
                "SELECT 1 FROM dispatch_routes WHERE tenant_id = $1 AND vehicle_id = $2 AND finished_unix_ms IS NULL",
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
            let mut seen = std::collections::HashSet::new();
            for route in routes {
                if route.stops.is_empty() || route.stops.len() > STOPS_PER_ROUTE_MAX {
                    return Ok(Err(WriteError::Limit(format!("a route has 1 to {STOPS_PER_ROUTE_MAX} stops"))));
                }
                if !exists(
                    conn,
                    "SELECT 1 FROM vehicles WHERE tenant_id = $1 AND vehicle_id = $2 AND depot_gln = $3",
                    &[Arg::Text(tenant), Arg::Text(route.vehicle_id.as_str()), Arg::Text(depot.as_str())],
                )
                .await?
                {
                    return Ok(Err(WriteError::UnknownReference {
                        field: "vehicle_id",
                        value: format!("{} (a vehicle of {depot})", route.vehicle_id),
                    }));
                }
                if exists(
                    conn,
                    "SELECT 1 FROM dispatch_routes WHERE tenant_id = $1 AND vehicle_id = $2 AND finished_unix_ms IS NULL \
                     AND departure_unix_ms < $3 AND return_unix_ms > $4",
                    &[
                        Arg::Text(tenant),
                        Arg::Text(route.vehicle_id.as_str()),
                        Arg::Integer(route.return_unix_ms),
                        Arg::Integer(route.departure_unix_ms),
                    ],
                )
                .await?
                {
                    return Ok(Err(WriteError::Refused {
                        code: "vehicle-busy",
                        detail: format!(
                            "vehicle {} is on another route then (another wave planned it meanwhile)",
                            route.vehicle_id
                        ),
                        errors: Vec::new(),
                    }));
                }
                for stop in &route.stops {
                    let key = (stop.order_tenant_id.as_str(), stop.order_id.as_str(), stop.shipment);
                    if !seen.insert(key)
                        || !exists(
                            conn,
                            "SELECT 1 FROM dispatch_queue WHERE tenant_id = $1 AND order_id = $2 AND shipment = $3 \
                             AND reservation_id = $4 AND depot_gln = $5",
                            &[
                                Arg::Text(&stop.order_tenant_id),
                                Arg::Text(&stop.order_id),
                                Arg::Integer(stop.shipment),
                                Arg::Text(&stop.reservation_id),
                                Arg::Text(depot.as_str()),
                            ],
                        )
                        .await?
                    {
                        return Ok(Err(dispatched(format!(
                            "shipment {} of order {} ({}) is not waiting for a route: on a route already, \
                             or its order moved on",
                            stop.shipment, stop.order_id, stop.order_tenant_id
                        ))));
                    }
                }
            }
            for route in routes {
                execute(
                    conn,
                    "INSERT INTO dispatch_routes (tenant_id, route_id, wave_id, depot_gln, wave_unix_ms, vehicle_id, \
                     departure_unix_ms, return_unix_ms, distance_m, started_unix_ms, open_stops, finished_unix_ms, \
                     created_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, NULL, $11)",
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
                        Arg::Integer(route.stops.len() as i64),
                        Arg::Integer(now_unix_ms),
                    ],
                )
                .await?;
                for stop in &route.stops {
                    execute(
                        conn,
                        "DELETE FROM dispatch_queue WHERE tenant_id = $1 AND order_id = $2 AND shipment = $3",
                        &[Arg::Text(&stop.order_tenant_id), Arg::Text(&stop.order_id), Arg::Integer(stop.shipment)],
                    )
                    .await?;
                    execute(
                        conn,
                        &format!(
                            "INSERT INTO dispatch_stops (tenant_id, route_id, {STOP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, \
                             $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, NULL, NULL, NULL)"
                        ),
                        &[
                            Arg::Text(tenant),
                            Arg::Text(&route.route_id),
                            Arg::Integer(stop.seq),
                            Arg::Text(&stop.order_tenant_id),
                            Arg::Text(&stop.order_id),
                            Arg::Integer(stop.shipment),
                            Arg::Text(&stop.reservation_id),
                            Arg::Integer(stop.via_lane),
                            Arg::Integer(stop.last_mile_departure_unix_ms),
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
            if !exists(conn, route_exists_sql(), &[Arg::Text(tenant), Arg::Text(route_id)]).await? {
                return Ok(Err(WriteError::NotFound));
            }
            if exists(
                conn,
                "SELECT 1 FROM dispatch_routes WHERE tenant_id = $1 AND route_id = $2 AND started_unix_ms IS NULL \
                 AND finished_unix_ms IS NOT NULL",
                &[Arg::Text(tenant), Arg::Text(route_id)],
            )
            .await?
            {
                return Ok(Err(WriteError::Refused {
                    code: "invalid-transition",
                    detail: format!("route {route_id} was called off before it left"),
                    errors: Vec::new(),
                }));
            }
            let started = execute(
                conn,
                "UPDATE dispatch_routes SET started_unix_ms = $3 WHERE tenant_id = $1 AND route_id = $2 \
                 AND started_unix_ms IS NULL",
                &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(*at_unix_ms)],
            )
            .await?;
            // Created: this write started the route (a repeated start changes nothing).
            Ok(Ok(started == 1))
        }
        DispatchMutation::VisitStop { route_id, seq, at_unix_ms } => {
            // A parcel with units of a recalled lot is not handed over at the door; decided here,
            // under the lots' locks, so a recall on another node comes first or after.
            if let Some(RecalledParcel { order_id, gtin, lot, recall_id, at_door: true }) =
                recalled_parcel(conn, tenant, route_id, *seq, *at_unix_ms).await?
            {
                return Ok(Err(WriteError::Refused {
                    code: "lot-unavailable",
                    detail: format!(
                        "order {order_id} carries units of lot {lot:?} of {gtin}, recalled ({recall_id}): it is not \
                         handed over; take the parcel back"
                    ),
                    errors: Vec::new(),
                }));
            }
            let visited = execute(
                conn,
                "UPDATE dispatch_stops SET delivered_unix_ms = $4 WHERE tenant_id = $1 AND route_id = $2 AND seq = $3 \
                 AND delivered_unix_ms IS NULL AND voided_unix_ms IS NULL",
                &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(*seq), Arg::Integer(*at_unix_ms)],
            )
            .await?;
            if visited == 1 {
                close_stop(conn, tenant, route_id, *at_unix_ms).await?;
            } else if !exists(
                conn,
                "SELECT 1 FROM dispatch_stops WHERE tenant_id = $1 AND route_id = $2 AND seq = $3 AND voided_unix_ms IS NULL",
                &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(*seq)],
            )
            .await?
            {
                return Ok(Err(WriteError::NotFound));
            }
            Ok(Ok(false))
        }
        DispatchMutation::VoidStop { route_id, seq, at_unix_ms, reason, requeue } => {
            if !exists(
                conn,
                "SELECT 1 FROM dispatch_stops WHERE tenant_id = $1 AND route_id = $2 AND seq = $3",
                &[Arg::Text(tenant), Arg::Text(route_id), Arg::Integer(*seq)],
            )
            .await?
            {
                return Ok(Err(WriteError::NotFound));
            }
            void_stop(conn, tenant, route_id, *seq, *at_unix_ms, reason, *requeue).await?;
            Ok(Ok(false))
        }
        DispatchMutation::CancelRoute { route_id, at_unix_ms } => {
            let started: Option<(Option<i64>,)> = crate::backend::on_conn!(conn, connection => sqlx::query_as(
                "SELECT started_unix_ms FROM dispatch_routes WHERE tenant_id = $1 AND route_id = $2")
                .bind(tenant).bind(route_id.as_str()).fetch_optional(&mut *connection).await)?;
            match started {
                None => return Ok(Err(WriteError::NotFound)),
                Some((Some(_),)) => {
                    return Ok(Err(WriteError::Refused {
                        code: "invalid-transition",
                        detail: format!(
                            "route {route_id} has left the depot: void its stops one by one \
                             (POST /v1/routes/{route_id}/stops/{{seq}}/failed)"
                        ),
                        errors: Vec::new(),
                    }));
                }
                Some((None,)) => {}
            }
            let open: Vec<(i64,)> = crate::backend::on_conn!(conn, connection => sqlx::query_as(
                "SELECT seq FROM dispatch_stops WHERE tenant_id = $1 AND route_id = $2 AND delivered_unix_ms IS NULL \
                 AND voided_unix_ms IS NULL ORDER BY seq")
                .bind(tenant).bind(route_id.as_str()).fetch_all(&mut *connection).await)?;
            for (seq,) in open {
                void_stop(conn, tenant, route_id, seq, *at_unix_ms, "route cancelled", true).await?;
            }
            Ok(Ok(false))
        }
    }
}

async fn put_vehicle(
    conn: &mut Conn,
    tenant: &str,
    vehicle: &Vehicle,
    mode: PutMode,
    now_unix_ms: i64,
) -> Result<Result<bool, WriteError>, sqlx::Error> {
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
            "SELECT 1 FROM api_keys WHERE tenant_id = 'network' AND key_id = $1 AND revoked_unix_ms IS NULL \
             AND (' ' || scopes || ' ') LIKE '% courier %'",
            &[Arg::Text(key_id)],
        )
        .await?
        {
            return Ok(Err(WriteError::UnknownReference {
                field: "/courier_key_id",
                value: format!("{key_id} (a live network key with the courier scope)"),
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
    if let Err(error) = check_mode(mode, found, format!("vehicle {}", vehicle.vehicle_id)) {
        return Ok(Err(error));
    }
    // The depot's vehicles other than this one.
    if exists(
        conn,
        &format!(
            "SELECT 1 FROM vehicles WHERE tenant_id = $1 AND depot_gln = $2 AND vehicle_id <> $3 LIMIT 1 OFFSET {}",
            Vehicle::PER_DEPOT_MAX - 1
        ),
        &[Arg::Text(tenant), Arg::Text(vehicle.depot.as_str()), Arg::Text(vehicle.vehicle_id.as_str())],
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
            mode,
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

    /// Shipments waiting at `depot` for the last mile, planned to leave by `direct_due_unix_ms`
    /// (packed at the depot) or by `lane_due_unix_ms` (arrived over a lane), earliest first.
    /// The operator's read, across tenants.
    pub async fn queued_shipments(
        &self,
        depot: &Gln,
        direct_due_unix_ms: i64,
        lane_due_unix_ms: i64,
    ) -> Result<Vec<QueuedShipment>, StoreError> {
        let sql = format!(
            "SELECT tenant_id, order_id, shipment, reservation_id, via_lane, last_mile_departure_unix_ms, promised_by_unix_ms \
             FROM dispatch_queue WHERE depot_gln = $1 AND last_mile_departure_unix_ms <= $2 \
             AND (via_lane = 0 OR last_mile_departure_unix_ms <= $3) \
             ORDER BY last_mile_departure_unix_ms, tenant_id, order_id, shipment LIMIT {QUEUED_READ_MAX}"
        );
        Ok(on_pool!(self.pools(), pool => sqlx::query_as(&sql)
            .bind(depot.as_str()).bind(direct_due_unix_ms.max(lane_due_unix_ms)).bind(lane_due_unix_ms)
            .fetch_all(pool).await)?)
    }

    /// The unfinished routes of the depot's vehicles: (vehicle, departure, planned return,
    /// started), by vehicle and departure.
    pub async fn unfinished_routes(&self, depot: &Gln) -> Result<Vec<(String, i64, i64, Option<i64>)>, StoreError> {
        Ok(on_pool!(self.pools(), pool => sqlx::query_as(
            "SELECT vehicle_id, departure_unix_ms, return_unix_ms, started_unix_ms FROM dispatch_routes \
             WHERE tenant_id = $1 AND finished_unix_ms IS NULL AND depot_gln = $2 \
             ORDER BY vehicle_id, departure_unix_ms LIMIT 10000")
            .bind(Self::network_tenant()).bind(depot.as_str()).fetch_all(pool).await)?)
    }

    /// An order's shipments handed over on this reservation: how many (distinct), and the last
    /// hand-over's time.
    pub async fn handed_over(
        &self,
        order_tenant: &TenantId,
        order_id: &str,
        reservation_id: &str,
    ) -> Result<(i64, Option<i64>), StoreError> {
        Ok(on_pool!(self.pools(), pool => sqlx::query_as(
            "SELECT COUNT(DISTINCT shipment), MAX(delivered_unix_ms) FROM dispatch_stops WHERE tenant_id = $1 \
             AND order_tenant_id = $2 AND order_id = $3 AND reservation_id = $4 AND delivered_unix_ms IS NOT NULL")
            .bind(Self::network_tenant()).bind(order_tenant.as_str()).bind(order_id).bind(reservation_id)
            .fetch_one(pool).await)?)
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

    /// The vehicle's current route: its earliest unfinished one, else its latest.
    pub async fn current_route(&self, vehicle_id: &VehicleId) -> Result<Option<RouteRecord>, StoreError> {
        let open = format!(
            "SELECT {ROUTE_COLUMNS} FROM dispatch_routes WHERE tenant_id = $1 AND vehicle_id = $2 \
             AND finished_unix_ms IS NULL ORDER BY departure_unix_ms, route_id LIMIT 1"
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
}
