//! End-to-end tests of readings ingestion: SenML and JSON batches, units to °C, duplicates
//! dropped, partial success with the rejected records named, keys and media types checked.

use super::*;

async fn device(app: &TestApp, key: &str, device_id: &str) {
    let created = app
        .post(
            "/v1/devices",
            key,
            json!({"device_id": device_id, "kind": "data_logger", "name": device_id, "reading_interval_seconds": 60,
                   "calibrated_on": "2026-03-02"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
}

async fn post_readings(app: &TestApp, key: &str, content_type: &str, body: &Value) -> Answer {
    app.raw_post("/v1/readings", key, content_type, body.to_string().into_bytes()).await
}

pub async fn readings_are_ingested_with_partial_success(app: &TestApp) {
    let writer = app.tenant("polar-fish", &["tenant:admin"]).await;
    let sensor = app.tenant("polar-fish", &["device"]).await;
    let reader = app.tenant("polar-fish", &["tenant:read"]).await;
    let other = app.tenant("other-fish", &["tenant:admin"]).await;
    device(app, &writer, "logger-1").await;
    device(app, &writer, "logger-2").await;
    device(app, &other, "their-logger").await;

    // SenML: base name, base time, base unit, relative times; a device key sends it.
    let base = jiff::Timestamp::now().as_second() - 3600;
    let pack = json!([
        {"bn": "logger-1", "bt": base, "bu": "Cel", "t": 0, "v": 3.5},
        {"t": 60, "v": 3.7},
        {"t": 120, "v": 4.1}
    ]);
    let sent = post_readings(app, &sensor, "application/senml+json", &pack).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    assert_eq!(sent.body, json!({"accepted": 3, "duplicates": 0}));
    let again = post_readings(app, &sensor, "application/senml+json", &pack).await;
    assert_eq!(again.body, json!({"accepted": 0, "duplicates": 3}), "a batch sent twice is stored once");

    // A JSON batch in kelvin and Fahrenheit, stored in °C.
    let time = |offset: i64| jiff::Timestamp::from_second(base + offset).unwrap().to_string();
    let batch = json!([
        {"device": "logger-2", "time": time(0), "value": 277.15, "unit": "K"},
        {"device": "logger-2", "time": time(60), "value": 41.0, "unit": "[degF]"}
    ]);
    let sent = post_readings(app, &writer, "application/json", &batch).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    let from = jiff::Timestamp::from_second(base - 1).unwrap();
    let listed = app.get(&format!("/v1/readings?device=logger-2&from={from}"), &reader).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let celsius: Vec<f64> =
        listed.body.as_array().unwrap().iter().map(|reading| reading["celsius"].as_f64().unwrap()).collect();
    assert_eq!(celsius.len(), 2);
    assert!((celsius[0] - 4.0).abs() < 1e-9 && (celsius[1] - 5.0).abs() < 1e-9, "{celsius:?}");
    assert_eq!(listed.body[0]["device_time"], time(0).as_str());

    // Partial success: bad records are named, the valid rest is stored.
    let mixed = json!([
        {"device": "logger-1", "time": time(600), "value": 5.0, "unit": "Cel"},
        {"device": "logger-1", "time": time(660), "value": "warm", "unit": "Cel"},
        {"device": "logger-1", "time": time(720), "value": 5.0, "unit": "mV"},
        {"device": "their-logger", "time": time(780), "value": 5.0, "unit": "Cel"},
        {"device": "logger-1", "time": time(840), "value": 5.5, "unit": "Cel", "colour": "blue"}
    ]);
    let partial = post_readings(app, &sensor, "application/json", &mixed).await;
    assert_eq!(partial.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", partial.body);
    assert_eq!(partial.body["type"], "/problems/readings-rejected");
    let pointers: Vec<&str> =
        partial.body["errors"].as_array().unwrap().iter().map(|error| error["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/1", "/2", "/3", "/4"], "{:?}", partial.body);
    assert!(partial.body["errors"][2]["detail"].as_str().unwrap().contains("not a registered device"));
    assert_eq!(partial.body["accepted"], 1);
    let stored = app.get(&format!("/v1/readings?device=logger-1&from={from}"), &reader).await;
    assert_eq!(stored.body.as_array().unwrap().len(), 4, "three from SenML, one kept from the mixed batch");
    let theirs = app.get(&format!("/v1/readings?device=their-logger&from={from}"), &other).await;
    assert_eq!(theirs.body, json!([]), "nothing stored for another tenant's device");

    // Malformed batches and wrong media types store nothing; keys are checked.
    let not_json = app.raw_post("/v1/readings", &sensor, "application/json", b"[{".to_vec()).await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST, "{:?}", not_json.body);
    let not_array = post_readings(app, &sensor, "application/json", &json!({"device": "logger-1"})).await;
    assert_eq!(not_array.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", not_array.body);
    let must_understand = post_readings(
        app,
        &sensor,
        "application/senml+json",
        &json!([{"bn": "logger-1", "v": 1, "u": "Cel", "x_": 1}]),
    )
    .await;
    assert_eq!(must_understand.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", must_understand.body);
    let text = app.raw_post("/v1/readings", &sensor, "text/csv", b"time,celsius".to_vec()).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(post_readings(app, &reader, "application/json", &batch).await.status, StatusCode::FORBIDDEN);
    assert_eq!(post_readings(app, &app.operator_key, "application/json", &batch).await.status, StatusCode::FORBIDDEN);
    let after = app.get(&format!("/v1/readings?device=logger-1&from={from}"), &reader).await;
    assert_eq!(after.body.as_array().unwrap().len(), 4, "refused batches stored nothing");
    let bad_limit = app.get("/v1/readings?device=logger-1&limit=0", &reader).await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);

    // Assignments over time, and exposure through them.
    let writer = writer.as_str();
    let assign = |body: Value| app.post("/v1/devices/logger-1/assignments", writer, body);
    let first = assign(json!({"from": time(-60), "vehicle": "trailer-9"})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let both = assign(json!({"from": time(900), "vehicle": "trailer-9", "sscc": "387123450000000036"})).await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", both.body);
    let earlier = assign(json!({"from": time(-120), "vehicle": "trailer-8"})).await;
    assert_eq!(earlier.status, StatusCode::CONFLICT, "history is appended: {:?}", earlier.body);
    assert_eq!(earlier.body["type"], "/problems/assignment-out-of-order");
    let second = assign(json!({"from": time(180), "sscc": "387123450000000036"})).await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    let unknown = app.post("/v1/devices/nobody/assignments", writer, json!({"vehicle": "trailer-9"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let history = app.get("/v1/devices/logger-1/assignments", &reader).await;
    assert_eq!(history.body.as_array().unwrap().len(), 2, "{:?}", history.body);
    assert_eq!(history.body[0]["to"], time(180).as_str(), "the first ends where the second begins");
    assert_eq!(history.body[1]["to"], Value::Null);

    // On the trailer 0–180 s: 3.5 °C, 3.7 °C, then 4.1 °C for a minute — out of the chilled range.
    let exposure = app
        .get(&format!("/v1/exposure?vehicle=trailer-9&from={}&to={}&class=chilled", time(0), time(180)), &reader)
        .await;
    assert_eq!(exposure.status, StatusCode::OK, "{:?}", exposure.body);
    assert_eq!(exposure.body["devices"], json!(["logger-1"]));
    assert_eq!(exposure.body["readings"], 3, "the period's own, not those read around it: {:?}", exposure.body);
    assert_eq!(exposure.body["min_celsius"], 3.5);
    assert_eq!(exposure.body["max_celsius"], 4.1);
    assert_eq!(exposure.body["time_out_of_range_s"], 60);
    assert_eq!(exposure.body["excursions"].as_array().unwrap().len(), 1);
    assert_eq!(exposure.body["excursions"][0]["peak_celsius"], 4.1);
    assert_eq!(exposure.body["pass"], false);
    assert_eq!(exposure.body["time_per_location"][0]["location"], "trailer-9");
    assert_eq!(exposure.body["time_per_location"][0]["seconds"], 180);
    // The same device alone, judged as pharma (2–8 °C) on its mean kinetic temperature: passes.
    let pharma =
        app.get(&format!("/v1/exposure?device=logger-1&from={}&to={}&class=pharma", time(0), time(180)), &reader).await;
    assert_eq!(pharma.body["pass"], true, "{:?}", pharma.body);
    // After the trailer the logger went into the SSCC: 600 s has 5.0 °C, the rest is unknown.
    let pallet = app
        .get(
            &format!("/v1/exposure?sscc=387123450000000036&from={}&to={}&class=chilled", time(180), time(1200)),
            &reader,
        )
        .await;
    assert_eq!(pallet.status, StatusCode::OK, "{:?}", pallet.body);
    assert!(!pallet.body["gaps"].as_array().unwrap().is_empty(), "unknown time is listed: {:?}", pallet.body);
    assert_eq!(pallet.body["pass"], false, "a gap is never in range");
    let nobody = app
        .get(&format!("/v1/exposure?vehicle=trailer-1&from={}&to={}&class=chilled", time(0), time(180)), &reader)
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    let bad_class =
        app.get(&format!("/v1/exposure?device=logger-1&from={}&to={}&class=warm", time(0), time(180)), &reader).await;
    assert_eq!(bad_class.status, StatusCode::BAD_REQUEST);
    let too_long = app
        .get(&format!("/v1/exposure?device=logger-1&from={}&to={}&class=chilled", time(0), time(40 * 86_400)), &reader)
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);

    let ahead = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).to_string();
    let future = assign(json!({"from": ahead, "vehicle": "trailer-9"})).await;
    assert_eq!(future.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", future.body);
    let in_use = app.send("DELETE", "/v1/devices/logger-1", Some(writer), None, &[]).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT, "a device with readings stays: {:?}", in_use.body);
}

/// A logger travels with a vaccine pallet; the reefer fails for 50 minutes. The alarm opens on
/// ingest, puts the lot on hold, is captured as an EPCIS sensor event, escalates, is acknowledged
/// with a comment and clears; the merchant's webhook hears every transition, signed.
pub async fn coldchain_alarms_hold_pharma_lots_and_notify(app: &TestApp) {
    use super::fulfilment::{gln, gtin};
    let depot = gln("590123400001");
    let location = json!({
        "gln": depot, "kind": "cold_depot", "name": "Poznań pharma depot", "address": {"city": "Poznań"},
        "country": "PL", "latitude": 52.41, "longitude": 16.93, "time_zone": "Europe/Warsaw",
        "zones": [{"name": "pharma", "min_celsius": 2, "max_celsius": 8, "capacity_pallets": 100}],
        "pick_pack_lead_minutes": 60
    });
    let created = app.post("/v1/locations", &app.operator_key, location).await;
    assert!(created.status.is_success(), "{:?}", created.body);
    let key = app.tenant("medi", &["tenant:admin"]).await;
    let sensor = app.tenant("medi", &["device"]).await;
    let vaccine = gtin("590123410001");
    let product = json!({"gtin": vaccine, "name": "Vaccine", "temperature_class": "pharma", "shelf_life_days": 365});
    assert_eq!(app.post("/v1/products", &key, product).await.status, StatusCode::CREATED);
    device(app, &key, "logger-p1").await;
    let (url, received) = super::fulfilment::receiver(0).await;
    let secret = "a-merchant-secret-of-32-characters";
    assert_eq!(app.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await.status, StatusCode::CREATED);

    let sscc = gtin("38712345000000070");
    let expiry = (jiff::Zoned::now().date() + jiff::ToSpan::days(300)).to_string();
    let asn = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": depot, "pallets": [{"sscc": sscc, "gtin": vaccine, "lot": "V1", "expiry": expiry, "quantity": 40}]}),
        )
        .await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let asn_id = asn.body["asn_id"].as_str().unwrap();
    let receipt = app.post(&format!("/v1/asns/{asn_id}/receipts"), &key, json!({"zone": "pharma"})).await;
    assert_eq!(receipt.status, StatusCode::CREATED, "{:?}", receipt.body);

    // The logger rides with the pallet from three hours ago; its class comes from the product.
    let start = jiff::Timestamp::now().as_second() / 60 * 60 - 3 * 3600;
    let at = |minute: i64| jiff::Timestamp::from_second(start + minute * 60).unwrap().to_string();
    let bad = app
        .post("/v1/devices/logger-p1/assignments", &key, json!({"sscc": sscc, "from": at(0), "class": "warm"}))
        .await;
    assert!(bad.is_problem(422, "/problems/validation-failed"), "{:?}", bad.body);
    let assigned = app.post("/v1/devices/logger-p1/assignments", &key, json!({"sscc": sscc, "from": at(0)})).await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    assert_eq!(assigned.body["class"], "pharma");

    // 5 °C, except 11 °C from minute 60 to 109: above 8 °C for 50 minutes (the rule: 30).
    let readings: Vec<Value> = (0..170)
        .map(|minute| {
            let celsius = if (60..110).contains(&minute) { 11.0 } else { 5.0 };
            json!({"device": "logger-p1", "time": at(minute), "value": celsius, "unit": "Cel"})
        })
        .collect();
    // Sent in two batches, the later one first: the outcome does not depend on the order.
    let (first, second) = readings.split_at(100);
    for part in [second, first] {
        let sent = post_readings(app, &sensor, "application/json", &json!(part)).await;
        assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    }
    let alarms = app.get("/v1/alarms", &key).await;
    assert_eq!(alarms.status, StatusCode::OK, "{:?}", alarms.body);
    for bad in ["/v1/alarms?state=warm", "/v1/alarms?limit=0", "/v1/alarms?colour=red"] {
        assert!(app.get(bad, &key).await.is_problem(400, "/problems/invalid-parameter"), "{bad}");
    }
    let list = alarms.body.as_array().unwrap();
    assert_eq!(list.len(), 1, "one rule breached once: {list:?}");
    let alarm = &list[0];
    assert_eq!(alarm["rule"], "above-8-for-30min");
    assert_eq!(alarm["severity"], "critical");
    assert_eq!(alarm["condition_start"], at(60));
    assert_eq!(alarm["opened_at"], at(90));
    assert_eq!(alarm["condition_end"], at(110));
    assert_eq!(alarm["peak_celsius"], 11.0);
    assert_eq!(alarm["state"], "escalated", "not acknowledged within 15 minutes");
    assert_eq!(alarm["held_lots"], json!([format!("0{vaccine}/V1")]), "the lot, by its GTIN-14");
    let stock = app.get(&format!("/v1/stock?gtin={vaccine}&lot=V1"), &key).await;
    assert_eq!(stock.body["items"][0]["status"], "hold", "{:?}", stock.body);

    // The EPCIS event of the alarm, with its sensor report, is in the log.
    let events = app.get("/events?EQ_bizStep=sensor_reporting", &key).await;
    let list = events.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().cloned().unwrap();
    assert_eq!(list.len(), 1, "{:?}", events.body);
    let report = &list[0]["sensorElementList"][0]["sensorReport"][0];
    assert_eq!(report["exception"], "ALARM_CONDITION", "{report:?}");
    assert_eq!(report["maxValue"], 11.0);
    assert_eq!(report["minValue"], 11.0);
    assert_eq!(list[0]["epcList"][0], format!("https://id.gs1.org/00/{sscc}"));

    // Sending the readings again changes nothing: no second alarm, no second event.
    let again = post_readings(app, &sensor, "application/json", &json!(readings)).await;
    assert_eq!(again.body["duplicates"], 170);
    assert_eq!(app.get("/v1/alarms", &key).await.body.as_array().unwrap().len(), 1);

    // Acknowledged by a person with a comment: the condition has ended, so it clears.
    let id = alarm["alarm_id"].as_str().unwrap();
    let path = format!("/v1/alarms/{id}/acknowledge");
    let empty = app.post(&path, &key, json!({"person": "QA", "comment": " "})).await;
    assert!(empty.is_problem(422, "/problems/validation-failed"), "{:?}", empty.body);
    let acknowledged = app.post(&path, &key, json!({"person": "Anna (QA)", "comment": "reefer door; lot to QA"})).await;
    assert_eq!(acknowledged.status, StatusCode::OK, "{:?}", acknowledged.body);
    assert_eq!(acknowledged.body["state"], "cleared");
    assert_eq!(acknowledged.body["acknowledged_by"], "Anna (QA)");
    assert!(
        app.post(&path, &key, json!({"person": "B", "comment": "again"}))
            .await
            .is_problem(409, "/problems/alarm-acknowledged")
    );
    let other = app.tenant("other-medi", &["tenant:admin"]).await;
    assert!(
        app.post(&path, &other, json!({"person": "B", "comment": "x"})).await.is_problem(404, "/problems/not-found")
    );
    let console = app.get("/v1/operator/alarms?state=cleared", &app.operator_key).await;
    assert_eq!(console.body[0]["alarm_id"], id, "{:?}", console.body);
    assert_eq!(console.body[0]["tenant_id"], "medi");

    // The lot's report rests on its custody (the pallet's logger) and lists the alarm, the
    // device's calibration and the logged events.
    let fetch = |query: String| {
        let request = app.client.get(format!("{}/v1/reports/temperature?{query}", app.base)).bearer_auth(&key);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            (status, content_type, response.bytes().await.unwrap().to_vec())
        }
    };
    let (status, content_type, pdf) = fetch(format!("gtin={vaccine}&lot=V1&format=pdf")).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-1.4"));
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown = words(&reports::pdf::shown_text(&pdf).join(" "));
    for expected in [
        format!("Lot V1 of GTIN 0{vaccine}"),
        "2.0 to 8.0 °C".to_owned(),
        format!("{} to {}  (50 min)  peak 11.00 °C", at(60), at(110)),
        "logger-p1  logger-p1  calibrated 2026-03-02".to_owned(),
        "acknowledged by Anna (QA): reefer door; lot to QA".to_owned(),
        "sensor_reporting  log index".to_owned(),
        "receiving  log index".to_owned(),
    ] {
        assert!(shown.contains(&words(&expected)), "{expected:?} missing from the PDF:\n{shown}");
    }
    let (status, content_type, csv) = fetch(format!("gtin={vaccine}&lot=V1")).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
    let csv = String::from_utf8(csv).unwrap();
    let rows: Vec<&str> = csv.lines().filter(|line| !line.starts_with('#')).collect();
    assert_eq!(rows[0], "time,device,location,celsius");
    assert_eq!(rows.len(), 171, "the header and the 170 readings");
    assert_eq!(rows[61], format!("{},logger-p1,SSCC {sscc},11.00", at(60)));
    let (_, _, json_body) = fetch(format!("sscc={sscc}&format=json")).await;
    let pallet: Value = serde_json::from_slice(&json_body).unwrap();
    assert_eq!(pallet["class"], "pharma");
    assert_eq!(pallet["time_out_of_range_s"], 3000);
    assert_eq!(pallet["excursions"][0]["peak_celsius"], 11.0);
    assert_eq!(pallet["devices"][0]["calibrated_on"], "2026-03-02");
    let unknown =
        app.get(&format!("/v1/reports/temperature?sscc={}&format=json", gtin("38712345000000999")), &key).await;
    assert!(unknown.is_problem(404, "/problems/not-found"), "{:?}", unknown.body);
    let bad_lot = app.get(&format!("/v1/reports/temperature?gtin={vaccine}&lot=V%201"), &key).await;
    assert!(bad_lot.is_problem(400, "/problems/invalid-parameter"), "{:?}", bad_lot.body);
    let neither = app.get("/v1/reports/temperature?lot=V1", &key).await;
    assert!(neither.is_problem(400, "/problems/invalid-parameter"), "{:?}", neither.body);

    // The shelf life left after the measured history is in the quality report; a medicine's
    // consumer page shows the date on the pack, not the estimate.
    let page = app
        .client
        .get(format!("{}/01/{vaccine}/10/V1", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("V1") && !page.contains("class=\"shelf-life\""), "{page}");
    let report = app.get(&format!("/v1/reports/temperature?gtin={vaccine}&lot=V1&format=json"), &key).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
    let days_left = report.body["shelf_life"]["days_left"].as_f64().unwrap();
    assert!((364.0..365.0).contains(&days_left), "{:?}", report.body);

    // The hold stays until a person releases the lot, with the decision as the reason.
    let stock = app.get(&format!("/v1/stock?gtin={vaccine}&lot=V1"), &key).await;
    assert_eq!(stock.body["items"][0]["status"], "hold");
    let release = json!({"gtin": vaccine, "lot": "V1", "status": "available", "reason": "QA release after MKT review"});
    assert_eq!(app.post("/v1/stock/lot-status", &key, release).await.status, StatusCode::OK);

    // The logger moves to the depot's pharma room: the pallet's leg is recorded with its
    // readings' aggregates, marked as having seen an alarm.
    let moved = app
        .post("/v1/devices/logger-p1/assignments", &key, json!({"zone": {"location": depot, "zone": "pharma"}}))
        .await;
    assert_eq!(moved.status, StatusCode::CREATED, "{:?}", moved.body);
    assert_eq!(moved.body["class"], "pharma", "the room's class by its range");
    let events = app.get("/events?EQ_bizStep=sensor_reporting", &key).await;
    let list = events.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().cloned().unwrap();
    assert_eq!(list.len(), 2, "the alarm and the leg: {:?}", events.body);
    let leg =
        list.iter().find(|event| event["sensorElementList"][0]["sensorMetadata"].get("bizRules").is_none()).unwrap();
    let aggregates = &leg["sensorElementList"][0]["sensorReport"][0];
    assert_eq!((aggregates["minValue"].as_f64(), aggregates["maxValue"].as_f64()), (Some(5.0), Some(11.0)), "{leg:?}");
    assert_eq!(aggregates["exception"], "ALARM_CONDITION");
    assert_eq!(leg["sensorElementList"][0]["sensorMetadata"]["startTime"], at(0));
    assert_eq!(leg["epcList"][0], format!("https://id.gs1.org/00/{sscc}"));

    // The webhook heard the alarm open, escalate, be acknowledged and clear.
    let mut kinds: Vec<String> = Vec::new();
    for _ in 0..100 {
        kinds = super::fulfilment::signed_deliveries(&received, secret)
            .iter()
            .flat_map(|delivery| {
                delivery["alarms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|transition| transition["kind"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        if kinds.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(kinds, ["opened", "escalated", "acknowledged", "cleared"], "in the order they happened");
}

/// Two loggers in one chilled room send the same temperatures, one in thirty batches in order
/// (each evaluation resumes from the kept progress), the other in one: the alarms are the same,
/// including a cumulative budget spent across batches.
pub async fn coldchain_alarms_do_not_depend_on_batching(app: &TestApp) {
    use super::fulfilment::gln;
    let store_gln = gln("871234500901");
    let location = json!({
        "gln": store_gln, "kind": "warehouse", "name": "Chill store", "address": {"city": "Utrecht"},
        "country": "NL", "latitude": 52.09, "longitude": 5.12, "time_zone": "Europe/Amsterdam",
        "zones": [{"name": "chill", "min_celsius": 0, "max_celsius": 4, "capacity_pallets": 10}],
        "pick_pack_lead_minutes": 60
    });
    assert!(app.post("/v1/locations", &app.operator_key, location).await.status.is_success());
    let key = app.tenant("greens", &["tenant:admin"]).await;
    let start = jiff::Timestamp::now().as_second() / 60 * 60 - 6 * 3600;
    let at = |minute: i64| jiff::Timestamp::from_second(start + minute * 60).unwrap().to_string();
    for logger in ["room-a", "room-b", "room-c", "room-d"] {
        device(app, &key, logger).await;
        let assigned = app
            .post(
                &format!("/v1/devices/{logger}/assignments"),
                &key,
                json!({"zone": {"location": store_gln, "zone": "chill"}, "from": at(0)}),
            )
            .await;
        assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
        assert_eq!(assigned.body["class"], "chilled", "the room's class by its range");
    }
    let celsius = |minute: i64| match minute {
        20..45 | 80..120 => 6.0,
        200..260 => 7.0,
        _ => 3.0,
    };
    let readings = |logger: &str, minutes: std::ops::Range<i64>| -> Value {
        json!(
            minutes
                .map(|minute| json!({"device": logger, "time": at(minute), "value": celsius(minute), "unit": "Cel"}))
                .collect::<Vec<_>>()
        )
    };
    for batch in 0..30 {
        let sent = post_readings(app, &key, "application/json", &readings("room-a", batch * 10..batch * 10 + 10)).await;
        assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    }
    let sent = post_readings(app, &key, "application/json", &readings("room-b", 0..300)).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    // Out of order, as a device uploading its backlog late: room-c's batches newest first,
    // room-d's odd batches, then the even ones.
    let odd_then_even = (0..30).filter(|batch| batch % 2 == 1).chain((0..30).filter(|batch| batch % 2 == 0));
    for (logger, order) in [("room-c", (0..30).rev().collect::<Vec<i64>>()), ("room-d", odd_then_even.collect())] {
        for batch in order {
            let sent =
                post_readings(app, &key, "application/json", &readings(logger, batch * 10..batch * 10 + 10)).await;
            assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
        }
    }
    let summary = |logger: &str| {
        let path = format!("/v1/alarms?device={logger}");
        let key = key.clone();
        async move {
            let listed = app.get(&path, &key).await;
            let mut alarms: Vec<String> = listed
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|alarm| {
                    format!(
                        "{} {} {} {} {} {}",
                        alarm["rule"],
                        alarm["condition_start"],
                        alarm["opened_at"],
                        alarm["condition_end"],
                        alarm["state"],
                        alarm["peak_celsius"]
                    )
                })
                .collect();
            alarms.sort();
            alarms
        }
    };
    let (batched, whole) = (summary("room-a").await, summary("room-b").await);
    assert_eq!(batched, whole);
    assert_eq!(summary("room-c").await, whole, "newest first");
    assert_eq!(summary("room-d").await, whole, "odd batches first");
    let expected = [
        format!("\"above-4-for-2h-total\" \"{}\" \"{}\" \"{}\" \"escalated\" 7.0", at(20), at(255), at(260)),
        format!("\"above-4-for-30min\" \"{}\" \"{}\" \"{}\" \"escalated\" 6.0", at(80), at(110), at(120)),
        format!("\"above-4-for-30min\" \"{}\" \"{}\" \"{}\" \"escalated\" 7.0", at(200), at(230), at(260)),
    ];
    assert_eq!(whole, expected);
}
