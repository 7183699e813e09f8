//! Courier dispatch on the server: the network's vehicles, dispatch waves, planned routes, and
//! the couriers' own view (their route, the next stop, starting out, handing over).
//!
//! A wave (`POST /v1/operator/dispatch`) takes the orders waiting at a depot for the last mile —
//! packed there, or shipped to it over a lane — whose last-mile departure is due by the wave,
//! plans them with [`dispatch::plan`] and stores the routes. Starting a route moves its orders to
//! `out_for_delivery` (shipping packed ones first); handing a stop over moves its order to
//! `delivered` (or `at_pickup_point`) once every shipment of the order is handed over. Each
//! step records its EPCIS events through the same path as `POST /v1/orders/{id}/events`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dispatch::{PlanRequest, RemainingStop, Shipment, UnplannedReason, WaveVehicle};
use gs1::{Gln, Gtin};
use jiff::tz::TimeZone;
use network::{Coordinates, LocalTime, LocationKind, Skill, TenantId, Vehicle, VehicleId};
use orders::OrderStatus;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use store::dispatch::{DispatchMutation, NewRoute, QueuedShipment, RouteHeader, RouteRecord, StopRecord};
use store::fulfilment::OrderRecord;
use store::{Mutation, Principal, PutMode, Scope, StoredResponse};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::{QueryParams, json_bytes, write};
use crate::dto::{Checker, timestamp};
use crate::extract::{Caller, IdempotencyKey, JsonBody};
use crate::fulfilment::{new_id, order_step_write, parse_time};
use crate::problem::Problem;

/// Time at a home address (parking, the door, the hand-over).
pub const SERVICE_SECONDS_HOME: u32 = 180;
/// Time at a pickup point (several parcels, a scan each).
pub const SERVICE_SECONDS_PICKUP_POINT: u32 = 300;
/// The default and the longest search per wave.
pub const TIME_LIMIT_MS_DEFAULT: u64 = 2_000;
pub const TIME_LIMIT_MS_MAX: u64 = 30_000;
/// How far ahead of its writing a courier's hand-over time may lie (device clock skew).
pub const DELIVERED_AT_SKEW_MS_MAX: i64 = 5 * 60 * 1000;
/// A wave takes shipments planned to leave up to this long after it, by default, and at most.
pub const LOOKAHEAD_MINUTES_DEFAULT: u64 = 60;
pub const LOOKAHEAD_MINUTES_MAX: u64 = 24 * 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_vehicle, get_vehicle, delete_vehicle))
        .routes(routes!(list_vehicles))
        .routes(routes!(dispatch_wave))
        .routes(routes!(list_routes))
        .routes(routes!(get_route))
        .routes(routes!(start_route))
        .routes(routes!(deliver_stop))
        .routes(routes!(fail_stop))
        .routes(routes!(cancel_route))
        .routes(routes!(courier_route))
}

fn network() -> TenantId {
    TenantId::network()
}

// ---------- vehicles ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehicleInput {
    /// Optional; must equal the path's id when given.
    pub vehicle_id: Option<String>,
    /// The GLN of a network warehouse or cold depot.
    pub depot: String,
    pub name: String,
    pub courier_name: Option<String>,
    /// The id of a network key with the `courier` scope: the courier signs in with it.
    pub courier_key_id: Option<String>,
    pub capacity_units: u32,
    /// `reefer`, `freezer` (default none: ambient goods only).
    #[serde(default)]
    pub skills: Vec<String>,
    /// Local time at the depot, HH:MM; an end before the start runs past midnight.
    pub shift_start: String,
    pub shift_end: String,
    /// Default 30 km/h (a city van).
    pub speed_km_per_h: Option<f64>,
    #[serde(default)]
    pub fixed_cost_cents: u32,
    #[serde(default)]
    pub cost_per_km_cents: u32,
    #[serde(default)]
    pub cost_per_hour_cents: u32,
}

const SPEED_KM_PER_H_DEFAULT: f64 = 30.0;

impl VehicleInput {
    fn into_domain(self, path_id: &str) -> Result<Vehicle, Problem> {
        let mut checker = Checker::default();
        let vehicle_id = checker.check("/vehicle_id", VehicleId::parse(path_id));
        if self.vehicle_id.as_deref().is_some_and(|body| body != path_id) {
            checker.fail("/vehicle_id", "must equal the id in the path");
        }
        let depot = checker.check("/depot", Gln::parse(&self.depot));
        let name = checker.text("/name", &self.name, Vehicle::NAME_LENGTH_MAX);
        let courier_name = checker.optional_text("/courier_name", &self.courier_name, Vehicle::NAME_LENGTH_MAX);
        let courier_key_id = checker.optional_text("/courier_key_id", &self.courier_key_id, 64);
        let mut skills = Vec::new();
        for (index, text) in self.skills.iter().enumerate() {
            if let Some(skill) = checker.check(&format!("/skills/{index}"), network::parse_enum(text, &Skill::VALUES)) {
                skills.push(skill);
            }
        }
        skills.sort();
        skills.dedup();
        let shift_start = checker.check("/shift_start", LocalTime::parse(&self.shift_start));
        let shift_end = checker.check("/shift_end", LocalTime::parse(&self.shift_end));
        let (Some(vehicle_id), Some(depot), Some(name), Some(shift_start), Some(shift_end)) =
            (vehicle_id, depot, name, shift_start, shift_end)
        else {
            checker.finish()?;
            return Err(Problem::internal("a field failed without an error"));
        };
        let vehicle = Vehicle {
            vehicle_id,
            depot,
            name,
            courier_name: courier_name.filter(|name| !name.is_empty()),
            courier_key_id: courier_key_id.filter(|key| !key.is_empty()),
            capacity_units: self.capacity_units,
            skills,
            shift_start,
            shift_end,
            speed_km_per_h: self.speed_km_per_h.unwrap_or(SPEED_KM_PER_H_DEFAULT),
            fixed_cost_cents: self.fixed_cost_cents,
            cost_per_km_cents: self.cost_per_km_cents,
            cost_per_hour_cents: self.cost_per_hour_cents,
        };
        if let Err(error) = vehicle.check() {
            let pointer = match error {
                network::VehicleError::Capacity { .. } => "/capacity_units",
                network::VehicleError::Speed { .. } => "/speed_km_per_h",
                network::VehicleError::EmptyShift => "/shift_end",
            };
            checker.fail(pointer, error.to_string());
        }
        checker.finish()?;
        Ok(vehicle)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VehicleView {
    pub vehicle_id: String,
    pub depot: String,
    pub name: String,
    pub courier_name: Option<String>,
    pub courier_key_id: Option<String>,
    pub capacity_units: u32,
    pub skills: Vec<String>,
    pub shift_start: String,
    pub shift_end: String,
    pub speed_km_per_h: f64,
    pub fixed_cost_cents: u32,
    pub cost_per_km_cents: u32,
    pub cost_per_hour_cents: u32,
}

impl From<&Vehicle> for VehicleView {
    fn from(vehicle: &Vehicle) -> Self {
        VehicleView {
            vehicle_id: vehicle.vehicle_id.to_string(),
            depot: vehicle.depot.to_string(),
            name: vehicle.name.clone(),
            courier_name: vehicle.courier_name.clone(),
            courier_key_id: vehicle.courier_key_id.clone(),
            capacity_units: vehicle.capacity_units,
            skills: vehicle.skills.iter().map(|skill| skill.name().to_owned()).collect(),
            shift_start: vehicle.shift_start.to_string(),
            shift_end: vehicle.shift_end.to_string(),
            speed_km_per_h: vehicle.speed_km_per_h,
            fixed_cost_cents: vehicle.fixed_cost_cents,
            cost_per_km_cents: vehicle.cost_per_km_cents,
            cost_per_hour_cents: vehicle.cost_per_hour_cents,
        }
    }
}

/// Creates or replaces a vehicle of a depot, with its courier's shift and key.
#[utoipa::path(put, path = "/v1/operator/vehicles/{vehicle_id}", tag = "dispatch", request_body = VehicleInput,
    params(("vehicle_id" = String, Path)),
    responses((status = 201, body = VehicleView), (status = 200, body = VehicleView), (status = 422, body = Problem)))]
