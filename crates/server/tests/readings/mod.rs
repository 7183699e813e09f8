//! End-to-end tests of readings ingestion: SenML and JSON batches, units to °C, duplicates
//! dropped, partial success with the rejected records named, keys and media types checked.

use super::*;

async fn device(app: &TestApp, key: &str, device_id: &str) {
    let created = app
        .post(
            "/v1/devices",
            key,
            json!({"device_id": device_id, "kind": "data_logger", "name": device_id, "reading_interval_seconds": 60}),
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
