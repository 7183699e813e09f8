//! The consumer's provenance page at an item's Digital Link (and `/provenance/<key path>`), the
//! store kiosk around it, the public proofs its script checks, and the embedded assets.
//!
//! What a page shows is public by construction: the product's master data, the origin party
//! (the person's name only when published), the recorded steps of the item (time, business step,
//! place; never quantities, orders or who captured them), the places from the public registry
//! (others appear as "a partner's site"), the lot's temperature history and the recall status:
//! the lot's own, and that of the lots it was made from (EPCIS transformations, at any remove),
//! as their brands recalled them.
//!
//! A page is built from [`Facts`] (read once per item for [`FACTS_LIFETIME`]) and kept rendered
//! per language, mode and recall status for [`PAGE_LIFETIME`]; the recall status itself is read
//! every [`RECALL_STATUS_LIFETIME`], so a recall shows within a second on every node.
//! `GET /consumer-proof/{logIndex}?item=<key path>` answers a step's C2SP tlog-proof and the
//! disclosures of the fields the page shows, read fresh from the store, for the steps on that
//! item's page only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gs1::DigitalLink;
use network::{LocationKind, TemperatureClass, TenantId};
use serde_json::{Value, json};
use store::fulfilment::PublicRecall;
use web::journey::{Place, Step};
use web::svg::{ChartInput, MapPoint, Series};
use web::{Lang, Mode};

use crate::AppState;
use crate::problem::Problem;
use crate::resolver::{Item, digital_link_of, find};

/// How long what was read about an item is reused for its pages and proofs.
pub const FACTS_LIFETIME: Duration = Duration::from_secs(10);
/// How long a rendered page is reused.
pub const PAGE_LIFETIME: Duration = Duration::from_secs(10);
/// How long a lot's recall status is reused: a recall shows on every page, on every node, within
/// this time.
pub const RECALL_STATUS_LIFETIME: Duration = Duration::from_secs(1);
/// The most lots an item was made from whose recall status its page, its `gs1:recallStatus` and
/// `/v1/scan` read; past it, the rest are not checked (`made_from_truncated`).
pub const ORIGIN_LOTS_CHECKED_MAX: usize = 64;
const _: () = assert!(ORIGIN_LOTS_CHECKED_MAX <= store::fulfilment::LOT_RECALLS_READ_MAX);
/// The most recalled lots of a product named without its lot (a pack's EAN-13, a GTIN's link)
/// that its page, its `gs1:recallStatus` and `/v1/scan` list; past it, `…_more` says so.
pub const PRODUCT_RECALLED_LOTS_MAX: usize = 50;
const _: () = assert!(PRODUCT_RECALLED_LOTS_MAX <= store::fulfilment::GTIN_RECALLED_LOTS_MAX);
/// The most items (facts) and rendered pages kept; when full, a cache starts afresh.
pub const CACHE_ENTRIES_MAX: usize = 10_000;
/// The most recorded steps shown on one page (the earliest).
pub const JOURNEY_STEPS_MAX: usize = 200;
/// The most scanned bytes the kiosk takes.
pub const KIOSK_SCAN_BYTES_MAX: usize = 512;

/// Steps that concern one order or some units, not the lot: shown on a serial's page, not on a
/// lot's (units scrapped are not the consumer's). Besides these, any step naming an order
/// (`steps::names_an_order`: a cancelled pick's units put back, `storing`).
const ORDER_STEPS: [&str; 5] = ["picking", "packing", "unpacking", "retail_selling", "destroying"];
/// The fields of an event a consumer page shows besides the item's own identifiers.
const PLACE_AND_TIME_POINTERS: [&str; 4] = ["/eventTime", "/bizStep", "/bizLocation/id", "/readPoint/id"];

/// A small cache with a lifetime, cleared when full.
#[derive(Debug)]
pub struct TtlCache<V> {
    lifetime: Duration,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(lifetime: Duration) -> TtlCache<V> {
        TtlCache { lifetime, entries: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (stored_at, value) = entries.get(key)?;
        (stored_at.elapsed() < self.lifetime).then(|| value.clone())
    }

    pub fn put(&self, key: String, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_ENTRIES_MAX {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), value));
        }
    }
}

/// The consumer pages' caches and templates.
#[derive(Debug)]
pub struct ConsumerPages {
    pub templates: web::Pages,
    facts: TtlCache<Arc<Facts>>,
    /// Shared bytes: a cached page is answered without copying it.
    rendered: TtlCache<axum::body::Bytes>,
    /// A lot's recall (its id and notice), by GTIN and lot.
    recalls: TtlCache<Option<PublicRecall>>,
    /// The lots an item was made from, by the item's key path.
    origins: TtlCache<Arc<Origins>>,
    /// Those of them recalled, by the item's key path.
    recalled_origins: TtlCache<Arc<Vec<RecalledOrigin>>>,
    /// A product's recalled lots, by GTIN.
    product_recalls: TtlCache<Arc<ProductRecalls>>,
    /// The origins found from one start of a trace, by its owner and the start.
    start_origins: TtlCache<Arc<Origins>>,
}