async fn put_vehicle(
    State(app): State<AppState>,
    caller: Caller,
    Path(vehicle_id): Path<String>,
    body: JsonBody<VehicleInput>,
) -> Result<Response, Problem> {
    let principal = caller.require_operator()?;
    let vehicle = body.value.into_domain(&vehicle_id)?;
    let view = json_bytes(&VehicleView::from(&vehicle));
    let mutation = Mutation::Dispatch(DispatchMutation::PutVehicle { vehicle, mode: PutMode::Upsert });
    let respond = crate::api::created_or_ok(view);
    let written = write(&app, principal, IdempotencyKey(None), None, network(), mutation, respond.clone()).await?;
    Ok(written.into_response(respond))
}

#[utoipa::path(get, path = "/v1/operator/vehicles/{vehicle_id}", tag = "dispatch", params(("vehicle_id" = String, Path)),
    responses((status = 200, body = VehicleView), (status = 404, body = Problem)))]
async fn get_vehicle(
    State(app): State<AppState>,
    caller: Caller,
    Path(vehicle_id): Path<String>,
) -> Result<Json<VehicleView>, Problem> {
    caller.require_operator()?;
    let id = VehicleId::parse(&vehicle_id).map_err(|_| Problem::not_found(format!("vehicle {vehicle_id}")))?;
    let vehicle = app.store.vehicle(&id).await?.ok_or_else(|| Problem::not_found(format!("vehicle {vehicle_id}")))?;
    Ok(Json(VehicleView::from(&vehicle)))
}

/// Deletes a vehicle; refused while one of its routes has stops to go.
#[utoipa::path(delete, path = "/v1/operator/vehicles/{vehicle_id}", tag = "dispatch", params(("vehicle_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_vehicle(
    State(app): State<AppState>,
    caller: Caller,
    Path(vehicle_id): Path<String>,
) -> Result<Response, Problem> {
    let principal = caller.require_operator()?;
    let id = VehicleId::parse(&vehicle_id).map_err(|_| Problem::not_found(format!("vehicle {vehicle_id}")))?;
    let mutation = Mutation::Dispatch(DispatchMutation::DeleteVehicle { vehicle_id: id });
    let respond = |_: &store::Applied| StoredResponse { status: 204, body: Vec::new() };
    write(&app, principal, IdempotencyKey(None), None, network(), mutation, respond).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VehicleListParams {
    /// Only the vehicles of this depot (GLN).
    pub depot: Option<String>,
}

#[utoipa::path(get, path = "/v1/operator/vehicles", tag = "dispatch", params(VehicleListParams),
    responses((status = 200, body = Vec<VehicleView>)))]
async fn list_vehicles(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<VehicleListParams>,
) -> Result<Json<Vec<VehicleView>>, Problem> {
    caller.require_operator()?;
    let depot = params
        .depot
        .as_deref()
        .map(|text| Gln::parse(text).map_err(|error| Problem::field("invalid-parameter", "?depot", error.to_string())))
        .transpose()?;
    let vehicles = app.store.vehicles(depot.as_ref()).await?;
    Ok(Json(vehicles.iter().map(VehicleView::from).collect()))
}

// ---------- routes as seen by operators and couriers ----------

#[derive(Debug, Serialize, ToSchema)]
pub struct StopView {
    pub seq: i64,
    pub tenant: String,
    pub order_id: String,
    /// The order's shipment (index in its allocation).
    pub shipment: i64,
    pub latitude_degrees: f64,
    pub longitude_degrees: f64,
    pub pickup_point: Option<String>,
    pub demand_units: i64,
    /// The promise.
    pub due_by: String,
    pub planned_arrival: String,
    /// From where the courier is now (open stops only).
    pub expected_arrival: Option<String>,
    /// Expected after the promise.
    pub at_risk: bool,
    pub delivered_at: Option<String>,
    /// Not handed over on this route: when, and why (its shipment may wait for another wave).
    pub voided_at: Option<String>,
    pub void_reason: Option<String>,
    pub distance_from_previous_km: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteView {
    pub route_id: String,
    pub wave_id: String,
    pub depot: String,
    pub wave: String,
    pub vehicle_id: String,
    pub departure: String,
    pub planned_return: String,
    pub distance_km: f64,
    pub started_at: Option<String>,
    /// Every stop handed over or voided.
    pub finished_at: Option<String>,
    /// The next stop to visit (its `seq`): the first open one.
    pub next_stop: Option<i64>,
    /// Open stops whose promise is expected to be missed.
    pub at_risk: usize,
    pub stops: Vec<StopView>,
}

fn kilometres(metres: f64) -> f64 {
    (metres / 10.0).round() / 100.0
}

fn route_view(route: &RouteRecord, now_unix_ms: i64) -> RouteView {
    let header = &route.header;
    // The courier left the last point at the route's start or the last hand-over (after its
    // service); a route not started leaves as planned, or now if that is later.
    let left = match header.started_unix_ms {
        Some(started) => route
            .stops
            .iter()
            .filter_map(|stop| stop.delivered_unix_ms.map(|at| at + (stop.service_s * 1000.0).round() as i64))
            .fold(started, i64::max),
        None => header.departure_unix_ms.max(now_unix_ms),
    };
    let open: Vec<&StopRecord> = route.stops.iter().filter(|stop| stop.is_open()).collect();
    let remaining: Vec<RemainingStop> = open
        .iter()
        .map(|stop| RemainingStop { leg_s: stop.leg_s, service_s: stop.service_s, due_by_unix_ms: stop.due_by_unix_ms })
        .collect();
    let projected = dispatch::project(now_unix_ms, left, &remaining);
    let projection = |seq: i64| open.iter().position(|stop| stop.seq == seq).map(|index| projected[index]);
    let stops: Vec<StopView> = route
        .stops
        .iter()
        .map(|stop| {
            let expected = projection(stop.seq);
            StopView {
                seq: stop.seq,
                tenant: stop.order_tenant_id.clone(),
                order_id: stop.order_id.clone(),
                shipment: stop.shipment,
                latitude_degrees: stop.latitude_degrees,
                longitude_degrees: stop.longitude_degrees,
                pickup_point: stop.pickup_point_gln.clone(),
                demand_units: stop.demand_units,
                due_by: timestamp(stop.due_by_unix_ms),
                planned_arrival: timestamp(stop.planned_arrival_unix_ms),
                expected_arrival: expected.map(|projected| timestamp(projected.arrival_unix_ms)),
                at_risk: expected.is_some_and(|projected| projected.at_risk),
                delivered_at: stop.delivered_unix_ms.map(timestamp),
                voided_at: stop.voided_unix_ms.map(timestamp),
                void_reason: stop.void_reason.clone(),
                distance_from_previous_km: kilometres(stop.leg_m),
            }
        })
        .collect();
    RouteView {
        route_id: header.route_id.clone(),
        wave_id: header.wave_id.clone(),
        depot: header.depot_gln.clone(),
        wave: timestamp(header.wave_unix_ms),
        vehicle_id: header.vehicle_id.clone(),
        departure: timestamp(header.departure_unix_ms),
        planned_return: timestamp(header.return_unix_ms),
        distance_km: kilometres(header.distance_m),
        started_at: header.started_unix_ms.map(timestamp),
        finished_at: header.finished_unix_ms.map(timestamp),
        next_stop: open.first().map(|stop| stop.seq),
        at_risk: stops.iter().filter(|stop| stop.at_risk).count(),
        stops,
    }
}

/// Who acts on a route: the operator, or the courier driving the route's vehicle.
async fn route_for<'c>(
    app: &AppState,
    caller: &'c Caller,
    route_id: &str,
) -> Result<(&'c Principal, RouteRecord), Problem> {
    let not_found = || Problem::not_found(format!("route {route_id}"));
    let principal = &caller.0;
    let courier_vehicle = if principal.is_operator() {
        None
    } else if principal.tenant_id.is_network() && principal.has(Scope::Courier) {
        let vehicle = app
            .store
            .vehicle_of_courier(&principal.key_id)
            .await?
            .ok_or_else(|| Problem::new("forbidden", "no vehicle is driven with this courier key"))?;
        Some(vehicle.vehicle_id)
    } else {
        return Err(Problem::new("forbidden", "this operation needs the operator or the courier scope"));
    };
    let route = app.store.route(route_id).await?.ok_or_else(not_found)?;
    if courier_vehicle.is_some_and(|vehicle| vehicle.as_str() != route.header.vehicle_id) {
        return Err(not_found());
    }
    Ok((principal, route))
}

async fn read_route(app: &AppState, route_id: &str) -> Result<RouteRecord, Problem> {
    app.store.route(route_id).await?.ok_or_else(|| Problem::not_found(format!("route {route_id}")))
}

