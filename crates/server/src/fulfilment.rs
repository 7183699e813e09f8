//! The fulfilment API: advance shipping notices and receipts, stock, counts, lot statuses,
//! orders (placed, allocated and reserved in one write), their lifecycle, promises, recalls.
//!
//! Merchants (tenant keys) act on their own stock and orders: they place and cancel orders, but
//! the physical steps of an order (picking to returned) are the operator's systems' and
//! couriers' (operator keys, for a tenant named by `?tenant=`), whose EPCIS events consumers see.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gs1::{Gln, Gtin, Sscc};
use network::{Service, TenantId, ZoneName};
use orders::{Line, OrderStatus};
use serde::{Deserialize, Serialize};
use stock::{LotStatus, QUANTITY_MAX};
use store::fulfilment::{
    AsnPallet, AsnRecord, FulfilmentMutation, FulfilmentOutcome, OrderDestination, OrderEventRecord, OrderRecord,
    PlaceOrder, RecallOutcome, StockFilter, StockKey,
};
use store::{Applied, Mutation, Principal, StoredResponse};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::{QueryParams, UsageParams, json_bytes, require_reader, require_writer, write};
use crate::dto::Checker;
use crate::extract::{Caller, IdempotencyKey, JsonBody};
use crate::problem::{FieldError, Problem};
use crate::trace::Made;

/// The longest an order's hold may last.
pub const HOLD_SECONDS_MAX: u64 = 7 * 24 * 3600;
const _: () = assert!(HOLD_SECONDS_MAX == 604_800, "the order's OpenAPI schema says so");
/// Lines of one order.
pub const ORDER_LINES_MAX: usize = orders::LINES_MAX;
// The schemas' `max_items` say these limits as literals.
const _: () = assert!(ORDER_LINES_MAX == 100 && store::fulfilment::RECALL_LOTS_MAX == 100);
// A recall's own derived lots, as listed, fit what one may hold; its source lots, one read.
const _: () = assert!(
    RECALL_DERIVED_LOTS_MAX <= store::fulfilment::RECALL_HOLDS_MAX
        && RECALL_DERIVED_LOTS_MAX <= store::fulfilment::LOT_RECALLS_READ_MAX
);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_asn))
        .routes(routes!(get_asn))
        .routes(routes!(receive_asn))
        .routes(routes!(list_stock))
        .routes(routes!(list_movements))
        .routes(routes!(count_stock))
        .routes(routes!(scrap_stock))
        .routes(routes!(transfer_stock))
        .routes(routes!(set_lot_status))
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(order_event))
        .routes(routes!(promise))
        .routes(routes!(create_recall, list_recalls))
        .routes(routes!(get_recall))
        .routes(routes!(operator_sla))
        .routes(routes!(tenant_sla))
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(delete_webhook))
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:012x}{:016x}", jiff::Timestamp::now().as_millisecond(), rand::random::<u64>())
}