impl Default for ConsumerPages {
    fn default() -> Self {
        ConsumerPages {
            templates: web::Pages::new(),
            facts: TtlCache::new(FACTS_LIFETIME),
            rendered: TtlCache::new(PAGE_LIFETIME),
            recalls: TtlCache::new(RECALL_STATUS_LIFETIME),
            origins: TtlCache::new(FACTS_LIFETIME),
            recalled_origins: TtlCache::new(RECALL_STATUS_LIFETIME),
            product_recalls: TtlCache::new(RECALL_STATUS_LIFETIME),
            start_origins: TtlCache::new(FACTS_LIFETIME),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assets/{name}", get(asset))
        .route("/kiosk", get(kiosk))
        .route("/kiosk/scan", get(kiosk_scan))
        .route("/consumer-proof/{log_index}", get(consumer_proof))
}

/// A recorded step of the item, with what its page shows.
#[derive(Debug, Clone)]
struct FactStep {
    time: jiff::Timestamp,
    business_step: String,
    place: Option<Place>,
    log_index: Option<u64>,
    event_id: String,
    /// JSON pointer → the field's JSON text, as committed.
    fields: BTreeMap<String, String>,
}

/// What an item's page is made of.
#[derive(Debug)]
pub struct Facts {
    owner: TenantId,
    /// The identifiers of the item (and of what it was made from) that steps may name.
    named: BTreeSet<String>,
    steps: Vec<FactStep>,
    report: Option<reports::TemperatureReport>,
    /// The lot's expiry as stocked (none when not in stock).
    expiry: Option<String>,
    /// Whether anything is known of the lot (steps, stock or readings): a recall check of an
    /// unknown lot says nothing.
    lot_known: bool,
    cold_product: bool,
    origins: Arc<Origins>,
}

/// The lots an item was made from: the lots its traces reached backward through
/// transformations (at any remove), other than the item's own lot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Origins {
    /// (GTIN, lot), in that order, at most [`ORIGIN_LOTS_CHECKED_MAX`].
    lots: Vec<(String, String)>,
    /// Not every lot it was made from is here: a trace reached its limits, there were more than
    /// [`ORIGIN_LOTS_CHECKED_MAX`] (those past it in GTIN and lot order are left out), or the
    /// item could not be traced.
    pub truncated: bool,
}

impl Origins {
    /// From the trace of one of an item's starts ([`trace_starts`]).
    fn of(trace: &crate::trace::Trace, start: &epcis::Identifier) -> Origins {
        let own = match crate::trace::made(start.as_str()) {
            Some(crate::trace::Made::Lot(gtin, lot)) => Some((gtin, lot)),
            _ => None,
        };
        let lots = trace
            .objects
            .iter()
            .filter(|(_, reach)| **reach == epcis::trace::Reach::Origin)
            .filter_map(|(object, _)| match crate::trace::made(object) {
                Some(crate::trace::Made::Lot(gtin, lot)) => Some((gtin, lot)),
                _ => None,
            })
            .filter(|pair| own.as_ref() != Some(pair))
            .collect();
        Origins::limited(lots, trace.truncated)
    }

    /// Those of several starts together.
    fn merged(parts: &[Arc<Origins>]) -> Origins {
        let lots = parts.iter().flat_map(|part| part.lots.iter().cloned()).collect();
        Origins::limited(lots, parts.iter().any(|part| part.truncated))
    }

    fn limited(mut lots: Vec<(String, String)>, truncated: bool) -> Origins {
        lots.sort();
        lots.dedup();
        let truncated = truncated || lots.len() > ORIGIN_LOTS_CHECKED_MAX;
        lots.truncate(ORIGIN_LOTS_CHECKED_MAX);
        Origins { lots, truncated }
    }

    fn untraceable() -> Origins {
        Origins { lots: Vec::new(), truncated: true }
    }
}

/// A recalled lot an item was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecalledOrigin {
    pub gtin: String,
    pub lot: String,
    pub recall_id: String,
    /// What its recall tells consumers.
    pub public_notice: Option<String>,
}

/// The objects an item's traces start from: its serial, then its lot (a transformation may name
/// either; its page's steps follow the first); none for a GTIN alone.
fn trace_starts(link: &DigitalLink, product: &network::Product) -> Result<Vec<epcis::Identifier>, Problem> {
    let qualifier = |code: &str| {
        link.qualifiers().iter().find(|element| element.code() == code).map(|element| element.value().to_owned())
    };
    let invalid = |error: epcis::IdentifierError| Problem::new("invalid-digital-link", error.to_string());
    let mut starts = Vec::new();
    if let Some(serial) = qualifier("21") {
        let text =
            format!("https://id.gs1.org/01/{}/21/{}", product.gtin.as_str(), epcis::identifier::encode_value(&serial));
        starts.push(epcis::Identifier::parse(&text).map_err(invalid)?);
    }
    if let Some(lot) = qualifier("10") {
        starts.push(crate::trace::lot_identifier(&product.gtin, &lot).map_err(invalid)?);
    }
    Ok(starts)
}

/// Reads an item's origins from the traces of its starts, each start's reused for
/// [`FACTS_LIFETIME`] (the serials of one lot share their lot's); `traced`: the first start's
/// trace, when read already.
async fn read_origins(
    app: &AppState,
    owner: &TenantId,
    starts: &[epcis::Identifier],
    traced: Option<&crate::trace::Trace>,
) -> Result<Origins, Problem> {
    let mut parts = Vec::with_capacity(starts.len());
    for (index, start) in starts.iter().enumerate() {
        let key = format!("{owner}\n{}", start.as_str());
        let traced = traced.filter(|_| index == 0);
        // Reused only when not just traced (a fresh trace is put in place of the cached one).
        let cached = if traced.is_some() { None } else { app.consumer_pages.start_origins.get(&key) };
        let part = match cached {
            Some(part) => part,
            None => {
                let part = match traced {
                    Some(trace) => Arc::new(Origins::of(trace, start)),
                    None => Arc::new(Origins::of(&crate::trace::trace(&app.store, owner, start).await?, start)),
                };
                app.consumer_pages.start_origins.put(key, part.clone());
                part
            }
        };
        parts.push(part);
    }
    Ok(Origins::merged(&parts))
}

/// The lots the item at `link` was made from (read for [`FACTS_LIFETIME`]); none for an item
/// that is not a product.
pub async fn origins(app: &AppState, link: &DigitalLink, item: &Item) -> Result<Arc<Origins>, Problem> {
    let key = link.key_path();
    if let Some(origins) = app.consumer_pages.origins.get(&key) {
        return Ok(origins);
    }
    let Item::Product { owner, product, .. } = item else { return Ok(Arc::default()) };
    let origins = match trace_starts(link, product) {
        Ok(starts) => Arc::new(read_origins(app, owner, &starts, None).await?),
        // (The resolver parsed the link; a serial the event record cannot name is not traced.)
        Err(_) => Arc::new(Origins::untraceable()),
    };
    app.consumer_pages.origins.put(key, origins.clone());
    Ok(origins)
}

/// The recalled lots the item at `link` was made from, as [`recalled_origins`] reads them, and
/// whether its origins are all checked; none for an item Keten does not know.
pub async fn recalled_origins_at(
    app: &AppState,
    link: &DigitalLink,
) -> Result<(Arc<Vec<RecalledOrigin>>, bool), Problem> {
    let item = match find(app, link).await {
        Ok(item) => item,
        Err(problem) if problem.status == StatusCode::NOT_FOUND.as_u16() => return Ok((Arc::default(), false)),
        Err(problem) => return Err(problem),
    };
    let origins = origins(app, link, &item).await?;
    Ok((recalled_origins(app, &link.key_path(), &origins).await?, origins.truncated))
}

