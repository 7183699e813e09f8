//! The CSV export (RFC 4180 quoting): `#` comment lines with the figures, the stays, devices,
//! excursions, gaps, alarms and events, then a header and one row per reading
//! (`time,device,location,celsius`), oldest first.

use crate::TemperatureReport;

/// A field quoted when it holds a comma, a quote or a line break (quotes doubled).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_owned() }
}

fn row(fields: &[&str]) -> String {
    let mut line = fields.iter().map(|text| field(text)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// A text for a comment line: line breaks become spaces (a comment stays one line), and a text
/// a spreadsheet would run as a formula (`=`, `+`, `@`, or `-` not before a digit) gets a `'`.
fn text(field: &str) -> String {
    let flat: String =
        field.chars().map(|character| if matches!(character, '\r' | '\n') { ' ' } else { character }).collect();
    let formula = flat.starts_with(['=', '+', '@'])
        || (flat.starts_with('-') && !flat[1..].starts_with(|character: char| character.is_ascii_digit()));
    if formula { format!("'{flat}") } else { flat }
}

fn comment(fields: &[&str]) -> String {
    let texts: Vec<String> = fields.iter().map(|field| text(field)).collect();
    let borrowed: Vec<&str> = texts.iter().map(String::as_str).collect();
    format!("# {}", row(&borrowed))
}

pub(crate) fn render(report: &TemperatureReport) -> String {
    let mut out = comment(&["Keten temperature report"]);
    for (label, value) in report.summary() {
        out.push_str(&comment(&[label, &value]));
    }
    for stay in &report.stays {
        out.push_str(&comment(&["stay", &stay.location, &stay.device, &stay.start.to_string(), &stay.end.to_string()]));
    }
    for device in &report.devices {
        let calibrated = device.calibrated_on.as_deref().unwrap_or("unknown");
        out.push_str(&comment(&["device", &device.device, &device.name, &format!("calibrated {calibrated}")]));
    }
    for excursion in &report.excursions {
        let peak = excursion.peak_celsius.map(|peak| format!("{peak:.2}")).unwrap_or_default();
        out.push_str(&comment(&["excursion", &excursion.start.to_string(), &excursion.end.to_string(), &peak]));
    }
    for gap in &report.gaps {
        out.push_str(&comment(&["gap", &gap.start.to_string(), &gap.end.to_string()]));
    }
    for alarm in &report.alarms {
        out.push_str(&comment(&[
            "alarm",
            &alarm.alarm_id,
            &alarm.device,
            &alarm.rule,
            &alarm.severity,
            &alarm.state,
            &alarm.opened_at.to_string(),
            alarm.acknowledged_by.as_deref().unwrap_or(""),
            alarm.comment.as_deref().unwrap_or(""),
        ]));
    }
    for event in &report.events {
        let index = event.log_index.map(|index| index.to_string()).unwrap_or_else(|| "not logged".to_owned());
        out.push_str(&comment(&[
            "event",
            &event.time.to_string(),
            &event.business_step,
            &format!("log index {index}"),
        ]));
    }
    out.push_str(&row(&["time", "device", "location", "celsius"]));
    for reading in &report.readings {
        out.push_str(&row(&[
            &reading.time.to_string(),
            &reading.device,
            &reading.location,
            &format!("{:.2}", reading.celsius),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_texts_stay_on_one_line_and_never_run_as_formulas() {
        assert_eq!(text("door\r\nopen"), "door  open");
        assert_eq!(text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text("@SUM"), "'@SUM");
        assert_eq!(text("-5.0"), "-5.0");
        assert_eq!(text("-cmd"), "'-cmd");
        let line = comment(&["alarm", "a\nb"]);
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
    }

    #[test]
    fn fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn the_export_has_the_figures_then_one_row_per_reading() {
        let report = crate::tests::sample();
        let text = report.to_csv();
        let lines: Vec<&str> = text.split("\r\n").filter(|line| !line.is_empty()).collect();
        assert!(lines.contains(&"# MKT,7.43 °C"), "{lines:?}");
        assert!(lines.contains(&"# device,logger-p1,\"Pallet logger, \"\"reefer\"\"\",calibrated 2026-03-02"));
        assert!(lines.contains(&"# excursion,2026-11-30T07:00:00Z,2026-11-30T07:50:00Z,11.00"));
        assert!(lines.contains(&"# event,2026-11-30T10:00:00Z,receiving,log index 12"));
        let header = lines.iter().position(|line| *line == "time,device,location,celsius").unwrap();
        let rows = &lines[header + 1..];
        assert_eq!(rows.len(), 240);
        assert_eq!(rows[60], "2026-11-30T07:00:00Z,logger-p1,SSCC 387123450000000707,11.00");
    }
}