#[utoipa::path(get, path = "/v1/routes/{route_id}", tag = "dispatch", params(("route_id" = String, Path)),
    responses((status = 200, body = RouteView), (status = 404, body = Problem)))]
async fn get_route(
    State(app): State<AppState>,
    caller: Caller,
    Path(route_id): Path<String>,
) -> Result<Json<RouteView>, Problem> {
    let (_, route) = route_for(&app, &caller, &route_id).await?;
    Ok(Json(route_view(&route, store::now_unix_ms())))
}

/// The courier's route: the earliest unfinished route of their vehicle (else the latest), with
/// the next stop and expected arrivals from now.
#[utoipa::path(get, path = "/v1/courier/route", tag = "dispatch",
    responses((status = 200, body = RouteView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn courier_route(State(app): State<AppState>, caller: Caller) -> Result<Json<RouteView>, Problem> {
    let principal = caller.require(Scope::Courier)?;
    let vehicle = app
        .store
        .vehicle_of_courier(&principal.key_id)
        .await?
        .ok_or_else(|| Problem::new("forbidden", "no vehicle is driven with this courier key"))?;
    let route = app
        .store
        .current_route(&vehicle.vehicle_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("a route of vehicle {}", vehicle.vehicle_id)))?;
    Ok(Json(route_view(&route, store::now_unix_ms())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RouteListParams {
    pub depot: String,
    /// The depot's local date of the waves (default today).
    pub date: Option<String>,
}

#[utoipa::path(get, path = "/v1/operator/routes", tag = "dispatch", params(RouteListParams),
    responses((status = 200, body = Vec<RouteView>)))]
async fn list_routes(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<RouteListParams>,
) -> Result<Json<Vec<RouteView>>, Problem> {
    caller.require_operator()?;
    let depot =
        Gln::parse(&params.depot).map_err(|error| Problem::field("invalid-parameter", "?depot", error.to_string()))?;
    let (_, zone) = depot_location(&app, &depot, "?depot").await?;
    let invalid = |error: jiff::Error| Problem::field("invalid-parameter", "?date", error.to_string());
    let date = match params.date.as_deref() {
        Some(text) => text.parse::<jiff::civil::Date>().map_err(invalid)?,
        None => jiff::Timestamp::now().to_zoned(zone.clone()).date(),
    };
    let bound = |date: jiff::civil::Date| -> Result<i64, Problem> {
        Ok(date.to_zoned(zone.clone()).map_err(invalid)?.timestamp().as_millisecond())
    };
    let next = date.tomorrow().map_err(invalid)?;
    let routes = app.store.routes(&depot, bound(date)?, bound(next)?).await?;
    let now = store::now_unix_ms();
    Ok(Json(routes.iter().map(|route| route_view(route, now)).collect()))
}

/// A network warehouse or cold depot: its coordinates and time zone.
async fn depot_location(app: &AppState, depot: &Gln, pointer: &str) -> Result<(Coordinates, TimeZone), Problem> {
    let located = app.store.tenant(&network()).location(depot).await?;
    let Some(located) = located.filter(|owned| {
        owned.owner.is_network() && matches!(owned.value.kind, LocationKind::Warehouse | LocationKind::ColdDepot)
    }) else {
        return Err(Problem::field(
            "unknown-reference",
            pointer,
            format!("{depot} is not a warehouse or cold depot of the network"),
        ));
    };
    Ok((located.value.coordinates, located.value.time_zone.zone().clone()))
}

// ---------- dispatch ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchInput {
    /// The depot (a network warehouse or cold depot GLN).
    pub depot: String,
    /// When the wave leaves (RFC 3339, within 7 days of now). Default: now.
    pub wave: Option<String>,
    /// Shipments packed at the depot whose planned last-mile departure is at most this long
    /// after the wave are taken (they are ready; leaving early keeps the promise). Shipments that
    /// came over a lane are taken only when planned to leave by the wave (their cross-dock is
    /// done). 0..=1440, default 60.
    pub lookahead_minutes: Option<u64>,
    /// The search's time limit, 100..=30000 ms (default 2000).
    pub time_limit_ms: Option<u64>,
    /// Plan shipments that can no longer be on time (marked late) instead of leaving them out.
    #[serde(default)]
    pub allow_late: bool,
    /// The search's seed (default 1).
    pub seed: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnplannedView {
    pub tenant: String,
    pub order_id: String,
    pub shipment: i64,
    /// `missing_skill`, `capacity_exceeded`, `promise_unreachable`, `fleet_full`,
    /// `group_incomplete`, `no_coordinates`, `unknown_product`. The shipment stays queued.
    pub reason: String,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DispatchView {
    pub wave_id: String,
    pub depot: String,
    pub wave: String,
    /// Shipments due at the depot for this wave.
    pub shipments: usize,
    pub vehicles_on_shift: usize,
    pub routes: Vec<RouteView>,
    pub unassigned: Vec<UnplannedView>,
    pub distance_km: f64,
    pub cost_cents: f64,
    pub solve_ms: u64,
}

/// A shipment due at the depot, and which order it belongs to.
struct Due {
    tenant: TenantId,
    order_id: String,
    shipment: i64,
    reservation_id: String,
    via_lane: bool,
    last_mile_departure_unix_ms: i64,
    pickup_point: Option<String>,
    planned: Shipment,
}

fn reason_detail(reason: UnplannedReason) -> &'static str {
    match reason {
        UnplannedReason::MissingSkill => "no vehicle on shift keeps its temperature class (reefer or freezer)",
        UnplannedReason::CapacityExceeded => "more units than any suitable vehicle holds",
        UnplannedReason::PromiseUnreachable => "no suitable vehicle on shift reaches it by its promise",
        UnplannedReason::FleetFull => {
            "no route of the vehicles on shift could take it: their capacity or their time (planned at the slowest vehicle's speed) ran out"
        }
        UnplannedReason::GroupIncomplete => "another shipment of the order cannot go in this wave; they go together",
    }
}

/// What a wave read once: the skills a product needs, a pickup point's coordinates.
#[derive(Default)]
struct Lookups {
    products: HashMap<(TenantId, String), Option<Vec<Skill>>>,
    pickup_points: HashMap<(TenantId, String), Option<Coordinates>>,
}

fn unplanned_view(tenant: &TenantId, order_id: &str, shipment: i64, reason: &str, detail: &str) -> UnplannedView {
    UnplannedView {
        tenant: tenant.to_string(),
        order_id: order_id.to_owned(),
        shipment,
        reason: reason.to_owned(),
        detail: detail.to_owned(),
    }
}

/// A queued shipment as the planner sees it: where to, how much, which skills, by when. `None`
/// (with the reason added to `unplanned`) when it cannot be planned.
async fn due_shipment(
    app: &AppState,
    tenant: &TenantId,
    order: &OrderRecord,
    queued: &QueuedShipment,
    group: u64,
    lookups: &mut Lookups,
    unplanned: &mut Vec<UnplannedView>,
) -> Result<Option<Due>, Problem> {
    let Some(shipment) = usize::try_from(queued.shipment).ok().and_then(|index| order.allocation.shipments.get(index))
    else {
        return Ok(None);
    };
    if shipment.shipped_nothing() {
        // It goes nowhere (queued again when a route it was on was called off).
        return Ok(None);
    }
    let Lookups { products, pickup_points } = lookups;
    let destination = &order.destination;
    let coordinates = match (destination.latitude_degrees, destination.longitude_degrees, &destination.pickup_point) {
        (Some(latitude), Some(longitude), _) => Coordinates::new(latitude, longitude).ok(),
        (_, _, Some(gln)) => {
            let key = (tenant.clone(), gln.clone());
            if !pickup_points.contains_key(&key) {
                let located = match Gln::parse(gln) {
                    Ok(parsed) => app.store.tenant(tenant).location(&parsed).await?,
                    Err(_) => None,
                };
                pickup_points.insert(key.clone(), located.map(|owned| owned.value.coordinates));
            }
            pickup_points[&key]
        }
        _ => None,
    };
    let Some(coordinates) = coordinates else {
        let detail = "the destination has no coordinates (a pickup point without a location)";
        unplanned.push(unplanned_view(tenant, &order.order_id, queued.shipment, "no_coordinates", detail));
        return Ok(None);
    };
    let mut skills = Vec::new();
    let mut units: u64 = 0;
    for pick in &shipment.picks {
        // Once shipped (a lane's shipment, or a short pick), what shipped; before, what is packed.
        units += u64::try_from(pick.shipped.unwrap_or(pick.quantity)).unwrap_or(0);
        let Some(line) = order.lines.get(pick.line) else { continue };
        let key = (tenant.clone(), line.gtin.clone());
        if !products.contains_key(&key) {
            let product = match Gtin::parse(&line.gtin) {
                Ok(gtin) => app.store.tenant(tenant).product(&gtin).await?,
                Err(_) => None,
            };
            let needed = product.map(|product| Skill::required_for(&product.temperature_class).into_iter().collect());
            products.insert(key.clone(), needed);
        }
        match &products[&key] {
            Some(needed) => skills.extend(needed.iter().copied()),
            None => {
                let detail = format!("product {} is not in the catalogue: its temperature class is unknown", line.gtin);
                unplanned.push(unplanned_view(tenant, &order.order_id, queued.shipment, "unknown_product", &detail));
                return Ok(None);
            }
        }
    }
    skills.sort();
    skills.dedup();
    let due_by = order
        .latest_delivery_unix_ms
        .map_or(shipment.promised_by_unix_ms, |latest| latest.min(shipment.promised_by_unix_ms));
    Ok(Some(Due {
        tenant: tenant.clone(),
        order_id: order.order_id.clone(),
        shipment: queued.shipment,
        reservation_id: order.reservation_id.clone(),
        via_lane: queued.via_lane != 0,
        last_mile_departure_unix_ms: shipment.last_mile_departure_unix_ms,
        pickup_point: destination.pickup_point.clone(),
        planned: Shipment {
            coordinates,
            demand_units: u32::try_from(units).unwrap_or(u32::MAX),
            skills,
            due_by_unix_ms: due_by,
            service_seconds: if destination.pickup_point.is_some() {
                SERVICE_SECONDS_PICKUP_POINT
            } else {
                SERVICE_SECONDS_HOME
            },
            group,
        },
    }))
}

/// The furthest a wave may lie from now.
pub const WAVE_DISTANCE_MS_MAX: i64 = 7 * 24 * 3_600_000;

/// Plans a dispatch wave for a depot: the shipments waiting there for the last mile and due by
/// the wave go to the depot's vehicles on shift and back from earlier routes (time windows from
/// the promises, reefer or freezer from the products' temperature classes, demand in units). The
/// routes are stored and their shipments leave the queue; shipments left out stay queued and are
/// answered with the reason. With an `Idempotency-Key`, a retry answers the first plan.
#[utoipa::path(post, path = "/v1/operator/dispatch", tag = "dispatch", request_body = DispatchInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = DispatchView), (status = 200, body = DispatchView, description = "Nothing to plan, nothing stored"),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn dispatch_wave(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<DispatchInput>,
) -> Result<Response, Problem> {
    let principal = caller.require_operator()?;
    let request_sha256 = body.request_sha256;
    if let Some(key) = &key.0
        && let Some(stored) = crate::api::first_answer(&app, principal, key, request_sha256).await?
    {
        return Ok(crate::api::replay(stored));
    }
    let input = body.value;
    let now = store::now_unix_ms();
    let mut checker = Checker::default();
    let depot = checker.check("/depot", Gln::parse(&input.depot));
    let wave = parse_time(&mut checker, "/wave", &input.wave);
    if wave.is_some_and(|wave| (wave - now).abs() > WAVE_DISTANCE_MS_MAX) {
        checker.fail("/wave", "must lie within 7 days of now");
    }
    let time_limit_ms = input.time_limit_ms.unwrap_or(TIME_LIMIT_MS_DEFAULT);
    checker.bounded("/time_limit_ms", time_limit_ms, 100, TIME_LIMIT_MS_MAX);
    let lookahead_minutes = input.lookahead_minutes.unwrap_or(LOOKAHEAD_MINUTES_DEFAULT);
    checker.bounded("/lookahead_minutes", lookahead_minutes, 0, LOOKAHEAD_MINUTES_MAX);
    checker.finish()?;
    let depot = depot.ok_or_else(|| Problem::internal("depot"))?;
    let wave_unix_ms = wave.unwrap_or(now);
    let (depot_coordinates, zone) = depot_location(&app, &depot, "/depot").await?;

    // Vehicles on shift, from when they are back from their unfinished routes of this shift (a
    // route under way and late is not back before now).
    let unfinished = app.store.unfinished_routes(&depot).await?;
    let shifts: Vec<(Vehicle, i64, i64)> = app
        .store
        .vehicles(Some(&depot))
        .await?
        .into_iter()
        .filter_map(|vehicle| {
            let (mut from, until) = dispatch::shift_in_wave(&vehicle, &zone, wave_unix_ms)?;
            for (_, departure, back, started) in
                unfinished.iter().filter(|(id, ..)| id.as_str() == vehicle.vehicle_id.as_str())
            {
                if *departure < until {
                    from = from.max(*back).max(if started.is_some() { now } else { *back });
                }
            }
            (until > from).then_some((vehicle, from, until))
        })
        .collect();

    let mut unassigned = Vec::new();
    let mut due = Vec::new();
    let mut lookups = Lookups::default();
    let mut orders: HashMap<(TenantId, String), Option<(OrderRecord, u64)>> = HashMap::new();
    let mut incomplete_groups = std::collections::HashSet::new();
    let queued =
        app.store.queued_shipments(&depot, wave_unix_ms + lookahead_minutes as i64 * 60_000, wave_unix_ms).await?;
    for waiting in &queued {
        let Ok(tenant) = TenantId::parse_any(&waiting.tenant_id) else { continue };
        let order_key = (tenant.clone(), waiting.order_id.clone());
        if !orders.contains_key(&order_key) {
            let order = app.store.tenant(&tenant).order(&waiting.order_id).await?;
            let group = orders.len() as u64;
            orders.insert(order_key.clone(), order.map(|order| (order, group)));
        }
        let Some((order, group)) = &orders[&order_key] else { continue };
        // The queue follows the order's steps; a row of another generation is not this order's.
        if !matches!(order.status, OrderStatus::Packed | OrderStatus::Shipped | OrderStatus::OutForDelivery)
            || order.reservation_id != waiting.reservation_id
        {
            continue;
        }
        match due_shipment(&app, &tenant, order, waiting, *group, &mut lookups, &mut unassigned).await? {
            Some(shipment) => due.push(shipment),
            None => {
                incomplete_groups.insert(*group);
            }
        }
    }
    // An order's shipments go together: one that cannot be planned keeps the others back.
    due.retain(|shipment| {
        let keep = !incomplete_groups.contains(&shipment.planned.group);
        if !keep {
            unassigned.push(unplanned_view(
                &shipment.tenant,
                &shipment.order_id,
                shipment.shipment,
                UnplannedReason::GroupIncomplete.code(),
                reason_detail(UnplannedReason::GroupIncomplete),
            ));
        }
        keep
    });
    let wave_id = new_id("wav");
    let mut view = DispatchView {
        wave_id: wave_id.clone(),
        depot: depot.to_string(),
        wave: timestamp(wave_unix_ms),
        shipments: due.len(),
        vehicles_on_shift: shifts.len(),
        routes: Vec::new(),
        unassigned,
        distance_km: 0.0,
        cost_cents: 0.0,
        solve_ms: 0,
    };
    if due.is_empty() {
        return Ok((StatusCode::OK, Json(view)).into_response());
    }
    if shifts.is_empty() {
        return Err(Problem::new(
            "no-vehicle",
            format!(
                "{} shipments are due at {depot}, and no vehicle of the depot is on shift (and back) for this wave",
                due.len()
            ),
        ));
    }

    let shipments: Vec<Shipment> = due.iter().map(|due| due.planned.clone()).collect();
    let matrix = app.matrix.clone();
    let seed = input.seed.unwrap_or(1);
    let allow_late = input.allow_late;
    let planning_shifts = shifts.clone();
    let started = Instant::now();
    let planned = tokio::task::spawn_blocking(move || {
        let vehicles = planning_shifts
            .iter()
            .map(|(vehicle, from, until)| WaveVehicle {
                vehicle,
                available_from_unix_ms: *from,
                available_until_unix_ms: *until,
            })
            .collect();
        let request = PlanRequest {
            depot: depot_coordinates,
            wave_unix_ms,
            vehicles,
            shipments: &shipments,
            allow_late,
            seed,
            time_limit: Duration::from_millis(time_limit_ms),
            iteration_limit: None,
        };
        dispatch::plan(&request, matrix.as_ref())
    })
    .await
    .map_err(|error| Problem::internal(format!("the planner stopped: {error}")))?;
    view.solve_ms = started.elapsed().as_millis() as u64;
    let planned = planned.map_err(|error| match error {
        dispatch::PlanError::NoVehicle => Problem::new("no-vehicle", error.to_string()),
        dispatch::PlanError::TooManyShipments { .. } => Problem::new("limit-reached", error.to_string()),
        other => Problem::internal(other.to_string()),
    })?;
    for (index, reason) in &planned.unplanned {
        let shipment = &due[*index];
        view.unassigned.push(unplanned_view(
            &shipment.tenant,
            &shipment.order_id,
            shipment.shipment,
            reason.code(),
            reason_detail(*reason),
        ));
    }
    view.distance_km = kilometres(planned.distance_m);
    view.cost_cents = planned.cost_cents.round();
    let created = store::now_unix_ms();
    let routes: Vec<NewRoute> = planned
        .routes
        .iter()
        .enumerate()
        .map(|(number, route)| NewRoute {
            route_id: format!("rte_{}_{}", wave_id.trim_start_matches("wav_"), number + 1),
            vehicle_id: shifts[route.vehicle].0.vehicle_id.clone(),
            departure_unix_ms: route.departure_unix_ms,
            return_unix_ms: route.return_unix_ms,
            distance_m: route.distance_m,
            stops: route
                .stops
                .iter()
                .enumerate()
                .map(|(seq, stop)| {
                    let shipment = &due[stop.shipment];
                    StopRecord {
                        seq: seq as i64 + 1,
                        order_tenant_id: shipment.tenant.to_string(),
                        order_id: shipment.order_id.clone(),
                        shipment: shipment.shipment,
                        reservation_id: shipment.reservation_id.clone(),
                        via_lane: i64::from(shipment.via_lane),
                        last_mile_departure_unix_ms: shipment.last_mile_departure_unix_ms,
                        latitude_degrees: shipment.planned.coordinates.latitude_degrees(),
                        longitude_degrees: shipment.planned.coordinates.longitude_degrees(),
                        pickup_point_gln: shipment.pickup_point.clone(),
                        demand_units: i64::from(shipment.planned.demand_units),
                        due_by_unix_ms: shipment.planned.due_by_unix_ms,
                        planned_arrival_unix_ms: stop.arrival_unix_ms,
                        leg_m: stop.leg_m,
                        leg_s: stop.leg_s,
                        service_s: stop.service_s,
                        delivered_unix_ms: None,
                        voided_unix_ms: None,
                        void_reason: None,
                    }
                })
                .collect(),
        })
        .collect();
    // The answer is built before the write, so a retry with the same key replays it.
    for route in &routes {
        let record = RouteRecord {
            header: RouteHeader {
                route_id: route.route_id.clone(),
                wave_id: wave_id.clone(),
                depot_gln: depot.to_string(),
                wave_unix_ms,
                vehicle_id: route.vehicle_id.to_string(),
                departure_unix_ms: route.departure_unix_ms,
                return_unix_ms: route.return_unix_ms,
                distance_m: route.distance_m,
                started_unix_ms: None,
                open_stops: route.stops.len() as i64,
                finished_unix_ms: None,
                created_unix_ms: created,
            },
            stops: route.stops.clone(),
        };
        view.routes.push(route_view(&record, created));
    }
    if routes.is_empty() {
        return Ok((StatusCode::OK, Json(view)).into_response());
    }
    let body = json_bytes(&view);
    let mutation = Mutation::Dispatch(DispatchMutation::SaveWave {
        wave_id: wave_id.clone(),
        depot: depot.clone(),
        wave_unix_ms,
        routes,
    });
    let respond = move |_: &store::Applied| StoredResponse { status: 201, body: body.clone() };
    let written = write(&app, principal, key, Some(request_sha256), network(), mutation, respond.clone()).await?;
    Ok(written.into_response(respond))
}

// ---------- the courier's steps ----------

/// How far an order has come on the last mile (statuses off it rank nowhere).
fn last_mile_rank(status: OrderStatus) -> Option<u8> {
    match status {
        OrderStatus::Packed => Some(0),
        OrderStatus::Shipped => Some(1),
        OrderStatus::OutForDelivery => Some(2),
        OrderStatus::AtPickupPoint | OrderStatus::Delivered => Some(3),
        _ => None,
    }
}

/// Moves an order on by one step with the EPCIS events of `shipments` at `at_unix_ms`. A
/// refusal because the order is there or further already (a concurrent request moved it) counts
/// as done.
#[allow(clippy::too_many_arguments)]
async fn advance(
    app: &AppState,
    principal: &Principal,
    tenant: &TenantId,
    order: &OrderRecord,
    to: OrderStatus,
    at_unix_ms: i64,
    handed_over_unix_ms: Option<i64>,
    shipments: &[usize],
) -> Result<(), Problem> {
    let at = jiff::Timestamp::from_millisecond(at_unix_ms).unwrap_or_else(|_| jiff::Timestamp::now());
    let zones = crate::steps::SiteZones::of_order(&app.store, order).await?;
    let mutation = order_step_write(
        tenant,
        order,
        to,
        Vec::new(),
        (None, None),
        &BTreeSet::new(),
        // A courier's scans and a route's departure are when they were recorded (not checked
        // against the order's last step: a route planned earlier departs as planned).
        (at, false),
        handed_over_unix_ms,
        Some(shipments),
        &zones,
    )?;
    let respond = |_: &store::Applied| StoredResponse { status: 200, body: Vec::new() };
    match write(app, principal, IdempotencyKey(None), None, tenant.clone(), mutation, respond).await {
        Ok(_) => Ok(()),
        Err(problem) if problem.status < 500 => match app.store.tenant(tenant).order(&order.order_id).await? {
            Some(now)
                if now.reservation_id == order.reservation_id
                    && last_mile_rank(now.status) >= last_mile_rank(to)
                    && last_mile_rank(now.status).is_some() =>
            {
                Ok(())
            }
            _ => Err(problem),
        },
        Err(problem) => Err(problem),
    }
}

/// Records the EPCIS events of a step that does not move the order (it moved with an earlier
/// shipment): a second route carrying the order leaves, an earlier shipment is handed over.
async fn record_only(
    app: &AppState,
    principal: &Principal,
    tenant: &TenantId,
    order: &OrderRecord,
    step: OrderStatus,
    at_unix_ms: i64,
    shipments: &[usize],
) -> Result<(), Problem> {
    let at = jiff::Timestamp::from_millisecond(at_unix_ms).unwrap_or_else(|_| jiff::Timestamp::now());
    let zones = crate::steps::SiteZones::of_order(&app.store, order).await?;
    let Some(capture) = crate::steps::order_step(
        tenant,
        order,
        step,
        &[],
        (None, None, &BTreeSet::new()),
        at,
        Some(shipments),
        &zones,
    )?
    else {
        return Ok(());
    };
    let mutation = Mutation::CaptureEvents(Box::new(capture));
    let respond = |_: &store::Applied| StoredResponse { status: 200, body: Vec::new() };
    write(app, principal, IdempotencyKey(None), None, tenant.clone(), mutation, respond).await?;
    Ok(())
}

async fn void(
    app: &AppState,
    principal: &Principal,
    route_id: &str,
    seq: i64,
    reason: String,
    requeue: bool,
) -> Result<(), Problem> {
    let mutation = Mutation::Dispatch(DispatchMutation::VoidStop {
        route_id: route_id.to_owned(),
        seq,
        at_unix_ms: store::now_unix_ms(),
        reason,
        requeue,
    });
    let respond = |_: &store::Applied| StoredResponse { status: 200, body: Vec::new() };
    write(app, principal, IdempotencyKey(None), None, network(), mutation, respond).await?;
    Ok(())
}

fn stored_tenant(text: &str) -> Result<TenantId, Problem> {
    TenantId::parse_any(text).map_err(|error| Problem::internal(format!("stored tenant: {error}")))
}

fn shipment_index(stop: &StopRecord) -> usize {
    usize::try_from(stop.shipment).unwrap_or(usize::MAX)
}

/// Whether a later wave could take a stop's shipment that cannot go on this route: not one that
/// shipped nothing, nor one holding a lot past its expiry date (it can never ship; the order
/// waits, packed, for a person to cancel it).
fn may_go_later(order: &OrderRecord, stop: &StopRecord) -> bool {
    let today = store::utc_day(store::now_unix_ms());
    order.allocation.shipments.get(shipment_index(stop)).is_none_or(|shipment| {
        !shipment.shipped_nothing()
            && !shipment.picks.iter().any(|pick| pick.expiry.as_deref().is_some_and(|expiry| *expiry < *today))
    })
}

/// The first recalled lot the shipped units of the order's `shipments` (by index: those of a
/// route's stops) came from: (GTIN, lot, recall id).
async fn recalled_in(
    store: &store::TenantStore<'_>,
    order: &OrderRecord,
    shipments: &[usize],
) -> Result<Option<(String, String, String)>, Problem> {
    let carried = order.allocation.shipments.iter().enumerate().filter(|(index, _)| shipments.contains(index));
    for (_, shipment) in carried {
        for pick in shipment.picks.iter().filter(|pick| pick.shipped.unwrap_or(pick.quantity) > 0) {
            let Some(line) = order.lines.get(pick.line) else { continue };
            if let Some(recall_id) = store.recall_of_lot(&line.gtin, &pick.lot).await? {
                return Ok(Some((line.gtin.clone(), pick.lot.clone(), recall_id)));
            }
        }
    }
    Ok(None)
}

/// Why a stop's order can no longer go on this route, if so: it is gone, off the last mile, or
/// allocated anew (its stop is of another generation).
fn off_route(order: Option<&OrderRecord>, stop: &StopRecord) -> Option<String> {
    match order {
        None => Some("the order no longer exists".to_owned()),
        Some(order) if order.reservation_id != stop.reservation_id => {
            Some("the order was allocated anew (a recall): this parcel stays at the depot".to_owned())
        }
        Some(order) if last_mile_rank(order.status).is_none() => Some(format!("the order is {}", order.status.name())),
        Some(order)
            if order
                .allocation
                .shipments
                .get(shipment_index(stop))
                .is_some_and(|shipment| shipment.shipped_nothing()) =>
        {
            Some("this shipment shipped no unit (its picks came up short): nothing to deliver".to_owned())
        }
        Some(_) => None,
    }
}

/// Of `shipments` of `order`, those whose pallet no event of `business_step` (`shipping`,
/// `departing`) names since `since_unix_ms` (the route's planning). A start that failed part-way,
/// and is tried again, finds the orders it sent out already `out_for_delivery`: their shipments'
/// events are not recorded twice. A parcel that comes back from a failed stop and leaves on a
/// later route does depart again.
async fn not_yet_recorded(
    app: &AppState,
    tenant: &TenantId,
    order: &OrderRecord,
    business_step: &str,
    since_unix_ms: i64,
    shipments: &[usize],
) -> Result<Vec<usize>, Problem> {
    let mut left = Vec::new();
    for &number in shipments {
        let Some(sscc) = order.allocation.shipments.get(number).and_then(|shipment| shipment.sscc.as_deref()) else {
            left.push(number);
            continue;
        };
        let filter = store::epcis::EventFilter {
            identifiers: vec![(vec!["epc".to_owned()], vec![crate::steps::pallet_link(sscc)?])],
            biz_steps: Some(vec![format!("https://ref.gs1.org/cbv/BizStep-{business_step}")]),
            // Recorded since: the record time is the writer's batch clock, as the route's
            // planning time is (an event's own time is the API node's clock).
            record_time_at_least_ms: Some(since_unix_ms),
            ..store::epcis::EventFilter::default()
        };
        let seen =
            app.store.epcis_candidates(tenant, &filter, store::epcis::EventOrder::RecordAscending, None, 1).await?;
        if seen.is_empty() {
            left.push(number);
        }
    }
    Ok(left)
}

/// Ships (if packed) and sends out one order's shipments of a route, with their events.
async fn send_out(
    app: &AppState,
    principal: &Principal,
    tenant: &TenantId,
    order_id: &str,
    stops: &[&StopRecord],
    now: i64,
    planned_unix_ms: i64,
) -> Result<(), Problem> {
    let store = app.store.tenant(tenant);
    let shipments: Vec<usize> = stops.iter().map(|stop| shipment_index(stop)).collect();
    let read = || async { store.order(order_id).await?.ok_or_else(|| Problem::internal("order vanished")) };
    let mut order = read().await?;
    if order.status == OrderStatus::Packed {
        advance(app, principal, tenant, &order, OrderStatus::Shipped, now, None, &shipments).await?;
        order = read().await?;
    } else if order.status == OrderStatus::OutForDelivery {
        // Another route shipped the order: this route's own parcels leave the depot now.
        let packed_here: Vec<usize> =
            stops.iter().filter(|stop| stop.via_lane == 0).map(|stop| shipment_index(stop)).collect();
        let packed_here = not_yet_recorded(app, tenant, &order, "shipping", planned_unix_ms, &packed_here).await?;
        if !packed_here.is_empty() {
            record_only(app, principal, tenant, &order, OrderStatus::Shipped, now, &packed_here).await?;
        }
    }
    match order.status {
        OrderStatus::Shipped => {
            advance(app, principal, tenant, &order, OrderStatus::OutForDelivery, now, None, &shipments).await
        }
        OrderStatus::OutForDelivery => {
            let leaving = not_yet_recorded(app, tenant, &order, "departing", planned_unix_ms, &shipments).await?;
            if leaving.is_empty() {
                return Ok(());
            }
            record_only(app, principal, tenant, &order, OrderStatus::OutForDelivery, now, &leaving).await
        }
        _ => Ok(()),
    }
}

/// The courier leaves the depot: each order on the route is shipped (if it was packed here) and
/// goes out for delivery, with the EPCIS events of the route's shipments. A stop whose order was
/// cancelled or allocated anew meanwhile is voided. Starting twice changes nothing; a failure of
/// the database leaves the route not started, to try again. A vehicle on another route it
/// started and has not finished cannot start this one (409).
#[utoipa::path(post, path = "/v1/routes/{route_id}/start", tag = "dispatch", params(("route_id" = String, Path)),
    responses((status = 200, body = RouteView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn start_route(
    State(app): State<AppState>,
    caller: Caller,
    Path(route_id): Path<String>,
) -> Result<Json<RouteView>, Problem> {
    let (principal, route) = route_for(&app, &caller, &route_id).await?;
    if route.header.started_unix_ms.is_none() {
        if route.header.finished_unix_ms.is_some() {
            return Err(Problem::new("invalid-transition", format!("route {route_id} was called off before it left")));
        }
        let now = store::now_unix_ms();
        // A vehicle drives one route at a time.
        let depot = Gln::parse(&route.header.depot_gln).map_err(Problem::internal)?;
        if app
            .store
            .unfinished_routes(&depot)
            .await?
            .iter()
            .any(|(vehicle, _, _, started)| *vehicle == route.header.vehicle_id && started.is_some())
        {
            return Err(Problem::new(
                "invalid-transition",
                format!(
                    "vehicle {} is on another route that has not finished: finish its stops first",
                    route.header.vehicle_id
                ),
            ));
        }
        // The route's open stops by order.
        let mut by_order: Vec<((String, String), Vec<&StopRecord>)> = Vec::new();
        for stop in route.stops.iter().filter(|stop| stop.is_open()) {
            let key = (stop.order_tenant_id.clone(), stop.order_id.clone());
            match by_order.iter_mut().find(|(known, _)| *known == key) {
                Some((_, stops)) => stops.push(stop),
                None => by_order.push((key, vec![stop])),
            }
        }
        for ((tenant, order_id), stops) in by_order {
            let tenant = stored_tenant(&tenant)?;
            let order = app.store.tenant(&tenant).order(&order_id).await?;
            let mut reason = off_route(order.as_ref(), stops[0]);
            // A parcel with units of a recalled lot does not go out: it is taken back (the store
            // does not queue it again). The order's parcels on this route are judged; a split
            // order's other parcel goes on its own route.
            let carried: Vec<usize> = stops.iter().map(|stop| shipment_index(stop)).collect();
            if reason.is_none()
                && let Some(order) = &order
                && let Some((gtin, lot, recall_id)) = recalled_in(&app.store.tenant(&tenant), order, &carried).await?
            {
                reason = Some(format!("the parcel carries units of lot {lot:?} of {gtin}, recalled ({recall_id})"));
            }
            if reason.is_none()
                && let Err(problem) =
                    send_out(&app, principal, &tenant, &order_id, &stops, now, route.header.created_unix_ms).await
            {
                if problem.status >= 500 {
                    return Err(problem);
                }
                reason = Some(problem.detail);
            }
            if let Some(reason) = reason {
                // Back to the queue only while the order still waits on this reservation (the
                // store checks) and a later wave could take the shipment.
                for stop in &stops {
                    let requeue = order.as_ref().is_none_or(|order| may_go_later(order, stop));
                    void(&app, principal, &route_id, stop.seq, reason.clone(), requeue).await?;
                }
            }
        }
        let mutation = Mutation::Dispatch(DispatchMutation::StartRoute { route_id: route_id.clone(), at_unix_ms: now });
        let respond = |_: &store::Applied| StoredResponse { status: 200, body: Vec::new() };
        write(&app, principal, IdempotencyKey(None), None, network(), mutation, respond).await?;
    }
    Ok(Json(route_view(&read_route(&app, &route_id).await?, store::now_unix_ms())))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveredInput {
    /// When the hand-over happened (RFC 3339; default now): after the route was planned, not
    /// more than 5 minutes ahead of the server's clock (a courier's device may sync late).
    pub at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveredView {
    pub route: RouteView,
    pub order_id: String,
    /// The order's status after the hand-over: `delivered` (or `at_pickup_point`) once every
    /// shipment of the order is handed over.
    pub order_status: String,
}

/// The courier handed a stop over. When it was the order's last shipment, the order moves to
/// `delivered` (home; at the last hand-over's time) or `at_pickup_point`, with its EPCIS events.
/// Repeating it changes nothing.
#[utoipa::path(post, path = "/v1/routes/{route_id}/stops/{seq}/delivered", tag = "dispatch", request_body = DeliveredInput,
    params(("route_id" = String, Path), ("seq" = i64, Path)),
    responses((status = 200, body = DeliveredView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn deliver_stop(
    State(app): State<AppState>,
    caller: Caller,
    Path((route_id, seq)): Path<(String, i64)>,
    body: Option<JsonBody<DeliveredInput>>,
) -> Result<Json<DeliveredView>, Problem> {
    let (principal, route) = route_for(&app, &caller, &route_id).await?;
    let input = body.map(|body| body.value).unwrap_or_default();
    Ok(Json(hand_over(&app, principal, &route, seq, input.at.as_ref()).await?))
}

/// Whether a key is a courier's (a network key with the `courier` scope, not the operator's).
pub(crate) fn is_courier(principal: &Principal) -> bool {
    principal.tenant_id.is_network() && !principal.is_operator() && principal.has(Scope::Courier)
}

/// A courier's order event (`POST /v1/orders/{id}/events?tenant=` with a courier key): the
/// order's stops on the courier's current route are handed over, each as
/// `POST /v1/routes/{id}/stops/{seq}/delivered` hands it over, and the answer is that endpoint's
/// (the route, and the order's status: still `out_for_delivery` while a shipment of it is on
/// another route), not the merchant's order, which a courier does not read. Handing over is the
/// courier's only order step here: the route's start sends its orders out for delivery and a
/// failed stop takes the parcel back (403 `forbidden` for another status). Repeating it changes
/// nothing, as on the route; the request's Idempotency-Key is not needed for that.
pub(crate) async fn courier_order_event(
    app: &AppState,
    principal: &Principal,
    tenant: &TenantId,
    order_id: &str,
    to: OrderStatus,
) -> Result<Response, Problem> {
    if !matches!(to, OrderStatus::Delivered | OrderStatus::AtPickupPoint) {
        return Err(Problem::new(
            "forbidden",
            format!(
                "a courier key hands orders over (delivered, at_pickup_point), not {}: the route's start sends its \
                 orders out for delivery (POST /v1/routes/{{id}}/start), a failed stop is \
                 POST /v1/routes/{{id}}/stops/{{seq}}/failed",
                to.name()
            ),
        ));
    }
    let vehicle = app
        .store
        .vehicle_of_courier(&principal.key_id)
        .await?
        .ok_or_else(|| Problem::new("forbidden", "no vehicle is driven with this courier key"))?;
    let not_on_route = || Problem::not_found(format!("order {order_id} on this courier's current route"));
    let mut route = app.store.current_route(&vehicle.vehicle_id).await?.ok_or_else(not_on_route)?;
    let stops: Vec<(i64, bool)> = route
        .stops
        .iter()
        .filter(|stop| stop.order_tenant_id == tenant.as_str() && stop.order_id == order_id)
        .filter(|stop| stop.voided_unix_ms.is_none())
        .map(|stop| (stop.seq, stop.pickup_point_gln.is_some()))
        .collect();
    let Some(&(_, at_pickup_point)) = stops.first() else { return Err(not_on_route()) };
    let expected = if at_pickup_point { OrderStatus::AtPickupPoint } else { OrderStatus::Delivered };
    if to != expected {
        return Err(Problem::new(
            "invalid-transition",
            format!(
                "order {order_id} is handed over {} on this route: status {}",
                if at_pickup_point { "at a pickup point" } else { "at its address" },
                expected.name()
            ),
        ));
    }
    let mut answer = None;
    for (index, (seq, _)) in stops.iter().enumerate() {
        if index > 0 {
            // The hand-over before changed the route's stops (and may have voided this one).
            route = read_route(app, &route.header.route_id).await?;
        }
        answer = Some(hand_over(app, principal, &route, *seq, None).await?);
    }
    let answer = answer.ok_or_else(not_on_route)?;
    Ok(crate::api::json_response(StatusCode::OK, json_bytes(&answer)))
}

/// Hands stop `seq` of `route` over (at `at`, RFC 3339, else now): the stop is visited, and the
/// order moves on once every shipment of it is handed over. The route endpoint and a courier's
/// order event (`courier_order_event`) share it.
async fn hand_over(
    app: &AppState,
    principal: &Principal,
    route: &RouteRecord,
    seq: i64,
    at: Option<&String>,
) -> Result<DeliveredView, Problem> {
    let route_id = route.header.route_id.clone();
    let stop = route
        .stops
        .iter()
        .find(|stop| stop.seq == seq)
        .ok_or_else(|| Problem::not_found(format!("stop {seq} of route {route_id}")))?
        .clone();
    if route.header.started_unix_ms.is_none() {
        return Err(Problem::new(
            "invalid-transition",
            format!("route {route_id} has not left the depot: POST /v1/routes/{route_id}/start first"),
        ));
    }
    if stop.voided_unix_ms.is_some() {
        return Err(Problem::new(
            "invalid-transition",
            format!(
                "stop {seq} was voided ({}): it is not handed over on this route",
                stop.void_reason.unwrap_or_default()
            ),
        ));
    }
    let now = store::now_unix_ms();
    let mut checker = Checker::default();
    let at = parse_time(&mut checker, "/at", &at.cloned()).unwrap_or(now);
    if stop.delivered_unix_ms.is_none() && (at < route.header.created_unix_ms || at > now + DELIVERED_AT_SKEW_MS_MAX) {
        checker.fail("/at", "must lie between the route's planning and now");
    }
    checker.finish()?;
    let tenant = stored_tenant(&stop.order_tenant_id)?;
    let store = app.store.tenant(&tenant);
    let order = store.order(&stop.order_id).await?;
    if stop.delivered_unix_ms.is_none()
        && let Some(reason) = off_route(order.as_ref(), &stop)
    {
        let requeue = order.as_ref().is_none_or(|order| may_go_later(order, &stop));
        void(app, principal, &route_id, seq, reason.clone(), requeue).await?;
        return Err(Problem::new("invalid-transition", format!("{reason}: the stop is voided, take the parcel back")));
    }
    let order = order.ok_or_else(|| Problem::not_found(format!("order {}", stop.order_id)))?;
    // A stop handed over before keeps its first time.
    let at = stop.delivered_unix_ms.unwrap_or(at.min(now));
    let mutation = Mutation::Dispatch(DispatchMutation::VisitStop { route_id: route_id.clone(), seq, at_unix_ms: at });
    let respond = |_: &store::Applied| StoredResponse { status: 200, body: Vec::new() };
    match write(app, principal, IdempotencyKey(None), None, network(), mutation, respond).await {
        Ok(_) => {}
        // A parcel with units of a recalled lot is not handed over at the door: the store decides
        // it with the visit, under the lots' locks. The stop is voided, not planned again; the
        // parcel goes back.
        Err(problem) if problem.problem_type.ends_with("/lot-unavailable") => {
            void(app, principal, &route_id, seq, problem.detail.clone(), false).await?;
            return Err(Problem::new("lot-unavailable", format!("{}: the stop is voided", problem.detail)));
        }
        Err(problem) => return Err(problem),
    }

    let to = if stop.pickup_point_gln.is_some() { OrderStatus::AtPickupPoint } else { OrderStatus::Delivered };
    let (handed, last) = app.store.handed_over(&tenant, &stop.order_id, &stop.reservation_id).await?;
    // A shipment that shipped nothing goes nowhere: the order is delivered without it.
    let to_hand_over = order.allocation.shipments.iter().filter(|shipment| !shipment.shipped_nothing()).count();
    let all_handed = usize::try_from(handed).unwrap_or(0) >= to_hand_over;
    let this_shipment = [shipment_index(&stop)];
    if matches!(order.status, OrderStatus::Shipped | OrderStatus::OutForDelivery) {
        if all_handed {
            // The order's delivery (or arrival at the pickup point) is its last hand-over.
            let handed_over = last.unwrap_or(at);
            advance(app, principal, &tenant, &order, to, at, Some(handed_over), &this_shipment).await?;
        } else {
            // An earlier shipment's hand-over records its event once: also when the visit was
            // written and its event was not (the courier's retry after a failure between the two).
            let step = if to == OrderStatus::AtPickupPoint { "arriving" } else { "retail_selling" };
            let left =
                not_yet_recorded(app, &tenant, &order, step, route.header.created_unix_ms, &this_shipment).await?;
            if !left.is_empty() {
                record_only(app, principal, &tenant, &order, to, at, &left).await?;
            }
        }
    }
    let order = store.order(&stop.order_id).await?.ok_or_else(|| Problem::internal("order vanished"))?;
    Ok(DeliveredView {
        route: route_view(&read_route(app, &route_id).await?, store::now_unix_ms()),
        order_id: stop.order_id.clone(),
        order_status: order.status.name().to_owned(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailedInput {
    /// Why the stop was not handed over (the consignee was out, the address was wrong), 1–200
    /// characters.
    pub reason: String,
}

/// The courier could not hand a stop over: the stop is voided and its shipment waits at the depot
/// for another wave (the order stays out for delivery).
#[utoipa::path(post, path = "/v1/routes/{route_id}/stops/{seq}/failed", tag = "dispatch", request_body = FailedInput,
    params(("route_id" = String, Path), ("seq" = i64, Path)),
    responses((status = 200, body = RouteView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn fail_stop(
    State(app): State<AppState>,
    caller: Caller,
    Path((route_id, seq)): Path<(String, i64)>,
    body: JsonBody<FailedInput>,
) -> Result<Json<RouteView>, Problem> {
    let (principal, route) = route_for(&app, &caller, &route_id).await?;
    let mut checker = Checker::default();
    let reason = checker.text("/reason", &body.value.reason, Vehicle::NAME_LENGTH_MAX);
    checker.finish()?;
    let stop = route
        .stops
        .iter()
        .find(|stop| stop.seq == seq)
        .ok_or_else(|| Problem::not_found(format!("stop {seq} of route {route_id}")))?;
    if stop.delivered_unix_ms.is_some() {
        return Err(Problem::new("invalid-transition", format!("stop {seq} was handed over already")));
    }
    if route.header.started_unix_ms.is_none() {
        return Err(Problem::new(
            "invalid-transition",
            format!("route {route_id} has not left the depot: cancel it instead (POST /v1/routes/{route_id}/cancel)"),
        ));
    }
    void(&app, principal, &route_id, seq, reason.unwrap_or_default(), true).await?;
    Ok(Json(route_view(&read_route(&app, &route_id).await?, store::now_unix_ms())))
}

/// Calls off a route that has not left the depot: its shipments wait for another wave.
#[utoipa::path(post, path = "/v1/routes/{route_id}/cancel", tag = "dispatch", params(("route_id" = String, Path)),
    responses((status = 200, body = RouteView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn cancel_route(
    State(app): State<AppState>,
    caller: Caller,
    Path(route_id): Path<String>,
) -> Result<Json<RouteView>, Problem> {
    let principal = caller.require_operator()?;
    let mutation = Mutation::Dispatch(DispatchMutation::CancelRoute {
        route_id: route_id.clone(),
        at_unix_ms: store::now_unix_ms(),
    });
    let respond = |_: &store::Applied| StoredResponse { status: 200, body: Vec::new() };
    write(&app, principal, IdempotencyKey(None), None, network(), mutation, respond).await?;
    Ok(Json(route_view(&read_route(&app, &route_id).await?, store::now_unix_ms())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn stop(seq: i64, due: i64, delivered: Option<i64>) -> StopRecord {
        StopRecord {
            seq,
            order_tenant_id: "t".into(),
            order_id: format!("o{seq}"),
            shipment: 0,
            reservation_id: format!("o{seq}"),
            via_lane: 0,
            last_mile_departure_unix_ms: 0,
            latitude_degrees: 52.0,
            longitude_degrees: 4.0,
            pickup_point_gln: None,
            demand_units: 1,
            due_by_unix_ms: due,
            planned_arrival_unix_ms: seq * 11 * MINUTE,
            leg_m: 1000.0,
            leg_s: 600.0,
            service_s: 60.0,
            delivered_unix_ms: delivered,
            voided_unix_ms: None,
            void_reason: None,
        }
    }

    fn route(stops: Vec<StopRecord>, started: Option<i64>) -> RouteRecord {
        let header = RouteHeader {
            route_id: "r".into(),
            wave_id: "w".into(),
            depot_gln: "8712345000011".into(),
            wave_unix_ms: 0,
            vehicle_id: "van".into(),
            departure_unix_ms: 0,
            return_unix_ms: 60 * MINUTE,
            distance_m: 3000.0,
            started_unix_ms: started,
            open_stops: stops.iter().filter(|stop| stop.is_open()).count() as i64,
            finished_unix_ms: None,
            created_unix_ms: 0,
        };
        RouteRecord { header, stops }
    }

    #[test]
    fn the_next_stop_and_the_risk_follow_the_courier() {
        // Stop 1 handed over at 11 min (service 1 min: left at 12).
        let on_route = route(
            vec![stop(1, 30 * MINUTE, Some(11 * MINUTE)), stop(2, 40 * MINUTE, None), stop(3, 45 * MINUTE, None)],
            Some(0),
        );
        let on_time = route_view(&on_route, 12 * MINUTE);
        assert_eq!(on_time.next_stop, Some(2));
        assert_eq!(on_time.at_risk, 0);
        assert!(on_time.stops[0].expected_arrival.is_none(), "handed over");
        assert_eq!(on_time.stops[1].expected_arrival.as_deref(), Some(timestamp(22 * MINUTE).as_str()));
        // Still not at stop 2 at 32 min: expected now, at risk? no (due 40); stop 3 at 43 (due 45).
        let slow = route_view(&on_route, 32 * MINUTE);
        assert_eq!(slow.stops[2].expected_arrival.as_deref(), Some(timestamp(43 * MINUTE).as_str()));
        assert_eq!(slow.at_risk, 0);
        // At 41 min: stop 2 (due 40) and stop 3 (52, due 45) at risk.
        let late = route_view(&on_route, 41 * MINUTE);
        assert_eq!(late.at_risk, 2);
        assert!(late.stops[1].at_risk && late.stops[2].at_risk);
        // A stop skipped (3 handed over before 2) is still expected, and the next stop.
        let skipped = route(
            vec![
                stop(1, 30 * MINUTE, Some(11 * MINUTE)),
                stop(2, 40 * MINUTE, None),
                stop(3, 45 * MINUTE, Some(20 * MINUTE)),
            ],
            Some(0),
        );
        let view = route_view(&skipped, 50 * MINUTE);
        assert_eq!(view.next_stop, Some(2));
        assert!(view.stops[1].at_risk, "overdue and not handed over");
        // Not started: leaves as planned, or now when later.
        let waiting = route(vec![stop(1, 30 * MINUTE, None)], None);
        assert_eq!(
            route_view(&waiting, 5 * MINUTE).stops[0].expected_arrival.as_deref(),
            Some(timestamp(15 * MINUTE).as_str())
        );
    }
}