/// A lot's recall by its brand, read at most every [`RECALL_STATUS_LIFETIME`].
async fn lot_recall(app: &AppState, gtin: &str, lot: &str) -> Result<Option<PublicRecall>, Problem> {
    let key = format!("{gtin}\n{lot}");
    if let Some(recall) = app.consumer_pages.recalls.get(&key) {
        return Ok(recall);
    }
    let recall = app.store.lot_recall(gtin, lot).await?;
    app.consumer_pages.recalls.put(key, recall.clone());
    Ok(recall)
}

/// The recalled lots of a product, for an item named without its lot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProductRecalls {
    /// In lot order, at most [`PRODUCT_RECALLED_LOTS_MAX`].
    pub lots: Vec<RecalledOrigin>,
    /// There are more than those.
    pub more: bool,
}

/// The lots of `gtin` its brand has recalled, read at most every [`RECALL_STATUS_LIFETIME`]:
/// what a scan or a link without the lot (a pack's EAN-13 carries none) can tell, so that
/// "not recalled" is never said of a product some of whose lots are.
pub async fn product_recalls(app: &AppState, gtin: &str) -> Result<Arc<ProductRecalls>, Problem> {
    if let Some(recalls) = app.consumer_pages.product_recalls.get(gtin) {
        return Ok(recalls);
    }
    let (lots, more) = app.store.gtin_recalled_lots(gtin, PRODUCT_RECALLED_LOTS_MAX).await?;
    let lots = lots
        .into_iter()
        .map(|(lot, recall)| RecalledOrigin {
            gtin: gtin.to_owned(),
            lot,
            recall_id: recall.recall_id,
            public_notice: recall.public_notice,
        })
        .collect();
    let recalls = Arc::new(ProductRecalls { lots, more });
    app.consumer_pages.product_recalls.put(gtin.to_owned(), recalls.clone());
    Ok(recalls)
}

/// The lots among an item's `origins` that their brands have recalled, in one read at most
/// every [`RECALL_STATUS_LIFETIME`] for the item (`key`: its key path).
pub async fn recalled_origins(
    app: &AppState,
    key: &str,
    origins: &Origins,
) -> Result<Arc<Vec<RecalledOrigin>>, Problem> {
    if origins.lots.is_empty() {
        return Ok(Arc::default());
    }
    if let Some(recalled) = app.consumer_pages.recalled_origins.get(key) {
        return Ok(recalled);
    }
    let recalls = app.store.lot_recalls(&origins.lots).await?;
    let recalled: Vec<RecalledOrigin> = origins
        .lots
        .iter()
        .filter_map(|pair| {
            recalls.get(pair).map(|recall| RecalledOrigin {
                gtin: pair.0.clone(),
                lot: pair.1.clone(),
                recall_id: recall.recall_id.clone(),
                public_notice: recall.public_notice.clone(),
            })
        })
        .collect();
    let recalled = Arc::new(recalled);
    app.consumer_pages.recalled_origins.put(key.to_owned(), recalled.clone());
    Ok(recalled)
}

impl Facts {
    fn logged(&self, log_index: u64) -> Option<&FactStep> {
        self.steps.iter().find(|step| step.log_index == Some(log_index))
    }
}

/// The fields of a stored event a consumer page shows: time and step; the place when it is in the
/// public registry (`place_public`), by the identifier the page names it by (`bizLocation`, else
/// `readPoint`); and the item's own identifiers where the event names them. Only fields committed
/// one by one in the log entry (not folded into `keten:rest`), so each can be proved.
fn public_fields(
    body: &Value,
    committed: &BTreeSet<String>,
    named: &BTreeSet<String>,
    place_public: bool,
) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut add = |pointer: String, value: &Value| {
        if committed.contains(&pointer) && !value.is_object() && !value.is_array() {
            fields.insert(pointer, value.to_string());
        }
    };
    for pointer in ["/eventTime", "/bizStep"] {
        if let Some(value) = body.pointer(pointer) {
            add(pointer.to_owned(), value);
        }
    }
    if place_public {
        // Only a place named by its bare GLN: a sub-location (`/254/…`) is more than the page
        // shows (the site's public name).
        let bare = |place: &Value| place.as_str().is_some_and(|text| !text.contains("/254/"));
        match (body.pointer("/bizLocation/id"), body.pointer("/readPoint/id")) {
            (Some(place), _) if bare(place) => add("/bizLocation/id".to_owned(), place),
            (None, Some(place)) if bare(place) => add("/readPoint/id".to_owned(), place),
            _ => {}
        }
    }
    for list in ["epcList", "childEPCs", "inputEPCList", "outputEPCList"] {
        if let Some(Value::Array(items)) = body.get(list) {
            for (index, item) in items.iter().enumerate() {
                if item.as_str().is_some_and(|text| named.contains(text)) {
                    add(format!("/{list}/{index}"), item);
                }
            }
        }
    }
    for list in ["quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"] {
        if let Some(Value::Array(items)) = body.get(list) {
            for (index, item) in items.iter().enumerate() {
                if let Some(class) = item.get("epcClass")
                    && class.as_str().is_some_and(|text| named.contains(text))
                {
                    add(format!("/{list}/{index}/epcClass"), class);
                }
            }
        }
    }
    if let Some(parent) = body.get("parentID")
        && parent.as_str().is_some_and(|text| named.contains(text))
    {
        add("/parentID".to_owned(), parent);
    }
    fields
}

/// The names of the fields an event's log entry commits one by one.
fn committed_fields(body: &Value, tenant: &str) -> BTreeSet<String> {
    epcis::commitment::fields_of_json(body, tenant).into_iter().map(|(name, _)| name).collect()
}

/// An identifier in an EPC list entry, or a quantity list entry's class.
fn identifier_of(entry: &Value) -> Option<&str> {
    entry.as_str().or_else(|| entry.get("epcClass").and_then(Value::as_str))
}

/// The place identifier a step is shown at: its business location, else its read point.
fn place_id(body: &Value) -> &str {
    body.pointer("/bizLocation/id").or_else(|| body.pointer("/readPoint/id")).and_then(Value::as_str).unwrap_or("")
}

