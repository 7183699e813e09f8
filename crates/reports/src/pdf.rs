//! A minimal PDF 1.4 writer (ISO 32000-1 subset) for the report: A4 pages, the standard
//! Helvetica fonts in WinAnsiEncoding (no embedded fonts), uncompressed content streams, text and
//! line drawing only. Characters outside WinAnsi print as `?`.
//!
//! Page 1: the title, the figures and a chart of the readings (one line per device) with the
//! range's limits dashed and the excursions shaded; the next pages: stays, devices with their
//! calibration dates, excursions, gaps, alarms and the EPCIS events with their log indexes.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::{CHART_POINTS_MAX, TABLE_ROWS_MAX, TemperatureReport};

const PAGE_WIDTH: f64 = 595.0;
const PAGE_HEIGHT: f64 = 842.0;
const MARGIN: f64 = 50.0;
const LINE_HEIGHT: f64 = 14.0;

/// A string in a PDF literal: WinAnsi bytes, with `\`, `(` and `)` escaped and non-ASCII bytes
/// as octal escapes.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for character in text.chars() {
        let byte = match character {
            ' '..='~' => character as u8,
            '°' => 0xB0,
            '–' => 0x96,
            '—' => 0x97,
            'é' => 0xE9,
            'ö' => 0xF6,
            'ü' => 0xFC,
            'ä' => 0xE4,
            'ø' => 0xF8,
            'å' => 0xE5,
            'Å' => 0xC5,
            _ => b'?',
        };
        match byte {
            b'\\' | b'(' | b')' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7E => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\{byte:03o}");
            }
        }
    }
    out.push(')');
    out
}

/// One page's drawing operators, written top-down with a text cursor.
struct Page {
    content: String,
    cursor_y: f64,
}

impl Page {
    fn new() -> Page {
        Page { content: String::new(), cursor_y: PAGE_HEIGHT - MARGIN }
    }

    fn text_at(&mut self, x: f64, y: f64, size: f64, bold: bool, text: &str) {
        let font = if bold { "F2" } else { "F1" };
        let _ = writeln!(self.content, "BT /{font} {size} Tf {x:.1} {y:.1} Td {} Tj ET", literal(text));
    }

    fn line(&mut self, size: f64, bold: bool, text: &str) {
        self.text_at(MARGIN, self.cursor_y, size, bold, text);
        self.cursor_y -= LINE_HEIGHT * size / 10.0;
    }

    fn full(&self) -> bool {
        self.cursor_y < MARGIN + LINE_HEIGHT
    }
}

/// Characters of a 9-point table row that fit between the margins.
const ROW_CHARACTERS_MAX: usize = 100;

