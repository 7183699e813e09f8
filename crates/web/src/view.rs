//! What the pages show, as plain data the server fills from the store. The templates render it;
//! nothing here reads anything.

use jiff::Timestamp;
use serde::Serialize;

use crate::i18n::Lang;

/// How a provenance page is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A phone or desktop browser.
    Normal,
    /// Large text and high contrast (`?view=large`).
    Large,
    /// The store's connected mirror (`?kiosk=1`): full screen, large type, a barcode scanner.
    Kiosk,
}

/// A moment as the page shows it: in the place's time zone without JavaScript, in the viewer's
/// with it (`iso` is what the script reads).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeView {
    pub iso: String,
    pub local: String,
}

impl TimeView {
    /// `23 Nov 2026, 06:00 CET` in the time zone `zone` (UTC when unknown).
    pub fn new(time: Timestamp, zone: &str, lang: Lang) -> TimeView {
        let zoned = match jiff::tz::TimeZone::get(zone) {
            Ok(tz) => time.to_zoned(tz),
            Err(_) => time.to_zoned(jiff::tz::TimeZone::UTC),
        };
        let abbreviation = zoned.time_zone().to_offset_info(time).abbreviation().to_string();
        let local = format!(
            "{} {} {}, {:02}:{:02} {}",
            zoned.day(),
            lang.month(zoned.month()),
            zoned.year(),
            zoned.hour(),
            zoned.minute(),
            abbreviation
        );
        TimeView { iso: time.to_string(), local }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductView {
    pub name: String,
    pub brand: Option<String>,
    pub description: Option<String>,
    pub gtin: String,
    pub lot: Option<String>,
    pub serial: Option<String>,
    pub expiry: Option<String>,
    /// A text key: `class_chilled`, `class_frozen`, `class_ambient`, `class_pharma`.
    pub class_key: String,
    /// (text key, value) per 100 g.
    pub nutrition: Vec<(String, String)>,
    pub allergens: Vec<String>,
}

/// A recalled lot of the product a page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecalledLotView {
    pub lot: String,
    /// What its recall tells consumers, in its brand's words.
    pub notice: Option<String>,
}

/// A recalled lot an item was made from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecalledInputView {
    /// The product's public name, when it has one.
    pub name: Option<String>,
    pub gtin: String,
    pub lot: String,
    /// What its recall tells consumers, in its brand's words.
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginView {
    pub name: String,
    /// `farm`, `fishery`, `supplier` …
    pub kind: String,
    /// Only when the person agreed to publish it.
    pub person: Option<String>,
    pub country: Option<String>,
    pub place: Option<String>,
    pub harvested: Option<TimeView>,
}

/// One place on the journey, or the road between two.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StopView {
    pub transit: bool,
    pub place: String,
    /// The place kind (`farm`, `cold_depot` …); empty on the road.
    pub place_kind: String,
    pub arrived: Option<TimeView>,
    pub left: Option<TimeView>,
    /// Whole and tenth hours spent here; none for the last place (still there).
    pub hours: Option<String>,
    pub cold: bool,
    pub events: Vec<EventView>,
}

/// One recorded step, with what the browser checks against the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    /// A text key (`step_receiving`).
    pub step_key: String,
    pub time: TimeView,
    pub log_index: Option<u64>,
    /// The fields of the event this page shows, as a JSON object of JSON pointer → the field's
    /// JSON text (as committed in the log entry).
    pub fields: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemperatureView {
    /// The chart, drawn by [`crate::svg::chart`].
    pub chart_svg: String,
    pub range: String,
    pub measured: String,
    pub excursions: usize,
    pub minutes_out: i64,
    pub pass: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShelfLifeView {
    pub at_celsius: String,
    pub days_left: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkView {
    pub title: String,
    pub href: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckView {
    /// A text key.
    pub key: String,
    pub ok: bool,
}

/// Everything on a product's provenance page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProvenanceView {
    pub lang: Lang,
    pub mode: Mode,
    /// The item's Digital Link key path (`/01/…/10/…`), for the language and view switches.
    pub path: String,
    pub product: ProductView,
    pub origin: Option<OriginView>,
    /// The map, drawn by [`crate::svg::map`].
    pub map_svg: Option<String>,
    pub journey: Vec<StopView>,
    pub cold_hours: Option<String>,
    pub temperature: Option<TemperatureView>,
    pub shelf_life: Option<ShelfLifeView>,
    pub certifications: Vec<LinkView>,
    pub checks: Vec<CheckView>,
    pub recalled: bool,
    /// What the lot's recall tells consumers, in its brand's words.
    pub recall_notice: Option<String>,
    /// Lots the item was made from that their brands recalled, whether or not its own brand
    /// recalled it.
    pub recalled_inputs: Vec<RecalledInputView>,
    /// For an item named without its lot (a product's page): the product's lots its brand
    /// recalled, for the consumer to check the pack's lot against.
    pub recalled_lots: Vec<RecalledLotView>,
    /// More lots are recalled than listed.
    pub recalled_lots_more: bool,
    pub digital_link: String,
    pub qr_path: String,
    /// Where the browser fetches an event's proof: `{proof_path}{log index}?item={path}`.
    pub proof_path: String,
}

/// The kiosk waiting for a scan, or after an unknown one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KioskIdleView {
    pub lang: Lang,
    pub unknown: bool,
}

/// The sign-in form of the portal and the console.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignInView {
    pub csrf: String,
    pub error: Option<String>,
}

