//! The GS1 Digital Link resolver on Keten's own domain, QR codes of Digital Links, and the
//! public pages and answers its links point to.
//!
//! `GET /<primary key AI>/<value>[/<qualifier AI>/<value>…][?<data attributes>]`:
//! - `?linkType=linkset` (or `all`), or `Accept: application/linkset+json` → an RFC 9264 linkset;
//! - `?linkType=<type>` → 307 to that link, with the request's other query parameters;
//!   an unknown type → 404 problem; `gs1:defaultLink` is the page a plain request gets;
//! - otherwise (a browser) → the consumer page, 200.
//!
//! Every answer about an item carries `Link: <…?linkType=linkset>; rel="linkset"`; every answer of
//! these routes allows any origin (CORS), and `OPTIONS` answers a preflight. A URI that
//! breaks the Digital Link syntax → 400 naming the rule; a valid key Keten has no record of → 404.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gs1::{DigitalLink, Gln, Gtin};
use network::{Location, Party, Product, ProductLink};
use serde::Serialize;

use crate::AppState;
use crate::pages::{escape, page, page_in};
use crate::problem::Problem;

/// The GS1 Web Vocabulary namespace of link types.
const GS1_VOCABULARY: &str = "https://gs1.org/voc/";

/// Every AI that is a Digital Link primary key, from the AI table.
pub fn primary_keys() -> impl Iterator<Item = &'static str> {
    gs1::application_identifier::application_identifiers()
        .iter()
        .filter(|definition| definition.digital_link_primary_key.is_some())
        .map(|definition| definition.code)
}

pub fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/.well-known/gs1resolver", get(well_known).options(preflight))
        .route("/qr/{*path}", get(qr_code).options(preflight))
        .route("/provenance/{*path}", get(provenance).options(preflight))
        .route("/recall-status/{*path}", get(recall_status).options(preflight));
    for code in primary_keys() {
        router = router.route(&format!("/{code}/{{*rest}}"), get(resolve).options(preflight));
    }
    router.layer(axum::middleware::map_response(any_origin))
}

/// What the resolver knows about an item.
#[derive(Debug)]
pub enum Item {
    Product { owner: network::TenantId, product: Product, party: Option<Party>, links: Vec<ProductLink> },
    Location { location: Location },
}

/// How long the resolver reuses what it read about an item: a change to a product shows on its
/// public page within this time. A lot's own recall status is not cached here (the consumer
/// pages reuse it for `provenance::RECALL_STATUS_LIFETIME`, as they do that of the lots it was
/// made from).
pub const ITEM_CACHE_LIFETIME: Duration = Duration::from_secs(1);
/// The most items kept; when full, the cache starts afresh.
pub const ITEM_CACHE_ENTRIES_MAX: usize = 10_000;

/// Items recently read for the resolver, by primary key (`01:09506000134352`).
#[derive(Debug, Default)]
pub struct ItemCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Item>)>>,
}

impl ItemCache {
    fn get(&self, key: &str) -> Option<Arc<Item>> {
        let entries = self.entries.lock().ok()?;
        let (read_at, item) = entries.get(key)?;
        (read_at.elapsed() < ITEM_CACHE_LIFETIME).then(|| item.clone())
    }

    fn put(&self, key: String, item: Arc<Item>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= ITEM_CACHE_ENTRIES_MAX {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), item));
        }
    }
}

/// Parses the request's own URI as a Digital Link on this server's public address.
pub(crate) fn digital_link_of(app: &AppState, path_and_query: &str) -> Result<DigitalLink, Problem> {
    let uri = format!("{}{}", app.config.public_url.trim_end_matches('/'), path_and_query);
    DigitalLink::parse(&uri).map_err(|error| Problem::new("invalid-digital-link", error.to_string()))
}