fn local_time_text(unix_ms: i64, zone: Option<&str>) -> Option<String> {
    let zone = jiff::tz::TimeZone::get(zone?).ok()?;
    let time = jiff::Timestamp::from_millisecond(unix_ms).ok()?.to_zoned(zone);
    Some(time.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

pub(crate) fn parse_time(checker: &mut Checker, pointer: &str, text: &Option<String>) -> Option<i64> {
    let text = text.as_deref()?;
    // Said in the API's words, not the parser's.
    checker.check(
        pointer,
        text.parse::<jiff::Timestamp>()
            .map(|time| time.as_millisecond())
            .map_err(|_| format!("{text:?} is no RFC 3339 time with an offset (2026-12-24T18:00:00+01:00)")),
    )
}

fn parse_date(checker: &mut Checker, pointer: &str, text: &Option<String>) -> Option<String> {
    let text = text.as_deref()?;
    // A calendar date that exists; said in the API's words, not the parser's.
    let parsed = text.parse::<jiff::civil::Date>().ok().filter(|date| date.to_string() == text);
    checker.check(pointer, parsed.map(|date| date.to_string()).ok_or_else(|| format!("{text:?} is no date YYYY-MM-DD")))
}

pub(crate) fn check_lot(checker: &mut Checker, pointer: &str, lot: &str) -> Option<String> {
    if is_lot(lot) {
        Some(lot.to_owned())
    } else {
        checker.fail(pointer, LOT_RULE);
        None
    }
}

const LOT_RULE: &str = "a lot is 1-20 characters of the GS1 character set 82 (no spaces)";

/// GS1 AI (10): up to 20 characters of the GS1 AI encodable character set 82.
fn is_lot(lot: &str) -> bool {
    !lot.is_empty()
        && lot.len() <= stock::LOT_LENGTH_MAX
        && lot.bytes().all(|byte| byte.is_ascii_graphic() && !b"#$@[\\]^`{|}~".contains(&byte))
}

/// A `?lot=` filter, checked as a lot is (400 `invalid-parameter` otherwise).
fn lot_parameter(lot: Option<String>) -> Result<Option<String>, Problem> {
    match lot {
        Some(lot) if !is_lot(&lot) => Err(Problem::field("invalid-parameter", "?lot", LOT_RULE)),
        lot => Ok(lot),
    }
}

fn check_quantity(checker: &mut Checker, pointer: &str, quantity: i64) -> Option<i64> {
    if (1..=QUANTITY_MAX).contains(&quantity) {
        Some(quantity)
    } else {
        checker.fail(pointer, format!("must be 1..={QUANTITY_MAX}"));
        None
    }
}

/// The tenant `?tenant=` names, which an operator's or a courier's key must give.
fn named_tenant(tenant: Option<&str>) -> Result<TenantId, Problem> {
    let Some(tenant) = tenant else {
        return Err(Problem::field(
            "invalid-parameter",
            "?tenant",
            "an operator or courier key names the tenant: ?tenant=<id>",
        ));
    };
    TenantId::parse(tenant).map_err(|error| Problem::field("invalid-parameter", "?tenant", error.to_string()))
}

/// The tenant whose data an operation touches: the caller's own, or for an operator key the
/// one named by `?tenant=`.
/// Who acts, and for which tenant: a tenant key for its own (a `?tenant=` naming another is
/// refused, 400 `invalid-parameter`, whether that tenant exists or not), an operator key for the
/// tenant `?tenant=` names, which must exist (404 otherwise: a mistyped tenant is not an empty
/// one).
pub(crate) async fn acting_tenant<'c>(
    app: &AppState,
    caller: &'c Caller,
    tenant: Option<&str>,
    writes: bool,
) -> Result<(&'c Principal, TenantId), Problem> {
    let (principal, tenant_id) = acting_tenant_named(caller, tenant, writes)?;
    if caller.0.is_operator() && !tenant_id.is_network() {
        crate::api::require_tenant(app, &tenant_id).await?;
    }
    Ok((principal, tenant_id))
}

fn acting_tenant_named<'c>(
    caller: &'c Caller,
    tenant: Option<&str>,
    writes: bool,
) -> Result<(&'c Principal, TenantId), Problem> {
    if caller.0.is_operator() {
        return Ok((&caller.0, named_tenant(tenant)?));
    }
    let principal = if writes { require_writer(caller)? } else { require_reader(caller)? };
    if let Some(named) = tenant
        && named != principal.tenant_id.as_str()
    {
        // Said alike for every other tenant: a merchant learns nothing of who else is here.
        return Err(Problem::field(
            "invalid-parameter",
            "?tenant",
            format!("this key acts for tenant {} only: leave ?tenant out", principal.tenant_id),
        ));
    }
    Ok((principal, principal.tenant_id.clone()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantParam {
    /// The tenant an operator key acts for (for a courier's hand-over, the order's merchant).
    pub tenant: Option<String>,
}

fn respond_with(status: u16, body: Vec<u8>) -> impl Fn(&Applied) -> StoredResponse + Send + Sync + Clone + 'static {
    move |_: &Applied| StoredResponse { status, body: body.clone() }
}

// ---------- ASNs and receipts ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PalletInput {
    pub sscc: String,
    pub gtin: String,
    pub lot: String,
    /// ISO date YYYY-MM-DD (the lot's expiry).
    pub expiry: Option<String>,
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AsnInput {
    /// The warehouse or depot receiving the pallets (GLN).
    pub location: String,
    /// RFC 3339.
    pub expected_at: Option<String>,
    pub pallets: Vec<PalletInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AsnView {
    pub asn_id: String,
    pub location: String,
    pub pallets: usize,
    pub units: i64,
}

/// Announces pallets (SSCC, GTIN, lot, expiry, quantity) for a location.
#[utoipa::path(post, path = "/v1/asns", tag = "fulfilment", request_body = AsnInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = AsnView), (status = 422, body = Problem)))]
async fn create_asn(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<AsnInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    if principal.tenant_id.is_network() {
        return Err(Problem::new("forbidden", "stock belongs to merchants: use a tenant key"));
    }
    let input = body.value;
    let mut checker = Checker::default();
    let location = checker.check("/location", Gln::parse(&input.location));
    let expected = parse_time(&mut checker, "/expected_at", &input.expected_at);
    let listed = checker.list("/pallets", &input.pallets, 1, store::fulfilment::ASN_PALLETS_MAX);
    let mut pallets = Vec::new();
    let mut ssccs_seen = HashSet::new();
    // Each lot's expiry as first announced (the GTIN parsed: 13 and 14 digits name one product).
    let mut expiries: HashMap<(Gtin, &str), &Option<String>> = HashMap::new();
    for (index, pallet) in input.pallets.iter().enumerate().take_while(|_| listed) {
        let at = |field: &str| format!("/pallets/{index}/{field}");
        let sscc = checker.check(&at("sscc"), Sscc::parse(&pallet.sscc));
        if !ssccs_seen.insert(pallet.sscc.as_str()) {
            checker.fail(&at("sscc"), "appears twice");
        }
        let gtin = checker.check(&at("gtin"), Gtin::parse(&pallet.gtin));
        let lot = check_lot(&mut checker, &at("lot"), &pallet.lot);
        let expiry = parse_date(&mut checker, &at("expiry"), &pallet.expiry);
        // A lot has one expiry: two pallets of it announced with two dates could never both be received.
        if let Some(gtin) = &gtin
            && *expiries.entry((gtin.clone(), pallet.lot.as_str())).or_insert(&pallet.expiry) != &pallet.expiry
        {
            checker.fail(&at("expiry"), "another pallet of this lot has another expiry: a lot has one expiry");
        }
        let quantity = check_quantity(&mut checker, &at("quantity"), pallet.quantity);
        if let (Some(sscc), Some(gtin), Some(lot), Some(quantity)) = (sscc, gtin, lot, quantity) {
            pallets.push(AsnPallet { sscc, gtin, lot, expiry, quantity });
        }
    }
    checker.finish()?;
    let location = location.ok_or_else(|| Problem::internal("location"))?;
    let asn_id = new_id("asn");
    let view = AsnView {
        asn_id: asn_id.clone(),
        location: location.to_string(),
        pallets: pallets.len(),
        units: pallets.iter().map(|pallet| pallet.quantity).sum(),
    };
    let respond = respond_with(201, json_bytes(&view));
    let mutation =
        Mutation::Fulfilment(FulfilmentMutation::CreateAsn { asn_id, location, expected_unix_ms: expected, pallets });
    let written =
        write(&app, principal, key, Some(body.request_sha256), principal.tenant_id.clone(), mutation, respond.clone())
            .await?;
    Ok(written.into_created_response(respond, "/v1/asns", "asn_id"))
}

/// An ASN read back: its pallets, each with where and when it was received (if it was).
#[derive(Debug, Serialize, ToSchema)]
pub struct AsnDetailView {
    pub asn_id: String,
    pub location: String,
    pub expected_at: Option<String>,
    pub announced_at: String,
    /// Pallets received so far, of `pallets`.
    pub received_pallets: usize,
    pub pallets: Vec<AsnPalletView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AsnPalletView {
    pub sscc: String,
    pub gtin: String,
    pub lot: String,
    pub expiry: Option<String>,
    pub quantity: i64,
    /// The zone it was received into, and when; absent until it is.
    pub received_zone: Option<String>,
    pub received_at: Option<String>,
}

/// An ASN read back: what was announced and what of it has been received.
#[utoipa::path(get, path = "/v1/asns/{asn_id}", tag = "fulfilment", params(("asn_id" = String, Path), TenantParam),
    responses((status = 200, body = AsnDetailView), (status = 404, body = Problem)))]
async fn get_asn(
    State(app): State<AppState>,
    caller: Caller,
    Path(asn_id): Path<String>,
    QueryParams(params): QueryParams<TenantParam>,
) -> Result<Json<AsnDetailView>, Problem> {
    let (_, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let asn =
        app.store.tenant(&tenant).asn(&asn_id).await?.ok_or_else(|| Problem::not_found(format!("ASN {asn_id}")))?;
    Ok(Json(AsnDetailView {
        asn_id: asn.asn_id,
        location: asn.location,
        expected_at: asn.expected_unix_ms.map(crate::dto::timestamp),
        announced_at: crate::dto::timestamp(asn.created_unix_ms),
        received_pallets: asn.pallets.iter().filter(|pallet| pallet.received_unix_ms.is_some()).count(),
        pallets: asn
            .pallets
            .into_iter()
            .map(|pallet| AsnPalletView {
                sscc: pallet.sscc,
                gtin: pallet.gtin,
                lot: pallet.lot,
                expiry: pallet.expiry_date,
                quantity: pallet.quantity,
                received_zone: pallet.received_zone,
                received_at: pallet.received_unix_ms.map(crate::dto::timestamp),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptInput {
    /// The zone of the location the pallets go into; its range must suit each product's class.
    pub zone: String,
    /// Only these pallets (default: every pallet not yet received).
    pub ssccs: Option<Vec<String>>,
    /// `available` (default) or `quarantine` (released later with a lot status change).
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptView {
    pub receipt_id: String,
    pub asn_id: String,
    pub zone: String,
    /// The status asked for (`available` by default); each lot's units may have taken another,
    /// as `lots` says.
    pub status: String,
    /// The pallets received.
    pub ssccs: Vec<String>,
    /// Each lot received, with the status its units took: `recalled` for a recalled lot; the
    /// lot's `hold`, `quarantine` or `expired` in a zone where it is stored so; `hold` or
    /// `expired` in a zone new to the lot when every stocked balance of it is, and `hold` there
    /// for a lot a recall holds (`hold_derived`).
    pub lots: Vec<ReceivedLotView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceivedLotView {
    pub gtin: String,
    pub lot: String,
    pub expiry: Option<String>,
    pub units: i64,
    pub status: String,
}

/// Receives an ASN's pallets into a zone (receipt movements; the zone's range is checked against
/// each product's temperature class).
#[utoipa::path(post, path = "/v1/asns/{asn_id}/receipts", tag = "fulfilment", request_body = ReceiptInput,
    params(("asn_id" = String, Path), TenantParam, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = ReceiptView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn receive_asn(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(asn_id): Path<String>,
    QueryParams(params): QueryParams<TenantParam>,
    body: JsonBody<ReceiptInput>,
) -> Result<Response, Problem> {
    let (principal, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), true).await?;
    let input = body.value;
    let mut checker = Checker::default();
    let zone = checker.check("/zone", ZoneName::parse(&input.zone));
    let ssccs = input.ssccs.as_ref().map(|list| {
        let listed = checker.list("/ssccs", list, 1, store::fulfilment::ASN_PALLETS_MAX);
        let mut seen = HashSet::new();
        list.iter()
            .enumerate()
            .take_while(|_| listed)
            .filter_map(|(index, text)| {
                if !seen.insert(text.as_str()) {
                    checker.fail(&format!("/ssccs/{index}"), "appears twice");
                }
                checker.check(&format!("/ssccs/{index}"), Sscc::parse(text))
            })
            .collect::<Vec<_>>()
    });
    let status = match input.status.as_deref() {
        None | Some("available") => Some(LotStatus::Available),
        Some("quarantine") => Some(LotStatus::Quarantine),
        Some(other) => {
            checker.fail("/status", format!("must be available or quarantine, found {other:?}"));
            None
        }
    };
    checker.finish()?;
    let (Some(zone), Some(status)) = (zone, status) else { return Err(Problem::internal("receipt")) };
    let receipt_id = new_id("rcp");
    // The receipt's EPCIS events, captured with it. They name the pallets read here, so the
    // writer is given that list: a pallet received meanwhile by another request refuses this one
    // (409 `already-received`) instead of being named by this receipt's events too.
    let mut ssccs = ssccs;
    // A lot recalled between the read the events are built from and the write: they are built
    // again (the writer checks which lots come in recalled).
    let mut attempts_left = STEP_ATTEMPTS_MAX;
    loop {
        let (events, recalled) = match app.store.tenant(&tenant).asn(&asn_id).await? {
            Some(asn) => {
                let listed: Vec<String> = match &ssccs {
                    Some(list) => list.iter().map(|sscc| sscc.to_string()).collect(),
                    None => {
                        crate::steps::received_pallets(&asn, None).iter().map(|pallet| pallet.sscc.clone()).collect()
                    }
                };
                if ssccs.is_none() && !listed.is_empty() {
                    let parsed = listed.iter().map(|text| Sscc::parse(text)).collect::<Result<Vec<_>, _>>();
                    ssccs = Some(parsed.map_err(|error| Problem::internal(format!("a stored SSCC: {error}")))?);
                }
                let built =
                    receipt_capture(&app.store, &tenant, &asn, zone.as_str(), Some(&listed), jiff::Timestamp::now())
                        .await?;
                (built.events, Some(built.recalled))
            }
            None => (None, None),
        };
        let respond = {
            let (receipt_id, asn_id, zone, status) =
                (receipt_id.clone(), asn_id.clone(), zone.to_string(), status.name().to_owned());
            let ssccs: Vec<String> = ssccs.iter().flatten().map(|sscc| sscc.to_string()).collect();
            move |applied: &Applied| {
                let lots = match applied.outcome.as_deref() {
                    Some(FulfilmentOutcome::Received(lots)) => lots.as_slice(),
                    _ => &[],
                };
                let view = ReceiptView {
                    receipt_id: receipt_id.clone(),
                    asn_id: asn_id.clone(),
                    zone: zone.clone(),
                    status: status.clone(),
                    ssccs: ssccs.clone(),
                    lots: lots
                        .iter()
                        .map(|lot| ReceivedLotView {
                            gtin: lot.gtin.clone(),
                            lot: lot.lot.clone(),
                            expiry: lot.expiry.clone(),
                            units: lot.units,
                            status: lot.status.name().into(),
                        })
                        .collect(),
                };
                StoredResponse { status: 201, body: json_bytes(&view) }
            }
        };
        let change = FulfilmentMutation::ReceiveAsn {
            asn_id: asn_id.clone(),
            receipt_id: receipt_id.clone(),
            zone: zone.clone(),
            ssccs: ssccs.clone(),
            status,
            recalled,
        };
        let mutation = Mutation::fulfilment_step(change, events);
        attempts_left -= 1;
        match write(&app, principal, key.clone(), Some(body.request_sha256), tenant.clone(), mutation, respond.clone())
            .await
        {
            Err(problem) if problem.detail == store::fulfilment::RECALLED_MEANWHILE && attempts_left > 0 => continue,
            written => return Ok(written?.into_response(respond)),
        }
    }
}

/// How often a receipt or transfer is built again when a lot it moves was recalled between the
/// read its events were built from and the write.
pub const STEP_ATTEMPTS_MAX: u32 = 3;

/// A receipt's events, and the lots (GTIN, lot; sorted) they receive as recalled: the writer
/// checks those (`FulfilmentMutation::ReceiveAsn::recalled`).
#[derive(Debug)]
pub struct ReceiptCapture {
    pub events: Option<store::epcis::Capture>,
    pub recalled: Vec<(String, String)>,
}

/// The EPCIS events of a receipt: `commissioning` of the lots the network has no event of yet,
/// where they enter it, then `receiving`. Two receipts of one new lot at the same moment may both
/// commission it.
pub async fn receipt_capture(
    store: &store::Store,
    tenant: &TenantId,
    asn: &AsnRecord,
    zone: &str,
    ssccs: Option<&[String]>,
    at: jiff::Timestamp,
) -> Result<ReceiptCapture, Problem> {
    let mut checked = BTreeSet::new();
    let mut new_lots = BTreeSet::new();
    let mut recalled_lots = BTreeSet::new();
    let mut recalled = Vec::new();
    for pallet in crate::steps::received_pallets(asn, ssccs) {
        let class = crate::steps::lot_class(&pallet.gtin, &pallet.lot)?;
        if !checked.insert(class.clone()) {
            continue;
        }
        if store.tenant(tenant).recall_of_lot(&pallet.gtin, &pallet.lot).await?.is_some() {
            recalled_lots.insert(class.clone());
            recalled.push((pallet.gtin.clone(), pallet.lot.clone()));
        }
        if !store.epc_seen(&class, true).await? {
            new_lots.insert(class);
        }
    }
    recalled.sort_unstable();
    let zones = crate::steps::SiteZones::read(store, &[asn.location.as_str()]).await?;
    let events = crate::steps::receiving(tenant, asn, zone, ssccs, (&new_lots, &recalled_lots), at, &zones)?;
    Ok(ReceiptCapture { events, recalled })
}

/// Expires the lapsed order holds when any is due (the worker calls it every
/// `subscriptions::HOLD_SWEEP_INTERVAL`). Any batch with a fulfilment write expires them; on a
/// quiet platform this one does, so such an order is cancelled, and its webhook told, within
/// seconds of its hold's end. Answers whether one was due.
pub async fn expire_lapsed_holds(store: &store::Store) -> Result<bool, Problem> {
    if !store.holds_lapsed(store::now_unix_ms()).await? {
        return Ok(false);
    }
    let mutation = Mutation::Fulfilment(FulfilmentMutation::ExpireHolds);
    store.tenant(&TenantId::network()).write(mutation, None).await?;
    Ok(true)
}

// ---------- stock ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StockParams {
    pub gtin: Option<String>,
    pub location: Option<String>,
    pub lot: Option<String>,
    pub tenant: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub gtin: String,
    pub location: String,
    pub zone: String,
    pub lot: String,
    pub expiry: Option<String>,
    /// available, quarantine, hold, recalled or expired.
    pub status: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// Units that can be reserved now (0 unless the lot is available).
    pub available: i64,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalancePage {
    pub items: Vec<BalanceView>,
    pub next_cursor: Option<String>,
}

fn cursor_of(key: &StockKey) -> String {
    store::Cursor::encode(&[key.gtin.as_str(), &key.location, &key.zone, &key.lot].join("\u{1f}"))
}

fn key_of_cursor(cursor: &str) -> Result<StockKey, Problem> {
    let invalid = || Problem::field("invalid-parameter", "?cursor", "not a cursor of this list");
    let text = store::Cursor::decode(cursor).ok_or_else(invalid)?;
    let parts: Vec<&str> = text.split('\u{1f}').collect();
    let [gtin, location, zone, lot] = parts[..] else { return Err(invalid()) };
    Ok(StockKey { gtin: gtin.into(), location: location.into(), zone: zone.into(), lot: lot.into() })
}

/// Stock balances by location, zone, GTIN and lot.
#[utoipa::path(get, path = "/v1/stock", tag = "fulfilment", params(StockParams), responses((status = 200, body = BalancePage)))]
async fn list_stock(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<StockParams>,
) -> Result<Json<BalancePage>, Problem> {
    let (_, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let filter = StockFilter {
        gtin: params
            .gtin
            .map(|text| Gtin::parse(&text).map(|gtin| gtin.to_string()))
            .transpose()
            .map_err(|error| Problem::field("invalid-parameter", "?gtin", error.to_string()))?,
        location: params
            .location
            .map(|text| Gln::parse(&text).map(|gln| gln.to_string()))
            .transpose()
            .map_err(|error| Problem::field("invalid-parameter", "?location", error.to_string()))?,
        lot: lot_parameter(params.lot)?,
    };
    let after = params.cursor.as_deref().map(key_of_cursor).transpose()?;
    let limit = crate::api::limit_within(params.limit, store::PAGE_LIMIT_DEFAULT, store::PAGE_LIMIT_MAX)?;
    let mut rows = app.store.tenant(&tenant).stock(&filter, after.as_ref(), limit + 1).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|row| cursor_of(&row.key))
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|row| BalanceView {
            gtin: row.key.gtin,
            location: row.key.location,
            zone: row.key.zone,
            lot: row.key.lot,
            expiry: row.expiry,
            status: row.status.name().into(),
            on_hand: row.on_hand,
            reserved: row.reserved,
            available: row.available,
            updated_at: crate::dto::timestamp(row.updated_unix_ms),
        })
        .collect();
    Ok(Json(BalancePage { items, next_cursor }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MovementParams {
    pub gtin: String,
    pub lot: Option<String>,
    pub tenant: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-500 (default 500).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementPage {
    pub items: Vec<MovementView>,
    /// The cursor of the next page; none after the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementView {
    pub operation_id: String,
    pub line: i64,
    /// receipt, reserve, release, pick, ship, adjust, transfer_out, transfer_in, return, scrap, status.
    pub kind: String,
    pub gtin: String,
    pub location: String,
    pub zone: String,
    pub lot: String,
    pub quantity: i64,
    pub reason: Option<String>,
    pub at: String,
}

/// A movement's place in the journal's order: its transaction, time, line and operation.
fn movement_cursor(position: &store::fulfilment::JournalPosition) -> String {
    store::Cursor::encode(&format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        position.tx, position.at_unix_ms, position.line, position.operation_id
    ))
}

fn movement_after(cursor: &str) -> Result<store::fulfilment::JournalPosition, Problem> {
    let invalid = || Problem::field("invalid-parameter", "?cursor", "not a cursor of this list");
    let text = store::Cursor::decode(cursor).ok_or_else(invalid)?;
    let mut parts = text.splitn(4, '\u{1f}');
    let (Some(tx), Some(at), Some(line), Some(operation)) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    Ok(store::fulfilment::JournalPosition {
        tx: tx.parse().map_err(|_| invalid())?,
        at_unix_ms: at.parse().map_err(|_| invalid())?,
        operation_id: operation.to_owned(),
        line: line.parse().map_err(|_| invalid())?,
    })
}

/// The journal of a product's stock (one lot or all) in commit order, a page at a time: a movement
/// committed after a page was read comes after its cursor (see ARCHITECTURE.md, "The journal's order").
#[utoipa::path(get, path = "/v1/stock/movements", tag = "fulfilment", params(MovementParams), responses((status = 200, body = MovementPage)))]
async fn list_movements(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<MovementParams>,
) -> Result<Json<MovementPage>, Problem> {
    let (_, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let gtin =
        Gtin::parse(&params.gtin).map_err(|error| Problem::field("invalid-parameter", "?gtin", error.to_string()))?;
    let after = params.cursor.as_deref().map(movement_after).transpose()?;
    let limit =
        crate::api::limit_within(params.limit, store::fulfilment::STOCK_ROWS_MAX, store::fulfilment::STOCK_ROWS_MAX)?;
    let lot = lot_parameter(params.lot)?;
    let rows = app.store.tenant(&tenant).movements(gtin.as_str(), lot.as_deref(), after.as_ref(), limit).await?;
    let next_cursor =
        (rows.len() == limit as usize).then(|| rows.last().map(|row| movement_cursor(&row.position))).flatten();
    Ok(Json(MovementPage {
        next_cursor,
        items: rows
            .into_iter()
            .map(|row| MovementView {
                operation_id: row.position.operation_id,
                line: row.position.line,
                kind: row.kind.name().into(),
                gtin: row.key.gtin,
                location: row.key.location,
                zone: row.key.zone,
                lot: row.key.lot,
                quantity: row.quantity,
                reason: row.reason,
                at: crate::dto::timestamp(row.position.at_unix_ms),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountInput {
    pub location: String,
    pub zone: String,
    pub gtin: String,
    pub lot: String,
    /// Units of the lot found in the zone that have not shipped, those picked or packed for
    /// orders included (a pick moves no stock until the order ships); the difference to on
    /// hand becomes an `adjust` movement.
    pub counted: i64,
    /// The on-hand the count started from (as `GET /v1/stock` read it when the counter began).
    /// If stock moved since (a receipt, a shipment, a transfer), the count is refused (409
    /// `count-stale`) instead of writing that movement away. Without it the count is applied to
    /// the on-hand as it is when written.
    pub expected_on_hand: Option<i64>,
    pub reason: String,
}

/// A balance's place in a request body: `/location`, `/zone`, `/gtin`, `/lot`, each checked.
fn balance_place(
    checker: &mut Checker,
    [location, zone, gtin, lot]: [&str; 4],
) -> Option<(Gln, ZoneName, Gtin, String)> {
    let location = checker.check("/location", Gln::parse(location));
    let zone = checker.check("/zone", ZoneName::parse(zone));
    let gtin = checker.check("/gtin", Gtin::parse(gtin));
    let lot = check_lot(checker, "/lot", lot);
    Some((location?, zone?, gtin?, lot?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperationView {
    pub operation_id: String,
}

/// Writes a stock operation (with the events of a step, if any) under a fresh id (`prefix_…`) and
/// answers that id (200).
async fn write_operation(
    app: &AppState,
    principal: &Principal,
    key: IdempotencyKey,
    request_sha256: [u8; 32],
    tenant: TenantId,
    prefix: &str,
    mutation: impl FnOnce(String) -> Mutation,
) -> Result<Response, Problem> {
    let operation_id = new_id(prefix);
    let respond = respond_with(200, json_bytes(&OperationView { operation_id: operation_id.clone() }));
    let written =
        write(app, principal, key, Some(request_sha256), tenant, mutation(operation_id), respond.clone()).await?;
    Ok(written.into_response(respond))
}

/// A cycle count: adjusts the balance to the units found, with an `adjust` movement. Found fewer
/// than orders reserved there: the newest orders not yet being picked give theirs up and are
/// allocated again from other stock, or flagged (listed in the answer); refused (409
/// `insufficient-stock`) if orders being picked or packed hold more than were counted, and (409
/// `count-stale`) if `expected_on_hand` is not the on-hand any more.
#[utoipa::path(post, path = "/v1/stock/counts", tag = "fulfilment", request_body = CountInput,
    params(TenantParam, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 200, body = CountView), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn count_stock(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    QueryParams(params): QueryParams<TenantParam>,
    body: JsonBody<CountInput>,
) -> Result<Response, Problem> {
    let (principal, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), true).await?;
    let input = body.value;
    let mut checker = Checker::default();
    let place = balance_place(&mut checker, [&*input.location, &*input.zone, &*input.gtin, &*input.lot]);
    if !(0..=QUANTITY_MAX).contains(&input.counted) {
        checker.fail("/counted", format!("must be 0..={QUANTITY_MAX}"));
    }
    if input.expected_on_hand.is_some_and(|units| units < 0) {
        checker.fail("/expected_on_hand", "must be 0 or more");
    }
    let reason = checker.text("/reason", &input.reason, crate::dto::TEXT_LENGTH_MAX);
    checker.finish()?;
    let (Some((location, zone, gtin, lot)), Some(reason)) = (place, reason) else {
        return Err(Problem::internal("count"));
    };
    let operation_id = new_id("cnt");
    let mutation = Mutation::Fulfilment(FulfilmentMutation::Count {
        operation_id: operation_id.clone(),
        location,
        zone,
        gtin,
        lot,
        counted: input.counted,
        expected_on_hand: input.expected_on_hand,
        reason,
    });
    let respond = move |applied: &Applied| {
        let (reallocated, flagged) = match applied.outcome.as_deref() {
            Some(FulfilmentOutcome::Reallocation { reallocated, flagged }) => (reallocated.clone(), flagged.clone()),
            _ => Default::default(),
        };
        let view =
            CountView { operation_id: operation_id.clone(), reallocated_orders: reallocated, flagged_orders: flagged };
        StoredResponse { status: 200, body: json_bytes(&view) }
    };
    let written = write(&app, principal, key, Some(body.request_sha256), tenant, mutation, respond.clone()).await?;
    Ok(written.into_response(respond))
}

/// A count's answer: the operation, and the orders that gave up their units because fewer were
/// found than were reserved (the newest orders not yet being picked).
#[derive(Debug, Serialize, ToSchema)]
pub struct CountView {
    pub operation_id: String,
    /// Allocated again from other stock (`GET /v1/orders/{id}` shows where from).
    pub reallocated_orders: Vec<String>,
    /// No other stock qualified: back to `accepted`, with the count in their flags.
    pub flagged_orders: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapInput {
    pub location: String,
    pub zone: String,
    pub gtin: String,
    pub lot: String,
    /// Units taken out for good (free units only: reserved ones stay).
    pub quantity: i64,
    /// Why (recorded with the movement): spoiled, damaged, destroyed after a recall…
    pub reason: String,
}

/// Scraps free units of a balance (a `scrap` movement); reserved units cannot be scrapped.
#[utoipa::path(post, path = "/v1/stock/scrap", tag = "fulfilment", request_body = ScrapInput,
    params(TenantParam, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 200, body = OperationView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn scrap_stock(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    QueryParams(params): QueryParams<TenantParam>,
    body: JsonBody<ScrapInput>,
) -> Result<Response, Problem> {
    let (principal, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), true).await?;
    let input = body.value;
    let mut checker = Checker::default();
    let place = balance_place(&mut checker, [&*input.location, &*input.zone, &*input.gtin, &*input.lot]);
    let quantity = check_quantity(&mut checker, "/quantity", input.quantity);
    let reason = checker.text("/reason", &input.reason, crate::dto::TEXT_LENGTH_MAX);
    checker.finish()?;
    let (Some((location, zone, gtin, lot)), Some(quantity), Some(reason)) = (place, quantity, reason) else {
        return Err(Problem::internal("scrap"));
    };
    let zones = crate::steps::SiteZones::read(&app.store, &[location.as_str()]).await?;
    let at = jiff::Timestamp::now();
    let place = (location.as_str(), zone.as_str());
    let events = crate::steps::scrapping(&tenant, gtin.as_str(), &lot, place, quantity, at, &zones)?;
    write_operation(&app, principal, key, body.request_sha256, tenant, "scr", |operation_id| {
        Mutation::fulfilment_step(
            FulfilmentMutation::Scrap { operation_id, location, zone, gtin, lot, quantity, reason },
            events,
        )
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockPlaceInput {
    pub location: String,
    pub zone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    pub gtin: String,
    pub lot: String,
    pub from: StockPlaceInput,
    pub to: StockPlaceInput,
    /// Units moved (free units only).
    pub quantity: i64,
    /// Why (recorded with both movements): putaway, consolidation…
    pub reason: String,
}

/// Moves free units of a lot to another zone, of the same location or (as a booking) another:
/// `transfer_out` and `transfer_in` movements. The lot keeps its expiry and status; the zone it
/// goes to must keep the product's temperature class.
#[utoipa::path(post, path = "/v1/stock/transfers", tag = "fulfilment", request_body = TransferInput,
    params(TenantParam, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 200, body = OperationView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn transfer_stock(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    QueryParams(params): QueryParams<TenantParam>,
    body: JsonBody<TransferInput>,
) -> Result<Response, Problem> {
    let (principal, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), true).await?;
    let input = body.value;
    let mut checker = Checker::default();
    let gtin = checker.check("/gtin", Gtin::parse(&input.gtin));
    let lot = check_lot(&mut checker, "/lot", &input.lot);
    let from_location = checker.check("/from/location", Gln::parse(&input.from.location));
    let from_zone = checker.check("/from/zone", ZoneName::parse(&input.from.zone));
    let to_location = checker.check("/to/location", Gln::parse(&input.to.location));
    let to_zone = checker.check("/to/zone", ZoneName::parse(&input.to.zone));
    let quantity = check_quantity(&mut checker, "/quantity", input.quantity);
    if input.from.location == input.to.location && input.from.zone == input.to.zone {
        checker.fail("/to", "must be another zone than /from");
    }
    let reason = checker.text("/reason", &input.reason, crate::dto::TEXT_LENGTH_MAX);
    checker.finish()?;
    let (Some(gtin), Some(lot), Some(from), Some(to), Some(quantity), Some(reason)) =
        (gtin, lot, from_location.zip(from_zone), to_location.zip(to_zone), quantity, reason)
    else {
        return Err(Problem::internal("transfer"));
    };
    let zones = crate::steps::SiteZones::read(&app.store, &[from.0.as_str(), to.0.as_str()]).await?;
    // A recall between the read the events are built from and the write: they are built again
    // (the writer checks whether the units move recalled).
    let mut attempts_left = STEP_ATTEMPTS_MAX;
    loop {
        let recalled = app.store.tenant(&tenant).recall_of_lot(gtin.as_str(), &lot).await?.is_some();
        let events = crate::steps::transfer(
            &tenant,
            gtin.as_str(),
            &lot,
            (from.0.as_str(), from.1.as_str()),
            (to.0.as_str(), to.1.as_str()),
            (quantity, recalled),
            jiff::Timestamp::now(),
            &zones,
        )?;
        attempts_left -= 1;
        let written =
            write_operation(&app, principal, key.clone(), body.request_sha256, tenant.clone(), "trf", |operation_id| {
                let change = FulfilmentMutation::Transfer {
                    operation_id,
                    gtin: gtin.clone(),
                    lot: lot.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    quantity,
                    reason: reason.clone(),
                    recalled: Some(recalled),
                };
                Mutation::fulfilment_step(change, events)
            })
            .await;
        match written {
            Err(problem) if problem.detail == store::fulfilment::RECALLED_MEANWHILE && attempts_left > 0 => continue,
            written => return written,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LotStatusInput {
    pub gtin: String,
    pub lot: String,
    /// Only at this location (default: everywhere).
    pub location: Option<String>,
    /// Only in this zone of `location` (a returns area whose units wait for their check, say).
    pub zone: Option<String>,
    /// available, quarantine, hold or expired (recalls go through /v1/recalls).
    pub status: String,
    /// Why (recorded with the movement): e.g. the QA release, the excursion.
    pub reason: String,
}

/// Changes the status of a lot: quarantine release, hold, expiry. The decision is recorded as a
/// `status` movement with its reason. A release to `available` of a balance whose hold covers a
/// quarantine (a recall's hold over a quarantined balance, units asked into quarantine that came
/// in on hold) puts it in quarantine: its check still waits (`GET /v1/stock` shows it).
#[utoipa::path(post, path = "/v1/stock/lot-status", tag = "fulfilment", request_body = LotStatusInput,
    params(TenantParam, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 200, body = OperationView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn set_lot_status(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    QueryParams(params): QueryParams<TenantParam>,
    body: JsonBody<LotStatusInput>,
) -> Result<Response, Problem> {
    let (principal, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), true).await?;
    let input = body.value;
    let mut checker = Checker::default();
    let gtin = checker.check("/gtin", Gtin::parse(&input.gtin));
    let lot = check_lot(&mut checker, "/lot", &input.lot);
    let location = input.location.as_deref().and_then(|text| checker.check("/location", Gln::parse(text)));
    let zone = input.zone.as_deref().and_then(|text| checker.check("/zone", ZoneName::parse(text)));
    if input.zone.is_some() && input.location.is_none() {
        checker.fail("/zone", "only with a location");
    }
    let status = match LotStatus::parse(&input.status) {
        Some(LotStatus::Recalled) | None => {
            checker.fail("/status", "must be available, quarantine, hold or expired (recalls: POST /v1/recalls)");
            None
        }
        Some(status) => Some(status),
    };
    let reason = checker.text("/reason", &input.reason, crate::dto::TEXT_LENGTH_MAX);
    checker.finish()?;
    let (Some(gtin), Some(lot), Some(status), Some(reason)) = (gtin, lot, status, reason) else {
        return Err(Problem::internal("lot status"));
    };
    let zone = zone.map(|zone| zone.as_str().to_owned());
    write_operation(&app, principal, key, body.request_sha256, tenant, "sts", |operation_id| {
        let change = FulfilmentMutation::SetLotStatus { operation_id, gtin, lot, location, zone, status, reason };
        Mutation::Fulfilment(change)
    })
    .await
}

// ---------- orders ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineInput {
    pub gtin: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationInput {
    /// A pickup point (or store) of the network, by GLN.
    pub pickup_point: Option<String>,
    /// Or an address's coordinates and time zone (no street address is stored).
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// IANA time zone of the address.
    pub time_zone: Option<String>,
    /// A coarse area (a postal district, a city), kept with the order for the merchant; never a
    /// street address. Reports count the order in the network's region (the delivering site's
    /// city), not in this text.
    pub area: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// 1 to 100 lines, one a product.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<OrderLineInput>,
    pub destination: DestinationInput,
    /// standard, next_day, same_day or express_12h.
    pub service: String,
    /// RFC 3339: refuse the order unless it can be delivered by then.
    pub latest_delivery_at: Option<String>,
    /// Hold the stock this long for a confirmation (the order moving on to `picking`); then the
    /// reservation expires and the order is cancelled. 1 to 604,800 (7 days). Default: no timeout.
    #[schema(minimum = 1, maximum = 604_800)]
    pub hold_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PickView {
    pub line: usize,
    pub gtin: String,
    pub zone: String,
    pub lot: String,
    pub expiry: Option<String>,
    pub quantity: i64,
    /// The units it shipped, once the order shipped: fewer than `quantity` after a short pick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipped: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentView {
    /// The site it ships from.
    pub from: String,
    /// The site that delivers the last mile.
    pub delivering_site: String,
    pub lane: Option<String>,
    pub lane_departure_at: Option<String>,
    pub pick_from: String,
    pub ready_at: String,
    pub last_mile_departure_at: String,
    pub last_mile_km: f64,
    pub promised_by: String,
    pub cost_cents: u64,
    pub sscc: Option<String>,
    pub picks: Vec<PickView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateView {
    pub site: String,
    /// chosen, passed (could ship all; another was cheaper or sooner; without `promised_by` when
    /// its lowest possible cost was already above the chosen site's), partial, no_route.
    pub outcome: String,
    pub cost_cents: Option<u64>,
    pub promised_by: Option<String>,
    /// `partial`: units per line the site could ship (available, in a zone that keeps the
    /// product, with its minimum shelf life left on the day it would be delivered, or for a site
    /// whose route was not worked out, on the day the order was placed).
    pub eligible_units: Option<Vec<i64>>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    pub rule: String,
    /// The chosen sites first, then the closest runners-up (at most 4).
    pub candidates: Vec<CandidateView>,
    /// Every site that held some of the order's products.
    pub candidates_considered: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderEventView {
    pub seq: i64,
    pub status: String,
    pub detail: Option<String>,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub status: String,
    pub service: String,
    pub lines: Vec<OrderLineView>,
    pub destination: DestinationInput,
    pub region: String,
    /// UTC.
    pub promised_by: String,
    /// The same instant in the destination's time zone.
    pub promised_by_local: Option<String>,
    /// The promise made when the order was placed, if a later allocation (after a recall took
    /// its stock) moved `promised_by`; the SLA measures against it. Null: never moved.
    pub first_promised_by: Option<String>,
    pub latest_delivery_at: Option<String>,
    pub placed_at: String,
    /// When the customer received it: at the door, or collected at the pickup point.
    pub delivered_at: Option<String>,
    /// When it reached its destination: delivered at the door, or arrived at its pickup point
    /// (the moment the promise and the SLA measure).
    pub arrived_at: Option<String>,
    pub updated_at: String,
    /// pending, posted, voided or expired.
    pub reservation: String,
    pub hold_expires_at: Option<String>,
    /// The shipments of the allocation the order holds or held when it shipped; none while it is
    /// `accepted` (placed without stock yet, or flagged after a recall or count took its stock).
    pub shipments: Vec<ShipmentView>,
    /// Why these sites: the rule and every candidate's outcome.
    pub allocation: DecisionView,
    /// What needs a person (a recall left the order without stock).
    pub flags: Vec<String>,
    /// The order's transitions, placing first. Left out of `GET /v1/orders`' pages, which do not
    /// read them: `GET /v1/orders/{id}` has them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<OrderEventView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineView {
    pub gtin: String,
    pub quantity: i64,
}

fn destination_view(destination: &OrderDestination) -> DestinationInput {
    DestinationInput {
        pickup_point: destination.pickup_point.clone(),
        latitude: destination.latitude_degrees,
        longitude: destination.longitude_degrees,
        time_zone: destination.time_zone.clone(),
        area: destination.area.clone(),
    }
}

/// The answer to placing an order (201), as stored with its Idempotency-Key for a retry; `keten
/// bench orders` stores the same.
pub fn placed_answer(order: &OrderRecord) -> Vec<u8> {
    // With the history row placing wrote, so the answer shows what a read of the order shows.
    let placed = OrderEventRecord {
        seq: 1,
        status: order.status,
        detail: Some(store::fulfilment::PLACED.to_owned()),
        at_unix_ms: order.placed_unix_ms,
    };
    json_bytes(&order_view(order, &[placed]))
}

fn order_view(record: &OrderRecord, events: &[OrderEventRecord]) -> OrderView {
    let lines = &record.lines;
    OrderView {
        order_id: record.order_id.clone(),
        status: record.status.name().into(),
        service: record.service.name().into(),
        lines: lines.iter().map(|line| OrderLineView { gtin: line.gtin.clone(), quantity: line.quantity }).collect(),
        destination: destination_view(&record.destination),
        region: record.region.clone(),
        promised_by: crate::dto::timestamp(record.promised_by_unix_ms),
        promised_by_local: local_time_text(
            record.promised_by_unix_ms,
            record.allocation.time_zone.as_deref().or(record.destination.time_zone.as_deref()),
        ),
        first_promised_by: record.first_promised_by_unix_ms.map(crate::dto::timestamp),
        latest_delivery_at: record.latest_delivery_unix_ms.map(crate::dto::timestamp),
        placed_at: crate::dto::timestamp(record.placed_unix_ms),
        delivered_at: record.delivered_unix_ms.map(crate::dto::timestamp),
        arrived_at: record.arrived_unix_ms.map(crate::dto::timestamp),
        updated_at: crate::dto::timestamp(record.updated_unix_ms),
        reservation: record.reservation.name().into(),
        hold_expires_at: record.hold_expires_unix_ms.map(crate::dto::timestamp),
        // An order back at `accepted` (flagged: a recall or a count took its stock) holds none:
        // the shipments of its voided allocation are not shown as if they still stood.
        shipments: record
            .allocation
            .shipments
            .iter()
            .filter(|_| record.status != OrderStatus::Accepted)
            .map(|shipment| ShipmentView {
                from: shipment.site.clone(),
                delivering_site: shipment.delivering_site.clone(),
                lane: shipment.lane.clone(),
                lane_departure_at: shipment.lane_departure_unix_ms.map(crate::dto::timestamp),
                pick_from: crate::dto::timestamp(shipment.pick_from_unix_ms),
                ready_at: crate::dto::timestamp(shipment.ready_unix_ms),
                last_mile_departure_at: crate::dto::timestamp(shipment.last_mile_departure_unix_ms),
                last_mile_km: shipment.last_mile_km,
                promised_by: crate::dto::timestamp(shipment.promised_by_unix_ms),
                cost_cents: shipment.cost_cents,
                sscc: shipment.sscc.clone(),
                picks: shipment
                    .picks
                    .iter()
                    .map(|pick| PickView {
                        line: pick.line,
                        gtin: lines.get(pick.line).map(|line| line.gtin.clone()).unwrap_or_default(),
                        zone: pick.zone.clone(),
                        lot: pick.lot.clone(),
                        expiry: pick.expiry.clone(),
                        quantity: pick.quantity,
                        shipped: pick.shipped,
                    })
                    .collect(),
            })
            .collect(),
        allocation: DecisionView {
            rule: record.allocation.rule.clone(),
            candidates_considered: record.allocation.candidates_considered,
            candidates: record
                .allocation
                .candidates
                .iter()
                .map(|candidate| CandidateView {
                    site: candidate.site.clone(),
                    outcome: candidate.outcome.clone(),
                    cost_cents: candidate.cost_cents,
                    promised_by: candidate.promised_by_unix_ms.map(crate::dto::timestamp),
                    eligible_units: candidate.eligible_units.clone(),
                    reason: candidate.reason.clone(),
                })
                .collect(),
        },
        flags: record.allocation.flags.clone(),
        events: events
            .iter()
            .map(|event| OrderEventView {
                seq: event.seq,
                status: event.status.name().into(),
                detail: event.detail.clone(),
                at: crate::dto::timestamp(event.at_unix_ms),
            })
            .collect(),
    }
}

fn parse_service(checker: &mut Checker, pointer: &str, text: &str) -> Option<Service> {
    match Service::VALUES.iter().find(|(name, _)| *name == text) {
        Some((_, service)) => Some(*service),
        None => {
            checker.fail(pointer, "must be standard, next_day, same_day or express_12h");
            None
        }
    }
}

fn check_destination(checker: &mut Checker, input: &DestinationInput) -> Option<OrderDestination> {
    let pickup =
        input.pickup_point.as_deref().and_then(|text| checker.check("/destination/pickup_point", Gln::parse(text)));
    let has_coordinates = input.latitude.is_some() || input.longitude.is_some() || input.time_zone.is_some();
    if input.pickup_point.is_some() == has_coordinates {
        checker.fail("/destination", "give either pickup_point, or latitude, longitude and time_zone");
        return None;
    }
    let area = checker.optional_text("/destination/area", &input.area, 100);
    if input.pickup_point.is_some() {
        return pickup.map(|gln| OrderDestination {
            pickup_point: Some(gln.to_string()),
            latitude_degrees: None,
            longitude_degrees: None,
            time_zone: None,
            area,
        });
    }
    let (Some(latitude), Some(longitude), Some(zone)) = (input.latitude, input.longitude, input.time_zone.as_deref())
    else {
        checker.fail("/destination", "latitude, longitude and time_zone go together");
        return None;
    };
    let coordinates = checker.check("/destination/latitude", network::Coordinates::new(latitude, longitude));
    let zone = checker.check("/destination/time_zone", network::TimeZoneName::parse(zone));
    coordinates.zip(zone).map(|(coordinates, zone)| {
        let (latitude, longitude) = kept_coordinates(&coordinates);
        OrderDestination {
            pickup_point: None,
            latitude_degrees: Some(latitude),
            longitude_degrees: Some(longitude),
            time_zone: Some(zone.as_str().to_owned()),
            area,
        }
    })
}

/// A destination's coordinates as an order keeps them: rounded to 0.001° (about 100 m), enough
/// to route, not a doorstep. `GET /v1/promise` routes to the same point, so it answers what
/// placing the order would.
fn kept_coordinates(coordinates: &network::Coordinates) -> (f64, f64) {
    let round = |degrees: f64| (degrees * 1000.0).round() / 1000.0;
    (round(coordinates.latitude_degrees()), round(coordinates.longitude_degrees()))
}

fn check_lines(checker: &mut Checker, lines: &[OrderLineInput]) -> Vec<Line> {
    if lines.is_empty() || lines.len() > ORDER_LINES_MAX {
        checker.fail("/lines", format!("1 to {ORDER_LINES_MAX} lines"));
    }
    let mut seen: Vec<(Gtin, usize)> = Vec::with_capacity(lines.len());
    lines
        .iter()
        .enumerate()
        .filter_map(|(index, line)| {
            let gtin = checker.check(&format!("/lines/{index}/gtin"), Gtin::parse(&line.gtin));
            let quantity = check_quantity(checker, &format!("/lines/{index}/quantity"), line.quantity);
            // One line a product: its units are one quantity, allocated and counted once.
            if let Some(gtin) = &gtin {
                match seen.iter().find(|(known, _)| known == gtin) {
                    Some((_, first)) => checker.fail(
                        &format!("/lines/{index}/gtin"),
                        format!("GTIN {gtin} is on line {first} already: one line a product, with all its units"),
                    ),
                    None => seen.push((gtin.clone(), index)),
                }
            }
            Some(Line { gtin: gtin?, quantity: quantity? })
        })
        .collect()
}

/// Places an order: allocates it (which sites, zones and lots: FEFO, temperature, lanes, last
/// mile, splits, cost) and reserves every line, or refuses it whole (409 `insufficient-stock`).
#[utoipa::path(post, path = "/v1/orders", tag = "fulfilment", request_body = OrderInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = OrderView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn place_order(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<OrderInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    if principal.tenant_id.is_network() {
        return Err(Problem::new("forbidden", "orders are placed by merchants: use a tenant key"));
    }
    let input = body.value;
    let mut checker = Checker::default();
    let lines = check_lines(&mut checker, &input.lines);
    let destination = check_destination(&mut checker, &input.destination);
    let service = parse_service(&mut checker, "/service", &input.service);
    let latest = parse_time(&mut checker, "/latest_delivery_at", &input.latest_delivery_at);
    if let Some(hold) = input.hold_seconds {
        checker.bounded("/hold_seconds", hold, 1, HOLD_SECONDS_MAX);
    }
    checker.finish()?;
    let (Some(destination), Some(service)) = (destination, service) else { return Err(Problem::internal("order")) };
    let order = PlaceOrder {
        order_id: new_id("ord"),
        lines,
        destination,
        service,
        latest_delivery_unix_ms: latest,
        hold_ms: input.hold_seconds.map(|seconds| seconds as i64 * 1000),
    };
    let respond = |applied: &Applied| match applied.outcome.as_deref() {
        Some(FulfilmentOutcome::Order(order)) => StoredResponse { status: 201, body: placed_answer(order) },
        _ => StoredResponse { status: 500, body: Vec::new() },
    };
    let mutation = Mutation::Fulfilment(FulfilmentMutation::PlaceOrder(Box::new(order)));
    let written =
        write(&app, principal, key, Some(body.request_sha256), principal.tenant_id.clone(), mutation, respond).await?;
    Ok(written.into_created_response(respond, "/v1/orders", "order_id"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrderListParams {
    /// Only orders in this status.
    pub status: Option<String>,
    pub tenant: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-500 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    pub next_cursor: Option<String>,
}

/// Orders in order id order: oldest first for the ids the API gives (they start with the time);
/// the demo's named orders (`ord_demo_…`) sort by their names.
#[utoipa::path(get, path = "/v1/orders", tag = "fulfilment", params(OrderListParams), responses((status = 200, body = OrderPage)))]
async fn list_orders(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<OrderListParams>,
) -> Result<Json<OrderPage>, Problem> {
    let (_, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let status = params
        .status
        .as_deref()
        .map(|text| {
            OrderStatus::parse(text)
                .ok_or_else(|| Problem::field("invalid-parameter", "?status", "not an order status"))
        })
        .transpose()?;
    let (after, limit) = crate::api::keyed_page_request(params.cursor.as_deref(), params.limit)?;
    let mut orders = app.store.tenant(&tenant).orders(status, after.as_deref(), limit + 1).await?;
    let next_cursor = crate::api::keyed_page(&mut orders, limit, |order| &order.order_id);
    Ok(Json(OrderPage { items: orders.iter().map(|order| order_view(order, &[])).collect(), next_cursor }))
}

/// An order with its shipments, the allocation's reasons and its history.
#[utoipa::path(get, path = "/v1/orders/{order_id}", tag = "fulfilment", params(("order_id" = String, Path), TenantParam),
    responses((status = 200, body = OrderView), (status = 404, body = Problem)))]
async fn get_order(
    State(app): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
    QueryParams(params): QueryParams<TenantParam>,
) -> Result<Json<OrderView>, Problem> {
    let (_, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let store = app.store.tenant(&tenant);
    let order = store.order(&order_id).await?.ok_or_else(|| Problem::not_found(format!("order {order_id}")))?;
    let events = store.order_events(&order_id).await?;
    Ok(Json(order_view(&order, &events)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderEventInput {
    /// The new status: allocated (again, after a recall), picking, packed, shipped,
    /// out_for_delivery, at_pickup_point, delivered, cancelled, returned.
    pub status: String,
    /// `packed`: one SSCC per shipment, in the order of `shipments`.
    pub ssccs: Option<Vec<String>>,
    /// `shipped`: units shipped per pick (in the order of the shipments' picks); a short pick
    /// ships fewer and releases the rest. Default: every reserved unit.
    pub shipped: Option<Vec<i64>>,
    /// `returned`: units back in stock per pick (in the order of the shipments' picks), each at
    /// most what the pick shipped. They go back into the balance they were picked from, with
    /// the lot's status there: scrap, or hold, what cannot be sold again. Default: none (the
    /// units left the stock when they shipped).
    pub restocked: Option<Vec<i64>>,
    /// `returned`: the zone, at each pick's site, the restocked units go into instead of the
    /// zone each was picked from: a returns area kept apart until they are checked, say (it must
    /// keep the product's temperature class).
    pub restock_zone: Option<String>,
    /// `returned`: `available` or `quarantine`, the status the restocked units take (GDP:
    /// returned goods wait in quarantine for a decision; release them with
    /// `POST /v1/stock/lot-status` naming the location and zone). A balance holds one status:
    /// `quarantine` asked into an available balance is refused (409 `lot-conflict`) unless it is
    /// empty and in `restock_zone`, when it takes it. A balance in quarantine, on hold or expired keeps
    /// its status (`available` asked into it comes in so), and units of a recalled lot come back
    /// `recalled`. The order's history says the statuses they took. Default: `available`.
    pub restock_status: Option<String>,
    /// When the step happened (RFC 3339; default now), for a scanner that uploads late: not
    /// before the order was placed, at most 5 minutes ahead of the server's clock. It times the
    /// step's EPCIS events and, for `at_pickup_point` and `delivered`, the order's arrival (the
    /// SLA); the order's history and webhooks say when the step was recorded.
    pub at: Option<String>,
}

/// Moves an order on. The physical steps (picking to returned) take an operator key, for the
/// operator's systems and couriers; a courier's own key (`?tenant=` the order's merchant) hands
/// over the order's stops on the courier's current route (`delivered` or `at_pickup_point`) and
/// answers as `POST /v1/routes/{id}/stops/{seq}/delivered` does (the route and the order's
/// status, not the merchant's order); a merchant key may cancel an order or have it allocated
/// again (403 `forbidden` otherwise). Checked: nothing ships before it is packed; an order to a pickup
/// point arrives there (`at_pickup_point`) before it is collected (`delivered`); cancelling releases
/// the stock; shipping posts the reservation; a return restocks what it lists.
#[utoipa::path(post, path = "/v1/orders/{order_id}/events", tag = "fulfilment", request_body = OrderEventInput,
    params(("order_id" = String, Path), TenantParam, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 200, body = OrderView, description = "The order; to a courier's hand-over, the route's answer (`DeliveredView`)"),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn order_event(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(order_id): Path<String>,
    QueryParams(params): QueryParams<TenantParam>,
    body: JsonBody<OrderEventInput>,
) -> Result<Response, Problem> {
    // A courier hands the orders of their route over; anyone else acts as the tenant (an
    // operator key names it).
    let courier = crate::dispatch::is_courier(&caller.0);
    let acting = if courier { None } else { Some(acting_tenant(&app, &caller, params.tenant.as_deref(), true).await?) };
    let input = body.value;
    let mut checker = Checker::default();
    let to = OrderStatus::parse(&input.status).filter(|status| *status != OrderStatus::Accepted);
    if to.is_none() {
        checker.fail("/status", "not a status an order can be moved to");
    }
    if input.ssccs.is_some() && to != Some(OrderStatus::Packed) {
        checker.fail("/ssccs", "only with status packed");
    }
    let listed = input.ssccs.as_deref().unwrap_or_default();
    let short_enough = checker.list("/ssccs", listed, 0, orders::SHIPMENTS_MAX);
    let mut seen = HashSet::new();
    let ssccs: Vec<Sscc> = listed
        .iter()
        .enumerate()
        .take_while(|_| short_enough)
        .filter_map(|(index, text)| {
            if !seen.insert(text.as_str()) {
                checker.fail(&format!("/ssccs/{index}"), "appears twice: one pallet per shipment");
            }
            checker.check(&format!("/ssccs/{index}"), Sscc::parse(text))
        })
        .collect();
    // Units per pick: what shipped, or what came back into stock.
    for (field, list, status) in
        [("shipped", &input.shipped, OrderStatus::Shipped), ("restocked", &input.restocked, OrderStatus::Returned)]
    {
        let Some(list) = list else { continue };
        if to.is_some_and(|to| to != status) {
            checker.fail(&format!("/{field}"), format!("only with status {}", status.name()));
        }
        for (index, units) in list.iter().enumerate() {
            if !(0..=QUANTITY_MAX).contains(units) {
                checker.fail(&format!("/{field}/{index}"), format!("must be 0..={QUANTITY_MAX}"));
            }
        }
    }
    let restock_zone =
        input.restock_zone.as_deref().and_then(|text| checker.check("/restock_zone", ZoneName::parse(text)));
    let restock_status = match input.restock_status.as_deref().map(LotStatus::parse) {
        None => None,
        Some(Some(status @ (LotStatus::Available | LotStatus::Quarantine))) => Some(status),
        Some(_) => {
            checker.fail("/restock_status", "must be available or quarantine");
            None
        }
    };
    for (field, given) in
        [("restock_zone", input.restock_zone.is_some()), ("restock_status", input.restock_status.is_some())]
    {
        if given && (to != Some(OrderStatus::Returned) || input.restocked.is_none()) {
            checker.fail(&format!("/{field}"), "only with status returned and the units restocked");
        }
    }
    let restock_to = (input.restock_zone.is_some() || input.restock_status.is_some()).then(|| {
        store::fulfilment::RestockTo { zone: restock_zone.map(|zone| zone.as_str().to_owned()), status: restock_status }
    });
    // A shipment of nothing is not one: an order none of whose units can go is cancelled.
    if let Some(shipped) = &input.shipped
        && shipped.iter().all(|units| *units == 0)
    {
        checker.fail("/shipped", "no unit shipped: cancel the order instead");
    }
    let happened_unix_ms = parse_time(&mut checker, "/at", &input.at);
    let now_unix_ms = store::now_unix_ms();
    if happened_unix_ms.is_some_and(|at| at > now_unix_ms + crate::dispatch::DELIVERED_AT_SKEW_MS_MAX) {
        checker.fail("/at", "lies ahead of now (by more than 5 minutes)");
    }
    checker.finish()?;
    let to = to.ok_or_else(|| Problem::internal("status"))?;
    if happened_unix_ms.is_some() && courier {
        return Err(Problem::field(
            "validation-failed",
            "/at",
            "a courier times a hand-over with POST /v1/routes/{id}/stops/{seq}/delivered",
        ));
    }
    let Some((principal, tenant)) = acting else {
        let tenant = named_tenant(params.tenant.as_deref())?;
        return crate::dispatch::courier_order_event(&app, &caller.0, &tenant, &order_id, to).await;
    };
    // The physical steps are recorded by the operator's systems and couriers, whose events the
    // trace shows consumers; a merchant cancels an order or has it allocated again.
    if !caller.0.is_operator() && !matches!(to, OrderStatus::Allocated | OrderStatus::Cancelled) {
        return Err(Problem::new(
            "forbidden",
            format!(
                "{} is a step of the operator's systems and couriers (an operator key with ?tenant=, or the courier's \
                 key for the hand-over); a merchant key may cancel an order or have it allocated again",
                to.name()
            ),
        ));
    }
    let units = input.shipped.or(input.restocked);
    // The order as the step left it, with its whole history: stored with the step, so a retry
    // replays this very answer.
    let respond = |applied: &Applied| match applied.outcome.as_deref() {
        Some(FulfilmentOutcome::Stepped { order, history }) => {
            StoredResponse { status: 200, body: json_bytes(&order_view(order, history)) }
        }
        _ => StoredResponse { status: 500, body: Vec::new() },
    };
    // A lot recalled between the read a return's events are built from and the write: they are
    // built again (the writer checks which lots come back recalled).
    let mut attempts_left = STEP_ATTEMPTS_MAX;
    loop {
        let read = app.store.tenant(&tenant).order(&order_id).await?;
        let mutation = match &read {
            Some(order) => {
                // Only a time the step says (the batch clock that timed the order may run a
                // little ahead of this node's); one a little ahead of now is now, for the events
                // and the arrival alike.
                if let Some(at) = happened_unix_ms
                    && at < order.placed_unix_ms
                {
                    return Err(Problem::field(
                        "validation-failed",
                        "/at",
                        format!("lies before the order was placed ({})", crate::dto::timestamp(order.placed_unix_ms)),
                    ));
                }
                let happened_unix_ms = happened_unix_ms.map(|at| at.min(now_unix_ms));
                let at = match happened_unix_ms {
                    Some(at) => jiff::Timestamp::from_millisecond(at).map_err(Problem::internal)?,
                    None => jiff::Timestamp::now(),
                };
                // The arrival the SLA measures: when the parcel was handed over, if said.
                let handed_over =
                    happened_unix_ms.filter(|_| matches!(to, OrderStatus::AtPickupPoint | OrderStatus::Delivered));
                let zones = crate::steps::SiteZones::of_order(&app.store, order).await?;
                let recalled = if to == OrderStatus::Returned && units.is_some() {
                    recalled_lots_of(&app, &tenant, order).await?
                } else {
                    BTreeSet::new()
                };
                let at = (at, happened_unix_ms.is_some());
                let (units, restock_to) = (units.clone(), restock_to.clone());
                order_step_write(
                    &tenant,
                    order,
                    to,
                    ssccs.clone(),
                    (units, restock_to),
                    &recalled,
                    at,
                    handed_over,
                    None,
                    &zones,
                )?
            }
            // The writer answers not found.
            None => Mutation::Fulfilment(FulfilmentMutation::OrderEvent {
                order_id: order_id.clone(),
                event_id: to.name().to_owned(),
                to,
                ssccs: ssccs.clone(),
                units: units.clone(),
                expected_reservation: None,
                expected_status: None,
                handed_over_unix_ms: None,
                restock_to: restock_to.clone(),
                recalled: None,
                happened: store::fulfilment::StepTime::Recorded(now_unix_ms),
            }),
        };
        attempts_left -= 1;
        let request_sha256 = Some(body.request_sha256);
        match write(&app, principal, key.clone(), request_sha256, tenant.clone(), mutation, respond).await {
            Err(problem) if problem.detail == store::fulfilment::RECALLED_MEANWHILE && attempts_left > 0 => continue,
            written => return Ok(written?.into_response(respond)),
        }
    }
}

/// The order's lots (GTIN, lot) that are recalled, read afresh (a return's events say which of
/// its units come back recalled).
async fn recalled_lots_of(
    app: &AppState,
    tenant: &TenantId,
    order: &OrderRecord,
) -> Result<BTreeSet<(String, String)>, Problem> {
    let lots: BTreeSet<(String, String)> = order
        .allocation
        .shipments
        .iter()
        .flat_map(|shipment| &shipment.picks)
        .filter_map(|pick| order.lines.get(pick.line).map(|line| (line.gtin.clone(), pick.lot.clone())))
        .collect();
    let mut recalled = BTreeSet::new();
    for (gtin, lot) in lots {
        if app.store.tenant(tenant).recall_of_lot(&gtin, &lot).await?.is_some() {
            recalled.insert((gtin, lot));
        }
    }
    Ok(recalled)
}

/// The write that moves `order` to `to` with the step's EPCIS events (of every shipment, or of
/// `only_shipments`); `units` per pick are what shipped (`shipped`) or came back into stock
/// (`returned`). The events are built from the order as read now and captured with the
/// step; the writer refuses the step if a recall allocated the order again meanwhile; `restock_to`:
/// where a return's units go, if not back where they were picked; `recalled`: the order's lots
/// (GTIN, lot) recalled as read now, whose restocked units the return's events record as
/// `recalled` (the writer refuses the step if others are recalled when it applies);
/// `at`: when the step happened,
/// and whether its sender said so (then checked against the order's last step, see
/// `store::fulfilment::StepTime`). Used by the order events endpoint, dispatch and the demo.
#[allow(clippy::too_many_arguments)]
pub fn order_step_write(
    tenant: &TenantId,
    order: &OrderRecord,
    to: OrderStatus,
    ssccs: Vec<Sscc>,
    (units, restock_to): (Option<Vec<i64>>, Option<store::fulfilment::RestockTo>),
    recalled: &BTreeSet<(String, String)>,
    (at, said): (jiff::Timestamp, bool),
    handed_over_unix_ms: Option<i64>,
    only_shipments: Option<&[usize]>,
    zones: &crate::steps::SiteZones,
) -> Result<Mutation, Problem> {
    let listed: Vec<String> = ssccs.iter().map(|sscc| sscc.to_string()).collect();
    let restock_zone = restock_to.as_ref().and_then(|to| to.zone.as_deref());
    // A return's restocked lots that are recalled (sorted), by the units per pick.
    let recalled_back: Option<Vec<(String, String)>> =
        units.as_deref().filter(|_| to == OrderStatus::Returned).map(|units| {
            let picks = order.allocation.shipments.iter().flat_map(|shipment| &shipment.picks);
            let mut lots: Vec<(String, String)> = picks
                .zip(units)
                .filter(|(_, units)| **units > 0)
                .filter_map(|(pick, _)| order.lines.get(pick.line).map(|line| (line.gtin.clone(), pick.lot.clone())))
                .filter(|lot| recalled.contains(lot))
                .collect();
            lots.sort_unstable();
            lots.dedup();
            lots
        });
    let recalled_classes: BTreeSet<String> = recalled_back
        .iter()
        .flatten()
        .map(|(gtin, lot)| crate::steps::lot_class(gtin, lot))
        .collect::<Result<_, _>>()?;
    let mut events = crate::steps::order_step(
        tenant,
        order,
        to,
        &listed,
        (units.as_deref(), restock_zone, &recalled_classes),
        at,
        only_shipments,
        zones,
    )?;
    // An SSCC names one pallet for good (GS1: not reused within a year): one the network's
    // events already name is refused, unless it is a pallet of this order's allocation (a
    // retry). A pallet a recall unpacked is done: packing again takes a new SSCC, so the
    // recalled lot's trace does not follow the new pallet. The writer decides it with the
    // packing's events, so two packings of one SSCC at the same moment cannot both pass.
    if let Some(capture) = &mut events {
        let own: Vec<&str> = order.allocation.own_ssccs().collect();
        for (index, sscc) in listed.iter().enumerate().filter(|(_, sscc)| !own.contains(&sscc.as_str())) {
            capture.premises.push(store::epcis::Premise::Unnamed {
                identifier: crate::steps::pallet_link(sscc)?,
                field: format!("/ssccs/{index}"),
                detail: format!("SSCC {sscc} already names another pallet in the network's events"),
            });
        }
    }
    let change = FulfilmentMutation::OrderEvent {
        order_id: order.order_id.clone(),
        event_id: to.name().to_owned(),
        to,
        ssccs,
        units,
        expected_reservation: Some(order.reservation_id.clone()),
        // The events were built for the order as read: a step that moved it meanwhile refuses.
        expected_status: Some(order.status),
        handed_over_unix_ms,
        restock_to,
        recalled: recalled_back,
        happened: if said {
            store::fulfilment::StepTime::Said(at.as_millisecond())
        } else {
            store::fulfilment::StepTime::Recorded(at.as_millisecond())
        },
    };
    Ok(Mutation::fulfilment_step(change, events))
}

// ---------- promise ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PromiseParams {
    pub gtin: String,
    pub qty: i64,
    /// A pickup point's GLN, or `latitude,longitude`.
    pub to: String,
    /// The time zone of coordinates in `to` (required with them; refused with a pickup point, which has its own).
    pub tz: Option<String>,
    /// The merchant an operator key asks for.
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServicePromise {
    pub service: String,
    pub available: bool,
    pub promised_by: Option<String>,
    pub promised_by_local: Option<String>,
    pub ships_from: Vec<String>,
    /// Why not, when not available.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PromiseView {
    pub gtin: String,
    pub quantity: i64,
    pub services: Vec<ServicePromise>,
}

/// Available-to-promise: for each service, whether the quantity can be delivered to the
/// destination and by when, on the stock as it is now (nothing is reserved).
#[utoipa::path(get, path = "/v1/promise", tag = "fulfilment", params(PromiseParams), responses((status = 200, body = PromiseView), (status = 400, body = Problem)))]
async fn promise(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<PromiseParams>,
) -> Result<Json<PromiseView>, Problem> {
    let (_, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let gtin =
        Gtin::parse(&params.gtin).map_err(|error| Problem::field("invalid-parameter", "?gtin", error.to_string()))?;
    if !(1..=QUANTITY_MAX).contains(&params.qty) {
        return Err(Problem::field("invalid-parameter", "?qty", format!("must be 1..={QUANTITY_MAX}")));
    }
    let inputs = app.store.tenant(&tenant).allocation_inputs(std::slice::from_ref(&gtin)).await?;
    if !inputs.products.iter().any(|product| product.gtin == gtin) {
        return Err(Problem::field("invalid-parameter", "?gtin", format!("{gtin} is not a product of this merchant")));
    }
    let (destination, zone_name) = match params.to.split_once(',') {
        Some((latitude, longitude)) => {
            let coordinates = latitude
                .trim()
                .parse::<f64>()
                .ok()
                .zip(longitude.trim().parse::<f64>().ok())
                .and_then(|(latitude, longitude)| network::Coordinates::new(latitude, longitude).ok())
                .ok_or_else(|| Problem::field("invalid-parameter", "?to", "latitude,longitude in degrees"))?;
            // Where an order to these coordinates would be routed to.
            let (latitude, longitude) = kept_coordinates(&coordinates);
            let coordinates = network::Coordinates::new(latitude, longitude).map_err(Problem::internal)?;
            // As for an order to coordinates: the day of `same_day` and `next_day` is the
            // destination's, so its time zone is not guessed.
            let zone_name = params.tz.clone().ok_or_else(|| {
                Problem::field(
                    "invalid-parameter",
                    "?tz",
                    "required with coordinates in ?to: the destination's IANA time zone",
                )
            })?;
            // Checked as an order's `/destination/time_zone` is.
            let zone = network::TimeZoneName::parse(&zone_name)
                .map_err(|error| Problem::field("invalid-parameter", "?tz", error.to_string()))?;
            (orders::Destination { coordinates, time_zone: zone.zone().clone() }, zone_name)
        }
        None => {
            if params.tz.is_some() {
                return Err(Problem::field(
                    "invalid-parameter",
                    "?tz",
                    "only with coordinates in ?to: a pickup point's time zone is its own",
                ));
            }
            let gln = Gln::parse(&params.to)
                .map_err(|error| Problem::field("invalid-parameter", "?to", error.to_string()))?;
            let site = inputs.sites.iter().find(|site| site.gln == gln).ok_or_else(|| {
                Problem::field("invalid-parameter", "?to", format!("no location {gln} in the network"))
            })?;
            if !site.kind.is_collection_point() {
                return Err(Problem::field(
                    "invalid-parameter",
                    "?to",
                    format!("{gln} is a {}, not a pickup point, store or pharmacy", site.kind.name()),
                ));
            }
            let destination =
                orders::Destination { coordinates: site.coordinates, time_zone: site.time_zone.zone().clone() };
            (destination, site.time_zone.as_str().to_owned())
        }
    };
    let lines = [Line { gtin: gtin.clone(), quantity: params.qty }];
    let now = jiff::Timestamp::now().as_millisecond();
    let mut services = Vec::new();
    for (name, service) in Service::VALUES {
        let request = orders::OrderRequest {
            lines: &lines,
            products: &inputs.products,
            destination: &destination,
            service,
            placed_unix_ms: now,
            window_from_unix_ms: now,
            latest_delivery_unix_ms: None,
        };
        let view = orders::NetworkView { sites: &inputs.sites, lanes: &inputs.lanes };
        services.push(match orders::allocate(view, &inputs.lots, &request) {
            Ok(allocation) => ServicePromise {
                service: name.into(),
                available: true,
                promised_by: Some(crate::dto::timestamp(allocation.promised_by_unix_ms)),
                promised_by_local: local_time_text(allocation.promised_by_unix_ms, Some(&zone_name)),
                ships_from: allocation.shipments.iter().map(|shipment| shipment.site.to_string()).collect(),
                reason: None,
            },
            Err(error) => ServicePromise {
                service: name.into(),
                available: false,
                promised_by: None,
                promised_by_local: None,
                ships_from: Vec::new(),
                reason: Some(match error {
                    orders::AllocationError::Short { shortages, .. } => format!(
                        "{} of {} units eligible at sites that deliver {name} in time",
                        shortages.first().map(|shortage| shortage.eligible).unwrap_or(0),
                        params.qty
                    ),
                    other => other.to_string(),
                }),
            },
        });
    }
    Ok(Json(PromiseView { gtin: gtin.to_string(), quantity: params.qty, services }))
}

// ---------- recalls ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallInput {
    pub gtin: String,
    /// The lots recalled: 1 to 100, each once.
    #[schema(min_items = 1, max_items = 100)]
    pub lots: Vec<String>,
    pub reason: String,
    /// What consumers are told, in the brand's words (at most 500 characters, one paragraph):
    /// what the danger is and what to do. The provenance page shows it under "Recalled", and
    /// beside the lot on the pages of lots made from it; `/recall-status` and the till's
    /// `/v1/scan` answer it. `reason` stays the brand's own.
    #[schema(max_length = 500)]
    #[serde(default)]
    pub public_notice: Option<String>,
    /// Also put the tenant's own lots made from these (`derived_lots` with `own_product`, not
    /// recalled) on `hold` in every balance where they are available or in quarantine, in the
    /// same write: no order takes them any more, and the orders holding units of them do not
    /// ship until each is released (`POST /v1/stock/lot-status`; a release to `available`
    /// lifts the hold, and a balance that was in quarantine goes back to quarantine: its check
    /// still waits) or recalled. The hold is kept for the lot: a pallet of it received later (one
    /// still on an ASN, say) into a zone where it has no balance comes in on hold too (asked
    /// into quarantine, its quarantine kept under the hold, as are units moved from it), until
    /// the whole lot is made available again (a release naming no location). Default false.
    #[serde(default)]
    pub hold_derived: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AffectedOrder {
    pub order_id: String,
    pub status: String,
    /// What this recall found or did: `reallocated` (allocated again from other lots),
    /// `flagged` (no other stock: back to `accepted`), `shipped` (units of the lots left with it
    /// and did not all come back), `returned` (its parcel came back, with every unit shipped,
    /// though its return may have restocked fewer: `units_returned`), `released` (it
    /// held units of the lots once and gave them up unshipped: cancelled, or allocated again
    /// after an earlier recall). Read back, a recall made before Keten kept what it did to each
    /// order says `unknown` where it would say `released`: it may have taken the order back.
    pub outcome: String,
    /// Units of the recalled lots it shipped.
    pub units_shipped: i64,
    /// Units of the recalled lots its returns put back into stock (a parcel back whole may put
    /// back fewer: the rest were not to be sold again).
    pub units_returned: i64,
    pub destination: DestinationInput,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboundPallet {
    pub asn_id: String,
    pub sscc: String,
    pub location: String,
    pub lot: String,
    /// When it was received; absent for a pallet announced and not (yet) received.
    pub received_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecallView {
    pub recall_id: String,
    pub gtin: String,
    pub lots: Vec<String>,
    pub reason: String,
    /// What consumers are told; null when the recall says nothing to them (the page then says
    /// only that the lot is recalled).
    pub public_notice: Option<String>,
    pub recalled_at: String,
    /// Forward: every order that took units of the lots.
    pub affected_orders: Vec<AffectedOrder>,
    /// Forward: where the lots are within consumers' reach: the pickup points orders shipped
    /// units of them, or of lots made from them, to (not all taken back), and the collection
    /// points (pickup points, stores, pharmacies) their events took place at.
    pub pickup_points: Vec<String>,
    /// Backward: the pallets that brought the lots in, and the product's supplier.
    pub inbound_pallets: Vec<InboundPallet>,
    pub supplier_party_id: Option<String>,
    /// Backward and forward in EPCIS: every event of the lots' traces (from the farm to the
    /// pickup points), oldest first, with its place.
    pub history: Vec<HistoryEntry>,
    /// Forward through transformations: the lots the EPCIS traces show made from the recalled
    /// ones (at any remove), by GTIN and lot, with the tenant's orders and stock of them. This
    /// recall does not recall them: each is recalled by its own `POST /v1/recalls`.
    pub derived_lots: Vec<DerivedLot>,
    /// Forward through transformations: the serialised items (GTIN and serial) the traces show
    /// made from the recalled lots. The event record keeps an item's serial, not its lot, so
    /// they are listed apart, without stock or orders.
    pub derived_items: Vec<DerivedItem>,
    /// Backward through transformations: the lots the EPCIS traces show the recalled ones made
    /// from (at any remove), by GTIN and lot, each with its product and brand where the network
    /// knows them, and its brand's recall of it, if any: where to look for the cause.
    pub source_lots: Vec<SourceLot>,
    /// A lot's trace reached one of its limits (`server::trace::TRACE_*`), or the derived lots,
    /// items or source lots theirs ([`RECALL_DERIVED_LOTS_MAX`] each): `history`,
    /// `derived_lots`, `derived_items`, `source_lots`, and the collection points in
    /// `pickup_points` seen only in them, are not complete (the recalled lots' orders and their
    /// pickup points, from the ledger, are).
    pub history_truncated: bool,
}

/// A lot that recalled lots were made from (an input of an EPCIS transformation whose outputs
/// they were, or an input of such an input).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceLot {
    pub gtin: String,
    pub lot: String,
    /// The recalled lots made from it, sorted.
    pub used_in: Vec<String>,
    /// The product's public name, when the network holds the GTIN.
    pub product: Option<String>,
    /// Its brand (or the party that makes it), when known.
    pub brand: Option<String>,
    /// Whether the GTIN is the recalling tenant's own.
    pub own_product: bool,
    /// Its brand's recall of it, if it is recalled.
    pub recall_id: Option<String>,
}

/// A serialised item made from recalled lots.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DerivedItem {
    /// The item's identifier (a GS1 Digital Link with its serial).
    pub item: String,
    pub gtin: String,
    /// The recalled lots it was made from, sorted.
    pub made_from: Vec<String>,
}

/// The most lots made from recalled ones that a recall's answer lists (the tenant's own products
/// first, each of those read from the ledger), and the most such items; beyond either the
/// answer says `history_truncated`.
pub const RECALL_DERIVED_LOTS_MAX: usize = 200;

/// A lot made from recalled lots (an output of an EPCIS transformation whose inputs they were,
/// or an output of such an output).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DerivedLot {
    pub gtin: String,
    pub lot: String,
    /// The recalled lots it was made from, sorted.
    pub made_from: Vec<String>,
    /// Whether the GTIN is one of the recalling tenant's products: only then are its stock and
    /// orders in this answer (another brand's product is theirs to recall).
    pub own_product: bool,
    /// The recall it is under already, if any.
    pub recall_id: Option<String>,
    /// Units of it the tenant holds, at every site and status.
    pub units_on_hand: i64,
    /// Of those, the units on `hold` (where a recall with `hold_derived` puts them).
    pub units_on_hold: i64,
    /// The tenant's orders that took units of it, by id.
    pub orders: Vec<DerivedOrder>,
}

/// An order that took units of a lot made from recalled ones, as it is now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DerivedOrder {
    pub order_id: String,
    pub status: String,
    /// Units of the derived lot it shipped.
    pub units_shipped: i64,
    /// Units of the derived lot its returns took back.
    pub units_returned: i64,
    pub destination: DestinationInput,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub lot: String,
    pub at: Option<String>,
    pub business_step: Option<String>,
    pub place: Option<String>,
    /// For an event that does not name the lot itself: the identifier the lot's trace reached
    /// it through (the pallet that held units of the lot, or what they were made from or into).
    /// Such an event may concern the other units of that pallet only.
    pub through: Option<String>,
}

/// What the EPCIS traces of recalled lots show.
struct LotTraces {
    /// Lot by lot, in time order (a recall's answer reads it before the recall and adds its own
    /// events, `history_with_own`).
    history: Vec<HistoryEntry>,
    /// A lot's trace reached one of its limits.
    truncated: bool,
    /// The lots made from them, (GTIN, lot) → the recalled lots they were made from.
    derived: BTreeMap<(String, String), BTreeSet<String>>,
    /// The serialised items made from them (no lot in the record), (identifier, GTIN) → the
    /// recalled lots they were made from.
    derived_items: BTreeMap<(String, String), BTreeSet<String>>,
    /// The lots they were made from (backward), (GTIN, lot) → the recalled lots made from them.
    sources: BTreeMap<(String, String), BTreeSet<String>>,
}

/// The EPCIS history of recalled lots, and the lots made from them.
async fn lot_history(app: &AppState, tenant: &TenantId, gtin: &Gtin, lots: &[String]) -> Result<LotTraces, Problem> {
    let mut history = Vec::new();
    let mut truncated = false;
    let mut derived: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut derived_items: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut sources: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for lot in lots {
        let Ok(start) = crate::trace::lot_identifier(gtin, lot) else { continue };
        let trace = crate::trace::trace(&app.store, tenant, &start).await?;
        truncated |= trace.truncated;
        for (object, reach) in &trace.objects {
            if *reach == epcis::trace::Reach::Origin
                && let Some(Made::Lot(source_gtin, source_lot)) = crate::trace::made(object)
                && !(source_gtin == gtin.as_str() && lots.contains(&source_lot))
            {
                sources.entry((source_gtin, source_lot)).or_default().insert(lot.clone());
            }
            if *reach != epcis::trace::Reach::Product {
                continue;
            }
            match crate::trace::made(object) {
                Some(Made::Lot(made_gtin, made_lot)) if made_gtin == gtin.as_str() && lots.contains(&made_lot) => {}
                Some(Made::Lot(made_gtin, made_lot)) => {
                    derived.entry((made_gtin, made_lot)).or_default().insert(lot.clone());
                }
                Some(Made::Item(made_gtin)) => {
                    derived_items.entry((object.clone(), made_gtin)).or_default().insert(lot.clone());
                }
                None => {}
            }
        }
        let mut events: Vec<_> = trace.events.values().collect();
        events.sort_by_key(|(stored, event)| (event.event_time, stored.seq));
        history.extend(events.into_iter().map(|(_, event)| {
            let through =
                if names_class(event, start.as_str()) {
                    None
                } else {
                    event.all_epcs().chain(event.all_epc_classes()).map(|named| named.as_str()).find(|named| {
                        trace.objects.get(*named).is_some_and(|reach| *reach != epcis::trace::Reach::Start)
                    })
                };
            history_entry(lot, event, through)
        }));
    }
    Ok(LotTraces { history, truncated, derived, derived_items, sources })
}

/// What the traces of recalled lots reached through transformations, for a recall's answer.
#[derive(Debug, Clone)]
struct Reached {
    derived_lots: Vec<DerivedLot>,
    derived_items: Vec<DerivedItem>,
    source_lots: Vec<SourceLot>,
    /// Where units of the derived lots may still be (the pickup points of the orders that
    /// shipped them, not all back), and then the collection points of the lots' events.
    pickup_points: Vec<String>,
    /// A list was cut at [`RECALL_DERIVED_LOTS_MAX`].
    cut: bool,
}

/// What the traces made of recalled lots, and what they were made from, for a recall's answer:
/// the lots made from them (with the tenant's orders and stock of each, its own products only;
/// its own first), the serialised items, and the lots they were made from (with each one's
/// product and its brand's recall), at most [`RECALL_DERIVED_LOTS_MAX`] of each; the pickup
/// points where units of the derived lots may still be.
async fn derived_reach(app: &AppState, tenant: &TenantId, traces: &LotTraces) -> Result<Reached, Problem> {
    let items = traces
        .derived_items
        .iter()
        .take(RECALL_DERIVED_LOTS_MAX)
        .map(|((item, gtin), made_from)| DerivedItem {
            item: item.clone(),
            gtin: gtin.clone(),
            made_from: made_from.iter().cloned().collect(),
        })
        .collect();
    let derived = &traces.derived;
    let store = app.store.tenant(tenant);
    // Whose each GTIN is, in one read.
    let mut gtins: Vec<&str> = derived.keys().map(|(gtin, _)| gtin.as_str()).collect();
    gtins.dedup();
    let owned = store.own_gtins(&gtins).await?;
    let own: HashSet<&str> = gtins.iter().copied().filter(|gtin| owned.contains(*gtin)).collect();
    let mut listed: Vec<_> = derived.iter().collect();
    let cut = listed.len() > RECALL_DERIVED_LOTS_MAX
        || traces.derived_items.len() > RECALL_DERIVED_LOTS_MAX
        || traces.sources.len() > RECALL_DERIVED_LOTS_MAX;
    // The tenant's own first (stable: in GTIN and lot order within each).
    listed.sort_by_key(|((gtin, _), _)| !own.contains(gtin.as_str()));
    listed.truncate(RECALL_DERIVED_LOTS_MAX);
    // The recalls of the tenant's own listed lots, in one read (its own: it holds the GTIN).
    let own_listed: Vec<(String, String)> =
        listed.iter().filter(|((gtin, _), _)| own.contains(gtin.as_str())).map(|(pair, _)| (*pair).clone()).collect();
    let recalls = app.store.lot_recalls(&own_listed).await?;
    let mut found = Vec::new();
    let mut pickup_points = Vec::new();
    for ((gtin, lot), made_from) in listed {
        let mut view = DerivedLot {
            gtin: gtin.clone(),
            lot: lot.clone(),
            made_from: made_from.iter().cloned().collect(),
            own_product: false,
            recall_id: None,
            units_on_hand: 0,
            units_on_hold: 0,
            orders: Vec::new(),
        };
        if own.contains(gtin.as_str()) {
            let of_lot = std::slice::from_ref(lot);
            view.own_product = true;
            view.recall_id = recalls.get(&(gtin.clone(), lot.clone())).map(|recall| recall.recall_id.clone());
            for (status, units) in store.lot_units_by_status(gtin, lot).await? {
                view.units_on_hand += units;
                if status == LotStatus::Hold {
                    view.units_on_hold += units;
                }
            }
            for (order, units) in store.orders_with_lots(gtin, of_lot).await? {
                if units.out_with(order.status)
                    && let Some(point) = &order.destination.pickup_point
                {
                    pickup_points.push(point.clone());
                }
                view.orders.push(DerivedOrder {
                    order_id: order.order_id.clone(),
                    status: order.status.name().into(),
                    units_shipped: units.shipped,
                    units_returned: units.returned,
                    destination: destination_view(&order.destination),
                });
            }
        }
        found.push(view);
    }
    let source_lots = source_lots(app, tenant, &traces.sources).await?;
    Ok(Reached { derived_lots: found, derived_items: items, source_lots, pickup_points, cut })
}

/// The lots recalled lots were made from, at most [`RECALL_DERIVED_LOTS_MAX`] (in GTIN and lot
/// order): each with its product's public name and brand, and its brand's recall of it.
async fn source_lots(
    app: &AppState,
    tenant: &TenantId,
    sources: &BTreeMap<(String, String), BTreeSet<String>>,
) -> Result<Vec<SourceLot>, Problem> {
    // By GTIN: the product's name, brand, and whether it is the tenant's.
    struct Known {
        name: String,
        brand: Option<String>,
        own: bool,
    }
    let mut products: HashMap<&str, Option<Known>> = HashMap::new();
    let listed: Vec<(String, String)> = sources.keys().take(RECALL_DERIVED_LOTS_MAX).cloned().collect();
    let recalls = app.store.lot_recalls(&listed).await?;
    let mut found = Vec::new();
    for ((gtin, lot), used_in) in sources.iter().take(RECALL_DERIVED_LOTS_MAX) {
        if !products.contains_key(gtin.as_str()) {
            let product = match Gtin::parse(gtin) {
                Ok(parsed) => app.store.public_product(&parsed).await?.map(|(owner, product, party)| {
                    let brand = product.brand.clone().or_else(|| party.map(|party| party.name));
                    Known { name: product.name, brand, own: owner == *tenant }
                }),
                Err(_) => None,
            };
            products.insert(gtin, product);
        }
        let product = products.get(gtin.as_str()).and_then(Option::as_ref);
        found.push(SourceLot {
            gtin: gtin.clone(),
            lot: lot.clone(),
            used_in: used_in.iter().cloned().collect(),
            product: product.map(|known| known.name.clone()),
            brand: product.and_then(|known| known.brand.clone()),
            own_product: product.is_some_and(|known| known.own),
            recall_id: recalls.get(&(gtin.clone(), lot.clone())).map(|recall| recall.recall_id.clone()),
        });
    }
    Ok(found)
}

/// The collection points (pickup points, stores, pharmacies) the lots' events took place at, by
/// GLN: the forward trace's places, as the event record has them.
async fn pickup_points_in(app: &AppState, tenant: &TenantId, history: &[HistoryEntry]) -> Result<Vec<String>, Problem> {
    let glns: BTreeSet<&str> = history
        .iter()
        .filter_map(|entry| entry.place.as_deref())
        .filter_map(|place| place.split("/414/").nth(1))
        .filter_map(|rest| rest.split('/').next())
        .collect();
    let mut found = Vec::new();
    for gln in glns {
        let Ok(parsed) = Gln::parse(gln) else { continue };
        if let Some(located) = app.store.tenant(tenant).location(&parsed).await?
            && located.value.kind.is_collection_point()
        {
            found.push(gln.to_owned());
        }
    }
    Ok(found)
}

/// Whether `event` names the class `class` in one of its quantity lists.
fn names_class(event: &epcis::Event, class: &str) -> bool {
    event.all_epc_classes().any(|named| named.as_str() == class)
}

fn history_entry(lot: &str, event: &epcis::Event, through: Option<&str>) -> HistoryEntry {
    HistoryEntry {
        through: through.map(str::to_owned),
        lot: lot.to_owned(),
        at: event.event_time.map(|time| time.to_string()),
        business_step: event
            .business_step
            .as_ref()
            .map(|step| step.json_form(epcis::VocabularyKind::BusinessStep).to_owned()),
        place: event
            .business_location
            .as_ref()
            .or(event.read_point.as_ref())
            .map(|location| location.id.as_str().to_owned()),
    }
}

/// The lots' history read before a recall, with the recall's own events (its unpacking) after
/// each lot's: the answer shows what `GET /v1/recalls/{id}` reads back once it is stored.
fn history_with_own(
    before: &[HistoryEntry],
    own: Option<&store::epcis::Capture>,
    gtin: &Gtin,
    lots: &[String],
) -> Result<Vec<HistoryEntry>, Problem> {
    let mut events = Vec::new();
    for record in own.map(|capture| capture.events.as_slice()).unwrap_or_default() {
        let value: serde_json::Value = serde_json::from_str(&record.body).map_err(Problem::internal)?;
        events.push(epcis::read_json_event(&value).map_err(|errors| Problem::internal(format!("{errors}")))?);
    }
    let mut history = Vec::with_capacity(before.len() + events.len());
    for lot in lots {
        history.extend(before.iter().filter(|entry| entry.lot == *lot).cloned());
        let Ok(class) = crate::trace::lot_identifier(gtin, lot) else { continue };
        let names_lot = |event: &epcis::Event| names_class(event, class.as_str());
        // The trace reaches a pallet through the lot, and every event of that pallet: the
        // unpacking of its other units too.
        let pallets: BTreeSet<&str> = events
            .iter()
            .filter(|event| names_lot(event))
            .filter_map(|event| event.parent_id.as_ref().map(|parent| parent.as_str()))
            .collect();
        let reached = |event: &&epcis::Event| {
            names_lot(event) || event.parent_id.as_ref().is_some_and(|parent| pallets.contains(parent.as_str()))
        };
        history.extend(events.iter().filter(reached).map(|event| {
            let through = if names_lot(event) { None } else { event.parent_id.as_ref().map(|parent| parent.as_str()) };
            history_entry(lot, event, through)
        }));
    }
    Ok(history)
}

/// Recalls lots of a product: their stock turns `recalled`, open orders holding them are
/// allocated again from other lots or flagged, the resolver's `gs1:recallStatus` turns to
/// recalled; the answer lists the affected orders and pickup points and where the lots came from.
#[utoipa::path(post, path = "/v1/recalls", tag = "fulfilment", request_body = RecallInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = RecallView), (status = 422, body = Problem)))]
async fn create_recall(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<RecallInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let (replayed, stored) = start_recall(&app, principal, key, body.request_sha256, body.value).await?;
    Ok(crate::api::created_response(stored, replayed, "/v1/recalls", "recall_id"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecallListParams {
    /// The tenant an operator key acts for.
    pub tenant: Option<String>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// 1-500 (default 50).
    pub limit: Option<u32>,
}

/// A recall as the list shows it; `GET /v1/recalls/{id}` has its reach.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecallSummaryView {
    pub recall_id: String,
    pub gtin: String,
    pub lots: Vec<String>,
    pub reason: String,
    /// What consumers are told; null when the recall says nothing to them.
    pub public_notice: Option<String>,
    pub recalled_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecallPage {
    pub items: Vec<RecallSummaryView>,
    pub next_cursor: Option<String>,
}

/// The tenant's recalls, oldest first: what was recalled, why and when.
#[utoipa::path(get, path = "/v1/recalls", tag = "fulfilment", params(RecallListParams),
    responses((status = 200, body = RecallPage), (status = 400, body = Problem)))]
async fn list_recalls(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<RecallListParams>,
) -> Result<Json<RecallPage>, Problem> {
    let (_, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let (after, limit) = crate::api::keyed_page_request(params.cursor.as_deref(), params.limit)?;
    let mut recalls = app.store.tenant(&tenant).recalls(false, after.as_deref(), limit + 1).await?;
    let next_cursor = crate::api::keyed_page(&mut recalls, limit, |recall| &recall.recall_id);
    let items = recalls
        .into_iter()
        .map(|recall| RecallSummaryView {
            recall_id: recall.recall_id,
            gtin: recall.gtin,
            lots: recall.lots,
            reason: recall.reason,
            public_notice: recall.public_notice,
            recalled_at: crate::dto::timestamp(recall.recalled_unix_ms),
        })
        .collect();
    Ok(Json(RecallPage { items, next_cursor }))
}

/// A recall read back: what was recalled, why and when, and its reach as it is now — every order
/// that took units of the lots with what the recall did to it and its status now, the pickup
/// points, the pallets that brought the lots in, and the lots' EPCIS history (the recall's
/// unpacking included).
#[utoipa::path(get, path = "/v1/recalls/{recall_id}", tag = "fulfilment", params(("recall_id" = String, Path), TenantParam),
    responses((status = 200, body = RecallView), (status = 404, body = Problem)))]
async fn get_recall(
    State(app): State<AppState>,
    caller: Caller,
    Path(recall_id): Path<String>,
    QueryParams(params): QueryParams<TenantParam>,
) -> Result<Json<RecallView>, Problem> {
    let (_, tenant) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let stored = app
        .store
        .tenant(&tenant)
        .recall(&recall_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("recall {recall_id}")))?;
    let gtin = Gtin::parse(&stored.gtin).map_err(Problem::internal)?;
    let traces = lot_history(&app, &tenant, &gtin, &stored.lots).await?;
    let mut reached = derived_reach(&app, &tenant, &traces).await?;
    reached.pickup_points.extend(pickup_points_in(&app, &tenant, &traces.history).await?);
    let truncated = traces.truncated || reached.cut;
    let mut view = recall_view(
        &stored.reach,
        (&stored.gtin, &stored.lots, &stored.reason, stored.public_notice.as_deref()),
        (traces.history, truncated),
        reached,
    );
    if !stored.outcomes_kept {
        for order in view.affected_orders.iter_mut().filter(|order| order.outcome == "released") {
            order.outcome = "unknown".into();
        }
    }
    Ok(Json(view))
}

/// How often a recall is built again when the orders packed with its lots, or their units on
/// hand, changed before it was written (each time from a fresh read).
pub const RECALL_ATTEMPTS_MAX: u32 = 5;

/// Starts a recall for a merchant (the API and the portal's form): answers whether it replays an
/// earlier request with the same Idempotency-Key, and the stored answer (a `RecallView`).
pub(crate) async fn start_recall(
    app: &AppState,
    principal: &Principal,
    key: IdempotencyKey,
    request_sha256: [u8; 32],
    input: RecallInput,
) -> Result<(bool, StoredResponse), Problem> {
    if principal.tenant_id.is_network() {
        return Err(Problem::new("forbidden", "a recall is started by the product's brand: use a tenant key"));
    }
    let mut checker = Checker::default();
    let gtin = checker.check("/gtin", Gtin::parse(&input.gtin));
    let listed = checker.list("/lots", &input.lots, 1, store::fulfilment::RECALL_LOTS_MAX);
    let mut seen = HashSet::new();
    let lots: Vec<String> = input
        .lots
        .iter()
        .enumerate()
        .take_while(|_| listed)
        .filter_map(|(index, lot)| {
            if !seen.insert(lot.as_str()) {
                checker.fail(&format!("/lots/{index}"), "appears twice");
            }
            check_lot(&mut checker, &format!("/lots/{index}"), lot)
        })
        .collect();
    let reason = checker.text("/reason", &input.reason, crate::dto::TEXT_LENGTH_MAX);
    let public_notice =
        checker.optional_text("/public_notice", &input.public_notice, store::fulfilment::RECALL_NOTICE_CHARS_MAX);
    checker.finish()?;
    let (Some(gtin), Some(reason)) = (gtin, reason) else { return Err(Problem::internal("recall")) };
    let recall_id = new_id("rcl");
    // Orders picking or packed with the lots are taken back: their picked units are put back
    // (their pallets unpacked) in the events, built from the orders as read now, and the lots'
    // units on hand are held back where they lie, as read now. The writer refuses the recall if
    // other orders are picking or packed with the lots by then, or other units are on hand (a packing, shipping or receipt meanwhile); it is
    // built again.
    let mut attempts_left = RECALL_ATTEMPTS_MAX;
    let (written, respond) = loop {
        let tenant_store = app.store.tenant(&principal.tenant_id);
        let open = tenant_store.open_orders_with_lots(gtin.as_str(), &lots).await?;
        let held = tenant_store.lots_on_hand(&gtin, &lots).await?;
        let sites: Vec<&str> = open
            .iter()
            .flat_map(|order| order.allocation.shipments.iter().map(|shipment| shipment.site.as_str()))
            .chain(held.iter().map(|(key, _)| key.location.as_str()))
            .collect();
        let zones = crate::steps::SiteZones::read(&app.store, &sites).await?;
        let now = jiff::Timestamp::now();
        let events =
            crate::steps::recall_steps(&principal.tenant_id, &open, (gtin.as_str(), &lots), &held, now, &zones)?;
        let put_back = open
            .iter()
            .filter(|order| matches!(order.status, OrderStatus::Picking | OrderStatus::Packed))
            .map(|order| (order.order_id.clone(), order.reservation_id.clone(), order.status))
            .collect();
        // Read on each attempt: an attempt is made again because the lots' events changed.
        let traces = lot_history(app, &principal.tenant_id, &gtin, &lots).await?;
        if attempts_left == RECALL_ATTEMPTS_MAX {
            require_known_lots(app, &principal.tenant_id, &gtin, &lots, &traces.history).await?;
        }
        let history = history_with_own(&traces.history, events.as_ref(), &gtin, &lots)?;
        let mut reached = derived_reach(app, &principal.tenant_id, &traces).await?;
        // The tenant's own lots made from them, not recalled, as listed (its own first, so none
        // is cut before another brand's).
        let hold = reached
            .derived_lots
            .iter()
            .filter(|lot| input.hold_derived && lot.own_product && lot.recall_id.is_none())
            .filter_map(|lot| Gtin::parse(&lot.gtin).ok().map(|parsed| (parsed, lot.lot.clone())))
            .collect();
        let change = FulfilmentMutation::Recall {
            recall_id: recall_id.clone(),
            gtin: gtin.clone(),
            lots: lots.clone(),
            reason: reason.clone(),
            public_notice: public_notice.clone(),
            put_back,
            held,
            hold,
        };
        reached.pickup_points.extend(pickup_points_in(app, &principal.tenant_id, &history).await?);
        let truncated = traces.truncated || reached.cut;
        let (view_gtin, view_lots, view_reason, view_notice) =
            (gtin.to_string(), lots.clone(), reason.clone(), public_notice.clone());
        let respond = move |applied: &Applied| match applied.outcome.as_deref() {
            Some(FulfilmentOutcome::Recall(outcome)) => {
                // As the write left the lots it put on hold.
                let mut reached = reached.clone();
                for held in &outcome.held_derived {
                    if let Some(view) =
                        reached.derived_lots.iter_mut().find(|view| view.gtin == held.gtin && view.lot == held.lot)
                    {
                        view.units_on_hand = held.on_hand;
                        view.units_on_hold = held.on_hold;
                    }
                }
                StoredResponse {
                    status: 201,
                    body: json_bytes(&recall_view(
                        outcome,
                        (&view_gtin, &view_lots, &view_reason, view_notice.as_deref()),
                        (history.clone(), truncated),
                        reached,
                    )),
                }
            }
            _ => StoredResponse { status: 500, body: Vec::new() },
        };
        let mutation = Mutation::fulfilment_step(change, events);
        attempts_left -= 1;
        let tenant = principal.tenant_id.clone();
        match write(app, principal, key.clone(), Some(request_sha256), tenant, mutation, respond.clone()).await {
            Err(problem) if problem.detail == store::fulfilment::RECALL_CHANGED && attempts_left > 0 => continue,
            written => break (written?, respond),
        }
    };
    Ok(match written {
        crate::api::Written::Applied(applied) => (false, respond(&applied)),
        crate::api::Written::Replayed(stored) => (true, stored),
    })
}

/// A recall is for good: a lot that no stock, inbound pallet, recall or event of the network
/// names is a mistyped one (422 `unknown-reference` at its index), not recalled ahead of time.
async fn require_known_lots(
    app: &AppState,
    tenant: &TenantId,
    gtin: &Gtin,
    lots: &[String],
    history: &[HistoryEntry],
) -> Result<(), Problem> {
    let store = app.store.tenant(tenant);
    if store.product(gtin).await?.is_none() {
        // Not the tenant's product: the writer says so, at `/gtin`, not at every lot.
        return Ok(());
    }
    let known = store.lots_in_stock_or_inbound(gtin, lots).await?;
    let errors: Vec<FieldError> = lots
        .iter()
        .enumerate()
        .filter(|(_, lot)| !known.contains(lot) && !history.iter().any(|entry| &entry.lot == *lot))
        .map(|(index, lot)| FieldError {
            pointer: format!("/lots/{index}"),
            detail: format!("no stock, inbound pallet or event names lot {lot} of {gtin}"),
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(Problem::new("unknown-reference", "a recall names lots the network knows (check the spelling)")
        .with_errors(errors))
}

fn recall_view(
    outcome: &RecallOutcome,
    (gtin, lots, reason, public_notice): (&str, &[String], &str, Option<&str>),
    (history, history_truncated): (Vec<HistoryEntry>, bool),
    reached: Reached,
) -> RecallView {
    // Where the lots may be within a consumer's reach: the pickup points orders shipped units of
    // them to (not all back), and those their events (and the orders of lots made from them)
    // place them at. Orders that gave their units up before shipping took nothing there.
    let mut pickup_points: Vec<String> = outcome
        .orders
        .iter()
        .filter(|(order, units)| units.out_with(order.status))
        .filter_map(|(order, _)| order.destination.pickup_point.clone())
        .chain(reached.pickup_points)
        .collect();
    pickup_points.sort();
    pickup_points.dedup();
    let affected_orders = outcome
        .orders
        .iter()
        .map(|(order, units)| AffectedOrder {
            order_id: order.order_id.clone(),
            status: order.status.name().into(),
            outcome: outcome.outcome_of(&order.order_id, order.status, units).into(),
            units_shipped: units.shipped,
            units_returned: units.returned,
            destination: destination_view(&order.destination),
        })
        .collect();
    RecallView {
        recall_id: outcome.recall_id.clone(),
        gtin: gtin.to_owned(),
        lots: lots.to_vec(),
        reason: reason.to_owned(),
        public_notice: public_notice.map(str::to_owned),
        recalled_at: crate::dto::timestamp(outcome.recalled_unix_ms),
        affected_orders,
        pickup_points,
        inbound_pallets: outcome
            .inbound_pallets
            .iter()
            .map(|pallet| InboundPallet {
                asn_id: pallet.asn_id.clone(),
                sscc: pallet.sscc.clone(),
                location: pallet.location_gln.clone(),
                lot: pallet.lot.clone(),
                received_at: pallet.received_unix_ms.map(crate::dto::timestamp),
            })
            .collect(),
        supplier_party_id: outcome.supplier_party_id.clone(),
        history,
        derived_lots: reached.derived_lots,
        derived_items: reached.derived_items,
        source_lots: reached.source_lots,
        history_truncated,
    }
}

/// Maps the fields of a refused fulfilment write to problem field errors.
pub(crate) fn field_errors(errors: Vec<(String, String)>) -> Vec<FieldError> {
    errors.into_iter().map(|(pointer, detail)| FieldError { pointer, detail }).collect()
}

// ---------- the 24-hour promise, measured ----------

#[derive(Debug, Serialize, ToSchema)]
pub struct SlaView {
    pub region: String,
    pub service: String,
    pub orders: i64,
    pub cancelled: i64,
    /// Reached their destination: delivered at the door, or arrived at their pickup point (the
    /// promise's measure; the customer collects later).
    pub delivered: i64,
    /// Reached it by the promise made when they were placed.
    pub delivered_by_promise: i64,
    /// Reached it within 24 hours of being placed.
    pub delivered_within_24h: i64,
    /// Returned without reaching it (a failed delivery): a miss on both counts.
    pub failed: i64,
    /// Not there yet (nor cancelled or returned), and past the promise.
    pub late_open: i64,
    /// Not there yet (nor cancelled or returned), and placed more than 24 hours ago.
    pub open_past_24h: i64,
    /// Cancelled after their promise had passed, not having arrived: a miss.
    pub cancelled_late: i64,
    /// Cancelled more than 24 hours after being placed, not having arrived: a miss.
    pub cancelled_past_24h: i64,
    /// delivered_by_promise / (delivered + failed + late_open + cancelled_late); null when
    /// nothing was due.
    pub share_by_promise: Option<f64>,
    /// delivered_within_24h / (delivered + failed + open_past_24h + cancelled_past_24h); null
    /// when nothing was due.
    pub share_within_24h: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlaReport {
    pub from: String,
    pub to: String,
    /// By region (the pickup point's city, or for an address the delivering site's city) and service.
    pub rows: Vec<SlaView>,
    /// All regions and services together.
    pub total: SlaView,
}

pub(crate) fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

fn sla_view(row: &store::fulfilment::SlaRow) -> SlaView {
    SlaView {
        region: row.region.clone(),
        service: row.service.clone(),
        orders: row.orders,
        cancelled: row.cancelled,
        delivered: row.delivered,
        delivered_by_promise: row.delivered_by_promise,
        delivered_within_24h: row.delivered_within_24h,
        failed: row.failed,
        late_open: row.late_open,
        open_past_24h: row.open_past_24h,
        cancelled_late: row.cancelled_late,
        cancelled_past_24h: row.cancelled_past_24h,
        share_by_promise: share(row.delivered_by_promise, row.due_by_promise()),
        share_within_24h: share(row.delivered_within_24h, row.due_within_24h()),
    }
}

/// The period of UTC days `params` names (by default the last 30 days and today, which the
/// console shows too), and the instants it spans: from the start of its first day to the start of
/// the day after its last.
pub(crate) fn period_instants(
    params: &UsageParams,
) -> Result<(jiff::civil::Date, jiff::civil::Date, i64, i64), Problem> {
    let (from, to) = crate::api::period_days(params)?;
    let start = |date: jiff::civil::Date| {
        date.to_zoned(jiff::tz::TimeZone::UTC).map(|zoned| zoned.timestamp().as_millisecond()).unwrap_or(0)
    };
    let end = to.checked_add(jiff::Span::new().days(1)).map(start).unwrap_or(i64::MAX);
    Ok((from, to, start(from), end))
}

async fn sla_report(app: &AppState, tenant: Option<&TenantId>, params: &UsageParams) -> Result<SlaReport, Problem> {
    let (from, to, start_unix_ms, end_unix_ms) = period_instants(params)?;
    let rows = app.store.sla(tenant, start_unix_ms, end_unix_ms).await?;
    let mut total = store::fulfilment::SlaRow::zero("all".into(), "all".into());
    for row in &rows {
        total.add(row);
    }
    Ok(SlaReport {
        from: from.to_string(),
        to: to.to_string(),
        rows: rows.iter().map(sla_view).collect(),
        total: sla_view(&total),
    })
}

/// The 24-hour promise, measured: per region and service, the share of orders delivered by their
/// promise and within 24 hours of being placed (every tenant, or `?tenant=`).
#[utoipa::path(get, path = "/v1/operator/sla", tag = "operator", params(UsageParams), responses((status = 200, body = SlaReport)))]
async fn operator_sla(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<UsageParams>,
) -> Result<Json<SlaReport>, Problem> {
    caller.require_operator()?;
    let tenant = params
        .tenant
        .as_deref()
        .map(|text| {
            TenantId::parse(text).map_err(|error| Problem::field("invalid-parameter", "?tenant", error.to_string()))
        })
        .transpose()?;
    if let Some(tenant_id) = &tenant {
        crate::api::require_tenant(&app, tenant_id).await?;
    }
    Ok(Json(sla_report(&app, tenant.as_ref(), &params).await?))
}

/// The calling merchant's own SLA report (an operator key names the merchant: `?tenant=`).
#[utoipa::path(get, path = "/v1/sla", tag = "fulfilment", params(UsageParams), responses((status = 200, body = SlaReport)))]
async fn tenant_sla(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<UsageParams>,
) -> Result<Json<SlaReport>, Problem> {
    // An operator names the merchant (`?tenant=`), as on the merchant's other reads.
    let (_, tenant_id) = acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    Ok(Json(sla_report(&app, Some(&tenant_id), &params).await?))
}

// ---------- webhooks for order transitions ----------

/// A delivery's `Keten-Signature`: `t=<unix seconds>,sha256=<hex HMAC-SHA256 under the secret of
/// "<t>." and the body>`. The time is signed with the body, so a receiver that refuses a `t` far
/// from its clock (say 5 minutes) cannot be fed an old delivery again; each attempt signs anew.
pub fn webhook_signature(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(body.len() + 21);
    signed.extend_from_slice(format!("{unix_seconds}.").as_bytes());
    signed.extend_from_slice(body);
    format!("t={unix_seconds},sha256={}", hex::encode(crate::subscriptions::hmac_sha256(secret, &signed)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where transitions are POSTed: an `https://` URL (the server's certificate checked against
    /// the system's roots and the operator's `--webhook-ca-file`) or `http://`; at most 2,000
    /// characters.
    pub url: String,
    /// 16–256 characters: each delivery carries `Keten-Signature: t=<unix seconds>,sha256=<hex
    /// HMAC-SHA256 of "<t>." followed by the body>` (see [`webhook_signature`]).
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub webhook_id: String,
    pub url: String,
    pub created_at: String,
    /// Failed attempts since the last delivery.
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Registers a webhook: every order transition from now on (picking, packed, shipped, out for
/// delivery, at the pickup point, delivered, cancelled — also by a hold expiring — returned,
/// allocated again or sent back by a recall) is POSTed to it, signed, at least once, in order.
#[utoipa::path(post, path = "/v1/webhooks", tag = "fulfilment", request_body = WebhookInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = WebhookView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_webhook(
    State(app): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: JsonBody<WebhookInput>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let input = body.value;
    let mut checker = Checker::default();
    let https_only = app.config.webhooks_https_only;
    match reqwest::Url::parse(&input.url) {
        Ok(url)
            if crate::subscriptions::is_destination(&url, https_only) && input.url.len() <= WEBHOOK_URL_LENGTH_MAX => {}
        _ => checker.fail(
            "/url",
            format!("must be {} of at most 2,000 characters", crate::subscriptions::destination_schemes(https_only)),
        ),
    }
    if !(16..=256).contains(&input.secret.len()) || input.secret.chars().any(char::is_control) {
        checker.fail("/secret", "must be 16-256 characters");
    }
    checker.finish()?;
    if let Err(reason) =
        crate::subscriptions::check_destination(&input.url, app.config.webhooks_to_private_addresses).await
    {
        return Err(Problem::field("validation-failed", "/url", reason));
    }
    let webhook_id = new_id("whk");
    let view = WebhookView {
        webhook_id: webhook_id.clone(),
        url: input.url.clone(),
        created_at: crate::dto::timestamp(jiff::Timestamp::now().as_millisecond()),
        attempts: 0,
        last_error: None,
    };
    let respond = respond_with(201, json_bytes(&view));
    let mutation =
        Mutation::Fulfilment(FulfilmentMutation::PutWebhook { webhook_id, url: input.url, secret: input.secret });
    let written =
        write(&app, principal, key, Some(body.request_sha256), principal.tenant_id.clone(), mutation, respond.clone())
            .await?;
    Ok(written.into_response(respond))
}

/// The calling tenant's order webhooks (secrets are never shown): all of them, at most
/// `store::fulfilment::WEBHOOKS_PER_TENANT_MAX`, so not in pages.
#[utoipa::path(get, path = "/v1/webhooks", tag = "fulfilment", responses((status = 200, body = Vec<WebhookView>)))]
async fn list_webhooks(State(app): State<AppState>, caller: Caller) -> Result<Json<Vec<WebhookView>>, Problem> {
    let principal = require_reader(&caller)?;
    let hooks = app.store.tenant(&principal.tenant_id).order_webhooks().await?;
    Ok(Json(
        hooks
            .into_iter()
            .map(|hook| WebhookView {
                webhook_id: hook.webhook_id,
                url: hook.url,
                created_at: crate::dto::timestamp(hook.created_unix_ms),
                attempts: hook.attempts,
                last_error: hook.last_error,
            })
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "fulfilment", params(("webhook_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn delete_webhook(
    State(app): State<AppState>,
    caller: Caller,
    Path(webhook_id): Path<String>,
) -> Result<Response, Problem> {
    let principal = require_writer(&caller)?;
    let mutation = Mutation::Fulfilment(FulfilmentMutation::DeleteWebhook { webhook_id });
    app.store.tenant(&principal.tenant_id).write(mutation, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body of a webhook delivery: order transitions and alarm transitions since the last one.
#[derive(Debug, Serialize)]
struct WebhookDelivery<'a> {
    webhook_id: &'a str,
    tenant_id: &'a str,
    transitions: Vec<TransitionView>,
    /// Alarm transitions (`opened`, `escalated`, `acknowledged`, `cleared`) with the alarm now.
    alarms: Vec<AlarmTransitionView>,
}

#[derive(Debug, Serialize)]
struct TransitionView {
    order_id: String,
    seq: i64,
    status: String,
    detail: Option<String>,
    at: String,
}

#[derive(Debug, Serialize)]
struct AlarmTransitionView {
    kind: String,
    at: String,
    alarm: Option<crate::alarms::AlarmView>,
}

/// The longest webhook URL accepted.
pub const WEBHOOK_URL_LENGTH_MAX: usize = 2_000;

/// The most order webhooks one poll hands out.
pub const WEBHOOKS_PER_POLL_MAX: u32 = 100;

/// A worker's order webhook deliveries, kept across its polls (called by the subscription
/// worker's loop). At most [`crate::subscriptions::DELIVERIES_IN_FLIGHT_MAX`] run at once, and a
/// poll does not wait for them: a merchant's endpoint that does not answer holds up one delivery
/// slot, not the others' deliveries nor the worker. Each poll goes on from the webhook after the
/// last one it handed out (in key order), so every due webhook gets its turn.
///
/// Each delivery first claims its webhook ([`FulfilmentMutation::ClaimWebhook`]) for
/// [`crate::subscriptions::DELIVERY_LEASE`], so API nodes sharing a database never send one
/// webhook's transitions at once (which would send them twice, and could move its cursor back);
/// a node that dies mid-delivery leaves the webhook to another once the lease ends (one that
/// stops gives up its send and records it, due again at once).
#[derive(Default)]
pub(crate) struct WebhookDeliveries {
    in_flight: crate::subscriptions::InFlight,
    /// The last webhook handed out (tenant, webhook); `None` starts from the first.
    after: Option<(String, String)>,
}

impl WebhookDeliveries {
    /// Waits for the deliveries under way (on a stop, each gives up its send and records it).
    pub(crate) async fn finish(&mut self) {
        self.in_flight.finish().await;
    }

    pub(crate) async fn poll(
        &mut self,
        store: &store::Store,
        client: &reqwest::Client,
        rules: crate::subscriptions::DeliveryRules,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), Problem> {
        let free = self.in_flight.reap();
        if free == 0 {
            return Ok(());
        }
        let after = self.after.as_ref().map(|(tenant, webhook)| (tenant.as_str(), webhook.as_str()));
        let due = store.due_order_webhooks(store::now_unix_ms(), after, WEBHOOKS_PER_POLL_MAX).await?;
        // Past the last due webhook, the next poll starts again from the first.
        let wrapped = due.len() < WEBHOOKS_PER_POLL_MAX as usize && due.len() <= free;
        self.after = if wrapped { None } else { due.get(free.min(due.len()).wrapping_sub(1)).map(key_of_hook) };
        if due.is_empty() {
            return Ok(());
        }
        // Only transitions of settled transactions: one committed later sorts after these. No
        // wait: what is not settled yet goes out with a later delivery.
        let horizon = store.settled_horizon(std::time::Duration::ZERO).await?;
        for hook in due.into_iter().take(free) {
            // Being delivered (its claim perhaps not yet written): not a second time.
            if self.in_flight.contains(&hook.tenant_id, &hook.webhook_id) {
                continue;
            }
            let (store, client, stop) = (store.clone(), client.clone(), stop.clone());
            let (tenant, id) = (hook.tenant_id.clone(), hook.webhook_id.clone());
            self.in_flight.spawn(&tenant, &id, async move {
                if let Err(problem) = deliver_webhook(&store, &client, &hook, horizon, rules, stop).await
                {
                    tracing::warn!(webhook = %hook.webhook_id, detail = %problem.detail, "an order webhook delivery failed");
                }
            });
        }
        Ok(())
    }
}

fn key_of_hook(hook: &store::fulfilment::OrderWebhook) -> (String, String) {
    (hook.tenant_id.clone(), hook.webhook_id.clone())
}

/// Sends one webhook's transitions after its cursors, if it has any and this node claims it, and
/// records the outcome under the claim (a failure after the claim, whatever it was, is recorded
/// as one: the webhook is tried again after its delay, not left claimed until the lease ends).
async fn deliver_webhook(
    store: &store::Store,
    client: &reqwest::Client,
    hook: &store::fulfilment::OrderWebhook,
    horizon: i64,
    rules: crate::subscriptions::DeliveryRules,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Problem> {
    let Ok(tenant) = TenantId::parse(&hook.tenant_id) else { return Ok(()) };
    let tenant_store = store.tenant(&tenant);
    let transitions = tenant_store.order_transitions_after(&hook.orders_cursor(), horizon).await?;
    let alarm_events = tenant_store
        .alarm_events_after(&hook.alarms_cursor(), horizon, store::fulfilment::WEBHOOK_EVENTS_MAX as u32)
        .await?;
    if transitions.is_empty() && alarm_events.is_empty() {
        return Ok(());
    }
    // Claimed only if no other delivery moved the webhook since it was read: its cursors are
    // still the ones these transitions follow.
    let deadline = tokio::time::Instant::now() + rules.work_max;
    let lease_until_unix_ms = store::now_unix_ms() + crate::subscriptions::DELIVERY_LEASE.as_millis() as i64;
    let claim = FulfilmentMutation::ClaimWebhook {
        webhook_id: hook.webhook_id.clone(),
        seen_next_attempt_unix_ms: hook.next_attempt_unix_ms,
        lease_until_unix_ms,
    };
    match tenant_store.write(Mutation::Fulfilment(claim), None).await {
        Ok(_) => {}
        Err(store::WriteError::Refused { code: "conflict", .. }) => return Ok(()),
        Err(error) => return Err(error.into()),
    }
    let through = transitions.last().map(store::fulfilment::OrderTransition::cursor);
    let alarms_through = alarm_events.last().map(store::alarms::AlarmEventRow::cursor);
    let sending = async {
        let mut alarms = Vec::with_capacity(alarm_events.len());
        for event in alarm_events {
            let alarm =
                tenant_store.alarm(&event.alarm_id).await.map_err(|error| format!("reading an alarm: {error}"))?;
            let alarm = alarm.map(crate::alarms::AlarmView::from);
            alarms.push(AlarmTransitionView { kind: event.kind, at: crate::dto::timestamp(event.at_unix_ms), alarm });
        }
        let body = serde_json::to_vec(&WebhookDelivery {
            webhook_id: &hook.webhook_id,
            tenant_id: &hook.tenant_id,
            transitions: transitions
                .into_iter()
                .map(|transition| TransitionView {
                    order_id: transition.order_id,
                    seq: transition.seq,
                    status: transition.status,
                    detail: transition.detail,
                    at: crate::dto::timestamp(transition.at_unix_ms),
                })
                .collect(),
            alarms,
        })
        .map_err(|error| format!("encoding the delivery: {error}"))?;
        let signature = webhook_signature(hook.secret.as_bytes(), jiff::Timestamp::now().as_second(), &body);
        crate::subscriptions::check_destination(&hook.url, rules.private_destinations).await?;
        let response = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("keten-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|error| crate::subscriptions::send_error(&error))?;
        if response.status().is_success() { Ok(()) } else { Err(format!("answered {}", response.status())) }
    };
    // A stop gives up the send, and the webhook is due again at once (not after its lease).
    let retry_delay = crate::subscriptions::retry_delay(hook.attempts + 1);
    let (outcome, retry_delay) = tokio::select! {
        outcome = sending => (outcome, retry_delay),
        () = tokio::time::sleep_until(deadline) => {
            (Err(crate::subscriptions::work_overran(rules.work_max)), retry_delay)
        }
        () = crate::subscriptions::stopping(stop) => {
            (Err(crate::subscriptions::STOPPED_DURING_DELIVERY.to_owned()), std::time::Duration::ZERO)
        }
    };
    let webhook_id = hook.webhook_id.clone();
    let change = match outcome {
        Ok(()) => FulfilmentMutation::WebhookDelivered { webhook_id, lease_until_unix_ms, through, alarms_through },
        // The next attempt waits its delay from now, when this one failed.
        Err(error) => FulfilmentMutation::WebhookFailed {
            webhook_id,
            lease_until_unix_ms,
            next_attempt_unix_ms: store::now_unix_ms() + retry_delay.as_millis() as i64,
            error: crate::subscriptions::bounded_reason(error),
        },
    };
    tenant_store.write(Mutation::Fulfilment(change), None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The signature of a delivery, against HMAC-SHA256 worked out elsewhere (Python's `hmac`).
    #[test]
    fn a_webhook_signature_covers_its_time_and_body() {
        let signature = super::webhook_signature(b"secret-0123456789abcdef", 1_700_000_000, br#"{"transitions":[]}"#);
        assert_eq!(signature, "t=1700000000,sha256=7d751c7431963879f5c5a003bbedeb878fd600bcf5ffedbb11b355246fff631f");
        let later = super::webhook_signature(b"secret-0123456789abcdef", 1_700_000_001, br#"{"transitions":[]}"#);
        assert_ne!(later.split_once(',').unwrap().1, signature.split_once(',').unwrap().1, "the time is signed");
    }
}