fn names_item(fields: &BTreeMap<String, String>) -> bool {
    fields.keys().any(|pointer| !PLACE_AND_TIME_POINTERS.contains(&pointer.as_str()))
}

/// The GLN of a place identifier in Digital Link form (`…/414/<GLN>[/254/<ext>]`).
fn gln_of(place: &str) -> Option<gs1::Gln> {
    let link = DigitalLink::parse(place).ok()?;
    let key = link.primary_key();
    (key.code() == "414").then(|| gs1::Gln::parse(key.value()).ok()).flatten()
}

fn needs_cold(class: &TemperatureClass) -> bool {
    !matches!(class, TemperatureClass::Ambient)
}

/// The place a step names (`id`: its business location or read point), with whether it keeps
/// the product (`class`) cold there. Known places are kept in `known` by `id`.
async fn place_of(
    app: &AppState,
    id: &str,
    class: &TemperatureClass,
    known: &mut HashMap<String, Option<Place>>,
) -> Result<Option<Place>, Problem> {
    let Some(gln) = gln_of(id) else { return Ok(None) };
    if let Some(place) = known.get(id) {
        return Ok(place.clone());
    }
    let place = match app.store.public_location(&gln).await? {
        Some(owned) => {
            let location = owned.value;
            // A cold depot keeps what needs cold cold, and so does a zone of any site whose
            // range suits the product's class (a warehouse's 0–2 °C room for chilled fish), when
            // the step names it; a site's other zones and unnamed places are not counted.
            let zone = zone_of(id);
            let cooled_zone =
                location.zones.iter().any(|kept| zone.as_deref() == Some(kept.name.as_str()) && kept.suits(class));
            Some(Place {
                id: gln.as_str().to_owned(),
                name: location.name.clone(),
                kind: location.kind.name().to_owned(),
                time_zone: location.time_zone.as_str().to_owned(),
                cold: needs_cold(class) && (matches!(location.kind, LocationKind::ColdDepot) || cooled_zone),
                coordinates: Some((location.coordinates.latitude_degrees(), location.coordinates.longitude_degrees())),
            })
        }
        None => Some(Place {
            id: gln.as_str().to_owned(),
            name: String::new(),
            kind: String::new(),
            time_zone: "UTC".to_owned(),
            cold: false,
            coordinates: None,
        }),
    };
    known.insert(id.to_owned(), place.clone());
    Ok(place)
}

/// The zone (AI 254, the GLN extension) a place identifier in Digital Link form names, if any.
fn zone_of(place: &str) -> Option<String> {
    let link = DigitalLink::parse(place).ok()?;
    link.qualifiers().iter().find(|element| element.code() == "254").map(|element| element.value().to_owned())
}

/// Reads what an item's page shows (cached for [`FACTS_LIFETIME`]).
async fn facts_of(app: &AppState, link: &DigitalLink, item: &Item) -> Result<Arc<Facts>, Problem> {
    let key = link.key_path();
    if let Some(facts) = app.consumer_pages.facts.get(&key) {
        return Ok(facts);
    }
    let Item::Product { owner, product, .. } = item else {
        return Err(Problem::not_found("a product at this Digital Link"));
    };
    let qualifier = |code: &str| {
        link.qualifiers().iter().find(|element| element.code() == code).map(|element| element.value().to_owned())
    };
    let (lot, serial) = (qualifier("10"), qualifier("21"));
    let cold_product = needs_cold(&product.temperature_class);
    let starts = trace_starts(link, product)?;
    let mut named = BTreeSet::new();
    let mut steps = Vec::new();
    let mut origins = Arc::default();
    if let Some(start) = starts.first() {
        let found = crate::trace::trace(&app.store, owner, start).await?;
        origins = Arc::new(read_origins(app, owner, &starts, Some(&found)).await?);
        app.consumer_pages.origins.put(key.clone(), Arc::clone(&origins));
        let item: BTreeSet<String> = found
            .objects
            .iter()
            .filter(|(_, reach)| matches!(reach, epcis::trace::Reach::Start))
            .map(|(object, _)| object.clone())
            .collect();
        let mut places = HashMap::new();
        // Steps recorded by the brand itself or the network: another tenant may name the brand's
        // lot in its own events, but it does not write the brand's public page. Each with the
        // names of the fields its log entry commits one by one.
        let events: Vec<(&store::epcis::StoredEvent, Value, BTreeSet<String>)> = found
            .events
            .values()
            .filter(|(stored, _)| {
                stored.tenant_id == owner.as_str() || stored.tenant_id == TenantId::network().as_str()
            })
            .filter_map(|(stored, _)| {
                let body = serde_json::from_str::<Value>(&stored.body).ok()?;
                let committed = committed_fields(&body, &stored.tenant_id);
                Some((stored, body, committed))
            })
            .collect();
        // What the item was made from: the inputs of the brand's or the network's own
        // transformations that output the item (one level).
        named = item.clone();
        for (_, body, _) in &events {
            let outputs_item = ["outputEPCList", "outputQuantityList"].iter().any(|list| {
                body.get(*list).and_then(Value::as_array).is_some_and(|entries| {
                    entries.iter().any(|entry| identifier_of(entry).is_some_and(|text| item.contains(text)))
                })
            });
            if outputs_item {
                for list in ["inputEPCList", "inputQuantityList"] {
                    for entry in body.get(list).and_then(Value::as_array).into_iter().flatten() {
                        if let Some(text) = identifier_of(entry) {
                            named.insert(text.to_owned());
                        }
                    }
                }
            }
        }
        // An order's step: one that names an order (every step an order records since
        // 2026-12-06), or one of the steps only orders record (those recorded before).
        let is_order_step = |body: &Value| {
            let step = web::i18n::step_key(body.get("bizStep").and_then(Value::as_str).unwrap_or(""));
            crate::steps::names_an_order(body)
                || ORDER_STEPS.iter().any(|order_step| step == format!("step_{order_step}"))
        };
        // The packs of single orders (the parents of packing steps): their shipping and
        // delivery belong to the order, not to the lot's journey.
        let order_packs: BTreeSet<&str> = events
            .iter()
            .filter(|(_, body, _)| is_order_step(body))
            .filter_map(|(_, body, _)| body.get("parentID").and_then(Value::as_str))
            .collect();
        let names_order_pack = |body: &Value| {
            body.get("epcList").and_then(Value::as_array).is_some_and(|entries| {
                entries.iter().any(|entry| entry.as_str().is_some_and(|text| order_packs.contains(text)))
            })
        };
        let event_time = |body: &Value| -> Option<jiff::Timestamp> {
            body.get("eventTime").and_then(Value::as_str).and_then(|text| text.parse().ok())
        };
        // Inputs appear up to the item's first step (its making), not afterwards, where the rest
        // of an input went elsewhere.
        let made_at = events
            .iter()
            .filter(|(_, body, committed)| names_item(&public_fields(body, committed, &item, false)))
            .filter_map(|(_, body, _)| event_time(body))
            .min();
        for (stored, body, committed) in &events {
            let business_step = body.get("bizStep").and_then(Value::as_str).unwrap_or("").to_owned();
            // The time shown is the recorded field the browser verifies, not a column beside it.
            let Some(time) = event_time(body) else { continue };
            let about_item = names_item(&public_fields(body, committed, &item, false));
            let about_input = made_at.is_some_and(|made_at| time <= made_at)
                && names_item(&public_fields(body, committed, &named, false));
            if !(about_item || about_input) || (serial.is_none() && (is_order_step(body) || names_order_pack(body))) {
                continue;
            }
            let place = place_of(app, place_id(body), &product.temperature_class, &mut places).await?;
            let place_public = place.as_ref().is_some_and(|place| !place.name.is_empty());
            // A step whose time is not committed one by one (folded into `keten:rest` in a very
            // large event) cannot be proved field by field: it is shown as not logged.
            let provable = committed.contains("/eventTime");
            steps.push(FactStep {
                time,
                business_step,
                place,
                log_index: stored.log_index.and_then(|index| u64::try_from(index).ok()).filter(|_| provable),
                event_id: stored.event_id.clone(),
                fields: public_fields(body, committed, &named, place_public),
            });
        }
        steps.sort_by_key(|step| step.time);
        steps.truncate(JOURNEY_STEPS_MAX);
    }
    let (report, expiry) = match &lot {
        Some(lot) => {
            let report = match crate::reports::build(&app.store, owner, None, Some((&product.gtin, lot))).await {
                Ok(report) => Some(report),
                Err(problem) => {
                    tracing::debug!(detail = %problem.detail, "no temperature report for the consumer page");
                    None
                }
            };
            let filter = store::fulfilment::StockFilter {
                gtin: Some(product.gtin.as_str().to_owned()),
                location: None,
                lot: Some(lot.clone()),
            };
            let stocked = app.store.tenant(owner).stock(&filter, None, 1).await?;
            (report, stocked.into_iter().next().map(|balance| balance.expiry))
        }
        None => (None, None),
    };
    let lot_known =
        !steps.is_empty() || expiry.is_some() || report.as_ref().is_some_and(|report| report.figures.is_some());
    let facts = Arc::new(Facts {
        owner: owner.clone(),
        named,
        steps,
        report,
        expiry: expiry.flatten(),
        lot_known,
        cold_product,
        origins,
    });
    app.consumer_pages.facts.put(key, facts.clone());
    Ok(facts)
}