pub(crate) async fn find(app: &AppState, link: &DigitalLink) -> Result<Arc<Item>, Problem> {
    let key = link.primary_key();
    let cache_key = format!("{}:{}", key.code(), key.value());
    if let Some(item) = app.item_cache.get(&cache_key) {
        return Ok(item);
    }
    let unknown = || Problem::new("not-found", format!("Keten has no record of ({}) {}", key.code(), key.value()));
    let item = match key.code() {
        "01" | "8006" => {
            let gtin = Gtin::parse(&key.value()[..14]).map_err(|_| unknown())?;
            let (owner, product, party) = app.store.public_product(&gtin).await?.ok_or_else(unknown)?;
            let links = app.store.tenant(&owner).product_links(&product.gtin).await?;
            Item::Product { owner, product, party, links }
        }
        "414" => {
            let gln = Gln::parse(key.value()).map_err(|_| unknown())?;
            let located = app.store.public_location(&gln).await?.ok_or_else(unknown)?;
            Item::Location { location: located.value }
        }
        _ => return Err(unknown()),
    };
    let item = Arc::new(item);
    app.item_cache.put(cache_key, item.clone());
    Ok(item)
}

/// One link of a linkset (RFC 9264 target attributes as the GS1 resolver uses them).
#[derive(Debug, Clone, Serialize)]
pub struct LinkTarget {
    pub href: String,
    pub title: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hreflang: Vec<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// The links of an item, by full link-type URI.
fn links(app: &AppState, link: &DigitalLink, item: &Item) -> BTreeMap<String, Vec<LinkTarget>> {
    let base = app.config.public_url.trim_end_matches('/');
    let key_path = link.key_path();
    let languages = vec!["en".to_owned(), "nl".to_owned()];
    let mut links: BTreeMap<String, Vec<LinkTarget>> = BTreeMap::new();
    let mut add = |link_type: &str, target: LinkTarget| {
        links.entry(format!("{GS1_VOCABULARY}{}", link_type.trim_start_matches("gs1:"))).or_default().push(target)
    };
    match item {
        Item::Product { product, links: merchant_links, .. } => {
            add(
                "gs1:pip",
                LinkTarget {
                    href: format!("{base}/provenance{key_path}"),
                    title: format!("{}: product information and origin", product.name),
                    hreflang: languages.clone(),
                    media_type: Some("text/html".into()),
                },
            );
            add(
                "gs1:traceability",
                LinkTarget {
                    href: format!("{base}/provenance{key_path}#journey"),
                    title: format!("Where {} has been", product.name),
                    hreflang: languages.clone(),
                    media_type: Some("text/html".into()),
                },
            );
            add(
                "gs1:epcis",
                LinkTarget {
                    // A serialised item is an EPC; a product or lot is an EPC class.
                    href: if link.qualifiers().iter().any(|qualifier| qualifier.code() == "21") {
                        format!("{base}/events?MATCH_anyEPC={}", encode_component(&link.constrained_uri()))
                    } else {
                        format!("{base}/events?MATCH_anyEPCClass={}", encode_component(&link.constrained_uri()))
                    },
                    title: "EPCIS events of this item (EPCIS 2.0 query interface, keyed)".into(),
                    hreflang: Vec::new(),
                    media_type: Some("application/ld+json".into()),
                },
            );
            add(
                "gs1:certificationInfo",
                LinkTarget {
                    href: format!("{base}/provenance{key_path}#certifications"),
                    title: "Certifications and checks".into(),
                    hreflang: languages.clone(),
                    media_type: Some("text/html".into()),
                },
            );
            add(
                "gs1:recallStatus",
                LinkTarget {
                    href: format!("{base}/recall-status{key_path}"),
                    title: "Recall status".into(),
                    hreflang: Vec::new(),
                    media_type: Some("application/json".into()),
                },
            );
            for merchant_link in merchant_links.iter().cloned() {
                add(
                    &merchant_link.link_type,
                    LinkTarget {
                        href: merchant_link.href,
                        title: merchant_link.title,
                        hreflang: merchant_link.language.into_iter().collect(),
                        media_type: merchant_link.media_type,
                    },
                );
            }
        }
        Item::Location { location } => {
            add(
                "gs1:locationInfo",
                LinkTarget {
                    href: format!("{base}/provenance{key_path}"),
                    title: location.name.clone(),
                    hreflang: languages.clone(),
                    media_type: Some("text/html".into()),
                },
            );
        }
    }
    // The default link: where a request without a link type goes (the page a browser gets), as
    // GS1's conformant resolver standard has every linkset name it.
    let default = match item {
        Item::Product { .. } => "pip",
        Item::Location { .. } => "locationInfo",
    };
    if let Some(target) = links.get(&format!("{GS1_VOCABULARY}{default}")).and_then(|targets| targets.first()) {
        let target = target.clone();
        links.insert(format!("{GS1_VOCABULARY}defaultLink"), vec![target]);
    }
    links
}

/// Percent-encodes a URI for use as one query parameter value.
fn encode_component(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `<…?linkType=linkset>; rel="linkset"; type="application/linkset+json"`.
fn linkset_header(app: &AppState, link: &DigitalLink) -> HeaderValue {
    let href = format!("{}{}?linkType=linkset", app.config.public_url.trim_end_matches('/'), link.key_path());
    HeaderValue::from_str(&format!("<{href}>; rel=\"linkset\"; type=\"application/linkset+json\""))
        .unwrap_or(HeaderValue::from_static("</>; rel=\"linkset\""))
}

/// The requested link type as a full URI (`gs1:pip` and `https://gs1.org/voc/pip` are the same).
fn link_type_uri(text: &str) -> String {
    match text.strip_prefix("gs1:") {
        Some(name) => format!("{GS1_VOCABULARY}{name}"),
        None => text.to_owned(),
    }
}

/// The weights (`q`, RFC 9110 §12.5.1) the client's `Accept` gives a page (`text/html`) and
/// JSON (`application/linkset+json`, `application/json`, `application/problem+json`).
fn accept_weights(headers: &HeaderMap) -> (f64, f64) {
    let accept = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or("");
    let (mut html, mut json) = (0.0_f64, 0.0_f64);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media_type = parts.next().unwrap_or("").to_ascii_lowercase();
        let weight = parts
            .filter_map(|parameter| parameter.strip_prefix("q=").or_else(|| parameter.strip_prefix("Q=")))
            .find_map(|value| value.parse::<f64>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        match media_type.as_str() {
            "text/html" => html = html.max(weight),
            "application/linkset+json" | "application/json" | "application/problem+json" => json = json.max(weight),
            _ => {}
        }
    }
    (html, json)
}

/// Whether the client prefers a linkset to a page (a tie goes to the page).
fn wants_linkset(headers: &HeaderMap) -> bool {
    let (html, json) = accept_weights(headers);
    json > 0.0 && json > html
}

/// A link type's target with the request's query passed on, but its `linkType` (GS1's conformant
/// resolver standard: data attributes and other parameters go on to the target). A target with a
/// query of its own (the EPCIS query of `gs1:epcis`, which takes no other parameter) is kept as
/// it is.
fn with_query(target: &str, query: Option<&str>) -> String {
    let passed: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && *pair != "linkType" && !pair.starts_with("linkType="))
        .collect();
    // Before a fragment.
    let (head, fragment) = target.split_once('#').map_or((target, None), |(head, fragment)| (head, Some(fragment)));
    if passed.is_empty() || head.contains('?') {
        return target.to_owned();
    }
    let mut uri = format!("{head}?{}", passed.join("&"));
    if let Some(fragment) = fragment {
        uri.push('#');
        uri.push_str(fragment);
    }
    uri
}

/// The answer to a CORS preflight: the resolver's answers are public, read by any origin's
/// scanning app (GS1's conformant resolver standard: GET, HEAD, OPTIONS and CORS).
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "GET, HEAD, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "Accept, Accept-Language"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

/// Every answer of the resolver may be read by any origin (they are public; no credentials).
async fn any_origin(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Link, Location"));
    response
}

async fn resolve(State(app): State<AppState>, OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    let path_and_query = uri.path_and_query().map(|value| value.as_str()).unwrap_or("/");
    let link = match digital_link_of(&app, path_and_query) {
        Ok(link) => link,
        Err(problem) => return problem_answer(problem, &headers),
    };
    let mut response = match answer(&app, &link, &headers, uri.query()).await {
        Ok(response) => response,
        Err(problem) => problem_answer(problem, &headers),
    };
    // The linkset names the links of an item the resolver knows.
    if response.status().is_success() || response.status().is_redirection() {
        response.headers_mut().insert(header::LINK, linkset_header(&app, &link));
    }
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept, Accept-Language"));
    response
}

/// A problem as the client takes it: a page for a browser (a consumer scanning a misprinted or
/// unknown code, in their language), else RFC 9457 JSON.
fn problem_answer(problem: Problem, headers: &HeaderMap) -> Response {
    // A link type the item lacks is the asker's question, not the code's fault: the problem.
    let about_link_type = problem.errors.iter().any(|error| error.pointer == "?linkType");
    if !prefers_html(headers) || problem.status >= 500 || about_link_type {
        return problem.into_response();
    }
    let accept_language = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
    let lang = web::Lang::choose(None, accept_language);
    let (title, text) = if problem.status == 404 {
        ("code_unknown_title", "kiosk_unknown")
    } else {
        ("code_invalid_title", "code_invalid")
    };
    let (title, text) = (lang.text(title).unwrap_or(title), lang.text(text).unwrap_or(text));
    let body =
        format!("<h1>{}</h1><p>{}</p><p><small>{}</small></p>", escape(title), escape(text), escape(&problem.detail));
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, page_in(lang.code(), title, &body)).into_response();
    response.headers_mut().insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    response
}

