//! The pages for people at work: the merchant portal (`/portal`, a tenant's own data only) and the
//! operator console (`/console`, the whole network), behind `/sign-in` (an API key exchanged for
//! a session, `session`). Forms carry the session's CSRF token; every page answers with the same
//! Content-Security-Policy as the consumer pages.
//!
//! Isolation: a portal page reads only through the session's tenant (`store.tenant(..)`), so
//! another merchant's alarm or report is "not found"; the console needs an operator key.
//!
//! Limits: the portal lists at most [`PORTAL_ROWS_MAX`] products, balances, orders, alarms and
//! recalls (the newest) each; the console at most [`PORTAL_ROWS_MAX`] open alarms and
//! [`NETWORK_PLACES_MAX`] places.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use network::TenantId;
use store::{PageRequest, Principal, Scope};

use sha2::Digest as _;

use crate::AppState;
use crate::problem::Problem;
use crate::session::{self, Session};

/// The most rows of each list on a page.
pub const PORTAL_ROWS_MAX: u32 = 200;
/// The most places drawn on the console's network map.
pub const NETWORK_PLACES_MAX: u32 = 64;
/// The most depots whose routes the console draws.
pub const DEPOTS_DRAWN_MAX: usize = 16;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(sign_in_form).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/console", get(console))
        .route("/console/alarms/{tenant}/{alarm_id}/acknowledge", post(acknowledge))
        .route("/portal", get(portal))
        .route("/portal/alarms/{alarm_id}", get(portal_alarm))
        .route("/portal/recalls", post(portal_recall))
        .route("/portal/reports/temperature", get(portal_report))
}

fn secure(app: &AppState) -> bool {
    app.config.public_url.starts_with("https://")
}

fn secret(app: &AppState) -> [u8; 32] {
    session::secret(&app.config.log.signer.to_secret_text())
}

fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(web::CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A problem as a page for a person (the same type, title and detail as the API's).
fn error_page(app: &AppState, problem: Problem, csrf: Option<&str>) -> Response {
    let view = web::ErrorView {
        csrf: csrf.map(str::to_owned),
        status: problem.status,
        title: problem.title.clone(),
        detail: problem.detail.clone(),
        problem_type: problem.problem_type.clone(),
    };
    match app.consumer_pages.templates.error(&view) {
        Ok(html) => page(StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), html),
        Err(error) => Problem::internal(error).into_response(),
    }
}

/// The session of a page request: none → to the sign-in form.
async fn require_session(app: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match session::current(&app.store, &secret(app), headers, secure(app)).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Redirect::to("/sign-in").into_response()),
        Err(error) => Err(error_page(app, error.into(), None)),
    }
}

fn check_csrf(session: &Session, presented: &str) -> Result<(), Problem> {
    if store::constant_time_equal(session.csrf.as_bytes(), presented.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::new("forbidden", "the form is stale or not from this site: open the page again"))
    }
}