/// The mode and language a request asks for (`?kiosk=1`, `?view=large`, `?lang=`).
fn mode_and_lang(link: &DigitalLink, headers: &HeaderMap) -> (Mode, Lang) {
    let parameter =
        |name: &str| link.other_parameters().iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let mode = if parameter("kiosk").is_some_and(|value| value == "1" || value == "true") {
        Mode::Kiosk
    } else if parameter("view") == Some("large") {
        Mode::Large
    } else {
        Mode::Normal
    };
    let accept_language = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
    (mode, Lang::choose(parameter("lang"), accept_language))
}

/// The whole days of shelf life the page shows: the estimate (rounded down), at most the days
/// left to the date on the pack when known.
fn shown_days_left(estimated_days: f64, days_to_label: Option<i64>) -> i64 {
    let estimated = estimated_days.floor().max(0.0) as i64;
    days_to_label.map_or(estimated, |label| estimated.min(label.max(0)))
}

fn class_key(class: &TemperatureClass) -> &'static str {
    match class {
        TemperatureClass::Ambient => "class_ambient",
        TemperatureClass::Chilled => "class_chilled",
        TemperatureClass::Frozen => "class_frozen",
        TemperatureClass::Pharma => "class_pharma",
        _ => "class_custom",
    }
}

fn temperature_view(report: &reports::TemperatureReport, lang: Lang) -> Option<web::TemperatureView> {
    let figures = report.figures.as_ref()?;
    let mut series: Vec<Series> = Vec::new();
    for reading in &report.readings {
        let point = (reading.time.as_second(), reading.celsius);
        match series.iter_mut().find(|series| series.label == reading.device) {
            Some(series) => series.points.push(point),
            None => series.push(Series { label: reading.device.clone(), points: vec![point] }),
        }
    }
    let (start, end) = report.period?;
    let days = ((end.as_second() - start.as_second()) / 86_400 + 1).max(1);
    let every_days = (days + 5) / 6;
    let mut time_labels = Vec::new();
    let first_midnight = (start.as_second() / 86_400 + 1) * 86_400;
    let mut day = first_midnight;
    while day <= end.as_second() {
        if let Ok(time) = jiff::Timestamp::from_second(day) {
            let label = web::TimeView::new(time, "UTC", lang).local;
            time_labels.push((day, label.split(',').next().unwrap_or("").to_owned()));
        }
        day += every_days * 86_400;
    }
    let degrees = |celsius: f64| lang.one_decimal(celsius);
    let word = |key: &'static str| lang.text(key).unwrap_or(key);
    let range = match (report.min_range_celsius, report.max_range_celsius) {
        (Some(min), Some(max)) => format!("{} {} {} °C", degrees(min), word("range_to"), degrees(max)),
        (Some(min), None) => format!("{} {} °C", word("range_at_least"), degrees(min)),
        (None, Some(max)) => format!("{} {} °C", word("range_at_most"), degrees(max)),
        (None, None) => word("range_none").to_owned(),
    };
    let measured = format!(
        "{} – {} °C (MKT {} °C)",
        degrees(figures.min_celsius),
        degrees(figures.max_celsius),
        degrees(figures.mkt_celsius)
    );
    let title = format!(
        "{}: {measured}; {}: {range}",
        lang.text("chart").unwrap_or("Temperature"),
        lang.text("range").unwrap_or("range")
    );
    let chart = web::svg::chart(&ChartInput {
        series,
        min_celsius: report.min_range_celsius,
        max_celsius: report.max_range_celsius,
        excursions: report.excursions.iter().map(|period| (period.start.as_second(), period.end.as_second())).collect(),
        title,
        time_labels,
    })?;
    Some(web::TemperatureView {
        chart_svg: chart,
        range,
        measured,
        excursions: report.excursions.len(),
        minutes_out: report.time_out_of_range_s / 60,
        pass: report.pass,
    })
}