/// Whether the client prefers a page to JSON (a browser's `Accept`).
fn prefers_html(headers: &HeaderMap) -> bool {
    let (html, json) = accept_weights(headers);
    html > 0.0 && html >= json
}

async fn answer(
    app: &AppState,
    link: &DigitalLink,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, Problem> {
    let item = find(app, link).await?;
    let link_type = link.other_parameters().iter().find(|(name, _)| name == "linkType").map(|(_, value)| value.clone());
    let links = links(app, link, &item);
    match link_type.as_deref() {
        Some("linkset") | Some("all") => Ok(linkset_response(link, links)),
        Some(requested) => {
            let uri = link_type_uri(requested);
            let target = links.get(&uri).and_then(|targets| targets.first()).ok_or_else(|| {
                Problem::field("not-found", "?linkType", format!("this item has no {requested} link"))
            })?;
            let location = HeaderValue::from_str(&with_query(&target.href, query)).map_err(Problem::internal)?;
            Ok((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response())
        }
        None if wants_linkset(headers) => Ok(linkset_response(link, links)),
        None => item_answer(app, link, &item, headers).await,
    }
}

fn linkset_response(link: &DigitalLink, links: BTreeMap<String, Vec<LinkTarget>>) -> Response {
    let mut context = serde_json::Map::new();
    context.insert("anchor".into(), serde_json::Value::String(link.canonical_uri()));
    for (link_type, targets) in links {
        context.insert(link_type, serde_json::to_value(targets).unwrap_or_default());
    }
    let body = serde_json::json!({ "linkset": [context] });
    ([(header::CONTENT_TYPE, "application/linkset+json")], body.to_string()).into_response()
}

/// A product's provenance page, or a location's plain page.
async fn item_answer(
    app: &AppState,
    link: &DigitalLink,
    item: &Item,
    headers: &HeaderMap,
) -> Result<Response, Problem> {
    match item {
        Item::Product { .. } => crate::provenance::page(app, link, item, headers).await,
        Item::Location { .. } => Ok(item_page(app, link, item).into_response()),
    }
}

fn item_page(app: &AppState, link: &DigitalLink, item: &Item) -> axum::response::Html<String> {
    let mut body = String::new();
    match item {
        Item::Product { product, party, .. } => {
            body.push_str(&format!("<h1>{}</h1>", escape(&product.name)));
            if let Some(brand) = &product.brand {
                body.push_str(&format!("<p>{}</p>", escape(brand)));
            }
            body.push_str("<dl>");
            body.push_str(&format!("<dt>GTIN</dt><dd><code>{}</code></dd>", product.gtin));
            for qualifier in link.qualifiers() {
                let label = match qualifier.code() {
                    "10" => "Lot",
                    "21" => "Serial",
                    "22" => "Variant",
                    "235" => "Third-party serial",
                    _ => qualifier.definition().title,
                };
                body.push_str(&format!(
                    "<dt>{}</dt><dd><code>{}</code></dd>",
                    escape(label),
                    escape(qualifier.value())
                ));
            }
            for attribute in link.attributes() {
                body.push_str(&format!(
                    "<dt>{}</dt><dd><code>{}</code></dd>",
                    escape(attribute.definition().title),
                    escape(attribute.value())
                ));
            }
            body.push_str(&format!("<dt>Kept</dt><dd>{}</dd>", product.temperature_class.name()));
            if let Some(country) = product.country_of_origin {
                body.push_str(&format!("<dt>Origin</dt><dd>{country}</dd>"));
            }
            if let Some(party) = party {
                let person = party.public_person_name().map(|name| format!(" — {}", escape(name))).unwrap_or_default();
                body.push_str(&format!(
                    "<dt>From</dt><dd>{} ({}){person}</dd>",
                    escape(&party.name),
                    party.kind.name()
                ));
            }
            body.push_str("</dl>");
            if let Some(nutrition) = &product.nutrition {
                body.push_str("<h2>Nutrition per 100 g</h2><table>");
                let rows = [
                    ("Energy (kJ)", nutrition.energy_kj),
                    ("Energy (kcal)", nutrition.energy_kcal),
                    ("Fat (g)", nutrition.fat_g),
                    ("of which saturates (g)", nutrition.saturates_g),
                    ("Carbohydrate (g)", nutrition.carbohydrate_g),
                    ("of which sugars (g)", nutrition.sugars_g),
                    ("Protein (g)", nutrition.protein_g),
                    ("Salt (g)", nutrition.salt_g),
                ];
                for (label, value) in rows {
                    if let Some(value) = value {
                        body.push_str(&format!("<tr><th>{label}</th><td>{value}</td></tr>"));
                    }
                }
                body.push_str("</table>");
            }
            body.push_str("<h2 id=\"journey\">Journey</h2><p>The journey of this item appears here once its EPCIS events are recorded.</p>");
            body.push_str("<h2 id=\"certifications\">Certifications</h2><p>No certifications recorded.</p>");
        }
        Item::Location { location } => {
            body.push_str(&format!(
                "<h1>{}</h1><p>{} · {}</p>",
                escape(&location.name),
                location.kind.name(),
                location.country
            ));
            body.push_str(&format!("<p>GLN <code>{}</code></p>", location.gln));
        }
    }
    let qr_path = format!("/qr{}", link.key_path());
    body.push_str(&format!(
        "<p><img src=\"{qr_path}\" alt=\"QR code of {}\" width=\"160\" height=\"160\"></p><p><small>GS1 Digital Link: <code>{}</code></small></p>",
        escape(&link.canonical_uri()),
        escape(&link.uri(&app.config.public_url))
    ));
    let title = match item {
        Item::Product { product, .. } => product.name.clone(),
        Item::Location { location } => location.name.clone(),
    };
    page(&title, &body)
}

/// `/provenance/<key path>`: the consumer page of an item (the `gs1:pip` link).
async fn provenance(
    State(app): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let path_and_query = uri.path_and_query().map(|value| value.as_str()).unwrap_or("/");
    let link = digital_link_of(&app, path_and_query.trim_start_matches("/provenance"))?;
    let item = find(&app, &link).await?;
    item_answer(&app, &link, &item, &headers).await
}

#[derive(Debug, Serialize)]
struct RecallStatus {
    /// The item, in canonical GS1 Digital Link form.
    item: String,
    /// Whether the item is recalled; `null` for a link without a lot whose product has recalled
    /// lots (`lots_recalled`): whether this pack is depends on its lot.
    recalled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall_id: Option<String>,
    /// What the recall tells consumers, in its brand's words; absent when the item is not
    /// recalled or its recall says nothing more.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_notice: Option<String>,
    /// The lots the item was made from (EPCIS transformations, at any remove, from its serial and
    /// its lot; at most `ORIGIN_LOTS_CHECKED_MAX` checked) that their brands have recalled, read
    /// at most a second ago. The item is not recalled by them (`recalled` says whether its own
    /// brand recalled it), but it should not be eaten or used.
    made_from_recalled: Vec<RecalledInput>,
    /// Not every lot it was made from was checked: its traces reached their limits, there were
    /// more than `ORIGIN_LOTS_CHECKED_MAX`, or its serial cannot be traced.
    made_from_truncated: bool,
    /// For a link without a lot (a product, as a pack's EAN-13 names it): the product's lots its
    /// brand has recalled, in lot order (at most `PRODUCT_RECALLED_LOTS_MAX`); `recalled` is
    /// `null` when there are any: check the pack's lot against these.
    lots_recalled: Vec<RecalledInput>,
    /// More lots are recalled than listed.
    lots_recalled_more: bool,
    checked_at: String,
}

#[derive(Debug, Serialize)]
struct RecalledInput {
    /// The lot, in canonical GS1 Digital Link form.
    item: String,
    gtin: String,
    lot: String,
    recall_id: String,
    /// What its recall tells consumers, if it says.
    public_notice: Option<String>,
}

/// `/recall-status/<key path>`: whether the item is recalled (the `gs1:recallStatus` link).
async fn recall_status(State(app): State<AppState>, OriginalUri(uri): OriginalUri) -> Result<Response, Problem> {
    let path_and_query = uri.path_and_query().map(|value| value.as_str()).unwrap_or("/");
    let link = digital_link_of(&app, path_and_query.trim_start_matches("/recall-status"))?;
    let item = find(&app, &link).await?;
    // A lot (AI 10) of a product is recalled by its brand's recall; a product without a lot in the
    // link is reported recalled only through its lots' own links.
    let key = link.primary_key();
    let lot = link.qualifiers().iter().find(|element| element.code() == "10").map(|element| element.value().to_owned());
    // A trade item (01) or an individual one (8006, its GTIN first): the item's lot, or without
    // one, the product's recalled lots.
    let (recall, lots_recalled) = match (key.code(), lot) {
        ("01" | "8006", Some(lot)) => (app.store.lot_recall(&key.value()[..14], &lot).await?, Default::default()),
        ("01" | "8006", None) => (None, crate::provenance::product_recalls(&app, &key.value()[..14]).await?),
        _ => (None, Default::default()),
    };
    let recalled_lot = |gtin: &str, lot: &str, recall_id: &str, public_notice: &Option<String>| RecalledInput {
        item: gs1::Gtin::parse(gtin)
            .ok()
            .and_then(|gtin| crate::trace::lot_identifier(&gtin, lot).ok())
            .map(|identifier| identifier.as_str().to_owned())
            .unwrap_or_default(),
        gtin: gtin.to_owned(),
        lot: lot.to_owned(),
        recall_id: recall_id.to_owned(),
        public_notice: public_notice.clone(),
    };
    let origins = crate::provenance::origins(&app, &link, &item).await?;
    let made_from_recalled = crate::provenance::recalled_origins(&app, &link.key_path(), &origins)
        .await?
        .iter()
        .map(|input| recalled_lot(&input.gtin, &input.lot, &input.recall_id, &input.public_notice))
        .collect();
    let status = RecallStatus {
        item: link.canonical_uri(),
        recalled: (recall.is_some() || lots_recalled.lots.is_empty()).then_some(recall.is_some()),
        public_notice: recall.as_ref().and_then(|recall| recall.public_notice.clone()),
        recall_id: recall.map(|recall| recall.recall_id),
        made_from_recalled,
        made_from_truncated: origins.truncated,
        lots_recalled: lots_recalled
            .lots
            .iter()
            .map(|lot| recalled_lot(&lot.gtin, &lot.lot, &lot.recall_id, &lot.public_notice))
            .collect(),
        lots_recalled_more: lots_recalled.more,
        checked_at: jiff::Timestamp::now().to_string(),
    };
    Ok(axum::Json(status).into_response())
}

/// `/.well-known/gs1resolver`: what this resolver supports.
async fn well_known(State(app): State<AppState>) -> Response {
    let body = serde_json::json!({
        "name": "Keten GS1 Digital Link resolver",
        "resolverRoot": app.config.public_url,
        "supportedPrimaryKeys": primary_keys().collect::<Vec<_>>(),
        "linkTypeDefaultCanBeLinkset": true,
        "supportedLinkTypes": ["gs1:pip", "gs1:traceability", "gs1:epcis", "gs1:certificationInfo", "gs1:recallStatus", "gs1:locationInfo"],
        "linksetFormats": ["application/linkset+json"],
        "knownItems": "products (01, 8006) and locations (414) registered on this Keten; other keys are parsed and answered 404",
    });
    axum::Json(body).into_response()
}

/// The most bytes of Digital Link a QR code is made for.
pub const QR_URI_LENGTH_MAX: usize = 1024;

/// `/qr/<key path>[?<data attributes>][&format=png|svg]`: a QR code of the Keten Digital Link.
async fn qr_code(State(app): State<AppState>, OriginalUri(uri): OriginalUri) -> Result<Response, Problem> {
    let path = uri.path().trim_start_matches("/qr");
    let mut format = "svg".to_owned();
    let mut attributes = Vec::new();
    for pair in uri.query().unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("format", value)) => format = value.to_owned(),
            // Data attributes (AIs, by their digits) go into the code; nothing else does.
            Some((name, _)) if !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_digit()) => {
                attributes.push(pair)
            }
            _ => {
                let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                return Err(Problem::field(
                    "invalid-parameter",
                    format!("?{name}"),
                    "a QR code takes data attributes (AIs) and format only",
                ));
            }
        }
    }
    let query = if attributes.is_empty() { String::new() } else { format!("?{}", attributes.join("&")) };
    let link = digital_link_of(&app, &format!("{path}{query}"))?;
    let text = link.uri(&app.config.public_url);
    if text.len() > QR_URI_LENGTH_MAX {
        return Err(Problem::new(
            "invalid-digital-link",
            format!("the Digital Link exceeds {QR_URI_LENGTH_MAX} bytes"),
        ));
    }
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).map_err(Problem::internal)?;
    match format.as_str() {
        "svg" => {
            let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
            Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], svg)
                .into_response())
        }
        "png" => {
            let png = qr_png(&code).map_err(Problem::internal)?;
            Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "public, max-age=86400")], png)
                .into_response())
        }
        other => Err(Problem::field("invalid-parameter", "?format", format!("must be svg or png, found {other:?}"))),
    }
}

/// Pixels per QR module and the quiet zone in modules (ISO/IEC 18004 asks for 4).
const QR_PIXELS_PER_MODULE: usize = 8;
const QR_QUIET_ZONE_MODULES: usize = 4;

/// Renders a QR code as an 8-bit greyscale PNG.
pub fn qr_png(code: &qrcode::QrCode) -> Result<Vec<u8>, png::EncodingError> {
    let modules = code.width();
    let colors = code.to_colors();
    let side_pixels = (modules + 2 * QR_QUIET_ZONE_MODULES) * QR_PIXELS_PER_MODULE;
    let mut pixels = vec![255u8; side_pixels * side_pixels];
    for (index, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (row, column) = (index / modules + QR_QUIET_ZONE_MODULES, index % modules + QR_QUIET_ZONE_MODULES);
            for y in row * QR_PIXELS_PER_MODULE..(row + 1) * QR_PIXELS_PER_MODULE {
                let start = y * side_pixels + column * QR_PIXELS_PER_MODULE;
                pixels[start..start + QR_PIXELS_PER_MODULE].fill(0);
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, side_pixels as u32, side_pixels as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
    }
    Ok(bytes)
}