/// An error page for a person (forms), with the problem's type and detail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorView {
    /// The session's CSRF token when signed in (for the sign-out form).
    pub csrf: Option<String>,
    pub status: u16,
    pub title: String,
    pub detail: String,
    pub problem_type: String,
}

/// A cold-chain alarm as a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmRowView {
    pub tenant: String,
    pub alarm_id: String,
    pub device: String,
    pub target: String,
    pub rule: String,
    pub severity: String,
    pub state: String,
    pub opened: TimeView,
    pub peak_celsius: String,
    pub held_lots: Vec<String>,
    pub acknowledged_by: Option<String>,
    pub comment: Option<String>,
    /// Whether a person may acknowledge it now (open or escalated).
    pub needs_person: bool,
}

/// The 24-hour promise over a period of UTC days, as `/v1/sla` reports it by default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaTableView {
    /// The first and last UTC day, YYYY-MM-DD.
    pub from: String,
    pub to: String,
    pub lines: Vec<SlaLineView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaLineView {
    pub region: String,
    pub service: String,
    pub orders: i64,
    /// Arrived: at the door or the pickup point.
    pub delivered: i64,
    /// Returned without arriving.
    pub failed: i64,
    pub by_promise_percent: Option<String>,
    pub within_24h_percent: Option<String>,
    pub late_open: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantLineView {
    pub tenant: String,
    pub name: String,
    pub rows: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogView {
    pub origin: String,
    pub size: u64,
    pub checkpoint_at: Option<TimeView>,
    pub cosignatures: usize,
}

/// The operator's console.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsoleView {
    pub csrf: String,
    pub network_svg: Option<String>,
    /// (status, count).
    pub orders: Vec<(String, i64)>,
    pub sla: SlaTableView,
    pub alarms: Vec<AlarmRowView>,
    pub log: LogView,
    pub tenants: Vec<TenantLineView>,
    /// Per depot: its name and its routes of the last and next day, drawn.
    pub depots: Vec<DepotRoutesView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepotRoutesView {
    pub name: String,
    pub routes: usize,
    pub open_stops: i64,
    pub svg: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductLineView {
    pub gtin: String,
    pub name: String,
    pub class: String,
    pub qr_path: String,
    pub page_path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StockLineView {
    pub location: String,
    pub zone: String,
    pub gtin: String,
    pub lot: String,
    pub expiry: Option<String>,
    pub days_left: Option<i64>,
    /// `expired`, `soon` (a week or less), `fresh`, or `none` (no expiry).
    pub freshness: String,
    pub status: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderLineView {
    pub order_id: String,
    pub status: String,
    pub service: String,
    pub placed: TimeView,
    pub promised_by: TimeView,
    pub delivered: Option<TimeView>,
}

/// A recall the merchant made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallLineView {
    pub recall_id: String,
    pub gtin: String,
    pub lots: Vec<String>,
    pub reason: String,
    pub recalled: TimeView,
}

/// A merchant's portal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortalView {
    pub csrf: String,
    pub tenant: String,
    pub products: Vec<ProductLineView>,
    pub stock: Vec<StockLineView>,
    pub orders: Vec<OrderLineView>,
    /// The merchant's own 24-hour promise, measured (as the console's, for one tenant).
    pub sla: SlaTableView,
    pub alarms: Vec<AlarmRowView>,
    /// The merchant's recalls, newest first.
    pub recalls: Vec<RecallLineView>,
    pub storage_rows: i64,
    /// A fresh idempotency key for the recall form (a resubmitted form starts one recall).
    pub request_id: String,
}

/// The answer to a recall started from the portal: the recall's JSON (as the API answers it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortalRecallView {
    pub csrf: String,
    pub tenant: String,
    pub recall: serde_json::Value,
    /// The form was sent before: this is the recall it started.
    pub replayed: bool,
}

/// One alarm of a merchant, with its report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortalAlarmView {
    pub csrf: String,
    pub tenant: String,
    pub alarm: AlarmRowView,
    /// Links to the temperature reports of the alarm's pieces (PDF).
    pub reports: Vec<(String, String)>,
}