fn time(unix_ms: i64) -> web::TimeView {
    let time = jiff::Timestamp::from_millisecond(unix_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    web::TimeView::new(time, "UTC", web::Lang::En)
}

fn alarm_row(tenant: &str, row: store::alarms::AlarmRow) -> web::AlarmRowView {
    web::AlarmRowView {
        tenant: tenant.to_owned(),
        needs_person: row.state == "open" || row.state == "escalated",
        alarm_id: row.alarm_id,
        device: row.device_id,
        target: format!("{} {}", row.target_kind, row.target),
        rule: row.rule,
        severity: row.severity,
        state: row.state,
        opened: time(row.opened_unix_ms),
        peak_celsius: format!("{:.1}", row.peak_celsius),
        held_lots: row.held_lots.split_whitespace().map(str::to_owned).collect(),
        acknowledged_by: row.acknowledged_by,
        comment: row.acknowledged_comment,
    }
}

async fn sign_in_form(State(app): State<AppState>) -> Response {
    let (cookie, csrf) = session::sign_in_token(secure(&app));
    sign_in_page(&app, StatusCode::OK, csrf, None, cookie)
}

fn sign_in_page(
    app: &AppState,
    status: StatusCode,
    csrf: String,
    error: Option<String>,
    cookie: HeaderValue,
) -> Response {
    match app.consumer_pages.templates.sign_in(&web::SignInView { csrf, error }) {
        Ok(html) => {
            let mut response = page(status, html);
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(error) => Problem::internal(error).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
struct SignInForm {
    key: String,
    csrf: String,
}

/// `POST /sign-in`: a valid key becomes a session (the console for operator keys, the portal
/// for tenant keys); anything else shows the form again with the reason.
async fn sign_in(State(app): State<AppState>, headers: HeaderMap, Form(form): Form<SignInForm>) -> Response {
    let expected =
        session::cookie(&headers, &session::cookie_name(session::SIGN_IN_COOKIE, secure(&app))).unwrap_or("");
    let (cookie, csrf) = session::sign_in_token(secure(&app));
    if expected.is_empty() || !store::constant_time_equal(expected.as_bytes(), form.csrf.as_bytes()) {
        let reason = "The form is stale or not from this site: sign in again.".to_owned();
        return sign_in_page(&app, StatusCode::FORBIDDEN, csrf, Some(reason), cookie);
    }
    let principal = match app.store.authenticate(form.key.trim()).await {
        Ok(Some(principal)) => principal,
        Ok(None) => {
            let reason = "This key is not known, or it was revoked.".to_owned();
            return sign_in_page(&app, StatusCode::UNAUTHORIZED, csrf, Some(reason), cookie);
        }
        Err(error) => return error_page(&app, error.into(), None),
    };
    let (session_cookie, _) =
        session::start(&secret(&app), &principal, jiff::Timestamp::now().as_second(), secure(&app));
    let target = if principal.is_operator() { "/console" } else { "/portal" };
    let mut response = Redirect::to(target).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie);
    response
}

#[derive(Debug, serde::Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(State(app): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let session = match require_session(&app, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Err(problem) = check_csrf(&session, &form.csrf) {
        return error_page(&app, problem, Some(&session.csrf));
    }
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().insert(header::SET_COOKIE, session::end(secure(&app)));
    response
}

fn operator(session: &Session) -> Result<(), Problem> {
    if session.principal.is_operator() {
        Ok(())
    } else {
        Err(Problem::new("forbidden", "the operator console needs an operator key"))
    }
}

/// The session of a merchant's page: none → the sign-in form; an operator's → 403.
async fn merchant_session(app: &AppState, headers: &HeaderMap) -> Result<(Session, Principal), Response> {
    let session = require_session(app, headers).await?;
    match merchant(&session) {
        Ok(principal) => Ok((session, principal)),
        Err(problem) => Err(error_page(app, problem, Some(&session.csrf))),
    }
}

fn merchant(session: &Session) -> Result<Principal, Problem> {
    if !session.principal.is_operator() && session.principal.has(Scope::TenantRead) {
        Ok(session.principal.clone())
    } else {
        Err(Problem::new("forbidden", "the portal is a merchant's: sign in with a tenant key"))
    }
}

async fn console(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let session = match require_session(&app, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Err(problem) = operator(&session) {
        return error_page(&app, problem, Some(&session.csrf));
    }
    match console_view(&app, session.csrf.clone())
        .await
        .and_then(|view| app.consumer_pages.templates.console(&view).map_err(Problem::internal))
    {
        Ok(html) => page(StatusCode::OK, html),
        Err(problem) => error_page(&app, problem, Some(&session.csrf)),
    }
}

async fn console_view(app: &AppState, csrf: String) -> Result<web::ConsoleView, Problem> {
    let network = app.store.tenant(&TenantId::network());
    let page_request = PageRequest { after: None, limit: Some(NETWORK_PLACES_MAX) };
    let locations = network.locations(&store::LocationFilter::default(), &page_request).await?.items;
    let lanes = network
        .lanes(&store::LaneFilter::default(), &PageRequest { after: None, limit: Some(PORTAL_ROWS_MAX) })
        .await?
        .items;
    let points: Vec<web::svg::MapPoint> = locations
        .iter()
        .map(|owned| web::svg::MapPoint {
            name: owned.value.name.clone(),
            latitude: owned.value.coordinates.latitude_degrees(),
            longitude: owned.value.coordinates.longitude_degrees(),
        })
        .collect();
    let index_of = |gln: &gs1::Gln| locations.iter().position(|owned| &owned.value.gln == gln);
    let edges: Vec<(usize, usize)> =
        lanes.iter().filter_map(|owned| Some((index_of(&owned.value.from)?, index_of(&owned.value.to)?))).collect();
    let alarms = app
        .store
        .all_alarms(&["open", "escalated"], PORTAL_ROWS_MAX)
        .await?
        .into_iter()
        .map(|(tenant, row)| alarm_row(&tenant, row))
        .collect();
    let now_ms = store::now_unix_ms();
    // The period `/v1/sla` reports by default, read once for both tables.
    let period = crate::fulfilment::period_instants(&Default::default())?;
    let sla = sla_table(app, None, period).await?;
    let checkpoint = app.store.log_latest_checkpoint().await?;
    let cosignatures = match &checkpoint {
        Some(checkpoint) => app.store.log_cosignatures(checkpoint.size).await?.len(),
        None => 0,
    };
    let mut depots = Vec::new();
    let mut depot_glns: Vec<gs1::Gln> =
        app.store.vehicles(None).await?.into_iter().map(|vehicle| vehicle.depot).collect();
    depot_glns.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    depot_glns.dedup();
    for (depot_index, gln) in depot_glns.into_iter().take(DEPOTS_DRAWN_MAX).enumerate() {
        let depot = locations.iter().find(|owned| owned.value.gln == gln);
        let routes = app.store.routes(&gln, now_ms - 86_400_000, now_ms + 86_400_000).await?;
        let lines: Vec<web::svg::RouteLine> = routes
            .iter()
            .map(|route| web::svg::RouteLine {
                label: format!("{} {}", route.header.vehicle_id, route.header.route_id),
                stops: route.stops.iter().map(|stop| (stop.latitude_degrees, stop.longitude_degrees)).collect(),
            })
            .collect();
        let name = depot.map_or_else(|| gln.as_str().to_owned(), |owned| owned.value.name.clone());
        let svg = depot.and_then(|owned| {
            let point = web::svg::MapPoint {
                name: owned.value.name.clone(),
                latitude: owned.value.coordinates.latitude_degrees(),
                longitude: owned.value.coordinates.longitude_degrees(),
            };
            web::svg::routes(
                &point,
                &lines,
                &format!("Routes from {}", owned.value.name),
                &format!("routes-{depot_index}"),
            )
        });
        depots.push(web::DepotRoutesView {
            name,
            routes: routes.len(),
            open_stops: routes.iter().map(|route| route.header.open_stops).sum(),
            svg,
        });
    }
    let mut tenants = Vec::new();
    for tenant in app.store.tenants(&PageRequest { after: None, limit: Some(PORTAL_ROWS_MAX) }).await?.items {
        let rows = app.store.storage_rows(&tenant.tenant_id).await?;
        tenants.push(web::TenantLineView { tenant: tenant.tenant_id.as_str().to_owned(), name: tenant.name, rows });
    }
    Ok(web::ConsoleView {
        csrf,
        network_svg: web::svg::network(&points, &edges, "The network", "network-map"),
        orders: app.store.order_counts(period.2, period.3).await?,
        sla,
        alarms,
        log: web::LogView {
            origin: app.config.log_origin.clone(),
            size: checkpoint.as_ref().map_or(0, |checkpoint| checkpoint.size),
            checkpoint_at: checkpoint.as_ref().map(|checkpoint| time(checkpoint.created_unix_ms)),
            cosignatures,
        },
        tenants,
        depots,
    })
}

#[derive(Debug, serde::Deserialize)]
struct AcknowledgeForm {
    csrf: String,
    person: String,
    comment: String,
}

/// `POST /console/alarms/{tenant}/{alarm}/acknowledge`: the operator acknowledges from the console.
async fn acknowledge(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((tenant, alarm_id)): Path<(String, String)>,
    Form(form): Form<AcknowledgeForm>,
) -> Response {
    let session = match require_session(&app, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Err(problem) = operator(&session).and_then(|()| check_csrf(&session, &form.csrf)) {
        return error_page(&app, problem, Some(&session.csrf));
    }
    let Ok(tenant) = TenantId::parse(&tenant) else {
        return error_page(&app, Problem::not_found(format!("tenant {tenant}")), Some(&session.csrf));
    };
    let input = crate::alarms::AcknowledgementInput { person: form.person, comment: form.comment };
    match crate::alarms::acknowledge_alarm(&app.store, &tenant, &alarm_id, input).await {
        Ok(_) => Redirect::to("/console#alarms").into_response(),
        Err(problem) => error_page(&app, problem, Some(&session.csrf)),
    }
}

fn freshness(expiry: Option<&str>, today: jiff::civil::Date) -> (Option<i64>, &'static str) {
    let Some(date) = expiry.and_then(|text| text.parse::<jiff::civil::Date>().ok()) else { return (None, "none") };
    let days = (date - today).get_days() as i64;
    let class = match days {
        ..0 => "expired",
        0..=7 => "soon",
        _ => "fresh",
    };
    (Some(days), class)
}

async fn portal(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (session, principal) = match merchant_session(&app, &headers).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    match portal_view(&app, &principal, session.csrf.clone())
        .await
        .and_then(|view| app.consumer_pages.templates.portal(&view).map_err(Problem::internal))
    {
        Ok(html) => page(StatusCode::OK, html),
        Err(problem) => error_page(&app, problem, Some(&session.csrf)),
    }
}

/// The SLA per region and service (one tenant's, or all), over `period`
/// ([`crate::fulfilment::period_instants`]).
async fn sla_table(
    app: &AppState,
    tenant: Option<&TenantId>,
    period: (jiff::civil::Date, jiff::civil::Date, i64, i64),
) -> Result<web::SlaTableView, Problem> {
    let (from, to, start_unix_ms, end_unix_ms) = period;
    let rows = app.store.sla(tenant, start_unix_ms, end_unix_ms).await?;
    // As the API's shares: of the orders due either way.
    let percent =
        |part: i64, due: i64| crate::fulfilment::share(part, due).map(|share| format!("{:.0} %", share * 100.0));
    let lines = rows
        .into_iter()
        .map(|row| web::SlaLineView {
            by_promise_percent: percent(row.delivered_by_promise, row.due_by_promise()),
            within_24h_percent: percent(row.delivered_within_24h, row.due_within_24h()),
            region: row.region,
            service: row.service,
            orders: row.orders,
            delivered: row.delivered,
            failed: row.failed,
            late_open: row.late_open,
        })
        .collect();
    Ok(web::SlaTableView { from: from.to_string(), to: to.to_string(), lines })
}

async fn portal_view(app: &AppState, principal: &Principal, csrf: String) -> Result<web::PortalView, Problem> {
    let tenant = app.store.tenant(&principal.tenant_id);
    let rows = PageRequest { after: None, limit: Some(PORTAL_ROWS_MAX) };
    let products = tenant
        .products(&store::ProductFilter::default(), &rows)
        .await?
        .items
        .into_iter()
        .map(|product| web::ProductLineView {
            gtin: product.gtin.as_str().to_owned(),
            name: product.name,
            class: product.temperature_class.name().to_owned(),
            qr_path: format!("/qr/01/{}", product.gtin.as_str()),
            page_path: format!("/provenance/01/{}", product.gtin.as_str()),
        })
        .collect();
    let today = jiff::Zoned::now().date();
    let stock = tenant
        .stock(&store::fulfilment::StockFilter::default(), None, PORTAL_ROWS_MAX)
        .await?
        .into_iter()
        .map(|balance| {
            let (days_left, class) = freshness(balance.expiry.as_deref(), today);
            web::StockLineView {
                location: balance.key.location,
                zone: balance.key.zone,
                gtin: balance.key.gtin,
                lot: balance.key.lot,
                expiry: balance.expiry,
                days_left,
                freshness: class.to_owned(),
                status: balance.status.name().to_owned(),
                on_hand: balance.on_hand,
                reserved: balance.reserved,
                available: balance.available,
            }
        })
        .collect();
    let orders = tenant
        .orders(None, None, PORTAL_ROWS_MAX)
        .await?
        .into_iter()
        .map(|order| web::OrderLineView {
            order_id: order.order_id,
            status: order.status.name().to_owned(),
            service: order.service.name().to_owned(),
            placed: time(order.placed_unix_ms),
            promised_by: time(order.promised_by_unix_ms),
            delivered: order.delivered_unix_ms.map(time),
        })
        .collect();
    let alarms = tenant
        .alarms(&[], None, PORTAL_ROWS_MAX)
        .await?
        .into_iter()
        .map(|row| alarm_row(principal.tenant_id.as_str(), row))
        .collect();
    let recalls = tenant
        .recalls(true, None, PORTAL_ROWS_MAX)
        .await?
        .into_iter()
        .map(|recall| web::RecallLineView {
            recall_id: recall.recall_id,
            gtin: recall.gtin,
            lots: recall.lots,
            reason: recall.reason,
            recalled: time(recall.recalled_unix_ms),
        })
        .collect();
    Ok(web::PortalView {
        csrf,
        tenant: principal.tenant_id.as_str().to_owned(),
        products,
        stock,
        orders,
        sla: sla_table(app, Some(&principal.tenant_id), crate::fulfilment::period_instants(&Default::default())?)
            .await?,
        alarms,
        recalls,
        storage_rows: app.store.storage_rows(&principal.tenant_id).await?,
        request_id: format!("portal-recall-{}", hex::encode(rand::random::<[u8; 12]>())),
    })
}

/// `GET /portal/alarms/{id}`: one of the merchant's alarms, with links to its temperature reports.
async fn portal_alarm(State(app): State<AppState>, headers: HeaderMap, Path(alarm_id): Path<String>) -> Response {
    let (session, principal) = match merchant_session(&app, &headers).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let row = match app.store.tenant(&principal.tenant_id).alarm(&alarm_id).await {
        Ok(Some(row)) => row,
        Ok(None) => return error_page(&app, Problem::not_found(format!("alarm {alarm_id}")), Some(&session.csrf)),
        Err(error) => return error_page(&app, error.into(), Some(&session.csrf)),
    };
    let mut reports = Vec::new();
    let encode = epcis::identifier::encode_value;
    if row.target_kind == "sscc" {
        let href = format!("/portal/reports/temperature?sscc={}", encode(&row.target));
        reports.push((format!("Pallet {}", row.target), href));
    }
    for lot in row.held_lots.split_whitespace() {
        if let Some((gtin, lot)) = lot.split_once('/') {
            let href = format!("/portal/reports/temperature?gtin={}&lot={}", encode(gtin), encode(lot));
            reports.push((format!("Lot {lot} of {gtin}"), href));
        }
    }
    let view = web::PortalAlarmView {
        csrf: session.csrf.clone(),
        tenant: principal.tenant_id.as_str().to_owned(),
        alarm: alarm_row(principal.tenant_id.as_str(), row),
        reports,
    };
    match app.consumer_pages.templates.portal_alarm(&view) {
        Ok(html) => page(StatusCode::OK, html),
        Err(error) => error_page(&app, Problem::internal(error), Some(&session.csrf)),
    }
}

#[derive(Debug, serde::Deserialize)]
struct RecallForm {
    csrf: String,
    request_id: String,
    gtin: String,
    lots: String,
    reason: String,
    /// What consumers are told: left empty, nothing.
    #[serde(default)]
    public_notice: String,
    /// The checkbox: present (`on`) when ticked.
    #[serde(default)]
    hold_derived: Option<String>,
}

/// `POST /portal/recalls`: the merchant recalls lots; the answer lists the affected orders and
/// pickup points. The form's request id is the Idempotency-Key: sending it twice recalls once.
async fn portal_recall(State(app): State<AppState>, headers: HeaderMap, Form(form): Form<RecallForm>) -> Response {
    let session = match require_session(&app, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let principal = match merchant(&session).and_then(|principal| check_csrf(&session, &form.csrf).map(|()| principal))
    {
        Ok(principal) => principal,
        Err(problem) => return error_page(&app, problem, Some(&session.csrf)),
    };
    if !principal.has(Scope::TenantWrite) {
        let problem = Problem::new("forbidden", "a recall needs a key that may write");
        return error_page(&app, problem, Some(&session.csrf));
    }
    // One lot a line: a lot (GS1 AI 10) may hold a comma, never a space, so "A, B" on one line
    // is refused as a lot, not recalled as two others.
    let lots: Vec<String> = form.lots.lines().map(str::trim).filter(|lot| !lot.is_empty()).map(str::to_owned).collect();
    // A textarea's lines are one paragraph.
    let notice: Option<String> =
        Some(form.public_notice.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|notice| !notice.is_empty());
    let notice = notice.as_deref();
    let request_sha256: [u8; 32] = sha2::Sha256::new()
        .chain_update(b"portal recall\0")
        .chain_update(form.gtin.as_bytes())
        .chain_update([0])
        .chain_update(lots.join("\n").as_bytes())
        .chain_update([0])
        .chain_update(form.reason.as_bytes())
        // (A form without the box ticked, or the notice left empty, hashes as before either was
        // there.)
        .chain_update(if form.hold_derived.is_some() { &b"\0hold_derived"[..] } else { &[] })
        .chain_update(if notice.is_some() { &b"\0public_notice\0"[..] } else { &[] })
        .chain_update(notice.unwrap_or_default().as_bytes())
        .finalize()
        .into();
    let visible = form.request_id.bytes().all(|byte| (0x21..=0x7e).contains(&byte));
    if form.request_id.is_empty() || form.request_id.len() > store::IDEMPOTENCY_KEY_LENGTH_MAX || !visible {
        let problem =
            Problem::new("invalid-idempotency-key", "the form's request id must be 1-255 visible ASCII characters");
        return error_page(&app, problem, Some(&session.csrf));
    }
    let input = crate::fulfilment::RecallInput {
        gtin: form.gtin,
        lots,
        reason: form.reason,
        public_notice: notice.map(str::to_owned),
        hold_derived: form.hold_derived.is_some(),
    };
    let key = crate::extract::IdempotencyKey(Some(form.request_id));
    let (replayed, recall) = match crate::fulfilment::start_recall(&app, &principal, key, request_sha256, input).await {
        Ok((replayed, stored)) if (200..300).contains(&stored.status) => {
            (replayed, serde_json::from_slice::<serde_json::Value>(&stored.body).unwrap_or_default())
        }
        Ok(_) => return error_page(&app, Problem::internal("the recall's stored answer"), Some(&session.csrf)),
        Err(problem) => return error_page(&app, problem, Some(&session.csrf)),
    };
    let view = web::PortalRecallView {
        csrf: session.csrf.clone(),
        tenant: principal.tenant_id.as_str().to_owned(),
        recall,
        replayed,
    };
    match app.consumer_pages.templates.portal_recall(&view) {
        Ok(html) => page(if replayed { StatusCode::OK } else { StatusCode::CREATED }, html),
        Err(error) => error_page(&app, Problem::internal(error), Some(&session.csrf)),
    }
}

#[derive(Debug, serde::Deserialize)]
struct ReportQuery {
    sscc: Option<String>,
    gtin: Option<String>,
    lot: Option<String>,
}

/// `GET /portal/reports/temperature?sscc=…|gtin=…&lot=…`: the merchant's temperature report (PDF).
async fn portal_report(State(app): State<AppState>, headers: HeaderMap, Query(query): Query<ReportQuery>) -> Response {
    let (session, principal) = match merchant_session(&app, &headers).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let built = async {
        let sscc = query
            .sscc
            .as_deref()
            .map(|text| {
                gs1::Sscc::parse(text).map_err(|error| Problem::field("invalid-parameter", "?sscc", error.to_string()))
            })
            .transpose()?;
        let gtin = query
            .gtin
            .as_deref()
            .map(|text| {
                gs1::Gtin::parse(text).map_err(|error| Problem::field("invalid-parameter", "?gtin", error.to_string()))
            })
            .transpose()?;
        let lot = match (&gtin, query.lot.as_deref()) {
            (Some(gtin), Some(lot)) => Some((gtin, lot)),
            (None, None) => None,
            _ => return Err(Problem::new("invalid-parameter", "give gtin and lot together")),
        };
        let report = crate::reports::build(&app.store, &principal.tenant_id, sscc.as_ref(), lot).await?;
        Ok::<_, Problem>(report.to_pdf())
    };
    match built.await {
        Ok(pdf) => {
            ([(header::CONTENT_TYPE, "application/pdf"), (header::CACHE_CONTROL, "no-store")], pdf).into_response()
        }
        Err(problem) => error_page(&app, problem, Some(&session.csrf)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_is_coloured_by_days_left() {
        let today: jiff::civil::Date = "2026-12-02".parse().unwrap();
        assert_eq!(freshness(Some("2026-12-01"), today), (Some(-1), "expired"));
        assert_eq!(freshness(Some("2026-12-09"), today), (Some(7), "soon"));
        assert_eq!(freshness(Some("2027-01-01"), today), (Some(30), "fresh"));
        assert_eq!(freshness(None, today), (None, "none"));
        assert_eq!(freshness(Some("not a date"), today), (None, "none"));
    }
}
