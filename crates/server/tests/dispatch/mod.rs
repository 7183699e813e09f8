//! End-to-end tests of dispatch: vehicles with bad input refused, a wave planned over two
//! merchants' packed orders (chilled goods only on the reefer van, every stop by its promise),
//! couriers seeing only their own route, and handing stops over moving orders to delivered.

use super::fulfilment::{cold_depot, dc, gtin, merchant, network, receive};
use super::*;

fn vehicle(name: &str, capacity_units: u32, skills: &[&str], courier_key_id: Option<&str>) -> Value {
    json!({"depot": dc(), "name": name, "capacity_units": capacity_units, "skills": skills,
           "shift_start": "00:00", "shift_end": "23:59", "speed_km_per_h": 30, "fixed_cost_cents": 2000,
           "cost_per_km_cents": 40, "cost_per_hour_cents": 2500, "courier_key_id": courier_key_id})
}

/// A network key with the courier scope: (key id, secret).
async fn courier_key(app: &TestApp) -> (String, String) {
    let created = app
        .post("/v1/operator/tenants/network/keys", &app.operator_key, json!({"name": "courier", "scopes": ["courier"]}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    (created.body["key_id"].as_str().unwrap().to_owned(), created.body["secret"].as_str().unwrap().to_owned())
}

async fn put(app: &TestApp, path: &str, body: Value) -> Answer {
    app.send("PUT", path, Some(&app.operator_key), Some(body), &[]).await
}

/// Places an order to `to` (coordinates or a pickup point) and packs it; answers its id and the
/// last-mile departure the promise planned.
/// The operator's systems pick and pack it for `tenant`.
async fn packed_order(
    app: &TestApp,
    (tenant, key): (&str, &str),
    product: &str,
    units: i64,
    to: Value,
    sscc: u64,
) -> (String, i64) {
    let placed = app
        .post(
            "/v1/orders",
            key,
            json!({"lines": [{"gtin": product, "quantity": units}], "destination": to, "service": "next_day"}),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/orders/{order_id}/events?tenant={tenant}");
    assert_eq!(app.post(&path, &app.operator_key, json!({"status": "picking"})).await.status, StatusCode::OK);
    let sscc = gtin_sscc(sscc);
    let packed = app.post(&path, &app.operator_key, json!({"status": "packed", "ssccs": [sscc]})).await;
    assert_eq!(packed.status, StatusCode::OK, "{:?}", packed.body);
    let departure: jiff::Timestamp =
        packed.body["shipments"][0]["last_mile_departure_at"].as_str().unwrap().parse().unwrap();
    (order_id, departure.as_millisecond())
}

/// An SSCC: extension 3, company prefix 8712345, the serial, a check digit.
fn gtin_sscc(serial: u64) -> String {
    gtin(&format!("38712345{serial:09}"))
}

/// Every shipment planned once, chilled goods on the reefer van, every stop by its promise.
fn check_plan(plan: &Value, chilled_orders: &[(String, i64)], wave_ms: i64) {
    assert_eq!(plan["shipments"], 5, "{plan}");
    assert_eq!(plan["unassigned"], json!([]), "{plan}");
    let chilled: Vec<&str> = chilled_orders.iter().map(|(id, _)| id.as_str()).collect();
    let mut stops_seen = 0;
    for route in plan["routes"].as_array().unwrap() {
        for (index, stop) in route["stops"].as_array().unwrap().iter().enumerate() {
            stops_seen += 1;
            assert_eq!(stop["seq"], index as i64 + 1);
            if chilled.contains(&stop["order_id"].as_str().unwrap()) {
                assert_eq!(route["vehicle_id"], "van-1", "chilled goods ride the reefer: {route}");
            }
            let arrival: jiff::Timestamp = stop["planned_arrival"].as_str().unwrap().parse().unwrap();
            let due: jiff::Timestamp = stop["due_by"].as_str().unwrap().parse().unwrap();
            assert!(arrival <= due, "{stop}");
            assert!(arrival.as_millisecond() >= wave_ms);
        }
    }
    assert_eq!(stops_seen, 5);
}

fn home(latitude: f64, longitude: f64) -> Value {
    json!({"latitude": latitude, "longitude": longitude, "time_zone": "Europe/Amsterdam", "area": "Amsterdam"})
}

async fn status_of(app: &TestApp, key: &str, order_id: &str) -> String {
    let order = app.get(&format!("/v1/orders/{order_id}"), key).await;
    order.body["status"].as_str().unwrap().to_owned()
}

/// A courier hands a stop's order over with an order event (`?tenant=` its merchant): only that
/// step, only on their own route, and the route sees the hand-over as its own.
async fn courier_hands_over_by_order_event(
    app: &TestApp,
    (courier, stranger): (&str, &str),
    route_id: &str,
    stop: &Value,
    expected: &str,
) {
    let order_id = stop["order_id"].as_str().unwrap();
    let path = format!("/v1/orders/{order_id}/events?tenant={}", stop["tenant"].as_str().unwrap());
    let stranger_said = app.post(&path, stranger, json!({"status": expected})).await;
    assert!(stranger_said.is_problem(403, "/problems/forbidden"), "{:?}", stranger_said.body);
    assert!(stranger_said.body["detail"].as_str().unwrap().contains("no vehicle"), "{:?}", stranger_said.body);
    let shipped = app.post(&path, courier, json!({"status": "shipped"})).await;
    assert!(shipped.is_problem(403, "/problems/forbidden"), "{:?}", shipped.body);
    assert!(shipped.body["detail"].as_str().unwrap().contains("hands orders over"), "{:?}", shipped.body);
    let other_merchant = format!("/v1/orders/{order_id}/events?tenant=nobody-here");
    let elsewhere = app.post(&other_merchant, courier, json!({"status": expected})).await;
    assert!(elsewhere.is_problem(404, "/problems/not-found"), "another merchant's order id: {:?}", elsewhere.body);
    let other = if expected == "delivered" { "at_pickup_point" } else { "delivered" };
    let mismatched = app.post(&path, courier, json!({"status": other})).await;
    assert_eq!(mismatched.status, StatusCode::CONFLICT, "{:?}", mismatched.body);
    let untold = app.post(&format!("/v1/orders/{order_id}/events"), courier, json!({"status": expected})).await;
    assert_eq!(untold.status, StatusCode::BAD_REQUEST, "the merchant is named: {:?}", untold.body);
    assert_eq!(untold.body["errors"][0]["pointer"], "?tenant", "{:?}", untold.body);
    let stop_of =
        |route: &Value| route["stops"].as_array().unwrap().iter().find(|one| one["seq"] == stop["seq"]).cloned();
    let before = app.get(&format!("/v1/routes/{route_id}"), courier).await.body;
    assert_eq!(stop_of(&before).unwrap()["delivered_at"], Value::Null, "nothing was handed over yet");

    let handed = app.post(&path, courier, json!({"status": expected})).await;
    assert_eq!(handed.status, StatusCode::OK, "{:?}", handed.body);
    // The route endpoint's answer: the route and the order's status, not the merchant's order.
    assert_eq!(handed.body["order_id"], order_id);
    assert_eq!(handed.body["order_status"], expected, "{:?}", handed.body);
    assert!(handed.body.get("lines").is_none() && handed.body.get("allocation").is_none(), "{:?}", handed.body);
    let delivered_at = stop_of(&handed.body["route"]).unwrap()["delivered_at"].clone();
    assert!(delivered_at.is_string(), "the route's stop is handed over: {:?}", handed.body);
    let after = app.get(&format!("/v1/routes/{route_id}"), courier).await.body;
    assert_eq!(stop_of(&after).unwrap()["delivered_at"], delivered_at, "{after:?}");
    // The order arrived at the hand-over (at the door or the pickup point): the SLA's moment.
    let merchant_view = format!("/v1/orders/{order_id}?tenant={}", stop["tenant"].as_str().unwrap());
    let order = app.get(&merchant_view, &app.operator_key).await;
    assert_eq!(order.body["arrived_at"], delivered_at, "{:?}", order.body);
    let repeated = app.post(&path, courier, json!({"status": expected})).await;
    assert_eq!(repeated.status, StatusCode::OK, "{:?}", repeated.body);
    assert_eq!(repeated.body["order_status"], expected, "handing over twice changes nothing");
    assert_eq!(stop_of(&repeated.body["route"]).unwrap()["delivered_at"], delivered_at, "the first time stays");
}

pub async fn dispatch_plans_waves_and_couriers_deliver(app: &TestApp) {
    network(app).await;
    let (alpha, salmon) = merchant(app, "alpha-fish", "871234560100").await;
    let bravo = app.tenant("bravo-books", &["tenant:admin"]).await;
    let book = gtin("871234560200");
    let created =
        app.post("/v1/products", &bravo, json!({"gtin": book, "name": "Atlas", "temperature_class": "ambient"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    receive(app, &alpha, &salmon, &[("LOT-A", 20, 100)], 300).await;
    receive(app, &bravo, &book, &[("LOT-B", 400, 100)], 310).await;

    // Vehicles: bad input is refused field by field and stores nothing.
    let mut bad = vehicle("Van", 0, &["sauna"], None);
    bad["speed_km_per_h"] = json!(500);
    bad["shift_end"] = json!("25:00");
    let refused = put(app, "/v1/operator/vehicles/van-1", bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    let pointers: Vec<&str> =
        refused.body["errors"].as_array().unwrap().iter().map(|error| error["pointer"].as_str().unwrap()).collect();
    for pointer in ["/skills/0", "/shift_end"] {
        assert!(pointers.contains(&pointer), "{pointers:?}");
    }
    let mut elsewhere = vehicle("Van", 10, &[], None);
    elsewhere["depot"] = json!(gtin("871234560300"));
    let unknown = put(app, "/v1/operator/vehicles/van-1", elsewhere).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", unknown.body);
    assert_eq!(unknown.body["type"], "/problems/unknown-reference");
    let range = put(app, "/v1/operator/vehicles/van-1", vehicle("Van", 0, &[], None)).await;
    assert_eq!(range.body["errors"][0]["pointer"], "/capacity_units", "{:?}", range.body);
    let forbidden =
        app.send("PUT", "/v1/operator/vehicles/van-1", Some(&alpha), Some(vehicle("Van", 10, &[], None)), &[]).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/v1/operator/vehicles", &app.operator_key).await.body, json!([]), "nothing stored");

    let (van_key_id, van_key) = courier_key(app).await;
    let (_, stranger_key) = courier_key(app).await;
    let van = put(app, "/v1/operator/vehicles/van-1", vehicle("Reefer van", 20, &["reefer"], Some(&van_key_id))).await;
    assert_eq!(van.status, StatusCode::CREATED, "{:?}", van.body);
    let bike = put(app, "/v1/operator/vehicles/bike-1", vehicle("Cargo bike", 8, &[], None)).await;
    assert_eq!(bike.status, StatusCode::CREATED, "{:?}", bike.body);
    let twice = put(app, "/v1/operator/vehicles/bike-1", vehicle("Cargo bike", 8, &[], Some(&van_key_id))).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "one key drives one vehicle: {:?}", twice.body);

    // Packed orders of two merchants: chilled salmon (two homes, a pickup point) and books.
    let mut orders = Vec::new();
    orders.push(packed_order(app, ("alpha-fish", &alpha), &salmon, 2, home(52.3702, 4.8952), 400).await);
    orders.push(packed_order(app, ("alpha-fish", &alpha), &salmon, 3, home(52.3584, 4.8811), 401).await);
    orders.push(
        packed_order(
            app,
            ("alpha-fish", &alpha),
            &salmon,
            1,
            json!({"pickup_point": super::fulfilment::pickup()}),
            402,
        )
        .await,
    );
    let books = vec![
        packed_order(app, ("bravo-books", &bravo), &book, 2, home(52.3780, 4.9350), 403).await,
        packed_order(app, ("bravo-books", &bravo), &book, 1, home(52.3867, 4.8730), 404).await,
    ];
    let wave_ms = orders.iter().chain(&books).map(|(_, departure)| *departure).max().unwrap();
    let wave = jiff::Timestamp::from_millisecond(wave_ms).unwrap().to_string();

    let not_a_depot = app
        .post("/v1/operator/dispatch", &app.operator_key, json!({"depot": super::fulfilment::pickup(), "wave": wave}))
        .await;
    assert_eq!(not_a_depot.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", not_a_depot.body);
    let too_long = app
        .post("/v1/operator/dispatch", &app.operator_key, json!({"depot": dc(), "wave": wave, "time_limit_ms": 60000}))
        .await;
    assert_eq!(too_long.body["errors"][0]["pointer"], "/time_limit_ms", "{:?}", too_long.body);
    let merchant_wave = app.post("/v1/operator/dispatch", &alpha, json!({"depot": dc(), "wave": wave})).await;
    assert_eq!(merchant_wave.status, StatusCode::FORBIDDEN);

    let far = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 8)).to_string();
    let too_far = app.post("/v1/operator/dispatch", &app.operator_key, json!({"depot": dc(), "wave": far})).await;
    assert_eq!(too_far.body["errors"][0]["pointer"], "/wave", "{:?}", too_far.body);

    // A wave, retried with its Idempotency-Key: the same plan, stored once.
    let wave_body = json!({"depot": dc(), "wave": wave, "lookahead_minutes": 0, "time_limit_ms": 500});
    let keyed = [("idempotency-key", "wave-1")];
    let first =
        app.send("POST", "/v1/operator/dispatch", Some(&app.operator_key), Some(wave_body.clone()), &keyed).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    check_plan(&first.body, &orders, wave_ms);
    let replayed =
        app.send("POST", "/v1/operator/dispatch", Some(&app.operator_key), Some(wave_body.clone()), &keyed).await;
    assert_eq!(replayed.status, StatusCode::CREATED);
    assert_eq!(replayed.body["wave_id"], first.body["wave_id"], "a retry answers the first plan");
    let again = app.post("/v1/operator/dispatch", &app.operator_key, wave_body.clone()).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["shipments"], 0, "every shipment is on a route already");
    // Calling the wave's routes off puts their shipments back; the next wave plans them again.
    for route in first.body["routes"].as_array().unwrap() {
        let path = format!("/v1/routes/{}/cancel", route["route_id"].as_str().unwrap());
        let cancelled = app.send("POST", &path, Some(&app.operator_key), None, &[]).await;
        assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
        assert!(cancelled.body["finished_at"].is_string());
        assert!(
            cancelled.body["stops"].as_array().unwrap().iter().all(|stop| stop["void_reason"] == "route cancelled")
        );
        let twice = app.send("POST", &path, Some(&van_key), None, &[]).await;
        assert_eq!(twice.status, StatusCode::FORBIDDEN, "only the operator calls a route off");
    }
    let planned = app.post("/v1/operator/dispatch", &app.operator_key, wave_body.clone()).await;
    assert_eq!(planned.status, StatusCode::CREATED, "{:?}", planned.body);
    assert_ne!(planned.body["wave_id"], first.body["wave_id"]);
    check_plan(&planned.body, &orders, wave_ms);
    let routes = planned.body["routes"].as_array().unwrap().clone();
    let date = jiff::Timestamp::from_millisecond(wave_ms)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap())
        .date();
    let listed = app.get(&format!("/v1/operator/routes?depot={}&date={date}", dc()), &app.operator_key).await;
    let cancelled_routes = first.body["routes"].as_array().unwrap().len();
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(cancelled_routes + routes.len()),
        "the day's routes, the cancelled included"
    );

    // Couriers see their own route only.
    let mine = app.get("/v1/courier/route", &van_key).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    assert_eq!(mine.body["vehicle_id"], "van-1");
    assert_eq!(mine.body["next_stop"], 1);
    assert_eq!(app.get("/v1/courier/route", &stranger_key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/v1/courier/route", &alpha).await.status, StatusCode::FORBIDDEN);
    let van_route = mine.body["route_id"].as_str().unwrap().to_owned();
    if let Some(bike_route) = routes.iter().find(|route| route["vehicle_id"] == "bike-1") {
        let path = format!("/v1/routes/{}", bike_route["route_id"].as_str().unwrap());
        assert_eq!(app.get(&path, &van_key).await.status, StatusCode::NOT_FOUND, "another vehicle's route");
    }
    assert_eq!(app.get(&format!("/v1/routes/{van_route}"), &alpha).await.status, StatusCode::FORBIDDEN);

    let busy = app.send("DELETE", "/v1/operator/vehicles/van-1", Some(&app.operator_key), None, &[]).await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "a vehicle with stops to go stays: {:?}", busy.body);

    // Handing over before leaving is refused; leaving sends the orders out for delivery.
    let early = app.send("POST", &format!("/v1/routes/{van_route}/stops/1/delivered"), Some(&van_key), None, &[]).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{:?}", early.body);
    for route in &routes {
        let route_id = route["route_id"].as_str().unwrap();
        let key = if route_id == van_route { &van_key } else { &app.operator_key };
        let started = app.send("POST", &format!("/v1/routes/{route_id}/start"), Some(key), None, &[]).await;
        assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
        assert!(started.body["started_at"].is_string());
    }
    assert_eq!(status_of(app, &alpha, &orders[0].0).await, "out_for_delivery");
    assert_eq!(status_of(app, &bravo, &books[0].0).await, "out_for_delivery");
    let future = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let ahead = app.post(&format!("/v1/routes/{van_route}/stops/1/delivered"), &van_key, json!({"at": future})).await;
    assert_eq!(ahead.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", ahead.body);

    // The van's first stop fails (nobody home): its shipment waits for the next wave.
    let van_stops = routes.iter().find(|route| route["route_id"] == van_route.as_str()).unwrap()["stops"].clone();
    let failed_order = van_stops[0]["order_id"].as_str().unwrap().to_owned();
    let failed_tenant_key = if van_stops[0]["tenant"] == "alpha-fish" { &alpha } else { &bravo };
    let failed_path = format!("/v1/routes/{van_route}/stops/1/failed");
    let blank = app.post(&failed_path, &van_key, json!({"reason": ""})).await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", blank.body);
    let failed = app.post(&failed_path, &van_key, json!({"reason": "nobody home"})).await;
    assert_eq!(failed.status, StatusCode::OK, "{:?}", failed.body);
    assert_eq!(failed.body["stops"][0]["void_reason"], "nobody home");
    assert_eq!(failed.body["next_stop"], 2);
    let voided =
        app.send("POST", &format!("/v1/routes/{van_route}/stops/1/delivered"), Some(&van_key), None, &[]).await;
    assert_eq!(voided.status, StatusCode::CONFLICT, "a voided stop is not handed over: {:?}", voided.body);
    let mut by_order_event = 0;
    for route in &routes {
        let route_id = route["route_id"].as_str().unwrap();
        let key = if route_id == van_route { &van_key } else { &app.operator_key };
        for stop in route["stops"].as_array().unwrap() {
            if route_id == van_route && stop["seq"] == 1 {
                continue;
            }
            let expected = if stop["pickup_point"].is_string() { "at_pickup_point" } else { "delivered" };
            if route_id == van_route && stop["seq"] == 2 {
                courier_hands_over_by_order_event(app, (&van_key, &stranger_key), &van_route, stop, expected).await;
                by_order_event += 1;
                continue;
            }
            let path = format!("/v1/routes/{route_id}/stops/{}/delivered", stop["seq"]);
            let handed = app.send("POST", &path, Some(key), None, &[]).await;
            assert_eq!(handed.status, StatusCode::OK, "{:?}", handed.body);
            assert_eq!(handed.body["order_status"], expected, "{:?}", handed.body);
            let repeated = app.send("POST", &path, Some(key), None, &[]).await;
            assert_eq!(repeated.body["order_status"], expected, "handing over twice changes nothing");
        }
    }
    assert_eq!(by_order_event, 1, "the van's second stop was handed over by an order event");
    let voided_order = app
        .post(
            &format!("/v1/orders/{failed_order}/events?tenant={}", van_stops[0]["tenant"].as_str().unwrap()),
            &van_key,
            json!({"status": van_stops[0]["pickup_point"].as_str().map_or("delivered", |_| "at_pickup_point")}),
        )
        .await;
    assert_eq!(voided_order.status, StatusCode::NOT_FOUND, "its stop was voided: {:?}", voided_order.body);
    let done = app.get(&format!("/v1/routes/{van_route}"), &van_key).await;
    assert_eq!(done.body["next_stop"], Value::Null);
    assert!(done.body["finished_at"].is_string());
    assert_eq!(status_of(app, failed_tenant_key, &failed_order).await, "out_for_delivery");

    // The next wave takes the failed shipment again; its route leaves and hands it over.
    let retry = app.post("/v1/operator/dispatch", &app.operator_key, wave_body.clone()).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    assert_eq!(retry.body["shipments"], 1, "{:?}", retry.body);
    let retry_route = retry.body["routes"][0]["route_id"].as_str().unwrap().to_owned();
    let retry_key = if retry.body["routes"][0]["vehicle_id"] == "van-1" { &van_key } else { &app.operator_key };
    let started = app.send("POST", &format!("/v1/routes/{retry_route}/start"), Some(retry_key), None, &[]).await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    let handed =
        app.send("POST", &format!("/v1/routes/{retry_route}/stops/1/delivered"), Some(retry_key), None, &[]).await;
    assert_eq!(handed.status, StatusCode::OK, "{:?}", handed.body);
    assert_ne!(handed.body["order_status"], "out_for_delivery", "{:?}", handed.body);

    for (order_id, _) in &orders[..2] {
        let order = app.get(&format!("/v1/orders/{order_id}"), &alpha).await;
        assert_eq!(order.body["status"], "delivered");
        assert!(order.body["delivered_at"].is_string());
    }
    assert_eq!(status_of(app, &alpha, &orders[2].0).await, "at_pickup_point");
    let waiting = app.get(&format!("/v1/orders/{}", orders[2].0), &alpha).await;
    assert!(waiting.body["arrived_at"].is_string() && waiting.body["delivered_at"].is_null(), "{:?}", waiting.body);
    for (order_id, _) in &books {
        assert_eq!(status_of(app, &bravo, order_id).await, "delivered");
    }
    // Each step recorded its EPCIS events: the salmon left the DC (once more when it failed)
    // and was sold to consumers.
    let events = |body: &Value| body["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap().len();
    let departures_expected = 3 + usize::from(failed_tenant_key == &alpha);
    assert_eq!(events(&app.get("/events?EQ_bizStep=departing", &alpha).await.body), departures_expected);
    assert_eq!(events(&app.get("/events?EQ_bizStep=retail_selling", &alpha).await.body), 2);

    // A van out on a route is not planned again before it is back; an order cancelled while on
    // a route that has not left is voided when it leaves and not queued again.
    let kept = packed_order(app, ("alpha-fish", &alpha), &salmon, 1, home(52.3650, 4.9000), 410).await;
    let dropped = packed_order(app, ("alpha-fish", &alpha), &salmon, 1, home(52.3600, 4.8600), 411).await;
    let departure = kept.1.max(dropped.1);
    let later_wave = json!({"depot": dc(), "wave": jiff::Timestamp::from_millisecond(departure).unwrap().to_string(), "lookahead_minutes": 0});
    let first_out = app.post("/v1/operator/dispatch", &app.operator_key, later_wave.clone()).await;
    assert_eq!(first_out.status, StatusCode::CREATED, "{:?}", first_out.body);
    assert_eq!(first_out.body["routes"][0]["vehicle_id"], "van-1");
    let out_route = first_out.body["routes"][0]["route_id"].as_str().unwrap().to_owned();
    let back: jiff::Timestamp = first_out.body["routes"][0]["planned_return"].as_str().unwrap().parse().unwrap();
    let cancelled = app.post(&format!("/v1/orders/{}/events", dropped.0), &alpha, json!({"status": "cancelled"})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    let third = packed_order(app, ("alpha-fish", &alpha), &salmon, 1, home(52.3700, 4.8700), 412).await;
    let next_wave = json!({"depot": dc(), "wave": jiff::Timestamp::from_millisecond(third.1).unwrap().to_string(), "lookahead_minutes": 0});
    let second_out = app.post("/v1/operator/dispatch", &app.operator_key, next_wave.clone()).await;
    assert!(
        second_out.status == StatusCode::CREATED || second_out.status == StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        second_out.body
    );
    for route in second_out.body["routes"].as_array().into_iter().flatten() {
        let leaves: jiff::Timestamp = route["departure"].as_str().unwrap().parse().unwrap();
        assert!(leaves >= back, "van-1 leaves again only once back: {route}");
    }
    let left = app.send("POST", &format!("/v1/routes/{out_route}/start"), Some(&van_key), None, &[]).await;
    assert_eq!(left.status, StatusCode::OK, "{:?}", left.body);
    // Out on it, the van does not start its next route before this one is done. (The next wave
    // finds no vehicle when van-1's return falls past its shift: late at night.)
    if second_out.status == StatusCode::CREATED {
        let routes = second_out.body["routes"].as_array().unwrap();
        let next_route = routes.iter().find(|route| route["vehicle_id"] == "van-1");
        let next_route = next_route.expect("the next wave plans van-1 again once back")["route_id"].as_str().unwrap();
        let refused = app.send("POST", &format!("/v1/routes/{next_route}/start"), Some(&van_key), None, &[]).await;
        assert!(refused.is_problem(409, "/problems/invalid-transition"), "{:?}", refused.body);
        assert!(refused.body["detail"].as_str().unwrap().contains("another route"), "{:?}", refused.body);
        let still = app.get(&format!("/v1/routes/{next_route}"), &van_key).await;
        assert_eq!(still.body["started_at"], Value::Null, "the refused start stored nothing: {:?}", still.body);
    }
    let stops = left.body["stops"].as_array().unwrap();
    let dropped_stop = stops.iter().find(|stop| stop["order_id"] == dropped.0.as_str()).unwrap();
    assert_eq!(dropped_stop["void_reason"], "the order is cancelled", "{dropped_stop}");
    assert_eq!(status_of(app, &alpha, &kept.0).await, "out_for_delivery");
    // A start that failed after sending its orders out (the route is marked started last) is
    // tried again: the orders it sent out are not recorded leaving a second time.
    app.execute_sql(&["UPDATE dispatch_routes SET started_unix_ms = NULL WHERE route_id = $1"], &out_route).await;
    let again = app.send("POST", &format!("/v1/routes/{out_route}/start"), Some(&van_key), None, &[]).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    let kept_order = app.get(&format!("/v1/orders/{}", kept.0), &alpha).await;
    let pallet = format!("https://id.gs1.org/00/{}", kept_order.body["shipments"][0]["sscc"].as_str().unwrap());
    for step in ["shipping", "departing"] {
        let found = app.get(&format!("/events?EQ_bizStep={step}&MATCH_epc={pallet}"), &alpha).await;
        assert_eq!(events(&found.body), 1, "{step} of {pallet} once: {:?}", found.body);
    }
    let after = app.post("/v1/operator/dispatch", &app.operator_key, later_wave).await;
    assert_eq!(after.body["shipments"], 0, "a cancelled order is not queued again: {:?}", after.body);

    // A vehicle with stops to go cannot be deleted; after its route it can.
    let deleted = app.send("DELETE", "/v1/operator/vehicles/bike-1", Some(&app.operator_key), None, &[]).await;
    let busy_again = app.send("DELETE", "/v1/operator/vehicles/van-1", Some(&app.operator_key), None, &[]).await;
    assert_eq!(busy_again.status, StatusCode::CONFLICT, "van-1 is out: {:?}", busy_again.body);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(app.get("/v1/operator/vehicles/bike-1", &app.operator_key).await.status, StatusCode::NOT_FOUND);
}

/// A split order whose shipment from the DC shipped nothing (its pick came up empty): no wave
/// plans it, the order goes out and is delivered with its other shipment alone, and that
/// shipment's hand-over records its pallet's events once.
/// Plans the wave at `depot` and starts its first route; answers the route's id.
async fn started_route(app: &TestApp, depot: &str, wave: &str) -> String {
    let planned = app.post("/v1/operator/dispatch", &app.operator_key, json!({"depot": depot, "wave": wave})).await;
    assert_eq!(planned.status, StatusCode::CREATED, "{depot}: {:?}", planned.body);
    let route_id = planned.body["routes"][0]["route_id"].as_str().unwrap().to_owned();
    let started = app.send("POST", &format!("/v1/routes/{route_id}/start"), Some(&app.operator_key), None, &[]).await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    route_id
}

/// A split order and where it stands.
struct SplitOrder {
    key: String,
    product: String,
    depot: String,
    order_id: String,
    shipments: Vec<Value>,
    /// The index of the shipment from the DC (the other is from the depot).
    from_dc: usize,
}

/// The network with a cold depot, a merchant with 5 units of `lots.0` at the DC and 5 of `lots.1`
/// at the depot (expiring in 20 and `lots.2` days; pallets from SSCC serial `sscc`), a reefer van
/// at each, and an order of 8 units to a home, split between the two.
async fn split_order(
    app: &TestApp,
    (tenant, product_body): (&str, &str),
    lots: (&str, &str, i64),
    sscc: u64,
) -> SplitOrder {
    network(app).await;
    let depot = cold_depot(app, true).await;
    let (key, product) = merchant(app, tenant, product_body).await;
    receive(app, &key, &product, &[(lots.0, 20, 5)], sscc).await;
    let expiry = (jiff::Zoned::now().date() + jiff::ToSpan::days(lots.2)).to_string();
    let at_depot = json!({"location": depot, "pallets": [{"sscc": gtin_sscc(sscc + 1), "gtin": product, "lot": lots.1,
                          "expiry": expiry, "quantity": 5}]});
    let asn = app.post("/v1/asns", &key, at_depot).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
    assert_eq!(app.post(&path, &key, json!({"zone": "cold"})).await.status, StatusCode::CREATED);
    for (vehicle_id, at) in [("van-dc", dc()), ("van-depot", depot.clone())] {
        let mut body = vehicle("Reefer van", 20, &["reefer"], None);
        body["depot"] = json!(at);
        let created = put(app, &format!("/v1/operator/vehicles/{vehicle_id}"), body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    let order = json!({"lines": [{"gtin": product, "quantity": 8}], "destination": home(52.3702, 4.8952),
                       "service": "next_day"});
    let placed = app.post("/v1/orders", &key, order).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let shipments = placed.body["shipments"].as_array().unwrap().clone();
    assert_eq!(shipments.len(), 2, "{:?}", placed.body);
    let from_dc = shipments.iter().position(|shipment| shipment["from"] == dc().as_str()).unwrap();
    assert_eq!(shipments[1 - from_dc]["from"], depot.as_str(), "{:?}", placed.body);
    SplitOrder { key, product, depot, order_id, shipments, from_dc }
}

pub async fn dispatch_leaves_out_a_shipment_that_shipped_nothing(app: &TestApp) {
    let SplitOrder { key, product, depot, order_id, shipments, from_dc } =
        split_order(app, ("splitter", "871234560500"), ("SPL", "SPL", 20), 500).await;
    let empty = 1 - from_dc;
    let events_path = format!("/v1/orders/{order_id}/events?tenant=splitter");
    let pallets = [gtin_sscc(600), gtin_sscc(601)];
    for step in [json!({"status": "picking"}), json!({"status": "packed", "ssccs": pallets})] {
        let moved = app.post(&events_path, &app.operator_key, step).await;
        assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    }
    let mut shipped = [0, 0];
    shipped[from_dc] = shipments[from_dc]["picks"][0]["quantity"].as_i64().unwrap();
    let short = app.post(&events_path, &app.operator_key, json!({"status": "shipped", "shipped": shipped})).await;
    assert_eq!(short.status, StatusCode::OK, "{:?}", short.body);

    // The empty shipment waits in no depot's queue; the other one is planned at the DC.
    let departures: Vec<jiff::Timestamp> = shipments
        .iter()
        .map(|shipment| shipment["last_mile_departure_at"].as_str().unwrap().parse().unwrap())
        .collect();
    // Each site's wave at its own shipment's departure (they need not be on the same day).
    let at_depot_wave = app
        .post(
            "/v1/operator/dispatch",
            &app.operator_key,
            json!({"depot": depot, "wave": departures[empty].to_string()}),
        )
        .await;
    assert_eq!(at_depot_wave.status, StatusCode::OK, "{:?}", at_depot_wave.body);
    assert_eq!(at_depot_wave.body["shipments"], 0, "the empty pallet is not planned: {:?}", at_depot_wave.body);
    let wave = departures[from_dc].to_string();
    let planned = app.post("/v1/operator/dispatch", &app.operator_key, json!({"depot": dc(), "wave": wave})).await;
    assert_eq!(planned.status, StatusCode::CREATED, "{:?}", planned.body);
    assert_eq!(planned.body["shipments"], 1, "{:?}", planned.body);
    let route = &planned.body["routes"][0];
    let route_id = route["route_id"].as_str().unwrap();
    assert_eq!(route["stops"].as_array().unwrap().len(), 1, "{route}");
    let started = app.send("POST", &format!("/v1/routes/{route_id}/start"), Some(&app.operator_key), None, &[]).await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    assert_eq!(status_of(app, &key, &order_id).await, "out_for_delivery");
    let handed =
        app.send("POST", &format!("/v1/routes/{route_id}/stops/1/delivered"), Some(&app.operator_key), None, &[]).await;
    assert_eq!(handed.status, StatusCode::OK, "{:?}", handed.body);
    assert_eq!(handed.body["order_status"], "delivered", "nothing waits for the empty pallet: {:?}", handed.body);

    let events = |body: &Value| body["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap().len();
    for (number, expected) in [(from_dc, 1), (empty, 0)] {
        let pallet = format!("https://id.gs1.org/00/{}", pallets[number]);
        for step in ["shipping", "departing", "retail_selling"] {
            let found = app.get(&format!("/events?EQ_bizStep={step}&MATCH_epc={pallet}"), &key).await;
            assert_eq!(events(&found.body), expected, "{step} of {pallet}: {:?}", found.body);
        }
    }

    // A parcel out for delivery whose lot is recalled meanwhile is not handed over at the door:
    // its stop is voided, not planned again, and the parcel goes back.
    receive(app, &key, &product, &[("RCL", 10, 5)], 700).await;
    let (recalled_order, departure) =
        packed_order(app, ("splitter", &key), &product, 1, home(52.3650, 4.9000), 702).await;
    let wave = jiff::Timestamp::from_millisecond(departure).unwrap().to_string();
    let route_id = started_route(app, &dc(), &wave).await;
    let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["RCL"], "reason": "glass"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let at_door =
        app.send("POST", &format!("/v1/routes/{route_id}/stops/1/delivered"), Some(&app.operator_key), None, &[]).await;
    assert!(at_door.is_problem(409, "/problems/lot-unavailable"), "{:?}", at_door.body);
    let route = app.get(&format!("/v1/routes/{route_id}"), &app.operator_key).await;
    assert!(route.body["stops"][0]["void_reason"].as_str().unwrap().contains("recalled"), "{:?}", route.body);
    assert_eq!(status_of(app, &key, &recalled_order).await, "out_for_delivery");
    let again = app.post("/v1/operator/dispatch", &app.operator_key, json!({"depot": dc(), "wave": wave})).await;
    assert_eq!(again.body["shipments"], 0, "the recalled parcel is not planned again: {:?}", again.body);
}

/// A route started several times at the same moment (a courier's retries, two API nodes) sends
/// its orders out once: one shipping and one departing event a pallet.
pub async fn routes_start_once(apps: &[&TestApp]) {
    const STARTS: usize = 6;
    let app = apps[0];
    network(app).await;
    let (key, product) = merchant(app, "racer", "871234560600").await;
    receive(app, &key, &product, &[("RUN", 20, 50)], 800).await;
    let van = put(app, "/v1/operator/vehicles/van-race", vehicle("Reefer van", 20, &["reefer"], None)).await;
    assert_eq!(van.status, StatusCode::CREATED, "{:?}", van.body);
    let mut orders = Vec::new();
    for (index, (latitude, longitude)) in
        [(52.3702, 4.8952), (52.3584, 4.8811), (52.3650, 4.9000)].into_iter().enumerate()
    {
        orders
            .push(packed_order(app, ("racer", &key), &product, 1, home(latitude, longitude), 810 + index as u64).await);
    }
    let departure = orders.iter().map(|(_, departure)| *departure).max().unwrap();
    let wave = jiff::Timestamp::from_millisecond(departure).unwrap().to_string();
    let planned = app.post("/v1/operator/dispatch", &app.operator_key, json!({"depot": dc(), "wave": wave})).await;
    assert_eq!(planned.status, StatusCode::CREATED, "{:?}", planned.body);
    assert_eq!(planned.body["routes"].as_array().map(Vec::len), Some(1), "{:?}", planned.body);
    let route_id = planned.body["routes"][0]["route_id"].as_str().unwrap().to_owned();
    let starts =
        (0..STARTS).map(|_| (format!("/v1/routes/{route_id}/start"), app.operator_key.clone(), Value::Null)).collect();
    for (status, body) in super::fulfilment::all_at_once(apps, starts).await {
        assert_eq!(status, StatusCode::OK, "{body:?}");
    }
    // Every stop still stands: no start took another's moving the order on for a reason to void it.
    let route = app.get(&format!("/v1/routes/{route_id}"), &app.operator_key).await;
    for stop in route.body["stops"].as_array().unwrap() {
        assert!(stop["voided_at"].is_null(), "{:?}", route.body);
    }
    let events = |body: &Value| body["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap().len();
    for (order_id, _) in &orders {
        assert_eq!(status_of(app, &key, order_id).await, "out_for_delivery");
        let order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
        let pallet = format!("https://id.gs1.org/00/{}", order.body["shipments"][0]["sscc"].as_str().unwrap());
        for step in ["shipping", "departing"] {
            let found = app.get(&format!("/events?EQ_bizStep={step}&MATCH_epc={pallet}"), &key).await;
            assert_eq!(events(&found.body), 1, "{step} of {pallet} once: {:?}", found.body);
        }
    }
}

/// A split order whose parcel from the DC was handed over at the door before its lot was
/// recalled: the recall's flag tells the merchant the consumer has the units (no parcel left to
/// take back carries the lot), and the other parcel, from the depot and clean, is still handed
/// over at its own stop; the order is delivered.
pub async fn dispatch_hands_over_a_split_orders_clean_parcel_after_a_recall(app: &TestApp) {
    let SplitOrder { key, product, depot, order_id, shipments, from_dc } =
        split_order(app, ("halves", "871234560700"), ("DCL", "DEP", 22), 900).await;
    assert_eq!(shipments[from_dc]["picks"][0]["lot"], "DCL", "{shipments:?}");
    assert_eq!(shipments[1 - from_dc]["picks"][0]["lot"], "DEP", "{shipments:?}");
    let events_path = format!("/v1/orders/{order_id}/events?tenant=halves");
    let pallets = [gtin_sscc(910), gtin_sscc(911)];
    for step in
        [json!({"status": "picking"}), json!({"status": "packed", "ssccs": pallets}), json!({"status": "shipped"})]
    {
        let moved = app.post(&events_path, &app.operator_key, step).await;
        assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    }
    // Each site's wave is its own shipment's last-mile departure: they need not be on the same
    // day (placed after a site's cut-off, its shipment leaves the next morning, while the other
    // may still leave tonight, promised for tonight).
    let wave_of = |shipment: usize| {
        shipments[shipment]["last_mile_departure_at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap().to_string()
    };
    let routes =
        [started_route(app, &dc(), &wave_of(from_dc)).await, started_route(app, &depot, &wave_of(1 - from_dc)).await];
    // The DC's parcel reaches the consumer; then its lot is recalled.
    let handed = app
        .send("POST", &format!("/v1/routes/{}/stops/1/delivered", routes[0]), Some(&app.operator_key), None, &[])
        .await;
    assert_eq!(handed.status, StatusCode::OK, "{:?}", handed.body);
    assert_eq!(handed.body["order_status"], "out_for_delivery", "the depot's parcel is on its way: {:?}", handed.body);
    // Recalls a lot; answers the flag that tells the merchant `units` reached the consumer.
    let recall_reached = |lot: &'static str, units: i64| {
        let (key, product) = (key.clone(), product.clone());
        async move {
            let recall =
                app.post("/v1/recalls", &key, json!({"gtin": product, "lots": [lot], "reason": "glass"})).await;
            assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
            let recall_id = recall.body["recall_id"].as_str().unwrap().to_owned();
            format!("recall {recall_id}: {units} units of the recalled lots reached the consumer; tell them")
        }
    };
    // No parcel left to take back carries the lot; the merchant is told to tell the consumer.
    let told = recall_reached("DCL", 5).await;
    let read = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    assert_eq!(read.body["flags"], json!([told]), "{:?}", read.body);
    // The depot's parcel holds DEP only: handed over at its stop, and the order is delivered.
    let handed = app
        .send("POST", &format!("/v1/routes/{}/stops/1/delivered", routes[1]), Some(&app.operator_key), None, &[])
        .await;
    assert_eq!(handed.status, StatusCode::OK, "{:?}", handed.body);
    assert_eq!(handed.body["order_status"], "delivered", "{:?}", handed.body);
    // Each parcel's sale at the door names the area, about a kilometre, never the home, and no
    // business location (the units left the network).
    for pallet in &pallets {
        let sold =
            app.get(&format!("/events?EQ_bizStep=retail_selling&MATCH_epc=https://id.gs1.org/00/{pallet}"), &key).await;
        let sold = &sold.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"];
        assert_eq!(sold.as_array().map(Vec::len), Some(1), "{sold:?}");
        // The order keeps 52.370, 4.895 (three decimals); 4.895 is a hair below the half.
        assert_eq!(sold[0]["readPoint"]["id"], "geo:52.37,4.89", "{sold:?}");
        assert!(sold[0].get("bizLocation").is_none(), "{sold:?}");
    }

    // Recalled once the order is delivered, the other lot's units are the consumer's too.
    let also_told = recall_reached("DEP", 3).await;
    let read = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    assert_eq!(read.body["flags"], json!([told, also_told]), "{:?}", read.body);

    // A parcel a courier left at a pickup point is not the consumer's yet: recalled then, it is
    // flagged, and the consumer does not collect it.
    let (other_key, other_product) = merchant(app, "collects", "871234560701").await;
    receive(app, &other_key, &other_product, &[("PUP", 20, 4)], 950).await;
    let (collected, departure) = packed_order(
        app,
        ("collects", &other_key),
        &other_product,
        1,
        json!({"pickup_point": super::fulfilment::pickup()}),
        960,
    )
    .await;
    let wave = jiff::Timestamp::from_millisecond(departure).unwrap().to_string();
    let route_id = started_route(app, &dc(), &wave).await;
    let dropped =
        app.send("POST", &format!("/v1/routes/{route_id}/stops/1/delivered"), Some(&app.operator_key), None, &[]).await;
    assert_eq!(dropped.status, StatusCode::OK, "{:?}", dropped.body);
    assert_eq!(dropped.body["order_status"], "at_pickup_point", "{:?}", dropped.body);
    let recall =
        app.post("/v1/recalls", &other_key, json!({"gtin": other_product, "lots": ["PUP"], "reason": "glass"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let read = app.get(&format!("/v1/orders/{collected}"), &other_key).await;
    assert_eq!(read.body["flags"].as_array().map(Vec::len), Some(1), "{:?}", read.body);
    let handed = app
        .post(
            &format!("/v1/orders/{collected}/events?tenant=collects"),
            &app.operator_key,
            json!({"status": "delivered"}),
        )
        .await;
    assert!(handed.is_problem(409, "/problems/lot-unavailable"), "{:?}", handed.body);
}
