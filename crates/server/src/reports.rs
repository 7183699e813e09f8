//! `GET /v1/reports/temperature?sscc=…` or `?gtin=…&lot=…`: the temperature report of a pallet
//! or a lot, as CSV (default), PDF or JSON (`format=`, or the Accept header).
//!
//! The history is derived, not typed in. Custody comes from the records: the pallets the lot was
//! announced on (`asn_pallets`; an SSCC's own) and the zones it had stock in, from its on-hand
//! stock movements (receipt in, the last units out). Each custody stay is joined with the devices
//! assigned there at the time: a device travelling with the pallet (assigned to its SSCC) first,
//! then the zone's devices for the time no pallet device covers. The exposure is computed by the
//! same code as `GET /v1/exposure` and `keten coldchain analyse`. The report lists the devices
//! with their calibration dates, the alarms of those devices in the period, and the EPCIS events
//! of the trace with their indexes in the transparency log.
//!
//! Not yet derived: time on vehicles (a route's load is known by shipment, not by lot) and the
//! pallets of outbound shipments (their SSCCs are packed from picks).

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use coldchain::{ExposureOptions, ProductClass, Series, Stay};
use network::TenantId;
use serde::Deserialize;
use store::Store;
use store::readings::AssignmentTarget;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::QueryParams;
use crate::extract::Caller;
use crate::problem::Problem;

/// Custody stays one report joins, at most.
pub const REPORT_STAYS_MAX: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(temperature_report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// A pallet's SSCC…
    pub sscc: Option<String>,
    /// …or a lot: its GTIN and lot number.
    pub gtin: Option<String>,
    pub lot: Option<String>,
    /// `csv` (default), `pdf` or `json`; else the Accept header decides.
    pub format: Option<String>,
    /// The tenant an operator key acts for.
    pub tenant: Option<String>,
}

/// The product class a network temperature class is judged by (none for ambient or custom).
pub fn product_class(class: &network::TemperatureClass) -> Option<ProductClass> {
    match class {
        network::TemperatureClass::Pharma => Some(ProductClass::Pharma),
        network::TemperatureClass::Frozen => Some(ProductClass::Frozen),
        network::TemperatureClass::Chilled => Some(ProductClass::Chilled),
        _ => None,
    }
}

/// The temperature the consumer's shelf life is told at, per class.
fn storage_celsius(class: ProductClass) -> f64 {
    match class {
        ProductClass::Pharma => 5.0,
        ProductClass::Frozen => -18.0,
        ProductClass::Chilled | ProductClass::Fish => 4.0,
    }
}

/// One stay before devices are joined: where, from when, to when, and how much it counts
/// (a device on the pallet before the zone's).
struct Custody {
    location: String,
    target: AssignmentTarget,
    from_unix_ms: i64,
    to_unix_ms: i64,
}

/// `[from, to)` minus the covered intervals (sorted, disjoint), as pieces.
fn uncovered(from: i64, to: i64, covered: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut pieces = Vec::new();
    let mut start = from;
    for &(covered_from, covered_to) in covered {
        if covered_to <= start || covered_from >= to {
            continue;
        }
        if covered_from > start {
            pieces.push((start, covered_from.min(to)));
        }
        start = start.max(covered_to);
        if start >= to {
            break;
        }
    }
    if start < to {
        pieces.push((start, to));
    }
    pieces
}