/// Splits a line at spaces into pieces of at most `width` characters (a longer word alone).
fn wrapped(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

/// Lays out text lines over as many pages as they need.
struct Pages {
    done: Vec<Page>,
    current: Page,
}

impl Pages {
    fn line(&mut self, size: f64, bold: bool, text: &str) {
        if self.current.full() {
            self.done.push(std::mem::replace(&mut self.current, Page::new()));
        }
        self.current.line(size, bold, text);
    }

    fn heading(&mut self, text: &str) {
        if self.current.cursor_y < MARGIN + LINE_HEIGHT * 4.0 {
            self.done.push(std::mem::replace(&mut self.current, Page::new()));
        }
        self.current.cursor_y -= LINE_HEIGHT * 0.5;
        self.line(12.0, true, text);
    }

    /// A table's rows, at most [`TABLE_ROWS_MAX`], then how many were left out.
    fn rows(&mut self, rows: impl ExactSizeIterator<Item = String>) {
        let total = rows.len();
        if total == 0 {
            self.line(9.0, false, "none");
        }
        for row in rows.take(TABLE_ROWS_MAX) {
            for (index, piece) in wrapped(&row, ROW_CHARACTERS_MAX).into_iter().enumerate() {
                let indent = if index == 0 { "" } else { "    " };
                self.line(9.0, false, &format!("{indent}{piece}"));
            }
        }
        if total > TABLE_ROWS_MAX {
            self.line(9.0, false, &format!("... and {} more (see the CSV export)", total - TABLE_ROWS_MAX));
        }
    }
}

/// The chart: time across, temperature up; limits dashed, excursions shaded, one polyline per
/// device.
fn chart(page: &mut Page, report: &TemperatureReport) {
    let (left, width, height) = (MARGIN + 30.0, PAGE_WIDTH - 2.0 * MARGIN - 40.0, 200.0);
    let bottom = page.cursor_y - height - 10.0;
    let Some((start, end)) = report.period.or_else(|| {
        let first = report.readings.first()?.time;
        let last = report.readings.last()?.time;
        Some((first, last))
    }) else {
        page.line(10.0, false, "No readings to draw.");
        return;
    };
    let span_seconds = (end.as_second() - start.as_second()).max(1) as f64;
    let mut low = report.readings.iter().map(|reading| reading.celsius).fold(f64::INFINITY, f64::min);
    let mut high = report.readings.iter().map(|reading| reading.celsius).fold(f64::NEG_INFINITY, f64::max);
    for limit in [report.min_range_celsius, report.max_range_celsius].into_iter().flatten() {
        low = low.min(limit);
        high = high.max(limit);
    }
    if !low.is_finite() || !high.is_finite() {
        page.line(10.0, false, "No readings to draw.");
        return;
    }
    let (low, high) = (low.floor() - 1.0, high.ceil() + 1.0);
    let x_of = |time: Timestamp| left + (time.as_second() - start.as_second()) as f64 / span_seconds * width;
    let y_of = |celsius: f64| bottom + (celsius - low) / (high - low) * height;
    let content = &mut page.content;
    // Excursions, shaded.
    let _ = writeln!(content, "q 1 0.85 0.85 rg");
    for excursion in &report.excursions {
        let (from, to) = (x_of(excursion.start.max(start)), x_of(excursion.end.min(end)));
        let _ = writeln!(content, "{from:.1} {bottom:.1} {:.1} {height:.1} re f", (to - from).max(0.5));
    }
    let _ = writeln!(content, "Q");
    // Frame.
    let _ = writeln!(content, "q 0.5 w 0 0 0 RG {left:.1} {bottom:.1} {width:.1} {height:.1} re S Q");
    // Limits, dashed red, with their values.
    for limit in [report.min_range_celsius, report.max_range_celsius].into_iter().flatten() {
        let y = y_of(limit);
        let _ = writeln!(content, "q 0.8 0 0 RG 1 w [4 3] 0 d {left:.1} {y:.1} m {:.1} {y:.1} l S Q", left + width);
    }
    // Readings: one polyline per device, thinned to at most CHART_POINTS_MAX points.
    let mut devices: Vec<&str> = report.readings.iter().map(|reading| reading.device.as_str()).collect();
    devices.sort_unstable();
    devices.dedup();
    let colours = ["0 0.3 0.7", "0 0.5 0.2", "0.5 0.2 0.6", "0.4 0.4 0.4"];
    for (index, device) in devices.iter().enumerate() {
        let points: Vec<_> = report.readings.iter().filter(|reading| reading.device == *device).collect();
        let step = points.len().div_ceil(CHART_POINTS_MAX).max(1);
        let _ = writeln!(content, "q {} RG 1 w", colours[index % colours.len()]);
        for (position, reading) in points.iter().step_by(step).enumerate() {
            let operator = if position == 0 { "m" } else { "l" };
            let _ = writeln!(content, "{:.1} {:.1} {operator}", x_of(reading.time), y_of(reading.celsius));
        }
        let _ = writeln!(content, "S Q");
    }
    // Axis labels: the limits, and the chart's bottom and top unless they sit on a limit's.
    let limits: Vec<f64> = [report.min_range_celsius, report.max_range_celsius].into_iter().flatten().collect();
    let ends =
        [low, high].into_iter().filter(|end| limits.iter().all(|limit| (y_of(*limit) - y_of(*end)).abs() > 10.0));
    for celsius in limits.iter().copied().chain(ends) {
        page.text_at(MARGIN - 10.0, y_of(celsius) - 3.0, 8.0, false, &format!("{celsius:.0} °C"));
    }
    page.text_at(left, bottom - 12.0, 8.0, false, &start.to_string());
    page.text_at(left + width - 95.0, bottom - 12.0, 8.0, false, &end.to_string());
    let legend = format!("Devices: {} (dashed red: the range's limits; shaded: excursions)", devices.join(", "));
    page.text_at(left, bottom - 24.0, 8.0, false, &legend);
    page.cursor_y = bottom - 40.0;
}

pub(crate) fn render(report: &TemperatureReport) -> Vec<u8> {
    let mut first = Page::new();
    first.line(18.0, true, "Temperature report");
    first.cursor_y -= 4.0;
    for (label, value) in report.summary() {
        first.text_at(MARGIN, first.cursor_y, 10.0, true, label);
        first.text_at(MARGIN + 110.0, first.cursor_y, 10.0, false, &value);
        first.cursor_y -= LINE_HEIGHT;
    }
    first.cursor_y -= 6.0;
    chart(&mut first, report);
    let mut pages = Pages { done: Vec::new(), current: first };
    pages.heading("Custody (where the goods were, and which device measured)");
    pages.rows(
        report
            .stays
            .iter()
            .map(|stay| format!("{}  {} to {}  by {}", stay.location, stay.start, stay.end, stay.device)),
    );
    pages.heading("Devices");
    pages.rows(report.devices.iter().map(|device| {
        format!(
            "{}  {}  calibrated {}",
            device.device,
            device.name,
            device.calibrated_on.as_deref().unwrap_or("unknown")
        )
    }));
    pages.heading("Excursions");
    pages.rows(report.excursions.iter().map(|excursion| {
        let peak = excursion.peak_celsius.map(|peak| format!("peak {peak:.2} °C")).unwrap_or_default();
        format!(
            "{} to {}  ({})  {peak}",
            excursion.start,
            excursion.end,
            crate::duration_text(excursion.end.as_second() - excursion.start.as_second())
        )
    }));
    pages.heading("Gaps (temperature unknown)");
    pages.rows(report.gaps.iter().map(|gap| format!("{} to {}", gap.start, gap.end)));
    pages.heading("Alarms");
    pages.rows(report.alarms.iter().map(|alarm| {
        let acknowledged = match (&alarm.acknowledged_by, &alarm.comment) {
            (Some(person), Some(comment)) => format!("  acknowledged by {person}: {comment}"),
            (Some(person), None) => format!("  acknowledged by {person}"),
            _ => String::new(),
        };
        format!(
            "{} {} {} ({}) opened {}  {}{acknowledged}",
            alarm.alarm_id, alarm.device, alarm.rule, alarm.severity, alarm.opened_at, alarm.state
        )
    }));
    pages.heading("EPCIS events this report rests on");
    pages.rows(report.events.iter().map(|event| {
        let index = event.log_index.map(|index| format!("log index {index}")).unwrap_or_else(|| "not logged".into());
        format!("{}  {}  {index}", event.time, event.business_step)
    }));
    pages.done.push(pages.current);
    document(&pages.done)
}

/// The file: catalog, page tree, two fonts, then each page and its content stream; the
/// cross-reference table gives each object's byte offset.
fn document(pages: &[Page]) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    // 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, then (page, content) pairs.
    let kids: Vec<String> = (0..pages.len()).map(|index| format!("{} 0 R", 5 + index * 2)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".to_owned());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned());
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".to_owned());
    for (index, page) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
             /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
            6 + index * 2
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{}endstream", page.content.len(), page.content));
    }
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        let _ = write!(out, "{} 0 obj\n{object}\nendobj\n", index + 1);
    }
    let xref = out.len();
    let _ = write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        let _ = writeln!(out, "{offset:010} 00000 n ");
    }
    let _ = write!(out, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1);
    out.into_bytes()
}