fn nutrition_rows(product: &network::Product) -> Vec<(String, String)> {
    let Some(nutrition) = &product.nutrition else { return Vec::new() };
    [
        ("energy_kj", nutrition.energy_kj),
        ("energy_kcal", nutrition.energy_kcal),
        ("fat", nutrition.fat_g),
        ("saturates", nutrition.saturates_g),
        ("carbohydrate", nutrition.carbohydrate_g),
        ("sugars", nutrition.sugars_g),
        ("protein", nutrition.protein_g),
        ("salt", nutrition.salt_g),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| (key.to_owned(), value.to_string())))
    .collect()
}

fn view_of(
    app: &AppState,
    link: &DigitalLink,
    item: &Item,
    facts: &Facts,
    (recall, recalled_inputs, origins_truncated): (Option<&PublicRecall>, Vec<web::RecalledInputView>, bool),
    product_recalls: &ProductRecalls,
    (mode, lang): (Mode, Lang),
) -> Option<web::ProvenanceView> {
    let Item::Product { product, party, links, .. } = item else { return None };
    let recalled = recall.is_some();
    let qualifier = |code: &str| {
        link.qualifiers().iter().find(|element| element.code() == code).map(|element| element.value().to_owned())
    };
    let steps: Vec<Step> = facts
        .steps
        .iter()
        .map(|step| Step {
            time: step.time,
            business_step: step.business_step.clone(),
            place: step.place.clone(),
            log_index: step.log_index,
            fields: serde_json::to_string(&step.fields).unwrap_or_default(),
        })
        .collect();
    let journey = web::journey::journey(steps, facts.cold_product, lang);
    let first_place = journey.places.first();
    let harvested =
        // Harvested or made: a commissioning at the source, not a lot entering the network.
        facts.steps.iter().find(|step| web::journey::step_key_at(&step.business_step, step.place.as_ref()) == "step_commissioning").map(|step| {
            web::TimeView::new(step.time, first_place.map_or("UTC", |place| place.time_zone.as_str()), lang)
        });
    let origin = match party {
        Some(party) => Some(web::OriginView {
            name: party.name.clone(),
            kind: party.kind.name().to_owned(),
            person: party.public_person_name().map(str::to_owned),
            country: party.country.or(product.country_of_origin).map(|country| country.to_string()),
            place: first_place.filter(|place| !place.name.is_empty()).map(|place| place.name.clone()),
            harvested,
        }),
        None => product.country_of_origin.map(|country| web::OriginView {
            name: product.brand.clone().unwrap_or_else(|| product.name.clone()),
            kind: String::new(),
            person: None,
            country: Some(country.to_string()),
            place: None,
            harvested,
        }),
    };
    let points: Vec<MapPoint> = journey
        .places
        .iter()
        .filter_map(|place| {
            let (latitude, longitude) = place.coordinates?;
            Some(MapPoint { name: place.name.clone(), latitude, longitude })
        })
        .collect();
    let map_svg = web::svg::map(&points, lang.text("map").unwrap_or("Map"), "map-title");
    let temperature = facts.report.as_ref().and_then(|report| temperature_view(report, lang));
    // The estimate from the measured temperatures never outlasts the date on the pack (which the
    // law makes the one to go by). A medicine's expiry comes from its stability studies: its
    // estimate stays in the quality report, not on the consumer's page.
    let days_to_label =
        facts.expiry.as_deref().and_then(|text| text.parse::<jiff::civil::Date>().ok()).and_then(|expiry| {
            let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
            today.until(expiry).ok().map(|span| i64::from(span.get_days()).max(0))
        });
    let shelf_life = facts
        .report
        .as_ref()
        .and_then(|report| report.shelf_life)
        .filter(|_| !matches!(product.temperature_class, TemperatureClass::Pharma))
        .map(|line| web::ShelfLifeView {
            at_celsius: format!("{:.0}", line.storage_celsius),
            days_left: shown_days_left(line.days_left, days_to_label),
        });
    let mut checks = Vec::new();
    if let Some(temperature) = &temperature {
        let key = if temperature.pass { "check_temperature_ok" } else { "check_temperature_failed" };
        checks.push(web::CheckView { key: key.to_owned(), ok: temperature.pass });
    }
    if recalled {
        checks.push(web::CheckView { key: "check_recall_failed".to_owned(), ok: false });
    }
    if !recalled_inputs.is_empty() {
        checks.push(web::CheckView { key: "check_recall_input_failed".to_owned(), ok: false });
    } else if !recalled && qualifier("10").is_some() && facts.lot_known && !origins_truncated {
        // Neither the lot nor any lot it was made from (all of them checked).
        checks.push(web::CheckView { key: "check_recall_ok".to_owned(), ok: true });
    }
    let certifications = links
        .iter()
        .filter(|link| link.link_type == "gs1:certificationInfo")
        .map(|link| web::LinkView { title: link.title.clone(), href: link.href.clone() })
        .collect();
    let path = link.key_path();
    Some(web::ProvenanceView {
        lang,
        mode,
        product: web::ProductView {
            name: product.name.clone(),
            brand: product.brand.clone(),
            description: product.description.clone(),
            gtin: product.gtin.as_str().to_owned(),
            lot: qualifier("10"),
            serial: qualifier("21"),
            expiry: facts.expiry.clone(),
            class_key: class_key(&product.temperature_class).to_owned(),
            nutrition: nutrition_rows(product),
            allergens: Vec::new(),
        },
        origin,
        map_svg,
        cold_hours: (journey.cold_hours > 0.0).then(|| lang.one_decimal(journey.cold_hours)),
        journey: journey.stops,
        temperature,
        shelf_life,
        certifications,
        checks,
        recalled,
        recall_notice: recall.and_then(|recall| recall.public_notice.clone()),
        recalled_inputs,
        recalled_lots: product_recalls
            .lots
            .iter()
            .map(|lot| web::RecalledLotView { lot: lot.lot.clone(), notice: lot.public_notice.clone() })
            .collect(),
        recalled_lots_more: product_recalls.more,
        // The item's link without the request's other parameters: the page is shared by all.
        digital_link: format!("{}{path}", app.config.public_url.trim_end_matches('/')),
        qr_path: format!("/qr{path}"),
        proof_path: "/consumer-proof/".to_owned(),
        path: format!("/provenance{path}"),
    })
}