fn cover(covered: &mut Vec<(i64, i64)>, piece: (i64, i64)) {
    covered.push(piece);
    covered.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(covered.len());
    for &(from, to) in covered.iter() {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    *covered = merged;
}

/// The exposure over stays that may run at the same time in different places: each place is a
/// track of its own (its stays do not overlap), and the figures cover every track: minimum and
/// maximum over all, mean and MKT weighted by time over all, every track's excursions and gaps,
/// their times out of range added up.
fn tracks_exposure(stays: &[Stay<'_>], options: &ExposureOptions) -> coldchain::Exposure {
    let mut places: Vec<&str> = stays.iter().map(|stay| stay.location).collect();
    places.sort_unstable();
    places.dedup();
    let tracks: Vec<coldchain::Exposure> = places
        .iter()
        .map(|place| {
            let track: Vec<Stay<'_>> = stays.iter().filter(|stay| stay.location == *place).copied().collect();
            coldchain::exposure(&track, options)
        })
        .collect();
    let weighted: Vec<(f64, f64)> = stays
        .iter()
        .flat_map(|stay| stay.series.timeline(stay.start, stay.end))
        .filter_map(|segment| {
            let seconds = segment.duration().as_secs_f64();
            segment.celsius.filter(|_| seconds > 0.0).map(|celsius| (celsius, seconds))
        })
        .collect();
    let known_seconds: f64 = weighted.iter().map(|(_, seconds)| seconds).sum();
    let statistics = (known_seconds > 0.0)
        .then(|| {
            let mkt = coldchain::mean_kinetic_temperature(
                weighted.iter().copied(),
                options.activation_energy_over_gas_constant_kelvin,
            )?;
            Some(coldchain::Statistics {
                min_celsius: weighted.iter().map(|(celsius, _)| *celsius).fold(f64::INFINITY, f64::min),
                max_celsius: weighted.iter().map(|(celsius, _)| *celsius).fold(f64::NEG_INFINITY, f64::max),
                mean_celsius: weighted.iter().map(|(celsius, seconds)| celsius * seconds).sum::<f64>() / known_seconds,
                mean_kinetic_celsius: mkt,
            })
        })
        .flatten();
    let mut excursions: Vec<coldchain::Excursion> = tracks.iter().flat_map(|track| track.excursions.clone()).collect();
    excursions.sort_by_key(|excursion| (excursion.start, excursion.end));
    let mut gaps: Vec<coldchain::Gap> = tracks.iter().flat_map(|track| track.gaps.clone()).collect();
    gaps.sort_by_key(|gap| (gap.start, gap.end));
    coldchain::Exposure {
        time_per_location: tracks.iter().flat_map(|track| track.time_per_location.clone()).collect(),
        duration: tracks.iter().map(|track| track.duration).sum(),
        known_duration: tracks.iter().map(|track| track.known_duration).sum(),
        statistics,
        time_out_of_range: tracks.iter().map(|track| track.time_out_of_range).sum(),
        excursions,
        gaps,
    }
}

fn at(unix_ms: i64) -> Result<jiff::Timestamp, Problem> {
    jiff::Timestamp::from_millisecond(unix_ms).map_err(Problem::internal)
}

/// Builds the report of a pallet (`sscc`) or a lot (`gtin`, `lot`).
pub async fn build(
    store: &Store,
    tenant: &TenantId,
    sscc: Option<&gs1::Sscc>,
    lot: Option<(&gs1::Gtin, &str)>,
) -> Result<reports::TemperatureReport, Problem> {
    let now_unix_ms = store::now_unix_ms();
    let tenant_store = store.tenant(tenant);
    let pallets = tenant_store
        .pallets_for_custody(sscc.map(gs1::Sscc::as_str), lot.map(|(gtin, lot)| (gtin.as_str(), lot)))
        .await?;
    let subject = match (sscc, lot) {
        (Some(sscc), _) => format!("SSCC {sscc}"),
        (None, Some((gtin, lot))) => format!("Lot {lot} of GTIN {gtin}"),
        (None, None) => return Err(Problem::internal("a report without a subject")),
    };
    // The lots concerned: the pallet's, or the one asked for.
    let mut lots: Vec<(String, String)> = match lot {
        Some((gtin, lot)) => vec![(gtin.as_str().to_owned(), lot.to_owned())],
        None => pallets.iter().map(|pallet| (pallet.gtin.clone(), pallet.lot.clone())).collect(),
    };
    lots.sort();
    lots.dedup();
    if sscc.is_some() && pallets.is_empty() {
        let assigned = tenant_store
            .assignments_at(
                &AssignmentTarget::Sscc(sscc.cloned().ok_or_else(|| Problem::internal("sscc"))?),
                0,
                now_unix_ms,
            )
            .await?;
        if assigned.is_empty() {
            return Err(Problem::not_found(format!("{subject}: no pallet announced and no device assigned")));
        }
    }
    // The class: the strictest of the products'.
    let mut class: Option<ProductClass> = None;
    let mut shelf_life_days: Option<u32> = None;
    for (gtin, _) in &lots {
        let Ok(gtin) = gs1::Gtin::parse(gtin) else { continue };
        let Some(product) = tenant_store.product(&gtin).await? else { continue };
        shelf_life_days = shelf_life_days.or(product.shelf_life_days);
        if let Some(found) = product_class(&product.temperature_class) {
            let rank = |class: ProductClass| match class {
                ProductClass::Pharma => 3,
                ProductClass::Frozen => 2,
                _ => 1,
            };
            if class.is_none_or(|class| rank(found) > rank(class)) {
                class = Some(found);
            }
        }
    }
    if lot.is_some() && pallets.is_empty() && class.is_none() && shelf_life_days.is_none() {
        let (gtin, _) = lot.ok_or_else(|| Problem::internal("lot"))?;
        if tenant_store.product(gtin).await?.is_none() {
            return Err(Problem::not_found(format!("product {gtin}")));
        }
    }

    // Custody: pallets first (a device on the pallet measures the goods themselves), then zones.
    let mut custody: Vec<Custody> = Vec::new();
    let mut ssccs: Vec<String> = pallets.iter().map(|pallet| pallet.sscc.clone()).collect();
    if let Some(sscc) = sscc {
        ssccs.push(sscc.as_str().to_owned());
    }
    ssccs.sort();
    ssccs.dedup();
    for sscc in &ssccs {
        let parsed = gs1::Sscc::parse(sscc).map_err(Problem::internal)?;
        custody.push(Custody {
            location: format!("SSCC {sscc}"),
            target: AssignmentTarget::Sscc(parsed),
            from_unix_ms: 0,
            to_unix_ms: now_unix_ms,
        });
    }
    for (gtin, lot_number) in &lots {
        for stay in tenant_store.lot_zone_stays(gtin, lot_number).await? {
            // A pallet's report covers the zone from its own receipt on.
            let from = match sscc {
                Some(_) => {
                    let received = pallets.iter().find(|pallet| {
                        pallet.received_zone.as_deref() == Some(stay.zone.as_str())
                            && pallet.location_gln == stay.location_gln
                    });
                    match received.and_then(|pallet| pallet.received_unix_ms) {
                        Some(received) if stay.to_unix_ms.is_none_or(|to| to > received) => {
                            received.max(stay.from_unix_ms)
                        }
                        _ => continue,
                    }
                }
                None => stay.from_unix_ms,
            };
            let gln = gs1::Gln::parse(&stay.location_gln).map_err(Problem::internal)?;
            let zone = network::ZoneName::parse(&stay.zone).map_err(Problem::internal)?;
            custody.push(Custody {
                location: format!("{}/{}", stay.location_gln, stay.zone),
                target: AssignmentTarget::Zone { gln, zone },
                from_unix_ms: from,
                to_unix_ms: stay.to_unix_ms.unwrap_or(now_unix_ms),
            });
        }
    }

    // Join each stay with its devices. Within one place the first device assigned measures; in a
    // zone, a pallet's own device counts (from the pallet's receipt there) before the zone's.
    // Places held at the same time (a lot in two rooms) are separate tracks, all judged.
    let received_into: Vec<(String, String, i64)> = pallets
        .iter()
        .filter_map(|pallet| {
            Some((
                format!("{}/{}", pallet.location_gln, pallet.received_zone.as_deref()?),
                format!("SSCC {}", pallet.sscc),
                pallet.received_unix_ms?,
            ))
        })
        .collect();
    let mut coverage: std::collections::HashMap<String, Vec<(i64, i64)>> = std::collections::HashMap::new();
    let mut joined: Vec<(String, String, i64, i64)> = Vec::new();
    for stay in &custody {
        let mut covered = coverage.get(&stay.location).cloned().unwrap_or_default();
        for (zone, pallet, received) in &received_into {
            if *zone == stay.location {
                for &(from, to) in coverage.get(pallet).map(Vec::as_slice).unwrap_or_default() {
                    if to > *received {
                        cover(&mut covered, (from.max(*received), to));
                    }
                }
            }
        }
        let assignments = tenant_store.assignments_at(&stay.target, stay.from_unix_ms, stay.to_unix_ms).await?;
        for assignment in assignments {
            let from = assignment.from_unix_ms.max(stay.from_unix_ms);
            let to = assignment.to_unix_ms.unwrap_or(now_unix_ms).min(stay.to_unix_ms);
            for (piece_from, piece_to) in uncovered(from, to, &covered) {
                cover(&mut covered, (piece_from, piece_to));
                joined.push((stay.location.clone(), assignment.device_id.clone(), piece_from, piece_to));
            }
        }
        coverage.insert(stay.location.clone(), covered);
        if joined.len() > REPORT_STAYS_MAX {
            return Err(Problem::new(
                "limit-reached",
                format!("a report joins at most {REPORT_STAYS_MAX} custody stays with devices"),
            ));
        }
    }
    joined.sort_by_key(|(_, _, from, _)| *from);

    let mut budget = crate::readings::EXPOSURE_READINGS_MAX;
    let mut parts: Vec<(String, Series, jiff::Timestamp, jiff::Timestamp)> = Vec::new();
    for (location, device, from, to) in &joined {
        let series = crate::readings::device_series(store, tenant, device, *from, *to, &mut budget).await?;
        parts.push((location.clone(), series, at(*from)?, at(*to)?));
    }
    let stays: Vec<Stay<'_>> = parts
        .iter()
        .map(|(location, series, start, end)| Stay { location, series, start: *start, end: *end })
        .collect();
    let range = class.map(ProductClass::range);
    let judged_range = match range {
        Some(range) => range,
        None => coldchain::TemperatureRange::new(None, None).map_err(Problem::internal)?,
    };
    let exposure = tracks_exposure(&stays, &ExposureOptions::new(judged_range));
    let (pass, verdict) = match (class, exposure.statistics) {
        (Some(class), Some(statistics)) => coldchain::judge(class, class.range(), &exposure, statistics),
        (None, Some(_)) => (true, "no temperature class: nothing to judge against".to_owned()),
        (_, None) => (false, "no reading in the custody's time".to_owned()),
    };
    let shelf_life = match (class, shelf_life_days, exposure.statistics) {
        (Some(class), Some(days), Some(_)) => {
            let storage = storage_celsius(class);
            let model = coldchain::AnalysisOptions::new(class).spoilage_model();
            let segments: Vec<coldchain::Segment> =
                stays.iter().flat_map(|stay| stay.series.timeline(stay.start, stay.end)).collect();
            coldchain::ShelfLife::new(model, f64::from(days), storage).ok().map(|shelf_life| {
                let remaining = shelf_life.remaining(&segments, storage);
                reports::ShelfLifeLine {
                    storage_celsius: storage,
                    days_left: remaining.remaining_at_storage_days.unwrap_or(remaining.remaining_at_reference_days),
                    rated_days: days,
                    used_hours: remaining.used_at_reference_seconds / 3600.0,
                }
            })
        }
        _ => None,
    };

    // Devices, their alarms, their readings.
    let mut devices: Vec<String> = joined.iter().map(|(_, device, ..)| device.clone()).collect();
    devices.sort();
    devices.dedup();
    let mut device_lines = Vec::new();
    let mut alarm_lines = Vec::new();
    let (first, last) = (joined.first().map(|stay| stay.2), joined.iter().map(|stay| stay.3).max());
    for device in &devices {
        let parsed = network::DeviceId::parse(device).map_err(Problem::internal)?;
        let record = tenant_store.device(&parsed).await?;
        device_lines.push(reports::DeviceLine {
            device: device.clone(),
            name: record.as_ref().map(|record| record.name.clone()).unwrap_or_default(),
            calibrated_on: record.and_then(|record| record.calibrated_on).map(|date| date.to_string()),
        });
        if let Some(last) = last {
            let pieces: Vec<(i64, i64)> = joined
                .iter()
                .filter(|(_, piece_device, ..)| piece_device == device)
                .map(|(_, _, from, to)| (*from, *to))
                .collect();
            let alarms = tenant_store.device_alarms(device, 0, last).await?;
            for alarm in alarms.into_iter().filter(|alarm| {
                let end = alarm.condition_end_unix_ms.unwrap_or(i64::MAX);
                pieces.iter().any(|(from, to)| alarm.condition_start_unix_ms < *to && end > *from)
            }) {
                alarm_lines.push(reports::AlarmLine {
                    alarm_id: alarm.alarm_id,
                    device: alarm.device_id,
                    rule: alarm.rule,
                    severity: alarm.severity,
                    state: alarm.state,
                    opened_at: at(alarm.opened_unix_ms)?,
                    acknowledged_by: alarm.acknowledged_by,
                    comment: alarm.acknowledged_comment,
                });
            }
        }
    }
    alarm_lines.sort_by_key(|alarm| alarm.opened_at);
    let mut reading_lines = Vec::new();
    for (location, series, start, end) in &parts {
        for (time, celsius) in series.points() {
            if time >= *start && time < *end {
                reading_lines.push(reports::ReadingLine {
                    time,
                    device: series.device().to_owned(),
                    location: location.clone(),
                    celsius,
                });
            }
        }
    }
    reading_lines.sort_by_key(|reading| reading.time);

    // The EPCIS events of the trace, with their log indexes.
    let start_identifier = match (sscc, lot) {
        (Some(sscc), _) => {
            epcis::Identifier::parse(&format!("https://id.gs1.org/00/{sscc}")).map_err(Problem::internal)?
        }
        (None, Some((gtin, lot))) => crate::trace::lot_identifier(gtin, lot).map_err(Problem::internal)?,
        (None, None) => return Err(Problem::internal("a report without a subject")),
    };
    let found = crate::trace::trace(store, tenant, &start_identifier).await?;
    let mut event_lines: Vec<reports::EventLine> = found
        .events
        .values()
        .map(|(stored, event)| reports::EventLine {
            time: jiff::Timestamp::from_millisecond(stored.event_time_ms).unwrap_or_default(),
            business_step: event
                .business_step
                .as_ref()
                .map(|step| epcis::vocabulary::compact_gs1_term(step.as_str()).to_owned())
                .unwrap_or_else(|| "(no business step)".to_owned()),
            log_index: stored.log_index.map(|index| index as u64),
        })
        .collect();
    event_lines.sort_by_key(|event| (event.time, event.log_index));

    let hundredths = |value: f64| (value * 100.0).round() / 100.0;
    Ok(reports::TemperatureReport {
        subject,
        tenant: tenant.to_string(),
        generated_at: at(now_unix_ms)?,
        class: class.map(|class| class.name().to_owned()),
        min_range_celsius: range.and_then(|range| range.min_celsius()),
        max_range_celsius: range.and_then(|range| range.max_celsius()),
        period: match (first, last) {
            (Some(first), Some(last)) => Some((at(first)?, at(last)?)),
            _ => None,
        },
        figures: exposure.statistics.map(|statistics| reports::Figures {
            mkt_celsius: hundredths(statistics.mean_kinetic_celsius),
            min_celsius: hundredths(statistics.min_celsius),
            max_celsius: hundredths(statistics.max_celsius),
            mean_celsius: hundredths(statistics.mean_celsius),
        }),
        time_out_of_range_s: coldchain::whole_seconds(exposure.time_out_of_range),
        pass,
        verdict,
        shelf_life,
        excursions: exposure
            .excursions
            .iter()
            .map(|excursion| reports::Period {
                start: excursion.start,
                end: excursion.end,
                peak_celsius: Some(hundredths(excursion.peak_celsius)),
            })
            .collect(),
        gaps: exposure
            .gaps
            .iter()
            .map(|gap| reports::Period { start: gap.start, end: gap.end, peak_celsius: None })
            .collect(),
        stays: parts
            .iter()
            .map(|(location, series, start, end)| reports::StayLine {
                location: location.clone(),
                device: series.device().to_owned(),
                start: *start,
                end: *end,
            })
            .collect(),
        devices: device_lines,
        alarms: alarm_lines,
        events: event_lines,
        readings: reading_lines,
    })
}

enum Format {
    Csv,
    Pdf,
    Json,
}

fn format_of(params: &ReportParams, headers: &HeaderMap) -> Result<Format, Problem> {
    if let Some(format) = &params.format {
        return match format.as_str() {
            "csv" => Ok(Format::Csv),
            "pdf" => Ok(Format::Pdf),
            "json" => Ok(Format::Json),
            _ => Err(Problem::field("invalid-parameter", "?format", "must be csv, pdf or json")),
        };
    }
    let accept = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or("");
    Ok(if accept.contains("application/pdf") {
        Format::Pdf
    } else if accept.contains("application/json") {
        Format::Json
    } else {
        Format::Csv
    })
}

/// The temperature report of a pallet or a lot: custody joined with the devices there, the
/// exposure (MKT, minimum, maximum, mean, time out of range, excursions, gaps, pass or fail for
/// the product's class), remaining shelf life, devices with calibration dates, alarms, and the
/// EPCIS events with their log indexes. CSV, PDF (with a chart) or JSON.
#[utoipa::path(get, path = "/v1/reports/temperature", tag = "coldchain", params(ReportParams),
    responses(
        (status = 200, description = "The report", content_type = "text/csv"),
        (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn temperature_report(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryParams(params): QueryParams<ReportParams>,
) -> Result<Response, Problem> {
    let (_, tenant) = crate::fulfilment::acting_tenant(&app, &caller, params.tenant.as_deref(), false).await?;
    let format = format_of(&params, &headers)?;
    let invalid = |name: &str, detail: String| Problem::field("invalid-parameter", format!("?{name}"), detail);
    let report = match (&params.sscc, &params.gtin, &params.lot) {
        (Some(sscc), None, None) => {
            let sscc = gs1::Sscc::parse(sscc).map_err(|error| invalid("sscc", error.to_string()))?;
            build(&app.store, &tenant, Some(&sscc), None).await?
        }
        (None, Some(gtin), Some(lot)) => {
            let gtin = gs1::Gtin::parse(gtin).map_err(|error| invalid("gtin", error.to_string()))?;
            let mut checker = crate::dto::Checker::default();
            if crate::fulfilment::check_lot(&mut checker, "?lot", lot).is_none()
                || crate::trace::lot_identifier(&gtin, lot).is_err()
            {
                return Err(invalid("lot", "a lot is 1-20 characters of the GS1 character set 82 (no spaces)".into()));
            }
            build(&app.store, &tenant, None, Some((&gtin, lot))).await?
        }
        _ => return Err(invalid("sscc", "give sscc, or gtin and lot".into())),
    };
    Ok(match format {
        Format::Csv => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], report.to_csv()).into_response(),
        Format::Pdf => ([(header::CONTENT_TYPE, "application/pdf")], report.to_pdf()).into_response(),
        Format::Json => {
            let body = serde_json::json!({
                "subject": report.subject,
                "class": report.class,
                "min_range_celsius": report.min_range_celsius,
                "max_range_celsius": report.max_range_celsius,
                "mkt_celsius": report.figures.map(|figures| figures.mkt_celsius),
                "min_celsius": report.figures.map(|figures| figures.min_celsius),
                "max_celsius": report.figures.map(|figures| figures.max_celsius),
                "mean_celsius": report.figures.map(|figures| figures.mean_celsius),
                "time_out_of_range_s": report.time_out_of_range_s,
                "pass": report.pass,
                "verdict": report.verdict,
                "shelf_life": report.shelf_life.map(|line| serde_json::json!({
                    "storage_celsius": line.storage_celsius,
                    "days_left": (line.days_left * 10.0).round() / 10.0,
                    "rated_days": line.rated_days,
                    "used_hours": (line.used_hours * 10.0).round() / 10.0,
                })),
                "excursions": report.excursions.iter().map(|excursion| serde_json::json!({
                    "start": excursion.start.to_string(), "end": excursion.end.to_string(), "peak_celsius": excursion.peak_celsius,
                })).collect::<Vec<_>>(),
                "gaps": report.gaps.iter().map(|gap| serde_json::json!({"start": gap.start.to_string(), "end": gap.end.to_string()})).collect::<Vec<_>>(),
                "stays": report.stays.iter().map(|stay| serde_json::json!({
                    "location": stay.location, "device": stay.device, "start": stay.start.to_string(), "end": stay.end.to_string(),
                })).collect::<Vec<_>>(),
                "devices": report.devices.iter().map(|device| serde_json::json!({
                    "device": device.device, "name": device.name, "calibrated_on": device.calibrated_on,
                })).collect::<Vec<_>>(),
                "alarms": report.alarms.iter().map(|alarm| serde_json::json!({
                    "alarm_id": alarm.alarm_id, "rule": alarm.rule, "state": alarm.state,
                })).collect::<Vec<_>>(),
                "events": report.events.iter().map(|event| serde_json::json!({
                    "time": event.time.to_string(), "biz_step": event.business_step, "log_index": event.log_index,
                })).collect::<Vec<_>>(),
                "readings": report.readings.len(),
            });
            axum::Json(body).into_response()
        }
    })
}