/// The text shown by a PDF of this writer (the `Tj` strings, in order), for tests and checks.
pub fn shown_text(pdf: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pdf);
    let mut shown = Vec::new();
    for line in text.lines() {
        let Some(start) = line.find(" Td (") else { continue };
        let Some(end) = line.rfind(") Tj") else { continue };
        let raw = &line[start + 5..end];
        let mut decoded = String::new();
        let mut characters = raw.chars().peekable();
        while let Some(character) = characters.next() {
            if character != '\\' {
                decoded.push(character);
                continue;
            }
            let octal: String = std::iter::from_fn(|| characters.next_if(char::is_ascii_digit)).take(3).collect();
            if octal.is_empty() {
                decoded.extend(characters.next());
            } else {
                let byte = u8::from_str_radix(&octal, 8).unwrap_or(b'?');
                decoded.push(match byte {
                    0xB0 => '°',
                    0x96 => '–',
                    0x97 => '—',
                    other => other as char,
                });
            }
        }
        shown.push(decoded);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_rows_wrap_at_spaces() {
        assert_eq!(wrapped("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrapped("abcdefgh ij", 5), ["abcdefgh", "ij"]);
        assert_eq!(wrapped("", 5), [""]);
    }

    #[test]
    fn literals_escape_delimiters_and_encode_degrees() {
        assert_eq!(literal("a (b) \\ c"), "(a \\(b\\) \\\\ c)");
        assert_eq!(literal("5 °C"), "(5 \\260C)");
        assert_eq!(literal("Poznań"), "(Pozna?)");
    }

    #[test]
    fn the_cross_reference_table_points_at_each_object() {
        let pdf = crate::tests::sample().to_pdf();
        let text = String::from_utf8(pdf.clone()).unwrap();
        assert!(text.starts_with("%PDF-1.4\n") && text.ends_with("%%EOF\n"));
        let startxref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(text[startxref..].starts_with("xref\n"));
        let table: Vec<&str> =
            text[startxref..].lines().skip(3).take_while(|line| !line.starts_with("trailer")).collect();
        assert!(table.len() >= 6, "catalog, pages, two fonts, a page and its content");
        for (index, entry) in table.iter().enumerate() {
            assert_eq!(entry.len(), 19, "each entry is 20 bytes with its line feed: {entry:?}");
            let offset: usize = entry[..10].parse().unwrap();
            assert!(text[offset..].starts_with(&format!("{} 0 obj\n", index + 1)), "object {}", index + 1);
        }
        // Each stream's length is its content's.
        for (position, _) in text.match_indices("/Length ") {
            let rest = &text[position + 8..];
            let length: usize = rest[..rest.find(' ').unwrap()].parse().unwrap();
            let start = position + 8 + rest.find("stream\n").unwrap() + 7;
            assert!(text[start + length..].starts_with("endstream"));
        }
    }

    #[test]
    fn the_pdf_shows_the_figures_the_tables_and_the_verdict() {
        // Words as shown, whatever the line breaks and column spacing.
        let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let shown = words(&shown_text(&crate::tests::sample().to_pdf()).join(" "));
        for expected in [
            "Temperature report",
            "7.43 °C",
            "FAIL: out of range for 50 min",
            "logger-p1  Pallet logger, \"reefer\"  calibrated 2026-03-02",
            "2026-11-30T07:00:00Z to 2026-11-30T07:50:00Z  (50 min)  peak 11.00 °C",
            "acknowledged by Anna (QA): reefer door (checked)",
            "2026-11-30T10:00:00Z  receiving  log index 12",
            "8 °C",
        ] {
            assert!(shown.contains(&words(expected)), "{expected:?} missing from:\n{shown}");
        }
    }

    #[test]
    fn long_tables_continue_on_new_pages() {
        let mut report = crate::tests::sample();
        let excursion = report.excursions[0].clone();
        report.excursions = vec![excursion; 200];
        let pdf = String::from_utf8(report.to_pdf()).unwrap();
        let pages: usize = pdf.split("/Count ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(pages >= 2, "{pages} pages");
        assert!(shown_text(pdf.as_bytes()).iter().any(|line| line == "... and 140 more (see the CSV export)"));
    }
}