fn html_response(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(web::CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Language"));
    response
}

/// The provenance page of a product (the resolver's answer to a browser). The recall statuses of
/// the lot and of the lots it was made from are read apart (reused for
/// [`RECALL_STATUS_LIFETIME`] only) and are part of the rendered page's key.
pub async fn page(app: &AppState, link: &DigitalLink, item: &Item, headers: &HeaderMap) -> Result<Response, Problem> {
    let (mode, lang) = mode_and_lang(link, headers);
    let recall = match (item, link.qualifiers().iter().find(|element| element.code() == "10")) {
        (Item::Product { product, .. }, Some(lot)) => lot_recall(app, product.gtin.as_str(), lot.value()).await?,
        _ => None,
    };
    // Named without its lot: the product's recalled lots, for the consumer to check the pack's.
    let product_recalls = match item {
        Item::Product { product, .. } if !link.qualifiers().iter().any(|element| element.code() == "10") => {
            product_recalls(app, product.gtin.as_str()).await?
        }
        _ => Arc::default(),
    };
    let path = link.key_path();
    // The origins as the facts read them, or (once the facts are read again) anew with them.
    let origins = match app.consumer_pages.origins.get(&path) {
        Some(origins) => origins,
        None => facts_of(app, link, item).await?.origins.clone(),
    };
    let recalled_inputs = recalled_origins(app, &path, &origins).await?;
    // A recall's notice is written with it, once: its id stands for it.
    let inputs_key: Vec<(&str, &str, &str)> = recalled_inputs
        .iter()
        .map(|input| (input.gtin.as_str(), input.lot.as_str(), input.recall_id.as_str()))
        .collect();
    let recall_key = recall.as_ref().map(|recall| recall.recall_id.as_str());
    let lots_key: Vec<(&str, &str)> =
        product_recalls.lots.iter().map(|lot| (lot.lot.as_str(), lot.recall_id.as_str())).collect();
    let key = format!(
        "{path}|{}|{mode:?}|{recall_key:?}|{}|{inputs_key:?}|{lots_key:?}|{}",
        lang.code(),
        origins.truncated,
        product_recalls.more
    );
    if let Some(html) = app.consumer_pages.rendered.get(&key) {
        return Ok(html_response(StatusCode::OK, html));
    }
    let facts = facts_of(app, link, item).await?;
    let mut inputs = Vec::new();
    for input in recalled_inputs.iter().cloned() {
        let name = match gs1::Gtin::parse(&input.gtin) {
            Ok(gtin) => app.store.public_product(&gtin).await?.map(|(_, product, _)| product.name),
            Err(_) => None,
        };
        inputs.push(web::RecalledInputView { name, gtin: input.gtin, lot: input.lot, notice: input.public_notice });
    }
    let view =
        view_of(app, link, item, &facts, (recall.as_ref(), inputs, origins.truncated), &product_recalls, (mode, lang))
            .ok_or_else(|| Problem::not_found("a product at this Digital Link"))?;
    let html = app.consumer_pages.templates.provenance(&view).map_err(Problem::internal)?;
    let html = axum::body::Bytes::from(html);
    app.consumer_pages.rendered.put(key, html.clone());
    Ok(html_response(StatusCode::OK, html))
}

async fn asset(Path(name): Path<String>) -> Result<Response, Problem> {
    let (content_type, body) = web::asset(&name).ok_or_else(|| Problem::not_found(format!("asset {name:?}")))?;
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response())
}

#[derive(Debug, serde::Deserialize)]
struct KioskQuery {
    lang: Option<String>,
    data: Option<String>,
}

fn kiosk_idle(app: &AppState, lang: Lang, unknown: bool) -> Result<Response, Problem> {
    let html =
        app.consumer_pages.templates.kiosk_idle(&web::KioskIdleView { lang, unknown }).map_err(Problem::internal)?;
    Ok(html_response(if unknown { StatusCode::NOT_FOUND } else { StatusCode::OK }, html))
}

/// `GET /kiosk`: the mirror waiting for its first scan.
async fn kiosk(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<KioskQuery>,
) -> Result<Response, Problem> {
    let accept_language = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
    kiosk_idle(&app, Lang::choose(query.lang.as_deref(), accept_language), false)
}

