//! `POST /v1/scan`: what a scan is — keys, lot, expiry, weight, price, the product, its state.

use axum::Json;
use axum::extract::State;
use gs1::{CalendarDate, Decimal, DigitalLink, ElementString, Gtin};
use serde::{Deserialize, Serialize};
use store::Scope;
use utoipa::ToSchema;

use crate::AppState;
use crate::dto::ProductView;
use crate::extract::{Caller, JsonBody};
use crate::problem::Problem;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanInput {
    /// What the scanner sent: `]C1…`/`]d2…`/`]Q3…` scanner output (FNC1 as GS, \u001d), a GS1
    /// Digital Link URI, a bracketed element string `(01)…(10)…`, or a bare GTIN.
    pub data: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanElement {
    pub ai: String,
    pub title: String,
    pub value: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanPrice {
    /// Decimal amount as text (exact), e.g. `12.95`.
    pub amount: String,
    /// ISO 4217 numeric currency code for AI 393n, absent for 392n (the local currency).
    pub currency_numeric: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScanView {
    /// `scanner_output`, `digital_link`, `bracketed_element_string`, `unbracketed_element_string` or `plain_gtin`.
    pub form: String,
    /// The symbology identifier, for scanner output.
    pub symbology: Option<String>,
    pub element_string: String,
    pub elements: Vec<ScanElement>,
    /// Keten's own Digital Link for the item (when the data holds a primary key).
    pub digital_link: Option<String>,
    pub canonical_digital_link: Option<String>,
    pub gtin: Option<String>,
    pub sscc: Option<String>,
    pub gln: Option<String>,
    pub lot: Option<String>,
    pub serial: Option<String>,
    /// YYYY-MM-DD (AI 17; day 00 read as the month's last day).
    pub expiry_date: Option<String>,
    /// YYYY-MM-DD (AI 15).
    pub best_before_date: Option<String>,
    /// Net weight in kg (AI 310n), exact decimal text.
    pub net_weight_kg: Option<String>,
    pub price: Option<ScanPrice>,
    /// The calling tenant's product for this GTIN, if it has one.
    pub product: Option<ProductView>,
    /// Whether the expiry date is before today (UTC); absent without an expiry date.
    pub expired: Option<bool>,
    /// Whether the lot (AI 10) of the GTIN is recalled, by whichever brand holds the GTIN (as the
    /// resolver's `gs1:recallStatus` answers); `null` for a GTIN scanned without its lot whose
    /// product has recalled lots (see `lots_recalled`).
    pub recalled: Option<bool>,
    /// What the lot's recall tells consumers, if it is recalled and its recall says.
    pub recall_notice: Option<String>,
    /// The lots the item was made from (EPCIS transformations, at any remove, as its Digital
    /// Link's traces find them) that their brands have recalled: not to be sold, whether or not
    /// the item's own lot is recalled (as the resolver's `gs1:recallStatus` answers).
    pub made_from_recalled: Vec<RecalledLotView>,
    /// Not every lot it was made from was checked: its traces reached their limits, there were
    /// more than `provenance::ORIGIN_LOTS_CHECKED_MAX`, or its serial cannot be traced.
    pub made_from_truncated: bool,
    /// A GTIN scanned without its lot (a pack's EAN-13): the product's lots its brand has
    /// recalled, in lot order (at most `provenance::PRODUCT_RECALLED_LOTS_MAX`); `recalled` is
    /// `null` when there are any: check the pack's lot against these.
    pub lots_recalled: Vec<RecalledLotView>,
    /// More lots are recalled than listed.
    pub lots_recalled_more: bool,
}

/// A recalled lot of a GTIN.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecalledLotView {
    pub gtin: String,
    pub lot: String,
    pub recall_id: String,
    /// What its recall tells consumers, if it says.
    pub public_notice: Option<String>,
}

impl From<&crate::provenance::RecalledOrigin> for RecalledLotView {
    fn from(origin: &crate::provenance::RecalledOrigin) -> Self {
        RecalledLotView {
            gtin: origin.gtin.clone(),
            lot: origin.lot.clone(),
            recall_id: origin.recall_id.clone(),
            public_notice: origin.public_notice.clone(),
        }
    }
}

fn decimal_text(decimal: Decimal) -> String {
    let digits = decimal.coefficient().to_string();
    let scale = usize::from(decimal.scale());
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{whole}.{fraction}")
}

fn date_text(date: CalendarDate) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

fn today() -> CalendarDate {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    CalendarDate::new(i32::from(now.year()), now.month() as u8, now.day() as u8)
        .unwrap_or(CalendarDate::new(2000, 1, 1).expect("valid date"))
}

/// The keys and attributes of a scan, and the product the calling tenant knows for it.
#[utoipa::path(post, path = "/v1/scan", tag = "gs1", request_body = ScanInput, responses((status = 200, body = ScanView), (status = 400, body = Problem)))]
pub async fn scan(
    State(app): State<AppState>,
    caller: Caller,
    body: JsonBody<ScanInput>,
) -> Result<Json<ScanView>, Problem> {
    let principal = if caller.0.is_operator() { &caller.0 } else { caller.require(Scope::TenantRead)? };
    let data = body.value.data;
    if data.len() > 8192 {
        return Err(Problem::field("invalid-scan-data", "/data", "must be at most 8192 bytes"));
    }
    let (form, element_string) =
        gs1::read_any(&data).map_err(|error| Problem::field("invalid-scan-data", "/data", error.to_string()))?;
    let today = today();
    let view = describe(&app, form, &element_string, today);
    let gtin = view.gtin.as_deref().and_then(|text| Gtin::parse(text).ok());
    let product = match &gtin {
        Some(gtin) => app.store.tenant(&principal.tenant_id).product(gtin).await?.map(ProductView::from),
        None => None,
    };
    let recall = match (&gtin, &view.lot) {
        (Some(gtin), Some(lot)) => app.store.lot_recall(gtin.as_str(), lot).await?,
        _ => None,
    };
    let product_recalls = match (&gtin, &view.lot) {
        (Some(gtin), None) => crate::provenance::product_recalls(&app, gtin.as_str()).await?,
        _ => Default::default(),
    };
    let lots_recalled: Vec<RecalledLotView> = product_recalls.lots.iter().map(RecalledLotView::from).collect();
    let recalled = (recall.is_some() || lots_recalled.is_empty()).then_some(recall.is_some());
    let recall_notice = recall.and_then(|recall| recall.public_notice);
    let (made_from_recalled, made_from_truncated) = match &digital_link_of(&element_string) {
        Some(link) => {
            let (recalled, truncated) = crate::provenance::recalled_origins_at(&app, link).await?;
            let lots = recalled.iter().map(RecalledLotView::from).collect();
            (lots, truncated)
        }
        None => (Vec::new(), false),
    };
    Ok(Json(ScanView {
        product,
        recalled,
        recall_notice,
        made_from_recalled,
        made_from_truncated,
        lots_recalled,
        lots_recalled_more: product_recalls.more,
        ..view
    }))
}

fn digital_link_of(element_string: &ElementString) -> Option<DigitalLink> {
    DigitalLink::from_element_string(element_string).ok()
}

fn describe(app: &AppState, form: gs1::ScannedForm, element_string: &ElementString, today: CalendarDate) -> ScanView {
    let value = |code: &str| element_string.value(code).map(str::to_owned);
    let digital_link = digital_link_of(element_string);
    let expiry = element_string.expiry_date(today);
    let price = element_string
        .elements()
        .iter()
        .find(|element| element.code().starts_with("392") || element.code().starts_with("393"));
    ScanView {
        form: form.name().to_owned(),
        symbology: match form {
            gs1::ScannedForm::ScannerOutput(symbology) => Some(symbology.identifier().to_owned()),
            _ => None,
        },
        element_string: element_string.to_bracketed(),
        elements: element_string
            .elements()
            .iter()
            .map(|element| ScanElement {
                ai: element.code().to_owned(),
                title: element.definition().title.to_owned(),
                value: element.value().to_owned(),
            })
            .collect(),
        digital_link: digital_link.as_ref().map(|link| link.uri(&app.config.public_url)),
        canonical_digital_link: digital_link.as_ref().map(DigitalLink::canonical_uri),
        gtin: element_string.gtin().map(|gtin| gtin.to_string()),
        sscc: value("00"),
        gln: value("414"),
        lot: value("10"),
        serial: value("21"),
        expiry_date: expiry.map(date_text),
        best_before_date: element_string.get("15").and_then(|element| element.date(today)).map(date_text),
        net_weight_kg: element_string.net_weight_kilograms().map(decimal_text),
        price: price.and_then(|element| {
            element.decimal().map(|amount| ScanPrice {
                amount: decimal_text(amount),
                currency_numeric: element.currency().map(|code| format!("{code:03}")),
            })
        }),
        product: None,
        expired: expiry.map(|date| date < today),
        recalled: Some(false),
        recall_notice: None,
        made_from_recalled: Vec::new(),
        made_from_truncated: false,
        lots_recalled: Vec::new(),
        lots_recalled_more: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal_text(Decimal::new(1234, 3)), "1.234");
        assert_eq!(decimal_text(Decimal::new(5, 2)), "0.05");
        assert_eq!(decimal_text(Decimal::new(1295, 0)), "1295");
    }
}