/// `GET /kiosk/scan?data=…`: what a keyboard-wedge scanner typed (a Digital Link, an element
/// string, a plain GTIN) → 303 to the product's kiosk page; an unreadable or unknown code shows
/// the kiosk's "not known" page.
async fn kiosk_scan(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<KioskQuery>,
) -> Result<Response, Problem> {
    let accept_language = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
    let lang = Lang::choose(query.lang.as_deref(), accept_language);
    let data = query.data.unwrap_or_default();
    if data.is_empty() || data.len() > KIOSK_SCAN_BYTES_MAX {
        return kiosk_idle(&app, lang, true);
    }
    let link = gs1::read_any(data.trim())
        .ok()
        .and_then(|(_, element_string)| DigitalLink::from_element_string(&element_string).ok());
    let Some(link) = link else { return kiosk_idle(&app, lang, true) };
    if find(&app, &link).await.is_err() {
        return kiosk_idle(&app, lang, true);
    }
    Ok(Redirect::to(&format!("/provenance{}?kiosk=1&lang={}", link.key_path(), lang.code())).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofQuery {
    item: String,
}

/// `GET /consumer-proof/{logIndex}?item=<key path>`: a step of an item's page, provable: its
/// C2SP tlog-proof and the disclosures of the fields the page shows (read fresh from the store).
async fn consumer_proof(
    State(app): State<AppState>,
    Path(log_index): Path<String>,
    crate::api::QueryParams(query): crate::api::QueryParams<ProofQuery>,
) -> Result<Response, Problem> {
    let log_index: u64 = crate::api::path_value("logIndex", &log_index, str::parse)?;
    let path = query.item.strip_prefix("/provenance").unwrap_or(&query.item);
    let link = digital_link_of(&app, path)?;
    let item = find(&app, &link).await?;
    let facts = facts_of(&app, &link, &item).await?;
    let step = facts
        .logged(log_index)
        .ok_or_else(|| Problem::not_found(format!("a step at log index {log_index} on this item's page")))?;
    let records = app.store.epcis_event(&facts.owner, &step.event_id).await?;
    let record = records
        .iter()
        .find(|record| record.log_index == i64::try_from(log_index).ok())
        .ok_or_else(|| Problem::not_found(format!("the record at log index {log_index}")))?;
    let body: Value = serde_json::from_str(&record.body).map_err(Problem::internal)?;
    let seed: [u8; 32] = record
        .commitment_seed
        .as_deref()
        .and_then(|seed| seed.try_into().ok())
        .ok_or_else(|| Problem::new("internal", "a logged event has no commitment seed"))?;
    let place_public = step.place.as_ref().is_some_and(|place| !place.name.is_empty());
    let committed = committed_fields(&body, &record.tenant_id);
    let disclosures: Vec<Value> = public_fields(&body, &committed, &facts.named, place_public)
        .into_iter()
        .map(|(name, value)| {
            json!({ "salt": BASE64.encode(epcis::commitment::salt(&seed, &name)), "name": name, "value": value })
        })
        .collect();
    let (bundle, _) = crate::log::proof_bundle(&app, log_index).await?;
    let body = json!({ "logIndex": log_index, "proof": bundle.to_text(), "disclosures": disclosures });
    Ok(([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shelf_life_shown_never_outlasts_the_pack() {
        // (estimate in days, days to the date on the pack) → days shown.
        let cases = [
            ((364.6, Some(300)), 300),
            ((4.9, Some(10)), 4),
            ((4.9, None), 4),
            ((-2.0, Some(10)), 0),
            ((12.0, Some(-3)), 0),
            ((0.0, Some(0)), 0),
        ];
        for ((estimated, label), shown) in cases {
            assert_eq!(shown_days_left(estimated, label), shown, "{estimated} days, label {label:?}");
        }
    }

    #[test]
    fn public_fields_show_time_step_place_and_the_item_only() {
        let lot = "https://id.gs1.org/01/07098765010009/10/LOT-1".to_owned();
        let body = json!({
            "type": "ObjectEvent",
            "eventTime": "2026-11-23T05:00:00Z",
            "bizStep": "receiving",
            "bizLocation": {"id": "https://id.gs1.org/414/7098765000017"},
            "quantityList": [
                {"epcClass": "https://id.gs1.org/01/07098765010009/10/OTHER", "quantity": 5},
                {"epcClass": lot, "quantity": 480}
            ],
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:po:1"}]
        });
        let named = BTreeSet::from([lot.clone()]);
        let fields = public_fields(&body, &committed_fields(&body, "nordfjord"), &named, true);
        assert_eq!(
            fields.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["/bizLocation/id", "/bizStep", "/eventTime", "/quantityList/1/epcClass"]
        );
        assert_eq!(fields["/bizStep"], "\"receiving\"");
        assert!(names_item(&fields));
        let private = public_fields(&body, &committed_fields(&body, "nordfjord"), &named, false);
        assert!(!private.contains_key("/bizLocation/id"), "a place outside the public registry is not disclosed");
        assert!(
            !names_item(&public_fields(&body, &committed_fields(&body, "nordfjord"), &BTreeSet::new(), true)),
            "an event not naming the item is not on its page"
        );
        // A read point is the place only without a business location.
        let mut read_point = body.clone();
        read_point["readPoint"] = json!({"id": "https://id.gs1.org/414/7098765000024"});
        assert!(
            !public_fields(&read_point, &committed_fields(&read_point, "nordfjord"), &named, true)
                .contains_key("/readPoint/id")
        );
        read_point.as_object_mut().unwrap().remove("bizLocation");
        assert!(
            public_fields(&read_point, &committed_fields(&read_point, "nordfjord"), &named, true)
                .contains_key("/readPoint/id")
        );
    }

    #[test]
    fn fields_folded_into_the_rest_are_not_shown() {
        let lot = "https://id.gs1.org/01/07098765010009/10/LOT-1".to_owned();
        let epcs: Vec<String> =
            (0..1_500).map(|serial| format!("https://id.gs1.org/01/07098765010009/21/{serial}")).collect();
        let body = json!({"eventTime": "2026-11-23T05:00:00Z", "bizStep": "shipping", "epcList": epcs,
            "quantityList": [{"epcClass": lot}]});
        let fields = public_fields(&body, &committed_fields(&body, "nordfjord"), &BTreeSet::from([lot]), true);
        // Sorted, `/bizStep` and the first serials are committed one by one; the time and the
        // lot fall past the field limit, into `keten:rest`.
        assert!(fields.contains_key("/bizStep"), "{fields:?}");
        assert!(!fields.contains_key("/eventTime"), "{fields:?}");
        assert!(!fields.contains_key("/quantityList/0/epcClass"), "{fields:?}");
    }

    #[test]
    fn sub_locations_are_not_disclosed() {
        let lot = "https://id.gs1.org/01/07098765010009/10/LOT-1".to_owned();
        let body = json!({"eventTime": "2026-11-23T05:00:00Z", "bizStep": "receiving",
            "bizLocation": {"id": "https://id.gs1.org/414/8712345000011/254/chill-1"},
            "quantityList": [{"epcClass": lot}]});
        let fields = public_fields(&body, &committed_fields(&body, "nordfjord"), &BTreeSet::from([lot]), true);
        assert!(!fields.contains_key("/bizLocation/id") && fields.contains_key("/eventTime"), "{fields:?}");
    }

    #[test]
    fn places_are_read_from_digital_links() {
        assert_eq!(gln_of("https://id.gs1.org/414/8712345000011/254/chill-1").unwrap().as_str(), "8712345000011");
        assert!(gln_of("https://id.gs1.org/01/07098765010009").is_none());
        assert!(gln_of("not a link").is_none());
    }
}
