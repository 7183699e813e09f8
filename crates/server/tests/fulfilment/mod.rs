//! End-to-end tests of fulfilment: receipts into zones, orders allocated and reserved all or
//! nothing, the lifecycle with short picks, holds that expire, recalls, and concurrent orders on
//! one hot SKU that never oversell.

use super::*;

fn with_check_digit(body: &str) -> String {
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    format!("{body}{}", gs1::check_digit(&digits))
}

pub fn gtin(body: &str) -> String {
    with_check_digit(body)
}

pub fn gln(body: &str) -> String {
    with_check_digit(body)
}

pub fn dc() -> String {
    gln("871234500101")
}

pub fn pickup() -> String {
    gln("871234500102")
}

const EVERY_SERVICE: &str = "23:59";

/// The operator's Amsterdam DC (a chilled room and an ambient hall), shipping every service but
/// those `left_out`.
fn amsterdam_dc(left_out: &[&str]) -> Value {
    let mut cutoffs = json!({"standard": EVERY_SERVICE, "next_day": EVERY_SERVICE, "same_day": EVERY_SERVICE, "express_12h": EVERY_SERVICE});
    for service in left_out {
        cutoffs.as_object_mut().unwrap().remove(*service);
    }
    json!({
        "gln": dc(), "kind": "warehouse", "name": "Amsterdam DC", "address": {"city": "Amsterdam"}, "country": "NL",
        "latitude": 52.35, "longitude": 4.80, "time_zone": "Europe/Amsterdam",
        "zones": [
            {"name": "chill", "min_celsius": 0, "max_celsius": 2, "capacity_pallets": 400},
            {"name": "ambient", "capacity_pallets": 400}
        ],
        "cutoffs": cutoffs, "pick_pack_lead_minutes": 60
    })
}

/// The operator's Amsterdam DC ([`amsterdam_dc`]) and a pickup point.
pub async fn network(app: &TestApp) {
    let dc = amsterdam_dc(&[]);
    let point = json!({
        "gln": pickup(), "kind": "pickup_point", "name": "Centraal", "address": {"city": "Amsterdam"}, "country": "NL",
        "latitude": 52.379, "longitude": 4.900, "time_zone": "Europe/Amsterdam", "zones": [], "pick_pack_lead_minutes": 0
    });
    for location in [dc, point] {
        let created = app.post("/v1/locations", &app.operator_key, location).await;
        assert!(created.status == StatusCode::CREATED || created.status == StatusCode::OK, "{:?}", created.body);
    }
}

/// A merchant with a chilled product; answers its key and the GTIN.
pub async fn merchant(app: &TestApp, tenant: &str, product_body: &str) -> (String, String) {
    let key = app.tenant(tenant, &["tenant:admin"]).await;
    let product = gtin(product_body);
    chilled_product(app, &key, &product, "Salmon").await;
    (key, product)
}

/// Adds a chilled product (30 days' shelf life, 3 at least left at delivery) to the key's tenant.
pub async fn chilled_product(app: &TestApp, key: &str, product: &str, name: &str) {
    let created = app
        .post(
            "/v1/products",
            key,
            json!({"gtin": product, "name": name, "temperature_class": "chilled", "shelf_life_days": 30,
                   "min_remaining_shelf_life_days": 3}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
}

fn in_days(days: i64) -> String {
    (jiff::Zoned::now().date() + jiff::ToSpan::days(days)).to_string()
}

/// Announces and receives pallets (lot, days to expiry, units) into the DC's chilled room.
pub async fn receive(app: &TestApp, key: &str, product: &str, pallets: &[(&str, i64, i64)], first_sscc: u64) {
    let pallets: Vec<Value> = pallets
        .iter()
        .enumerate()
        .map(|(index, (lot, days, units))| {
            json!({"sscc": with_check_digit(&format!("38712345{:09}", first_sscc + index as u64)), "gtin": product,
                   "lot": lot, "expiry": in_days(*days), "quantity": units})
        })
        .collect();
    let asn = app.post("/v1/asns", key, json!({"location": dc(), "pallets": pallets})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let asn_id = asn.body["asn_id"].as_str().unwrap();
    assert_eq!(asn.headers["location"], format!("/v1/asns/{asn_id}").as_str());
    let received = app.post(&format!("/v1/asns/{asn_id}/receipts"), key, json!({"zone": "chill"})).await;
    assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
    // Read back, every pallet is received into the zone.
    let read = app.get(&format!("/v1/asns/{asn_id}"), key).await;
    assert_eq!(read.body["received_pallets"], pallets.len(), "{:?}", read.body);
    for pallet in read.body["pallets"].as_array().unwrap() {
        assert!(pallet["received_zone"] == "chill" && pallet["received_at"].is_string(), "{pallet:?}");
    }
}

/// A lot's balances as `GET /v1/stock` reads them: (zone, on hand, status), sorted.
async fn zone_balances(app: &TestApp, key: &str, product: &str, lot: &str) -> Vec<(String, i64, String)> {
    let stock = app.get(&format!("/v1/stock?gtin={product}&lot={lot}"), key).await;
    let mut found: Vec<(String, i64, String)> = stock.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|balance| {
            (
                balance["zone"].as_str().unwrap().to_owned(),
                balance["on_hand"].as_i64().unwrap(),
                balance["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn order_body(product: &str, quantity: i64) -> Value {
    json!({"lines": [{"gtin": product, "quantity": quantity}], "destination": {"pickup_point": pickup()}, "service": "next_day"})
}

/// Every movement of the journal (`gtin=…[&lot=…]`), read page after page of `limit`.
async fn journal(app: &TestApp, key: &str, query: &str, limit: u32) -> Vec<Value> {
    let (mut movements, mut cursor) = (Vec::new(), String::new());
    loop {
        let page = app.get(&format!("/v1/stock/movements?{query}&limit={limit}{cursor}"), key).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        movements.extend(items.iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return movements,
        }
    }
}

/// PostgreSQL, several API nodes: a batch that began before a journal page was read and
/// commits after it is not skipped by that page's cursor, even when its time is earlier.
pub async fn journal_cursor_is_not_passed_by_a_later_commit(app: &TestApp, url: &str) {
    use sqlx::Connection;
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510031").await;
    receive(app, &key, &product, &[("A", 20, 10), ("B", 25, 10)], 31_000).await;
    let receipts = journal(app, &key, &format!("gtin={product}"), 500).await;
    assert_eq!(receipts.len(), 2, "{receipts:?}");
    // Another node's batch: it writes a movement, timed before the receipts, and has not
    // committed yet.
    let mut other_node = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other_node).await.unwrap();
    sqlx::query(
        "INSERT INTO stock_movements (tenant_id, operation_id, line, kind, gtin, location_gln, zone, lot, quantity, \
         reason, at_unix_ms) VALUES ('fish', 'other-node', 0, 'adjust', $1, $2, 'chill', 'A', 0, 'late commit', 0)",
    )
    .bind(receipts[0]["gtin"].as_str().unwrap())
    .bind(dc())
    .execute(&mut other_node)
    .await
    .unwrap();
    // Meanwhile this node places an order and commits.
    let placed = app.post("/v1/orders", &key, order_body(&product, 3)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    // A reader pages the journal now: the order's movement waits for the older transaction.
    let first = app.get(&format!("/v1/stock/movements?gtin={product}&limit=2"), &key).await;
    assert_eq!(first.body["items"], Value::Array(receipts.clone()), "{:?}", first.body);
    let cursor = first.body["next_cursor"].as_str().expect("a full page has a cursor").to_owned();
    let empty = app.get(&format!("/v1/stock/movements?gtin={product}&cursor={cursor}"), &key).await;
    assert_eq!(empty.body["items"], json!([]), "{:?}", empty.body);
    sqlx::query("COMMIT").execute(&mut other_node).await.unwrap();
    // After the commit, the page after the cursor holds both, the older transaction first.
    let rest = app.get(&format!("/v1/stock/movements?gtin={product}&cursor={cursor}"), &key).await;
    let kinds: Vec<(&str, &str)> = rest.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|movement| (movement["operation_id"].as_str().unwrap(), movement["kind"].as_str().unwrap()))
        .collect();
    let order_id = placed.body["order_id"].as_str().unwrap();
    assert_eq!(kinds, [("other-node", "adjust"), (order_id, "reserve")], "{:?}", rest.body);
}

/// PostgreSQL, several API nodes: an order transition that another node's batch wrote, timed
/// before a transition this node commits after it, reaches the merchant's webhook, and first:
/// a webhook's cursor does not pass a transaction still running.
pub async fn webhook_cursor_is_not_passed_by_a_later_commit(app: &TestApp, url: &str) {
    use sqlx::Connection;
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510031").await;
    receive(app, &key, &product, &[("A", 20, 10)], 31_000).await;
    let (hook_url, received) = receiver(0).await;
    let secret = "a-merchant-secret-of-32-characters";
    let hook = app.post("/v1/webhooks", &key, json!({"url": hook_url, "secret": secret})).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    // Another node's batch writes a transition, timed now, and has not committed yet.
    let mut other_node = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other_node).await.unwrap();
    sqlx::query(
        "INSERT INTO order_events (tenant_id, order_id, seq, status, detail, at_unix_ms) \
         VALUES ('fish', 'ord_other_node', 1, 'allocated', 'placed', $1)",
    )
    .bind(jiff::Timestamp::now().as_millisecond())
    .execute(&mut other_node)
    .await
    .unwrap();
    // Meanwhile this node places an order (a later time) and commits.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 3)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    // The deliveries wait for the older transaction: delivering the order's transition now
    // would move the cursor past the other node's.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert!(received.lock().unwrap().is_empty(), "delivered past a running transaction");
    sqlx::query("COMMIT").execute(&mut other_node).await.unwrap();
    let mut delivered: Vec<(String, String)> = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        delivered = signed_deliveries(&received, secret)
            .iter()
            .flat_map(|delivery| delivery["transitions"].as_array().unwrap().clone())
            .map(|transition| {
                (transition["order_id"].as_str().unwrap().to_owned(), transition["status"].as_str().unwrap().to_owned())
            })
            .collect();
        if delivered.len() >= 2 {
            break;
        }
    }
    let allocated = "allocated".to_owned();
    assert_eq!(delivered, [("ord_other_node".to_owned(), allocated.clone()), (order_id, allocated)]);
}

/// Two API nodes on one PostgreSQL database, each with its writer's stock cache: a count on one
/// judges the balance as stored now, not as that node's cache last read it (the other node
/// moved the stock meanwhile). Units found where the other node emptied the lot must go into a
/// zone that still keeps them.
pub async fn a_count_judges_the_stock_as_stored_whichever_node_moved_it(first: &TestApp, second: &TestApp) {
    network(first).await;
    let (key, product) = merchant(first, "tally", "871234510071").await;
    receive(first, &key, &product, &[("TALLY", 20, 10)], 71_000).await;
    let count = |counted: i64| json!({"location": dc(), "zone": "chill", "gtin": product, "lot": "TALLY", "counted": counted, "reason": "shelf count"});
    // The second node's writer reads the lot (a count that finds its 10), then the first takes
    // 4 away, then the second counts 8.
    for (node, counted) in [(second, 10), (first, 6), (second, 8)] {
        let done = node.post("/v1/stock/counts", &key, count(counted)).await;
        assert_eq!(done.status, StatusCode::OK, "{counted}: {:?}", done.body);
        assert_eq!(balance(first, &key, &product, "TALLY").await["on_hand"], counted);
    }
    // The first node empties the lot and the operator warms the room; the second node, which
    // last saw 8 units there, may not count 3 into it.
    let emptied = first.post("/v1/stock/counts", &key, count(0)).await;
    assert_eq!(emptied.status, StatusCode::OK, "{:?}", emptied.body);
    let dc_path = format!("/v1/locations/{}", dc());
    let location = first.get(&dc_path, &first.operator_key).await.body;
    let warmed =
        first.send("PUT", &dc_path, Some(&first.operator_key), Some(with_chill(&location, (8, 12))), &[]).await;
    assert_eq!(warmed.status, StatusCode::OK, "{:?}", warmed.body);
    let found = second.post("/v1/stock/counts", &key, count(3)).await;
    assert!(found.is_problem(422, "/problems/zone-unsuitable"), "{:?}", found.body);
    assert_eq!(balance(first, &key, &product, "TALLY").await["on_hand"], 0);
}

/// Two API nodes on one PostgreSQL database: a lot one node receives is allocated by the other at
/// once, though that node's writer cached the product's stock before and it still covers the
/// orders (stock that comes in is announced to the other nodes: `store::stock_news`).
pub async fn a_lot_one_node_receives_is_allocated_by_the_other(first: &TestApp, second: &TestApp) {
    network(first).await;
    let (key, product) = merchant(first, "news", "871234510081").await;
    receive(first, &key, &product, &[("LATER", 25, 1_000)], 81_000).await;
    let lot_of = |placed: &Answer| {
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
        placed.body["shipments"][0]["picks"][0]["lot"].as_str().unwrap().to_owned()
    };
    // The second node's writer reads the product's stock for an order.
    assert_eq!(lot_of(&second.post("/v1/orders", &key, order_body(&product, 1)).await), "LATER");
    // The first node receives a lot that expires sooner, first out by FEFO.
    receive(first, &key, &product, &[("SOONER", 15, 50)], 81_010).await;
    // The second node's orders take it within a moment (the announcement travels), long before
    // its writer's cache would be read again (30 s).
    let mut lots = Vec::new();
    for _ in 0..TRIES {
        lots.push(lot_of(&second.post("/v1/orders", &key, order_body(&product, 1)).await));
        if lots.last().is_some_and(|lot| lot == "SOONER") {
            break;
        }
        tokio::time::sleep(BETWEEN_TRIES).await;
    }
    assert_eq!(lots.last().map(String::as_str), Some("SOONER"), "{lots:?}");
}

/// A product's new rule and a site's new cut-off written on one API node reach the other's
/// allocation within a moment (announced, `stock_news`), not once its cached copies expire (30 s).
pub async fn rules_and_sites_one_node_changes_reach_the_other(first: &TestApp, second: &TestApp) {
    network(first).await;
    let (key, product) = merchant(first, "rules", "871234510082").await;
    receive(first, &key, &product, &[("SOON", 10, 500), ("LATER", 25, 500)], 82_000).await;
    let order = |service: &str| json!({"lines": [{"gtin": product, "quantity": 1}], "destination": {"pickup_point": pickup()}, "service": service});
    let lot_of = |placed: &Answer| {
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
        placed.body["shipments"][0]["picks"][0]["lot"].as_str().map(str::to_owned)
    };
    // The second node's writer reads the product (3 days left at delivery at least) and the sites.
    assert_eq!(lot_of(&second.post("/v1/orders", &key, order("next_day")).await).as_deref(), Some("SOON"));
    // The merchant asks for 15 days left at delivery on the first node: SOON (10 days) no longer
    // suits, and the second node's orders take LATER within a moment.
    let stricter = json!({"gtin": product, "name": "Salmon", "temperature_class": "chilled", "shelf_life_days": 30,
                          "min_remaining_shelf_life_days": 15});
    let put = first.send("PUT", &format!("/v1/products/{product}"), Some(&key), Some(stricter), &[]).await;
    assert!(put.status.is_success(), "{:?}", put.body);
    let mut lots = Vec::new();
    for _ in 0..TRIES {
        lots.push(lot_of(&second.post("/v1/orders", &key, order("next_day")).await));
        if lots.last() == Some(&Some("LATER".to_owned())) {
            break;
        }
        tokio::time::sleep(BETWEEN_TRIES).await;
    }
    assert_eq!(lots.last(), Some(&Some("LATER".to_owned())), "{lots:?}");

    // The operator drops the DC's next-day cut-off on the first node: the second node soon refuses
    // next-day orders (no site ships them), and takes them again soon after the cut-off is back.
    // (Next day, met at any hour with these cut-offs: an express order placed in the evening may
    // miss its 12 hours whatever they are; standard falls back to a site's latest cut-off.)
    let dc_path = format!("/v1/locations/{}", dc());
    for (site, answer) in
        [(amsterdam_dc(&["next_day"]), StatusCode::CONFLICT), (amsterdam_dc(&[]), StatusCode::CREATED)]
    {
        let put = first.send("PUT", &dc_path, Some(&first.operator_key), Some(site), &[]).await;
        assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
        let mut answers = Vec::new();
        for _ in 0..TRIES {
            let placed = second.post("/v1/orders", &key, order("next_day")).await;
            answers.push((placed.status, placed.body["detail"].clone()));
            if placed.status == answer {
                break;
            }
            tokio::time::sleep(BETWEEN_TRIES).await;
        }
        assert_eq!(answers.last().map(|(status, _)| *status), Some(answer), "{answers:?}");
        if answer == StatusCode::CONFLICT {
            let detail = answers.last().unwrap().1.as_str().unwrap_or_default();
            assert!(detail.contains("no cut-off for next_day"), "{detail}");
        }
    }
}

/// How often, and how far apart, a test asks a second API node whether it saw a change.
const TRIES: usize = 50;
const BETWEEN_TRIES: std::time::Duration = std::time::Duration::from_millis(20);

/// A count that finds fewer units than orders reserved: the newest orders not yet being picked
/// give theirs up, then are allocated again from other stock, or flagged when none is left.
pub async fn fulfilment_a_count_below_the_reserved_units_releases_the_newest_orders(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510061").await;
    receive(app, &key, &product, &[("SOON", 20, 10), ("LATER", 30, 10)], 61_000).await;
    let mut ids = Vec::new();
    for units in [4, 4, 2] {
        // Placed in distinct milliseconds: "newest" is by the time placed.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let placed = app.post("/v1/orders", &key, order_body(&product, units)).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
        ids.push(placed.body["order_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(balance(app, &key, &product, "SOON").await["reserved"], 10, "first expiry first");
    let count = |lot: &str, counted: i64| json!({"location": dc(), "zone": "chill", "gtin": product, "lot": lot, "counted": counted, "reason": "shelf count"});
    // 5 found of the 10 reserved: the newest (2 units), then the one before (4) give theirs up.
    let counted = app.post("/v1/stock/counts", &key, count("SOON", 5)).await;
    assert_eq!(counted.status, StatusCode::OK, "{:?}", counted.body);
    assert_eq!(counted.body["reallocated_orders"], json!([ids[2], ids[1]]), "{:?}", counted.body);
    assert_eq!(counted.body["flagged_orders"], json!([]));
    let operation = counted.body["operation_id"].as_str().unwrap();
    let soon = balance(app, &key, &product, "SOON").await;
    let later = balance(app, &key, &product, "LATER").await;
    assert_eq!(soon["on_hand"], 5);
    // The oldest keeps its 4; the two others took the free unit of SOON and the rest of LATER.
    assert_eq!((soon["reserved"].as_i64(), later["reserved"].as_i64()), (Some(5), Some(5)), "{soon:?} {later:?}");
    let moved = app.get(&format!("/v1/orders/{}", ids[1]), &key).await;
    assert_eq!(moved.body["status"], "allocated");
    let history = moved.body["events"].as_array().unwrap();
    assert!(
        history.last().unwrap()["detail"].as_str().unwrap().contains(&format!("after count {operation}")),
        "{history:?}"
    );
    // LATER is empty: the two orders holding it find no free unit left (SOON's 5 are the
    // oldest's and theirs) and are flagged. Then SOON is empty too: the oldest is flagged.
    let emptied = app.post("/v1/stock/counts", &key, count("LATER", 0)).await;
    assert_eq!(emptied.status, StatusCode::OK, "{:?}", emptied.body);
    assert_eq!(emptied.body["reallocated_orders"], json!([]), "{:?}", emptied.body);
    let mut flagged: Vec<String> = serde_json::from_value(emptied.body["flagged_orders"].clone()).unwrap();
    flagged.sort();
    assert_eq!(flagged, ids[1..], "{:?}", emptied.body);
    assert_eq!(balance(app, &key, &product, "SOON").await["reserved"], 4, "the oldest keeps its units");
    let emptied = app.post("/v1/stock/counts", &key, count("SOON", 0)).await;
    assert_eq!(emptied.status, StatusCode::OK, "{:?}", emptied.body);
    assert_eq!(emptied.body["flagged_orders"], json!([ids[0]]), "{:?}", emptied.body);
    for id in &ids {
        let order = app.get(&format!("/v1/orders/{id}"), &key).await;
        assert_eq!(order.body["status"], "accepted", "{:?}", order.body);
    }
    for lot in ["SOON", "LATER"] {
        let left = balance(app, &key, &product, lot).await;
        assert_eq!((left["on_hand"].as_i64(), left["reserved"].as_i64()), (Some(0), Some(0)), "{left:?}");
    }
}

/// The quantities of the first event of a business step, in its order.
async fn step_units(app: &TestApp, key: &str, step: &str) -> Vec<i64> {
    let found = app.get(&format!("/events?EQ_bizStep={step}"), key).await;
    found.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["quantityList"]
        .as_array()
        .unwrap_or_else(|| panic!("no {step} event with quantities: {:?}", found.body))
        .iter()
        .map(|quantity| quantity["quantity"].as_i64().unwrap())
        .collect()
}

async fn balance(app: &TestApp, key: &str, product: &str, lot: &str) -> Value {
    let stock = app.get(&format!("/v1/stock?gtin={product}&lot={lot}"), key).await;
    assert_eq!(stock.status, StatusCode::OK, "{:?}", stock.body);
    stock.body["items"][0].clone()
}

pub async fn fulfilment_receipts_orders_and_the_lifecycle(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510001").await;

    // Chilled salmon is not received into the ambient hall; nothing is stored.
    let asn = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": dc(), "pallets": [{"sscc": with_check_digit("38712345000000099"),
            "gtin": product, "lot": "WARM", "expiry": in_days(20), "quantity": 5}]}),
        )
        .await;
    let asn_id = asn.body["asn_id"].as_str().unwrap().to_owned();
    let warm = app.post(&format!("/v1/asns/{asn_id}/receipts"), &key, json!({"zone": "ambient"})).await;
    assert!(warm.is_problem(422, "/problems/zone-unsuitable"), "{:?}", warm.body);
    assert_eq!(app.get(&format!("/v1/stock?gtin={product}"), &key).await.body["items"], json!([]));
    // Read back, the ASN shows its pallet announced and not received.
    let read = app.get(&format!("/v1/asns/{asn_id}"), &key).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(
        (read.body["location"].as_str(), read.body["received_pallets"].as_u64()),
        (Some(dc().as_str()), Some(0))
    );
    let pallet = &read.body["pallets"][0];
    assert_eq!((pallet["lot"].as_str(), pallet["quantity"].as_i64()), (Some("WARM"), Some(5)), "{pallet:?}");
    assert!(pallet["received_at"].is_null() && pallet["expiry"].is_string(), "{pallet:?}");
    assert!(app.get("/v1/asns/asn_none", &key).await.is_problem(404, "/problems/not-found"));
    // Bad input: a problem naming the fields, nothing stored.
    let bad = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": dc(), "pallets": [{"sscc": "123", "gtin": product, "lot": "A B", "quantity": 0}]}),
        )
        .await;
    assert!(bad.is_problem(422, "/problems/validation-failed"), "{:?}", bad.body);
    for pointer in ["/pallets/0/sscc", "/pallets/0/lot", "/pallets/0/quantity"] {
        assert!(bad.pointers().contains(&pointer), "{pointer}: {:?}", bad.body);
    }
    // Dates and times are said in the API's words, whatever the parser thought.
    for (expiry, expected_at) in [("2026-13-45", "tomorrow"), ("2026-12-25T00:00:00Z", "2026-12-25")] {
        let pallet = json!({"sscc": with_check_digit("38712345000000096"), "gtin": product, "lot": "L", "expiry": expiry, "quantity": 1});
        let dated = app
            .post("/v1/asns", &key, json!({"location": dc(), "expected_at": expected_at, "pallets": [pallet]}))
            .await;
        assert_eq!(dated.pointers(), ["/expected_at", "/pallets/0/expiry"], "{:?}", dated.body);
        let said: Vec<&str> =
            dated.body["errors"].as_array().unwrap().iter().map(|error| error["detail"].as_str().unwrap()).collect();
        assert!(said[0].contains("no RFC 3339 time") && said[1].contains("no date YYYY-MM-DD"), "{said:?}");
        assert!(!dated.body.to_string().contains("jiff"), "{:?}", dated.body);
    }
    // A lot has one expiry: two pallets of one lot with two dates are refused before anything is stored.
    let pallet = |sscc: &str, days: i64| json!({"sscc": with_check_digit(sscc), "gtin": product, "lot": "TWO", "expiry": in_days(days), "quantity": 1});
    let two_dates = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": dc(), "pallets": [pallet("38712345000000098", 20), pallet("38712345000000097", 21)]}),
        )
        .await;
    assert!(
        two_dates.is_problem(422, "/problems/validation-failed") && two_dates.pointers() == ["/pallets/1/expiry"],
        "{:?}",
        two_dates.body
    );

    // Nor across ASNs: a lot announced and not received yet keeps its date for the next ASN.
    let awaited = |sscc: &str, days: i64| json!({"sscc": with_check_digit(sscc), "gtin": product, "lot": "AWAIT", "expiry": in_days(days), "quantity": 1});
    let first =
        app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [awaited("38712345000000081", 20)]})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let later =
        app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [awaited("38712345000000082", 22)]})).await;
    assert!(
        later.is_problem(409, "/problems/lot-conflict") && later.pointers() == ["/pallets/0/expiry"],
        "{:?}",
        later.body
    );
    assert!(
        later.body["errors"][0]["detail"].as_str().unwrap().contains("is announced with expiry"),
        "{:?}",
        later.body
    );
    let same =
        app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [awaited("38712345000000082", 20)]})).await;
    assert_eq!(same.status, StatusCode::CREATED, "{:?}", same.body);

    // An SSCC names one pallet: the WARM pallet's is taken (twice in one ASN is refused as invalid).
    let again = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": dc(), "pallets": [pallet("38712345000000094", 20), pallet("38712345000000099", 20)]}),
        )
        .await;
    assert!(again.is_problem(409, "/problems/conflict") && again.pointers() == ["/pallets/1/sscc"], "{:?}", again.body);
    // It stored nothing: its other pallet is announced on its own.
    let alone =
        app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet("38712345000000094", 20)]})).await;
    assert_eq!(alone.status, StatusCode::CREATED, "{:?}", alone.body);

    // A product with a shelf life is allocated by expiry: its pallets must carry one.
    let undated = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": dc(), "pallets": [{"sscc": with_check_digit("38712345000000096"), "gtin": product,
                   "lot": "UNDATED", "quantity": 1}]}),
        )
        .await;
    assert!(
        undated.is_problem(422, "/problems/validation-failed") && undated.pointers() == ["/pallets/0/expiry"],
        "{:?}",
        undated.body
    );

    // A pallet listed twice is refused.
    let twice = app
        .post(&format!("/v1/asns/{asn_id}/receipts"), &key, json!({"zone": "chill", "ssccs": [with_check_digit("38712345000000099"), with_check_digit("38712345000000099")]}))
        .await;
    assert!(
        twice.is_problem(422, "/problems/validation-failed") && twice.pointers().contains(&"/ssccs/1"),
        "{:?}",
        twice.body
    );

    // Two lots: FEFO takes the earlier one, then the later; a lot too close to expiry is skipped.
    receive(app, &key, &product, &[("EARLY", 10, 4), ("LATE", 20, 100), ("STALE", 2, 50)], 1).await;
    let early = balance(app, &key, &product, "EARLY").await;
    assert_eq!(
        (early["on_hand"].as_i64(), early["available"].as_i64(), early["status"].as_str()),
        (Some(4), Some(4), Some("available"))
    );

    // Bad orders get a problem naming the fields, and store nothing.
    let bad = app
        .post(
            "/v1/orders",
            &key,
            json!({"lines": [{"gtin": "12345", "quantity": 0}], "service": "teleport",
                   "destination": {"pickup_point": pickup(), "latitude": 52.0, "longitude": 4.0, "time_zone": "Europe/Amsterdam"},
                   "hold_seconds": 0}),
        )
        .await;
    assert!(bad.is_problem(422, "/problems/validation-failed"), "{:?}", bad.body);
    for pointer in ["/lines/0/gtin", "/lines/0/quantity", "/service", "/destination", "/hold_seconds"] {
        assert!(bad.pointers().contains(&pointer), "{pointer}: {:?}", bad.body);
    }
    let nowhere = json!({"lines": [{"gtin": product, "quantity": 1}], "destination": {"pickup_point": gln("871234599999")}, "service": "next_day"});
    let nowhere = app.post("/v1/orders", &key, nowhere).await;
    assert!(nowhere.is_problem(422, "/problems/unknown-reference"), "{:?}", nowhere.body);
    // Another merchant's (or nobody's) GTIN is named where it stands.
    let stranger = with_check_digit("0871234599999");
    let unknown = json!({"lines": [{"gtin": product, "quantity": 1}, {"gtin": stranger, "quantity": 1}],
                         "destination": {"pickup_point": pickup()}, "service": "next_day"});
    let unknown = app.post("/v1/orders", &key, unknown).await;
    assert!(
        unknown.is_problem(422, "/problems/unknown-reference") && unknown.pointers() == ["/lines/1/gtin"],
        "{:?}",
        unknown.body
    );
    let unknown_pallet =
        json!({"sscc": with_check_digit("38712345000000093"), "gtin": stranger, "lot": "X", "quantity": 1});
    let unknown_pallet = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [unknown_pallet]})).await;
    assert!(
        unknown_pallet.is_problem(422, "/problems/unknown-reference")
            && unknown_pallet.pointers() == ["/pallets/0/gtin"],
        "{:?}",
        unknown_pallet.body
    );
    // A pickup point is where consumers collect: not a warehouse. Refused, nothing is stored.
    let orders_before = app.get("/v1/orders?limit=500", &key).await.body["items"].as_array().unwrap().len();
    let to_the_dc = json!({"lines": [{"gtin": product, "quantity": 1}], "destination": {"pickup_point": dc()}, "service": "next_day"});
    let to_the_dc = app.post("/v1/orders", &key, to_the_dc).await;
    assert!(
        to_the_dc.is_problem(422, "/problems/validation-failed")
            && to_the_dc.pointers() == ["/destination/pickup_point"],
        "{:?}",
        to_the_dc.body
    );
    assert_eq!(app.get("/v1/orders?limit=500", &key).await.body["items"].as_array().unwrap().len(), orders_before);
    let bad_count = app
        .post(
            "/v1/stock/counts",
            &key,
            json!({"location": dc(), "zone": "chill", "gtin": product, "lot": "EARLY", "counted": -1, "reason": ""}),
        )
        .await;
    assert!(
        bad_count.is_problem(422, "/problems/validation-failed") && bad_count.pointers() == ["/counted", "/reason"],
        "{:?}",
        bad_count.body
    );
    let bad_status = app
        .post(
            "/v1/stock/lot-status",
            &key,
            json!({"gtin": product, "lot": "EARLY", "status": "recalled", "reason": "x"}),
        )
        .await;
    assert!(bad_status.is_problem(422, "/problems/validation-failed"), "{:?}", bad_status.body);
    assert_eq!(app.get("/v1/orders", &key).await.body["items"], json!([]));
    assert_eq!(balance(app, &key, &product, "EARLY").await["on_hand"], 4);
    let receipts = journal(app, &key, &format!("gtin={product}"), 500).await;
    assert!(receipts.iter().all(|movement| movement["kind"] == "receipt"), "{receipts:?}");
    let bad_cursor = app.get(&format!("/v1/stock/movements?gtin={product}&cursor=nonsense"), &key).await;
    assert!(bad_cursor.is_problem(400, "/problems/invalid-parameter"), "{:?}", bad_cursor.body);

    let placed = app
        .send("POST", "/v1/orders", Some(&key), Some(order_body(&product, 10)), &[("idempotency-key", "order-1")])
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(placed.body["status"], "allocated");
    assert_eq!(placed.body["reservation"], "pending");
    let picks: Vec<(String, i64)> = placed.body["shipments"][0]["picks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pick| (pick["lot"].as_str().unwrap().to_owned(), pick["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(picks, [("EARLY".to_owned(), 4), ("LATE".to_owned(), 6)]);
    assert_eq!(placed.body["shipments"][0]["from"], dc());
    // The answer shows the order as a read does, its first history row included.
    let read = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    assert_eq!(placed.body["events"], read.body["events"], "{:?}", placed.body);
    assert_eq!(placed.body["events"][0]["detail"], "placed");
    // A list does not read the history: it leaves it out rather than show none.
    let listed = app.get("/v1/orders?limit=500", &key).await;
    let item = listed.body["items"].as_array().unwrap().iter().find(|item| item["order_id"] == order_id).unwrap();
    assert!(item.get("events").is_none() && item["status"] == "allocated", "{item:?}");
    assert!(placed.body["allocation"]["rule"].as_str().unwrap().starts_with("one shipment"), "{:?}", placed.body);
    assert!(placed.body["promised_by"].as_str().unwrap().ends_with('Z'));
    // The promise in the pickup point's time zone (Europe/Amsterdam): the same instant.
    let local = placed.body["promised_by_local"].as_str().expect("a pickup point's order has its zone from the site");
    let instant = |text: &str| text.parse::<jiff::Timestamp>().unwrap();
    assert_eq!(instant(local), instant(placed.body["promised_by"].as_str().unwrap()));
    assert!(local.ends_with("+01:00") || local.ends_with("+02:00"), "{local}");
    // A retry with the same key answers the same order and reserves nothing more.
    let again = app
        .send("POST", "/v1/orders", Some(&key), Some(order_body(&product, 10)), &[("idempotency-key", "order-1")])
        .await;
    assert_eq!(again.body["order_id"], order_id.as_str());
    assert_eq!(again.headers.get("idempotent-replayed").map(|value| value.to_str().unwrap()), Some("true"));
    // Both name the order created (RFC 9110 `Location`).
    for answer in [&placed, &again] {
        assert_eq!(answer.headers["location"], format!("/v1/orders/{order_id}").as_str());
    }
    // The first answer itself (stored compressed), not the order as it is now.
    assert_eq!(again.status, placed.status);
    assert_eq!(again.body, placed.body);
    assert_eq!(balance(app, &key, &product, "LATE").await["reserved"], 6);
    assert_eq!(balance(app, &key, &product, "EARLY").await["available"], 0);

    // More than the eligible stock: refused whole, nothing reserved; STALE does not count.
    let short = app.post("/v1/orders", &key, order_body(&product, 95)).await;
    assert!(short.is_problem(409, "/problems/insufficient-stock"), "{:?}", short.body);
    assert_eq!(short.pointers(), ["/lines/0"]);
    assert!(short.body["errors"][0]["detail"].as_str().unwrap().contains("94 eligible"), "{:?}", short.body);
    assert!(short.body["detail"].as_str().unwrap().starts_with("not enough eligible stock"), "{:?}", short.body);
    let said = short.body["errors"][0]["detail"].as_str().unwrap();
    assert!(!said.contains("not allocatable"), "no lot of it is blocked: {said}");
    // One line a product: a GTIN on two lines is refused, naming the second.
    let twice = json!({"lines": [{"gtin": product, "quantity": 1}, {"gtin": product, "quantity": 2}],
                       "destination": {"pickup_point": pickup()}, "service": "next_day"});
    let twice = app.post("/v1/orders", &key, twice).await;
    assert!(twice.is_problem(422, "/problems/validation-failed"), "{:?}", twice.body);
    assert_eq!(twice.pointers(), ["/lines/1/gtin"], "{:?}", twice.body);
    // A deadline already past is a mistake in the request, not a shortage.
    let mut late = order_body(&product, 1);
    late["latest_delivery_at"] = json!("2020-01-01T00:00:00Z");
    let late = app.post("/v1/orders", &key, late).await;
    assert!(late.is_problem(422, "/problems/validation-failed"), "{:?}", late.body);
    assert_eq!(late.pointers(), ["/latest_delivery_at"], "{:?}", late.body);
    // One no site can meet (two minutes from now: picking and packing alone take longer) is
    // refused for want of stock deliverable in time, and says the deadline is why.
    let mut soon = order_body(&product, 1);
    let in_two_minutes = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(2);
    soon["latest_delivery_at"] = json!(in_two_minutes.to_string());
    let soon = app.post("/v1/orders", &key, soon).await;
    assert!(soon.is_problem(409, "/problems/insufficient-stock"), "{:?}", soon.body);
    assert_eq!(soon.pointers(), ["/latest_delivery_at", "/lines/0"], "{:?}", soon.body);
    let said = soon.body["errors"][0]["detail"].as_str().unwrap();
    assert!(said.contains(&dc()) && said.contains("after the latest delivery asked for"), "{said}");
    assert_eq!(balance(app, &key, &product, "LATE").await["reserved"], 6);
    assert_eq!(balance(app, &key, &product, "STALE").await["reserved"], 0);

    // The lifecycle. The physical steps are the operator's: a merchant key may not record them.
    let merchant_path = format!("/v1/orders/{order_id}/events");
    let by_merchant = app.post(&merchant_path, &key, json!({"status": "picking"})).await;
    assert!(by_merchant.is_problem(403, "/problems/forbidden"), "{:?}", by_merchant.body);
    assert_eq!(app.get(&format!("/v1/orders/{order_id}"), &key).await.body["status"], "allocated");
    let path = format!("{merchant_path}?tenant=fish");
    let operator = &app.operator_key;
    let early_ship = app.post(&path, operator, json!({"status": "shipped"})).await;
    assert!(early_ship.is_problem(409, "/problems/invalid-transition"), "{:?}", early_ship.body);
    // A step answers the order with its history, and its retry replays that very answer.
    let keyed = [("idempotency-key", "pick-1")];
    let picking = app.send("POST", &path, Some(operator), Some(json!({"status": "picking"})), &keyed).await;
    assert_eq!(picking.status, StatusCode::OK, "{:?}", picking.body);
    let history: Vec<&str> =
        picking.body["events"].as_array().unwrap().iter().map(|event| event["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["allocated", "picking"], "{:?}", picking.body);
    let retried = app.send("POST", &path, Some(operator), Some(json!({"status": "picking"})), &keyed).await;
    assert_eq!(retried.headers.get("idempotent-replayed").map(|value| value.as_bytes()), Some(&b"true"[..]));
    assert_eq!(retried.body, picking.body, "the retry answers the first answer");
    let no_sscc = app.post(&path, operator, json!({"status": "packed"})).await;
    assert!(no_sscc.is_problem(409, "/problems/invalid-transition"), "{:?}", no_sscc.body);
    // An SSCC names one pallet: not the inbound WARM pallet, announced and never received (named
    // by its ASN alone, no event).
    let inbound =
        app.post(&path, operator, json!({"status": "packed", "ssccs": [with_check_digit("38712345000000099")]})).await;
    assert!(inbound.is_problem(409, "/problems/conflict"), "{:?}", inbound.body);
    assert_eq!(inbound.pointers(), ["/ssccs/0"], "{:?}", inbound.body);
    assert_eq!(app.get(&format!("/v1/orders/{order_id}"), &key).await.body["status"], "picking");
    let sscc = with_check_digit("38712345100000001");
    let packed = app.post(&path, operator, json!({"status": "packed", "ssccs": [sscc]})).await;
    assert_eq!(packed.status, StatusCode::OK, "{:?}", packed.body);
    assert_eq!(packed.body["shipments"][0]["sscc"], sscc.as_str());
    // Nor may an ASN then announce that pallet as inbound: its SSCC is the order's for good.
    let inbound =
        |sscc: &str| json!({"sscc": sscc, "gtin": product, "lot": "TWO", "expiry": in_days(20), "quantity": 1});
    let fresh = with_check_digit("38712345000000089");
    let outbound =
        app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [inbound(&fresh), inbound(&sscc)]})).await;
    assert!(
        outbound.is_problem(409, "/problems/conflict") && outbound.pointers() == ["/pallets/1/sscc"],
        "{:?}",
        outbound.body
    );
    let said = outbound.body["errors"][0]["detail"].as_str().unwrap();
    assert!(said.contains(&format!("order {order_id} was packed onto")), "{said}");
    // It stored nothing: its other pallet is announced on its own.
    let alone = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [inbound(&fresh)]})).await;
    assert_eq!(alone.status, StatusCode::CREATED, "{:?}", alone.body);
    // A lot put on hold after packing stops the shipment, and nothing moves.
    let hold = |status: &'static str| json!({"gtin": product, "lot": "LATE", "status": status, "reason": "temperature excursion"});
    assert_eq!(app.post("/v1/stock/lot-status", &key, hold("hold")).await.status, StatusCode::OK);
    let held = app.post(&path, operator, json!({"status": "shipped", "shipped": [4, 5]})).await;
    assert!(held.is_problem(409, "/problems/lot-unavailable"), "{:?}", held.body);
    assert!(held.body["detail"].as_str().unwrap().contains("\"LATE\""), "{:?}", held.body);
    assert_eq!(balance(app, &key, &product, "LATE").await["reserved"], 6);
    assert_eq!(app.get(&format!("/v1/orders/{order_id}"), &key).await.body["status"], "packed");
    // Meanwhile an order finds the held units not allocatable, and is told why.
    let blocked = app.post("/v1/orders", &key, order_body(&product, 95)).await;
    assert!(blocked.is_problem(409, "/problems/insufficient-stock"), "{:?}", blocked.body);
    let why = blocked.body["errors"][0]["detail"].as_str().unwrap();
    assert!(why.contains("not allocatable for their lot's status: ") && why.contains(" hold"), "{why}");
    assert_eq!(app.post("/v1/stock/lot-status", &key, hold("available")).await.status, StatusCode::OK);
    // `shipped` is per pick, and a wrong list says so.
    for (shipped, said) in [(json!([4]), "1 quantities for 2 picks"), (json!([4, 9]), "pick 1: 9 shipped")] {
        let refused = app.post(&path, operator, json!({"status": "shipped", "shipped": shipped})).await;
        assert!(refused.is_problem(409, "/problems/invalid-transition"), "{:?}", refused.body);
        assert!(refused.body["detail"].as_str().unwrap().contains(said), "{said}: {:?}", refused.body);
    }
    // The operator's systems ship it for the tenant: a short pick of the LATE lot (5 of 6).
    let shipped = app.post(&path, operator, json!({"status": "shipped", "shipped": [4, 5]})).await;
    assert_eq!(shipped.status, StatusCode::OK, "{:?}", shipped.body);
    assert_eq!(shipped.body["reservation"], "posted");
    let picks_shipped: Vec<Option<i64>> =
        shipped.body["shipments"][0]["picks"].as_array().unwrap().iter().map(|pick| pick["shipped"].as_i64()).collect();
    assert_eq!(picks_shipped, [Some(4), Some(5)], "{:?}", shipped.body);
    let late = balance(app, &key, &product, "LATE").await;
    assert_eq!((late["on_hand"].as_i64(), late["reserved"].as_i64()), (Some(95), Some(0)));
    assert_eq!(balance(app, &key, &product, "EARLY").await["on_hand"], 0);
    let statuses: Vec<&str> =
        shipped.body["events"].as_array().unwrap().iter().map(|event| event["status"].as_str().unwrap()).collect();
    // Placing it was the first transition (accepted → allocated in one write).
    assert_eq!(statuses, ["allocated", "picking", "packed", "shipped"]);
    assert_eq!(shipped.body["events"][0]["detail"], "placed");
    assert!(shipped.body["events"][3]["detail"].as_str().unwrap().contains("short pick"));
    // At the pickup point it has arrived (the moment the promise measures); collected later, it
    // is delivered, and its arrival stays. Not collected before it arrived: the arrival is a step.
    let collected_first = app.post(&path, operator, json!({"status": "delivered"})).await;
    assert!(collected_first.is_problem(409, "/problems/invalid-transition"), "{:?}", collected_first.body);
    assert!(collected_first.body["detail"].as_str().unwrap().contains("at_pickup_point"), "{:?}", collected_first.body);
    let arrived = app.post(&path, operator, json!({"status": "at_pickup_point"})).await;
    assert_eq!(arrived.status, StatusCode::OK, "{:?}", arrived.body);
    let arrived_at = arrived.body["arrived_at"].clone();
    assert!(arrived_at.is_string() && arrived.body["delivered_at"].is_null(), "{:?}", arrived.body);
    let collected = app.post(&path, operator, json!({"status": "delivered"})).await;
    assert_eq!(collected.status, StatusCode::OK, "{:?}", collected.body);
    assert_eq!(collected.body["arrived_at"], arrived_at);
    assert!(
        app.post(&path, operator, json!({"status": "cancelled"})).await.is_problem(409, "/problems/invalid-transition")
    );
    let delivered = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    assert_eq!(delivered.body["status"], "delivered");
    assert!(delivered.body["delivered_at"].is_string());

    // Each physical step recorded its own EPCIS event: the lot's trace covers the order.
    let trace = app.get(&format!("/v1/trace?gtin={product}&lot=LATE"), &key).await;
    assert_eq!(trace.status, StatusCode::OK, "{:?}", trace.body);
    let steps: Vec<&str> = trace.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["bizStep"].as_str().unwrap_or("").rsplit(['/', ':']).next().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["commissioning", "receiving", "picking", "packing", "unpacking", "shipping", "arriving", "retail_selling"],
        "{:?}",
        trace.body["timeline"]
    );
    let packing = app.get("/events?EQ_bizStep=packing", &key).await;
    let packed_event = &packing.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0];
    assert!(packed_event["parentID"].as_str().unwrap().ends_with(&sscc), "{packed_event:?}");
    // Each step's event carries the offset in effect at its site then: the DC is in Amsterdam.
    let amsterdam = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap();
    for step in ["commissioning", "receiving", "picking", "packing", "shipping", "arriving", "retail_selling"] {
        let found = app.get(&format!("/events?EQ_bizStep={step}"), &key).await;
        for event in found.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap() {
            let at: jiff::Timestamp = event["eventTime"].as_str().unwrap().parse().unwrap();
            let seconds = amsterdam.to_offset(at).seconds();
            let expected = format!("+{:02}:{:02}", seconds / 3600, seconds % 3600 / 60);
            assert_eq!(event["eventTimeZoneOffset"], expected.as_str(), "{step}: {event:?}");
        }
    }
    let shipped_units = step_units(app, &key, "shipping").await;
    assert_eq!(shipped_units, [4, 5], "the short pick is what the shipping event records");
    // The unit packed but not shipped came out of the pallet, back in stock.
    let unpacking = app.get("/events?EQ_bizStep=unpacking", &key).await;
    let unpacked = &unpacking.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0];
    let late = format!("https://id.gs1.org/01/{product:0>14}/10/LATE");
    assert_eq!(unpacked["childQuantityList"], json!([{"epcClass": late, "quantity": 1}]), "{unpacked:?}");
    assert!(unpacked["parentID"].as_str().unwrap().ends_with(&sscc), "{unpacked:?}");
    assert_eq!((unpacked["action"].as_str(), unpacked.get("disposition")), (Some("DELETE"), None), "{unpacked:?}");
    let sold_units = step_units(app, &key, "retail_selling").await;
    assert_eq!(sold_units, [4, 5], "the delivery sells what shipped, not what was reserved");

    // The journal explains every unit of the LATE lot.
    let movements = journal(app, &key, &format!("gtin={product}&lot=LATE"), 500).await;
    let kinds: Vec<(&str, i64)> = movements
        .iter()
        .map(|movement| (movement["kind"].as_str().unwrap(), movement["quantity"].as_i64().unwrap()))
        .collect();
    // (the pick records the reserved units taken from the shelf and changes no balance; the hold
    // and its lifting are movements of their own, of no units)
    assert_eq!(
        kinds,
        [("receipt", 100), ("reserve", 6), ("pick", 6), ("status", 0), ("status", 0), ("ship", 5), ("release", 1)]
    );
    let pick = &movements[2];
    assert_eq!(pick["operation_id"], format!("{order_id}/picking"), "{pick:?}");

    // A return puts back into stock the units it lists, per pick, where they were picked: never
    // more than a pick shipped (EARLY shipped 4, LATE 5), and only with a return.
    let misplaced = app.post(&path, operator, json!({"status": "delivered", "restocked": [0, 1]})).await;
    assert!(
        misplaced.is_problem(422, "/problems/validation-failed") && misplaced.pointers() == ["/restocked"],
        "{:?}",
        misplaced.body
    );
    let labelled = app.post(&path, operator, json!({"status": "returned", "ssccs": [sscc]})).await;
    assert!(
        labelled.is_problem(422, "/problems/validation-failed") && labelled.pointers() == ["/ssccs"],
        "{:?}",
        labelled.body
    );
    let too_many = app.post(&path, operator, json!({"status": "returned", "restocked": [0, 6]})).await;
    assert!(
        too_many.is_problem(409, "/problems/invalid-transition") && too_many.pointers() == ["/restocked"],
        "{:?}",
        too_many.body
    );
    let one_short = app.post(&path, operator, json!({"status": "returned", "restocked": [1]})).await;
    assert!(one_short.is_problem(409, "/problems/invalid-transition"), "{:?}", one_short.body);
    assert_eq!(balance(app, &key, &product, "LATE").await["on_hand"], 95);
    assert_eq!(app.get(&format!("/v1/orders/{order_id}"), &key).await.body["status"], "delivered");
    let returned = app.post(&path, operator, json!({"status": "returned", "restocked": [0, 2]})).await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(returned.body["status"], "returned");
    assert_eq!(returned.body["events"][6]["detail"], "restocked [0, 2]");
    assert_eq!(balance(app, &key, &product, "LATE").await["on_hand"], 97);
    assert_eq!(balance(app, &key, &product, "EARLY").await["on_hand"], 0);
    let movements = journal(app, &key, &format!("gtin={product}&lot=LATE"), 2).await;
    let last = movements.last().unwrap().clone();
    assert_eq!((last["kind"].as_str(), last["quantity"].as_i64()), (Some("return"), Some(2)), "{last:?}");
    let back = app.get("/events?EQ_bizStep=receiving&EQ_disposition=returned", &key).await;
    let back = &back.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"];
    assert_eq!(back.as_array().map(Vec::len), Some(1), "{back:?}");
    assert_eq!(back[0]["quantityList"][0]["quantity"], 2, "{back:?}");
    assert!(back[0]["epcList"][0].as_str().unwrap().ends_with(&sscc), "{back:?}");

    // Cancelling releases; a cycle count adjusts with a movement, never below the units that
    // orders being picked hold.
    let second = app.post("/v1/orders", &key, order_body(&product, 30)).await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    let second_id = second.body["order_id"].as_str().unwrap();
    // An SSCC names one pallet: not twice in one packing, not one another order's pallet or an
    // inbound pallet already carries.
    let second_path = format!("/v1/orders/{second_id}/events?tenant=fish");
    assert_eq!(app.post(&second_path, operator, json!({"status": "picking"})).await.status, StatusCode::OK);
    let before = balance(app, &key, &product, "LATE").await;
    let count = app.post("/v1/stock/counts", &key, json!({"location": dc(), "zone": "chill", "gtin": product, "lot": "LATE", "counted": 20, "reason": "damaged cases"})).await;
    assert!(count.is_problem(409, "/problems/insufficient-stock"), "{:?}", count.body);
    assert!(count.body["detail"].as_str().unwrap().contains("being picked or packed hold 30"), "{:?}", count.body);
    assert_eq!(balance(app, &key, &product, "LATE").await, before, "a refused count stores nothing");
    let fresh = with_check_digit("38712345100000002");
    let twice = app.post(&second_path, operator, json!({"status": "packed", "ssccs": [fresh, fresh]})).await;
    assert!(
        twice.is_problem(422, "/problems/validation-failed") && twice.pointers() == ["/ssccs/1"],
        "{:?}",
        twice.body
    );
    let inbound = with_check_digit("38712345000000001");
    for used in [&sscc, &inbound] {
        let reused = app.post(&second_path, operator, json!({"status": "packed", "ssccs": [used]})).await;
        assert!(reused.is_problem(409, "/problems/conflict") && reused.pointers() == ["/ssccs/0"], "{:?}", reused.body);
    }
    assert_eq!(app.get(&format!("/v1/orders/{second_id}"), &key).await.body["status"], "picking");
    let cancelled = app.post(&format!("/v1/orders/{second_id}/events"), &key, json!({"status": "cancelled"})).await;
    assert_eq!(cancelled.body["reservation"], "voided");
    assert_eq!(balance(app, &key, &product, "LATE").await["reserved"], 0);
    let count = app.post("/v1/stock/counts", &key, json!({"location": dc(), "zone": "chill", "gtin": product, "lot": "LATE", "counted": 20, "reason": "damaged cases"})).await;
    assert_eq!(count.status, StatusCode::OK, "{:?}", count.body);
    assert_eq!((&count.body["reallocated_orders"], &count.body["flagged_orders"]), (&json!([]), &json!([])));
    assert_eq!(balance(app, &key, &product, "LATE").await["on_hand"], 20);

    // Goods received in quarantine do not join an available balance of the lot.
    let quarantined = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": dc(), "pallets": [{"sscc": with_check_digit("38712345000000098"),
            "gtin": product, "lot": "LATE", "expiry": in_days(20), "quantity": 5}]}),
        )
        .await;
    let quarantined_id = quarantined.body["asn_id"].as_str().unwrap().to_owned();
    let conflict = app
        .post(&format!("/v1/asns/{quarantined_id}/receipts"), &key, json!({"zone": "chill", "status": "quarantine"}))
        .await;
    assert!(conflict.is_problem(409, "/problems/lot-conflict"), "{:?}", conflict.body);
    assert!(conflict.body["detail"].as_str().unwrap().contains("is available"), "{:?}", conflict.body);
    assert_eq!(balance(app, &key, &product, "LATE").await["on_hand"], 20, "nothing received");

    // A hold on the lot makes it unavailable; releasing it is recorded too.
    let hold = app
        .post(
            "/v1/stock/lot-status",
            &key,
            json!({"gtin": product, "lot": "LATE", "status": "hold", "reason": "QA check"}),
        )
        .await;
    assert_eq!(hold.status, StatusCode::OK, "{:?}", hold.body);
    assert_eq!(balance(app, &key, &product, "LATE").await["available"], 0);
    assert!(
        app.post("/v1/orders", &key, order_body(&product, 1)).await.is_problem(409, "/problems/insufficient-stock")
    );

    // The promise, measured: one order delivered by its promise and within 24 h, one cancelled.
    let sla = app.get("/v1/sla", &key).await;
    assert_eq!(sla.status, StatusCode::OK, "{:?}", sla.body);
    assert_eq!(sla.body["rows"].as_array().unwrap().len(), 1, "{:?}", sla.body);
    let row = &sla.body["rows"][0];
    assert_eq!((row["region"].as_str(), row["service"].as_str()), (Some("Amsterdam"), Some("next_day")));
    let counts: Vec<i64> =
        ["orders", "cancelled", "delivered", "delivered_by_promise", "delivered_within_24h", "late_open"]
            .iter()
            .map(|field| row[*field].as_i64().unwrap())
            .collect();
    assert_eq!(counts, [2, 1, 1, 1, 1, 0]);
    assert_eq!((row["share_by_promise"].as_f64(), row["share_within_24h"].as_f64()), (Some(1.0), Some(1.0)));
    let operator = app.get("/v1/operator/sla?tenant=fish", &app.operator_key).await;
    assert_eq!(operator.body["total"]["orders"], 2, "{:?}", operator.body);
    // Every tenant's, read tenant by tenant: the same rows (no other merchant placed orders).
    let everyone = app.get("/v1/operator/sla", &app.operator_key).await;
    assert_eq!(everyone.body["rows"], operator.body["rows"], "{:?}", everyone.body);
    assert!(app.get("/v1/operator/sla", &key).await.is_problem(403, "/problems/forbidden"));
    // An operator reads a merchant's own report by naming it, and a mistyped name is not an empty one.
    let named = app.get("/v1/sla?tenant=fish", &app.operator_key).await;
    assert_eq!(named.body, sla.body);
    assert!(app.get("/v1/sla", &app.operator_key).await.is_problem(400, "/problems/invalid-parameter"));
    for path in ["/v1/sla?tenant=nobody", "/v1/operator/sla?tenant=nobody"] {
        assert!(app.get(path, &app.operator_key).await.is_problem(404, "/problems/not-found"), "{path}");
    }
    // A period is of days that exist, written as days, at most a year and a day long.
    for (query, pointer) in [
        ("from=2026-13-01", "?from"),
        ("from=2026-11-30T23:00-05:00", "?from"),
        ("to=2026-12-01T01:00:00Z", "?to"),
        ("from=9999-12-31&to=9999-12-31", "?from"),
        ("from=9999-12-30&to=9999-12-30", "?from"),
        ("from=1969-12-31&to=1970-01-02", "?from"),
        ("from=2025-01-01&to=2026-01-02", "?from"),
        ("from=2026-02-01&to=2026-01-31", "?from"),
    ] {
        for report in ["/v1/sla", "/v1/operator/sla", "/v1/operator/usage"] {
            let reader = if report == "/v1/sla" { &key } else { &app.operator_key };
            let refused = app.get(&format!("{report}?{query}"), reader).await;
            assert!(refused.is_problem(400, "/problems/invalid-parameter"), "{report}?{query}: {:?}", refused.body);
            assert_eq!(refused.pointers(), [pointer], "{report}?{query}");
        }
    }
    for query in ["from=2025-01-01&to=2025-12-31", "from=2024-01-01&to=2024-12-31", "from=9999-12-29&to=9999-12-29"] {
        let report = app.get(&format!("/v1/sla?{query}"), &key).await;
        assert_eq!(report.status, StatusCode::OK, "{query}: {:?}", report.body);
        assert_eq!(report.body["total"]["orders"], 0, "{query}");
    }
    // Only `to`: the 30 days before it, however long ago.
    let before = app.get("/v1/sla?to=2026-01-01", &key).await;
    assert_eq!(before.status, StatusCode::OK, "{:?}", before.body);
    assert_eq!(
        (&before.body["from"], &before.body["to"]),
        (&json!("2025-12-02"), &json!("2026-01-01")),
        "{:?}",
        before.body
    );

    // Another merchant sees none of it.
    let (other, _) = merchant(app, "meat", "871234510002").await;
    // A merchant's key names no other tenant, one that exists or not alike; its own is fine.
    for named in ["meat", "nobody"] {
        let refused = app.get(&format!("/v1/stock?tenant={named}"), &key).await;
        assert!(refused.is_problem(400, "/problems/invalid-parameter"), "{named}: {:?}", refused.body);
        assert_eq!(refused.pointers(), ["?tenant"], "{:?}", refused.body);
    }
    assert_eq!(app.get("/v1/stock?tenant=fish", &key).await.status, StatusCode::OK);
    assert!(app.get(&format!("/v1/orders/{order_id}"), &other).await.is_problem(404, "/problems/not-found"));
    assert_eq!(app.get(&format!("/v1/stock?gtin={product}"), &other).await.body["items"], json!([]));
    assert!(
        app.post(&path, &other, json!({"status": "returned"})).await.is_problem(400, "/problems/invalid-parameter")
    );
    let unnamed = format!("/v1/orders/{order_id}/events");
    assert!(app.post(&unnamed, &other, json!({"status": "cancelled"})).await.is_problem(404, "/problems/not-found"));
    // An order to an address goes out for delivery; it never waits at a pickup point.
    receive(app, &key, &product, &[("HOME", 20, 2)], 950).await;
    let home = json!({"lines": [{"gtin": product, "quantity": 1}], "service": "next_day",
                      "destination": {"latitude": 52.37, "longitude": 4.89, "time_zone": "Europe/Amsterdam"}});
    let home = app.post("/v1/orders", &key, home).await;
    assert_eq!(home.status, StatusCode::CREATED, "{:?}", home.body);
    let home_path = format!("/v1/orders/{}/events?tenant=fish", home.body["order_id"].as_str().unwrap());
    let home_pallet = with_check_digit("38712345100000901");
    walk(
        app,
        &home_path,
        &[
            json!({"status": "picking"}),
            json!({"status": "packed", "ssccs": [home_pallet]}),
            json!({"status": "shipped"}),
        ],
    )
    .await;
    let at_a_pickup_point = app.post(&home_path, &app.operator_key, json!({"status": "at_pickup_point"})).await;
    assert!(at_a_pickup_point.is_problem(409, "/problems/invalid-transition"), "{:?}", at_a_pickup_point.body);
    walk(app, &home_path, &[json!({"status": "out_for_delivery"})]).await;
    // Cancelled once packed, the pallet is unpacked in the events too: its units are back in stock.
    let second = app.post("/v1/orders", &key, order_body(&product, 1)).await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    let second_path = format!("/v1/orders/{}/events?tenant=fish", second.body["order_id"].as_str().unwrap());
    let unpacked_pallet = with_check_digit("38712345100000902");
    walk(
        app,
        &second_path,
        &[
            json!({"status": "picking"}),
            json!({"status": "packed", "ssccs": [unpacked_pallet]}),
            json!({"status": "cancelled"}),
        ],
    )
    .await;
    let pallet_filter = format!("MATCH_parentID=https://id.gs1.org/00/{unpacked_pallet}");
    let unpacking = events_of(app, &key, "unpacking", &pallet_filter).await;
    assert_eq!(unpacking.len(), 1, "{unpacking:?}");
    assert_eq!(unpacking[0]["action"], "DELETE");
    assert_eq!(unpacking[0]["childQuantityList"][0]["quantity"], 1, "{unpacking:?}");
    // Its units take their lot's status where they are put back: the event does not say sellable.
    assert_eq!(unpacking[0].get("disposition"), None, "{unpacking:?}");
    let second_urn = format!("urn:keten:order:fish:{}", second.body["order_id"].as_str().unwrap());
    assert_eq!(
        unpacking[0]["bizTransactionList"],
        json!([{"type": "po", "bizTransaction": second_urn}]),
        "each order step names its order"
    );
    assert_eq!(balance(app, &key, &product, "HOME").await["available"], 1);
}

/// The SLA measures an order to a pickup point at its arrival there, before anyone collects it,
/// and a delivery that failed (back without arriving) as a miss, not as nothing.
pub async fn fulfilment_sla_measures_arrivals_and_failed_deliveries(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510001").await;
    receive(app, &key, &product, &[("SLA", 20, 10)], 700).await;
    let mut paths = Vec::new();
    let home = json!({"lines": [{"gtin": product, "quantity": 1}], "service": "next_day",
                      "destination": {"latitude": 52.37, "longitude": 4.89, "time_zone": "Europe/Amsterdam"}});
    for body in [order_body(&product, 1), home, order_body(&product, 1)] {
        let placed = app.post("/v1/orders", &key, body).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
        paths.push(format!("/v1/orders/{}/events?tenant=fish", placed.body["order_id"].as_str().unwrap()));
    }
    let packed = |pallet: &str| json!({"status": "packed", "ssccs": [with_check_digit(pallet)]});
    // The first waits at its pickup point; the second, to a home, comes back undelivered; the
    // third is still in time.
    let to_pickup = [json!({"status": "picking"}), packed("38712345100000801"), json!({"status": "shipped"})];
    walk(app, &paths[0], &to_pickup).await;
    walk(app, &paths[0], &[json!({"status": "at_pickup_point"})]).await;
    let failed = [
        json!({"status": "picking"}),
        packed("38712345100000802"),
        json!({"status": "shipped"}),
        json!({"status": "out_for_delivery"}),
        json!({"status": "returned"}),
    ];
    walk(app, &paths[1], &failed).await;
    let sla = app.get("/v1/sla", &key).await;
    assert_eq!(sla.status, StatusCode::OK, "{:?}", sla.body);
    let total = &sla.body["total"];
    let counts: Vec<i64> = [
        "orders",
        "cancelled",
        "delivered",
        "delivered_by_promise",
        "delivered_within_24h",
        "failed",
        "late_open",
        "open_past_24h",
    ]
    .iter()
    .map(|field| total[*field].as_i64().unwrap_or(-1))
    .collect();
    assert_eq!(counts, [3, 0, 1, 1, 1, 1, 0, 0], "{:?}", sla.body);
    // One kept, one missed; the order still in time counts neither way.
    assert_eq!((total["share_by_promise"].as_f64(), total["share_within_24h"].as_f64()), (Some(0.5), Some(0.5)));
    // An order cancelled in time counts neither way; one cancelled after its promise had
    // passed, and more than 24 hours after it was placed, is a miss on both counts.
    let mut cancelled = Vec::new();
    for _ in 0..2 {
        let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
        cancelled.push(placed.body["order_id"].as_str().unwrap().to_owned());
    }
    // The second was placed 30 hours ago, promised for an hour after.
    app.execute_sql(
        &["UPDATE orders SET placed_unix_ms = placed_unix_ms - 108000000, promised_by_unix_ms = placed_unix_ms - 104400000 \
           WHERE order_id = $1"],
        &cancelled[1],
    )
    .await;
    for order_id in &cancelled {
        let path = format!("/v1/orders/{order_id}/events");
        assert_eq!(app.post(&path, &key, json!({"status": "cancelled"})).await.status, StatusCode::OK);
    }
    let sla = app.get("/v1/sla", &key).await;
    let total = &sla.body["total"];
    let counts: Vec<i64> = ["orders", "cancelled", "cancelled_late", "cancelled_past_24h"]
        .iter()
        .map(|field| total[*field].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(counts, [5, 2, 1, 1], "{:?}", sla.body);
    let third = 1.0 / 3.0;
    let shares = [total["share_by_promise"].as_f64().unwrap(), total["share_within_24h"].as_f64().unwrap()];
    assert!(shares.iter().all(|share| (share - third).abs() < 0.001), "{:?}", sla.body);

    // Steps happen in order: one dated well before the order's last step (a delivery dated before
    // its shipping) is refused, as it would misdate the arrival measured here. The third order,
    // placed two hours ago (as if), is picked an hour ago by its scanner's word, and packed now.
    let third_id = paths[2].trim_start_matches("/v1/orders/").trim_end_matches("/events?tenant=fish").to_owned();
    app.execute_sql(&["UPDATE orders SET placed_unix_ms = placed_unix_ms - 7200000 WHERE order_id = $1"], &third_id)
        .await;
    let now = jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond()).unwrap();
    let ago = |minutes: i64| (now - jiff::SignedDuration::from_mins(minutes)).to_string();
    let picked = app.post(&paths[2], &app.operator_key, json!({"status": "picking", "at": ago(60)})).await;
    assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);
    walk(app, &paths[2], &[packed("38712345100000803")]).await;
    for (status, minutes) in [("shipped", 90), ("shipped", 6)] {
        let refused = app.post(&paths[2], &app.operator_key, json!({"status": status, "at": ago(minutes)})).await;
        assert!(refused.is_problem(422, "/problems/validation-failed"), "{minutes}: {:?}", refused.body);
        assert_eq!(refused.pointers(), ["/at"], "{:?}", refused.body);
        let said = refused.body["errors"][0]["detail"].as_str().unwrap();
        assert!(said.contains("before the order's last step (") && said.contains('Z'), "{said}");
    }
    let order = app.get(&format!("/v1/orders/{third_id}"), &key).await;
    assert_eq!(order.body["status"], "packed", "nothing stored: {:?}", order.body);
    let pallet = format!("https://id.gs1.org/00/{}", with_check_digit("38712345100000803"));
    assert!(events_of(app, &key, "shipping", &format!("MATCH_epc={pallet}")).await.is_empty());
    // Within the clocks' difference allowed, it is the step's time.
    let shipped = app.post(&paths[2], &app.operator_key, json!({"status": "shipped", "at": ago(4)})).await;
    assert_eq!(shipped.status, StatusCode::OK, "{:?}", shipped.body);
    let arrived = app.post(&paths[2], &app.operator_key, json!({"status": "at_pickup_point", "at": ago(30)})).await;
    assert!(arrived.is_problem(422, "/problems/validation-failed"), "{:?}", arrived.body);
    walk(app, &paths[2], &[json!({"status": "at_pickup_point", "at": ago(3)})]).await;
    let order = app.get(&format!("/v1/orders/{third_id}"), &key).await;
    assert_eq!(order.body["arrived_at"], ago(3), "{:?}", order.body);
}

/// A product's change reaches the writer at once, though it had read the product before (for an
/// order): a pallet of a product made frozen is not received into a chilled room, and one of a
/// deleted product is not received at all; neither stores anything.
pub async fn fulfilment_a_changed_product_is_read_again(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "gone", "871234510003").await;
    let pallet = json!({"sscc": with_check_digit("38712345100000601"), "gtin": product, "lot": "G1",
                        "expiry": in_days(20), "quantity": 5});
    let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet]})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let early = app.post("/v1/orders", &key, order_body(&product, 1)).await;
    assert!(early.is_problem(409, "/problems/insufficient-stock"), "{:?}", early.body);
    let frozen = json!({"gtin": product, "name": "Salmon", "temperature_class": "frozen", "shelf_life_days": 30,
                        "min_remaining_shelf_life_days": 3});
    let changed = app.send("PUT", &format!("/v1/products/{product}"), Some(&key), Some(frozen), &[]).await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
    let into_chill = app.post(&path, &key, json!({"zone": "chill"})).await;
    assert!(into_chill.is_problem(422, "/problems/zone-unsuitable"), "{:?}", into_chill.body);
    let deleted = app.send("DELETE", &format!("/v1/products/{product}"), Some(&key), None, &[]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let received = app.post(&path, &key, json!({"zone": "chill"})).await;
    assert!(received.is_problem(422, "/problems/unknown-reference"), "{:?}", received.body);
    assert_eq!(app.get(&format!("/v1/stock?gtin={product}"), &key).await.body["items"], json!([]));

    // A product in stock keeps a class its units' zones keep: the DC's chill room (0–2 °C) does
    // not keep frozen goods, nor pharma's (2–8 °C); it keeps ambient goods (no range), and a
    // custom range around it.
    let (key, product) = merchant(app, "kept", "871234510004").await;
    receive(app, &key, &product, &[("K1", 20, 5)], 610).await;
    let product_path = format!("/v1/products/{product}");
    let body = |class: Value| {
        let mut body =
            json!({"gtin": product, "name": "Salmon", "shelf_life_days": 30, "min_remaining_shelf_life_days": 3});
        body.as_object_mut().unwrap().extend(class.as_object().unwrap().clone());
        body
    };
    for class in [json!({"temperature_class": "frozen"}), json!({"temperature_class": "pharma"})] {
        let changed = app.send("PUT", &product_path, Some(&key), Some(body(class.clone())), &[]).await;
        assert!(changed.is_problem(409, "/problems/in-use"), "{class}: {:?}", changed.body);
        let detail = changed.body["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("zone chill of location {}", dc())), "{detail}");
    }
    assert_eq!(app.get(&product_path, &key).await.body["temperature_class"], "chilled", "nothing stored");
    // The same class, with its own range as the product reads back.
    let read = app.get(&product_path, &key).await.body;
    let same = json!({"temperature_class": "chilled", "temperature_min_celsius": read["temperature_min_celsius"],
                      "temperature_max_celsius": read["temperature_max_celsius"]});
    assert_eq!((&same["temperature_min_celsius"], &same["temperature_max_celsius"]), (&json!(0.0), &json!(4.0)));
    let renamed = app.send("PUT", &product_path, Some(&key), Some(body(same)), &[]).await;
    assert_eq!(renamed.status, StatusCode::OK, "the same class: {:?}", renamed.body);
    let custom = json!({"temperature_class": "custom", "temperature_min_celsius": -1, "temperature_max_celsius": 3});
    for class in [json!({"temperature_class": "ambient"}), custom] {
        let kept = app.send("PUT", &product_path, Some(&key), Some(body(class.clone())), &[]).await;
        assert_eq!(kept.status, StatusCode::OK, "{class}: {:?}", kept.body);
    }
    assert_eq!(balance(app, &key, &product, "K1").await["on_hand"], 5);
}

pub async fn fulfilment_holds_expire_and_promises_answer(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510011").await;
    receive(app, &key, &product, &[("L1", 20, 10)], 100).await;
    let promise = app.get(&format!("/v1/promise?gtin={product}&qty=10&to={}", pickup()), &key).await;
    assert_eq!(promise.status, StatusCode::OK, "{:?}", promise.body);
    let next_day =
        promise.body["services"].as_array().unwrap().iter().find(|service| service["service"] == "next_day").unwrap();
    assert_eq!(next_day["available"], true, "{:?}", promise.body);
    assert_eq!(next_day["ships_from"], json!([dc()]));
    // The operator asks for a merchant by naming it, and gets the merchant's answer.
    let for_fish = format!("/v1/promise?gtin={product}&qty=10&to={}&tenant=fish", pickup());
    let operator_asks = app.get(&for_fish, &app.operator_key).await;
    assert_eq!(operator_asks.status, StatusCode::OK, "{:?}", operator_asks.body);
    assert_eq!(operator_asks.body["services"], promise.body["services"]);
    let unnamed = app.get(&format!("/v1/promise?gtin={product}&qty=10&to={}", pickup()), &app.operator_key).await;
    assert!(unnamed.is_problem(400, "/problems/invalid-parameter"), "{:?}", unnamed.body);
    let no_zone = app.get(&format!("/v1/promise?gtin={product}&qty=1&to=52.37,4.89"), &key).await;
    assert!(no_zone.is_problem(400, "/problems/invalid-parameter"), "{:?}", no_zone.body);
    assert_eq!(no_zone.body["errors"][0]["pointer"], "?tz", "{:?}", no_zone.body);
    // `?tz` is checked as an order's `/destination/time_zone` is, with the same words.
    for zone in ["", "Mars/Olympus"] {
        let refused = app.get(&format!("/v1/promise?gtin={product}&qty=1&to=52.37,4.89&tz={zone}"), &key).await;
        assert!(refused.is_problem(400, "/problems/invalid-parameter"), "{zone}: {:?}", refused.body);
        let detail = refused.body["errors"][0]["detail"].as_str().unwrap_or_default().to_owned();
        assert!(detail.contains("IANA time zone such as"), "{zone}: {detail}");
    }
    for list in [
        "/v1/orders?limit=0".to_owned(),
        "/v1/orders?limit=501".to_owned(),
        format!("/v1/stock?gtin={product}&limit=0"),
        format!("/v1/stock/movements?gtin={product}&limit=501"),
    ] {
        let refused = app.get(&list, &key).await;
        assert!(refused.is_problem(400, "/problems/invalid-parameter"), "{list}: {:?}", refused.body);
    }
    let unknown = app.get(&format!("/v1/promise?gtin={}&qty=1&to={}", gtin("871234519999"), pickup()), &key).await;
    assert!(
        unknown.is_problem(400, "/problems/invalid-parameter") && unknown.pointers() == ["?gtin"],
        "{:?}",
        unknown.body
    );
    let zone_twice =
        app.get(&format!("/v1/promise?gtin={product}&qty=1&to={}&tz=Europe/Amsterdam", pickup()), &key).await;
    assert!(
        zone_twice.is_problem(400, "/problems/invalid-parameter") && zone_twice.pointers() == ["?tz"],
        "{:?}",
        zone_twice.body
    );
    let to_a_warehouse = app.get(&format!("/v1/promise?gtin={product}&qty=1&to={}", dc()), &key).await;
    assert!(to_a_warehouse.is_problem(400, "/problems/invalid-parameter"), "{:?}", to_a_warehouse.body);
    let too_many = app.get(&format!("/v1/promise?gtin={product}&qty=11&to=52.37,4.89&tz=Europe/Amsterdam"), &key).await;
    assert!(
        too_many.body["services"].as_array().unwrap().iter().all(|service| service["available"] == false),
        "{:?}",
        too_many.body
    );

    // A hold confirmed in time (the order moves on to picking) no longer expires.
    let mut confirmed = order_body(&product, 2);
    confirmed["hold_seconds"] = json!(1);
    let confirmed = app.post("/v1/orders", &key, confirmed).await;
    let confirmed_id = confirmed.body["order_id"].as_str().unwrap().to_owned();
    let picking = app
        .post(&format!("/v1/orders/{confirmed_id}/events?tenant=fish"), &app.operator_key, json!({"status": "picking"}))
        .await;
    assert_eq!(picking.status, StatusCode::OK, "{:?}", picking.body);
    assert!(picking.body["hold_expires_at"].is_null(), "{:?}", picking.body);
    let cancelled = app.post(&format!("/v1/orders/{confirmed_id}/events"), &key, json!({"status": "cancelled"})).await;
    assert_eq!(cancelled.body["reservation"], "voided");

    let mut body = order_body(&product, 10);
    body["hold_seconds"] = json!(1);
    let held = app.post("/v1/orders", &key, body).await;
    assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
    assert!(held.body["hold_expires_at"].is_string());
    assert_eq!(balance(app, &key, &product, "L1").await["available"], 0);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    // Past its timeout the hold reserves nothing, with no job having run.
    let lapsed = balance(app, &key, &product, "L1").await;
    assert_eq!((lapsed["reserved"].as_i64(), lapsed["available"].as_i64()), (Some(0), Some(10)), "{lapsed:?}");
    let promise = app.get(&format!("/v1/promise?gtin={product}&qty=10&to={}", pickup()), &key).await;
    let next_day =
        promise.body["services"].as_array().unwrap().iter().find(|service| service["service"] == "next_day").unwrap();
    assert_eq!(next_day["available"], true, "the lapsed hold's units are promised again: {:?}", promise.body);
    let order_id = held.body["order_id"].as_str().unwrap();
    let order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    assert_eq!(order.body["reservation"], "expired");
    let late = app
        .post(&format!("/v1/orders/{order_id}/events?tenant=fish"), &app.operator_key, json!({"status": "picking"}))
        .await;
    assert!(late.is_problem(409, "/problems/invalid-transition"), "{:?}", late.body);
    // The next stock write releases it for good and cancels the order.
    let placed = app.post("/v1/orders", &key, order_body(&product, 10)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    assert_eq!(order.body["status"], "cancelled");
    assert_eq!(order.body["events"][1]["detail"], "the hold expired");
}

/// On a quiet platform the server's worker expires a lapsed hold itself within seconds: the order
/// is cancelled without any other write.
pub async fn fulfilment_the_worker_expires_lapsed_holds(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510011").await;
    receive(app, &key, &product, &[("L1", 20, 10)], 100).await;
    let mut body = order_body(&product, 3);
    body["hold_seconds"] = json!(1);
    let quiet = app.post("/v1/orders", &key, body).await;
    assert_eq!(quiet.status, StatusCode::CREATED, "{:?}", quiet.body);
    let path = format!("/v1/orders/{}", quiet.body["order_id"].as_str().unwrap());
    let mut status = String::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let order = app.get(&path, &key).await;
        status = order.body["status"].as_str().unwrap().to_owned();
        if status == "cancelled" {
            assert_eq!(order.body["events"][1]["detail"], "the hold expired", "{:?}", order.body);
            break;
        }
    }
    assert_eq!(status, "cancelled", "the hold lapsed 4 s ago");
    assert_eq!(balance(app, &key, &product, "L1").await["reserved"], 0);
}

/// More holds lapse at once than a batch expires (`EXPIRIES_PER_BATCH_MAX`): an order that needs
/// the units of the ones left is not refused for them.
pub async fn fulfilment_more_lapsed_holds_than_a_batch_expires(app: &TestApp) {
    const HOLDS: i64 = store::fulfilment::EXPIRIES_PER_BATCH_MAX + 5;
    const HOLD_SECONDS: u64 = 6;
    network(app).await;
    let (key, product) = merchant(app, "flash", "871234510041").await;
    receive(app, &key, &product, &[("SALE", 20, HOLDS)], 320).await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for client in 0..32 {
        let (base, http, key, product) = (app.base.clone(), app.client.clone(), key.clone(), product.clone());
        tasks.push(tokio::spawn(async move {
            for _ in (client..HOLDS).step_by(32) {
                let mut body = order_body(&product, 1);
                body["hold_seconds"] = json!(HOLD_SECONDS);
                let placed = http.post(format!("{base}/v1/orders")).bearer_auth(&key).json(&body).send().await.unwrap();
                assert_eq!(placed.status(), StatusCode::CREATED);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Every hold lapsed while no write came, so the next batch finds them all due.
    assert!(started.elapsed().as_secs() < HOLD_SECONDS, "placing the holds took longer than they last");
    tokio::time::sleep(std::time::Duration::from_secs(HOLD_SECONDS) + std::time::Duration::from_millis(300)).await;
    let all = app.post("/v1/orders", &key, order_body(&product, HOLDS)).await;
    assert_eq!(all.status, StatusCode::CREATED, "{:?}", all.body);
    assert_eq!(balance(app, &key, &product, "SALE").await["reserved"], HOLDS);
}

/// An unconfirmed order allocated again after a recall keeps its hold's deadline: the new
/// reservation expires when the first would have.
pub async fn fulfilment_reallocation_keeps_the_hold(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510031").await;
    receive(app, &key, &product, &[("BAD", 10, 5), ("GOOD", 20, 5)], 300).await;
    let mut body = order_body(&product, 5);
    body["hold_seconds"] = json!(600);
    let held = app.post("/v1/orders", &key, body).await;
    assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
    assert_eq!(held.body["shipments"][0]["picks"][0]["lot"], "BAD");
    let deadline = held.body["hold_expires_at"].clone();
    assert!(deadline.is_string(), "{:?}", held.body);
    let recall =
        app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["BAD"], "reason": "Listeria found"})).await;
    assert_eq!(recall.body["affected_orders"][0]["outcome"], "reallocated", "{:?}", recall.body);
    let order = app.get(&format!("/v1/orders/{}", held.body["order_id"].as_str().unwrap()), &key).await;
    assert_eq!(order.body["shipments"][0]["picks"][0]["lot"], "GOOD", "{:?}", order.body);
    assert_eq!(order.body["hold_expires_at"], deadline, "{:?}", order.body);
    assert_eq!(balance(app, &key, &product, "GOOD").await["reserved"], 5);
    // A lot is recalled once: sent again, the recall is refused and names the one that stands;
    // nothing new is stored.
    let again = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["BAD"], "reason": "again"})).await;
    assert!(again.is_problem(409, "/problems/conflict"), "{:?}", again.body);
    assert_eq!(again.pointers(), ["/lots/0"], "{:?}", again.body);
    let first_id = recall.body["recall_id"].as_str().unwrap();
    assert!(again.body["errors"][0]["detail"].as_str().unwrap().contains(first_id), "{:?}", again.body);
    assert_eq!(app.get("/v1/recalls", &key).await.body["items"].as_array().map(Vec::len), Some(1));
    // Read back, the recall finds the order it no longer holds: reallocated, nothing shipped.
    let read = app.get(&format!("/v1/recalls/{first_id}"), &key).await;
    let affected = &read.body["affected_orders"][0];
    assert_eq!(
        (affected["outcome"].as_str(), affected["units_shipped"].as_i64(), affected["status"].as_str()),
        (Some("reallocated"), Some(0), Some("allocated")),
        "{:?}",
        read.body
    );
    assert!(read.body["inbound_pallets"][0]["received_at"].is_string(), "{:?}", read.body);
    // A lot past its expiry date reads as expired, with nothing available.
    receive(app, &key, &product, &[("OLD", -3, 2)], 310).await;
    let old = balance(app, &key, &product, "OLD").await;
    assert_eq!(
        (old["status"].as_str(), old["on_hand"].as_i64(), old["available"].as_i64()),
        (Some("expired"), Some(2), Some(0)),
        "{old:?}"
    );

    // A hold that ends while its order is flagged ended unconfirmed: the order is cancelled as
    // its lapsed hold would have been (before, it stayed accepted until its merchant cancelled
    // it), and the merchant's asking for it to be allocated again is refused.
    receive(app, &key, &product, &[("ONLY", 20, 2)], 320).await;
    let mut body = order_body(&product, 2);
    body["hold_seconds"] = json!(1);
    let held = app.post("/v1/orders", &key, body).await;
    assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
    let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["ONLY"], "reason": "mould"})).await;
    let recall_id = recall.body["recall_id"].as_str().unwrap();
    assert_eq!(recall.headers["location"], format!("/v1/recalls/{recall_id}").as_str());
    assert_eq!(recall.body["affected_orders"][0]["outcome"], "flagged", "{:?}", recall.body);
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    receive(app, &key, &product, &[("MORE", 20, 2)], 330).await;
    // The worker's sweep (each second) ends the flagged hold.
    let order_id = held.body["order_id"].as_str().unwrap();
    let mut order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    for _ in 0..50 {
        if order.body["status"] == "cancelled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    }
    assert_eq!(order.body["status"], "cancelled", "{:?}", order.body);
    let last = order.body["events"].as_array().unwrap().last().unwrap().clone();
    assert!(last["detail"].as_str().unwrap().contains("hold expired"), "{:?}", order.body);
    let path = format!("/v1/orders/{order_id}/events");
    let again = app.post(&path, &key, json!({"status": "allocated"})).await;
    assert!(again.is_problem(409, "/problems/invalid-transition"), "{:?}", again.body);
    assert_eq!(balance(app, &key, &product, "MORE").await["reserved"], 0, "nothing reserved");
}

/// A recall stored before recalls kept their lots and each order's outcome (migrations sqlite
/// 0017, postgres 0015) reads back with the lots it was the first to recall, and says `unknown`
/// where it cannot tell an order it released from one it never held.
pub async fn fulfilment_a_recall_from_before_outcomes_were_kept_reads_back(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510023").await;
    receive(app, &key, &product, &[("OLD", 10, 10), ("NEW", 20, 10)], 230).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 4)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(placed.body["shipments"][0]["picks"][0]["lot"], "OLD");
    let recall =
        app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["OLD"], "reason": "Seal broken"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let recall_id = recall.body["recall_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/recalls/{recall_id}");
    let kept = app.get(&path, &key).await;
    assert_eq!(kept.body["affected_orders"][0]["outcome"], "reallocated", "{:?}", kept.body);

    // As the version before left it: no lots on the recall, no outcome per order.
    app.execute_sql(
        &["UPDATE recalls SET lots = NULL WHERE recall_id = $1", "DELETE FROM recall_orders WHERE recall_id = $1"],
        &recall_id,
    )
    .await;
    let legacy = app.get(&path, &key).await;
    assert_eq!(legacy.status, StatusCode::OK, "{:?}", legacy.body);
    assert_eq!(legacy.body["lots"], json!(["OLD"]), "the lots it recalled first: {:?}", legacy.body);
    let affected = legacy.body["affected_orders"].as_array().unwrap();
    assert_eq!(affected.len(), 1, "{affected:?}");
    assert_eq!(affected[0]["order_id"], order_id.as_str());
    assert_eq!(affected[0]["outcome"], "unknown", "not told apart from an order it never held: {affected:?}");
    assert_eq!(affected[0]["status"], "allocated", "its status now: {affected:?}");
    for field in ["recall_id", "gtin", "reason", "recalled_at", "inbound_pallets", "pickup_points"] {
        assert_eq!(legacy.body[field], kept.body[field], "{field}: {:?}", legacy.body);
    }

    // The tenant's recalls, oldest first, a page at a time; the old one with its lots too.
    let twice = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["NEW", "NEW"], "reason": "x"})).await;
    assert!(twice.is_problem(422, "/problems/validation-failed"), "{:?}", twice.body);
    assert_eq!(twice.pointers(), ["/lots/1"], "{:?}", twice.body);
    let newer = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["NEW"], "reason": "Seal broken"})).await;
    assert_eq!(newer.status, StatusCode::CREATED, "{:?}", newer.body);
    let first_page = app.get("/v1/recalls?limit=1", &key).await;
    assert_eq!(first_page.status, StatusCode::OK, "{:?}", first_page.body);
    assert_eq!(first_page.body["items"].as_array().map(Vec::len), Some(1), "{:?}", first_page.body);
    let old = &first_page.body["items"][0];
    assert_eq!(old["recall_id"], recall_id.as_str());
    assert_eq!((&old["gtin"], old["reason"].as_str()), (&kept.body["gtin"], Some("Seal broken")));
    assert_eq!(old["lots"], json!(["OLD"]));
    assert_eq!(old["recalled_at"], kept.body["recalled_at"]);
    let cursor = first_page.body["next_cursor"].as_str().unwrap();
    let second_page = app.get(&format!("/v1/recalls?limit=1&cursor={cursor}"), &key).await;
    assert_eq!(second_page.body["items"][0]["recall_id"], newer.body["recall_id"], "{:?}", second_page.body);
    assert_eq!(second_page.body["items"][0]["lots"], json!(["NEW"]));
    assert_eq!(second_page.body["next_cursor"], Value::Null);
    let all = app.get("/v1/recalls?tenant=fish", &app.operator_key).await;
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(2), "an operator names the tenant: {:?}", all.body);
    let (other_key, _) = merchant(app, "other", "871234510024").await;
    assert_eq!(app.get("/v1/recalls", &other_key).await.body["items"], json!([]), "another tenant's are not listed");
    assert!(app.get("/v1/recalls?cursor=nonsense", &key).await.is_problem(400, "/problems/invalid-parameter"));
}

pub async fn fulfilment_recalls_reallocate_or_flag(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510021").await;
    receive(app, &key, &product, &[("BAD", 10, 10), ("GOOD", 20, 5)], 200).await;
    let first = app.post("/v1/orders", &key, order_body(&product, 5)).await;
    let second = app.post("/v1/orders", &key, order_body(&product, 5)).await;
    let (first_id, second_id) = (first.body["order_id"].as_str().unwrap(), second.body["order_id"].as_str().unwrap());
    let second_placed_promise = second.body["promised_by"].clone();
    assert!(second.body["first_promised_by"].is_null(), "{:?}", second.body);
    // Both took the BAD lot (FEFO); GOOD's 5 units can save one of them.
    assert_eq!(first.body["shipments"][0]["picks"][0]["lot"], "BAD");
    assert_eq!(second.body["shipments"][0]["picks"][0]["lot"], "BAD");
    // The first is packed already: its pallet stays its own after the recall.
    let first_path = format!("/v1/orders/{first_id}/events?tenant=fish");
    let pallet = with_check_digit("38712345100000201");
    walk(app, &first_path, &[json!({"status": "picking"}), json!({"status": "packed", "ssccs": [pallet]})]).await;
    // The second is being picked: its picked units go back to the shelf.
    walk(app, &format!("/v1/orders/{second_id}/events?tenant=fish"), &[json!({"status": "picking"})]).await;
    let status_path = format!("/recall-status/01/{product}/10/BAD");
    assert_eq!(app.send("GET", &status_path, None, None, &[]).await.body["recalled"], false);
    // A lot nothing names is a typo, not a recall for good: refused, and nothing is recalled.
    let typo = json!({"gtin": product, "lots": ["BAD", "BDA"], "reason": "Listeria found"});
    let typo = app.post("/v1/recalls", &key, typo).await;
    assert!(typo.is_problem(422, "/problems/unknown-reference") && typo.pointers() == ["/lots/1"], "{:?}", typo.body);
    // Another tenant's or no product: said of the GTIN, not of each lot.
    let foreign = json!({"gtin": gtin("871234519999"), "lots": ["BAD"], "reason": "Listeria found"});
    let foreign = app.post("/v1/recalls", &key, foreign).await;
    assert!(
        foreign.is_problem(422, "/problems/unknown-reference") && foreign.pointers() == ["/gtin"],
        "{:?}",
        foreign.body
    );
    assert_eq!(app.send("GET", &status_path, None, None, &[]).await.body["recalled"], false);
    assert_eq!(app.get("/v1/recalls", &key).await.body["items"], json!([]));

    // The writer recalls the lots only with the units on hand that the recall's events hold back:
    // one built on a read the stock has moved past since (here, a unit fewer at the DC) is
    // refused for the server to build again, and recalls nothing.
    use orders::OrderStatus;
    use store::fulfilment::{FulfilmentMutation, RECALL_CHANGED, StockKey};
    let at_dc = StockKey { gtin: product.clone(), location: dc(), zone: "chill".into(), lot: "BAD".into() };
    let parsed = gs1::Gtin::parse(&product).unwrap();
    let fish = network::TenantId::parse("fish").unwrap();
    // A recall of BAD built on a read that put these orders back, held these units, held these lots.
    let stale = |put_back: &[(&str, &str, OrderStatus)], held, hold| FulfilmentMutation::Recall {
        recall_id: "rcl_stale".into(),
        gtin: parsed.clone(),
        lots: vec!["BAD".into()],
        reason: "Listeria found".into(),
        public_notice: None,
        put_back: put_back.iter().map(|(order, held, status)| (order.to_string(), held.to_string(), *status)).collect(),
        held,
        hold,
    };
    let refused = |change| async {
        let written = app.store.tenant(&fish).write(store::Mutation::Fulfilment(change), None).await;
        assert!(
            matches!(&written, Err(store::WriteError::Refused { detail, .. }) if detail == RECALL_CHANGED),
            "{written:?}"
        );
    };
    let both = [(first_id, first_id, OrderStatus::Packed), (second_id, second_id, OrderStatus::Picking)];
    refused(stale(&both, vec![(at_dc, 9)], Vec::new())).await;
    assert_eq!(app.send("GET", &status_path, None, None, &[]).await.body["recalled"], false);
    // So is one whose packed orders are others, found after it held a lot made from them: the
    // hold is not kept either.
    let held = app.store.tenant(&fish).lots_on_hand(&parsed, &["BAD".to_owned()]).await.unwrap();
    let other_reservation = [(first_id, "res_other", OrderStatus::Packed), both[1]];
    refused(stale(&other_reservation, held.clone(), vec![(parsed.clone(), "GOOD".into())])).await;
    let kept = app.count_sql("SELECT COUNT(*) FROM held_lots WHERE tenant_id = $1", "fish").await;
    assert_eq!(kept, 0, "a refused recall keeps no hold");
    // And one whose events would not put back the picking order's units (built before it
    // started picking).
    refused(stale(&both[..1], held.clone(), Vec::new())).await;
    // And one built when an order had another status (here the picking one read as packed): a
    // picking order packed meanwhile keeps its reservation, so the status is checked too.
    let read_as_packed = [both[0], (second_id, second_id, OrderStatus::Packed)];
    refused(stale(&read_as_packed, held, Vec::new())).await;
    let good = app.get(&format!("/v1/stock?gtin={product}&lot=GOOD"), &key).await;
    assert_eq!(good.body["items"][0]["status"], "available", "{:?}", good.body);
    // Packed, the first waits for the last mile.
    let queued = "SELECT COUNT(*) FROM dispatch_queue WHERE tenant_id = $1";
    assert_eq!(app.count_sql(queued, "fish").await, 1);

    let recall =
        app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["BAD"], "reason": "Listeria found"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    // Unpacked and allocated again, it waits for the last mile no longer.
    assert_eq!(app.count_sql(queued, "fish").await, 0);
    let outcomes: Vec<(&str, &str)> = recall.body["affected_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| (order["order_id"].as_str().unwrap(), order["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [(first_id, "reallocated"), (second_id, "flagged")]);
    // Both orders were bound for the pickup point, but neither shipped a unit of BAD there.
    assert_eq!(recall.body["pickup_points"], json!([]));
    assert_eq!(recall.body["inbound_pallets"].as_array().unwrap().len(), 1);
    assert_eq!(recall.body["inbound_pallets"][0]["location"], dc());
    // The lot's EPCIS history: where it entered the network, commissioned and received at the DC
    // (recorded by the receipt itself), then the first order's picking and packing there, the
    // second's picking, and the recall's own events: it unpacked that pallet, put the second's
    // picked units back and held the lot's units back.
    let history = recall.body["history"].as_array().unwrap();
    let steps: Vec<&str> = history.iter().map(|entry| entry["business_step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        ["commissioning", "receiving", "picking", "packing", "picking", "unpacking", "storing", "holding"],
        "{history:?}"
    );
    for entry in history {
        assert!(entry["place"].as_str().unwrap().contains(&format!("/414/{}", dc())), "{history:?}");
    }

    // Read back, the recall answers the same, its own unpacking included.
    let recall_path = format!("/v1/recalls/{}", recall.body["recall_id"].as_str().unwrap());
    let read = app.get(&recall_path, &key).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    for field in [
        "recall_id",
        "gtin",
        "lots",
        "reason",
        "recalled_at",
        "affected_orders",
        "inbound_pallets",
        "pickup_points",
        "history",
    ] {
        assert_eq!(read.body[field], recall.body[field], "{field}: {:?}", read.body);
    }
    assert_eq!(read.body["reason"], "Listeria found");
    assert!(app.get("/v1/recalls/rcl_none", &key).await.is_problem(404, "/problems/not-found"));
    let (other_key, _) = merchant(app, "other", "871234510022").await;
    assert!(app.get(&recall_path, &other_key).await.is_problem(404, "/problems/not-found"), "another tenant's");
    // The packed order's pallet is unpacked where it was packed, its units of BAD as recalled:
    // the trace no longer shows them inside a pallet that leaves with other units.
    let unpacked = app.get("/events?EQ_bizStep=unpacking", &key).await;
    let unpacked = &unpacked.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"];
    assert_eq!(unpacked.as_array().map(Vec::len), Some(1), "{unpacked:?}");
    let event = &unpacked[0];
    assert_eq!((event["type"].as_str(), event["action"].as_str()), (Some("AggregationEvent"), Some("DELETE")));
    assert_eq!(event["disposition"], "recalled", "{event:?}");
    assert!(event["parentID"].as_str().unwrap().ends_with(&pallet), "{event:?}");
    assert_eq!(event["bizTransactionList"][0]["bizTransaction"], format!("urn:keten:order:fish:{first_id}"));
    assert!(event["childQuantityList"][0]["epcClass"].as_str().unwrap().ends_with("/10/BAD"), "{event:?}");
    assert_eq!(event["childQuantityList"][0]["quantity"], 5, "{event:?}");
    // The picking order's units are put back where they were picked, as recalled, naming the
    // order.
    let stored = events_of(app, &key, "storing", "").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!((stored[0]["action"].as_str(), stored[0]["disposition"].as_str()), (Some("OBSERVE"), Some("recalled")));
    assert_eq!(stored[0]["bizTransactionList"][0]["bizTransaction"], format!("urn:keten:order:fish:{second_id}"));
    assert!(stored[0]["quantityList"][0]["epcClass"].as_str().unwrap().ends_with("/10/BAD"), "{stored:?}");
    assert_eq!(stored[0]["quantityList"][0]["quantity"], 5, "{stored:?}");
    // Every unit of the lot on hand, the unpacked ones included, is held back where it lies, in
    // the lot's trace: the recall says where it found the lot and how much (GOOD is not named).
    let held = events_of(app, &key, "holding", "EQ_disposition=recalled").await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["bizLocation"]["id"], format!("https://id.gs1.org/414/{}/254/chill", dc()), "{held:?}");
    assert_eq!(held[0]["quantityList"].as_array().map(Vec::len), Some(1), "{held:?}");
    assert!(held[0]["quantityList"][0]["epcClass"].as_str().unwrap().ends_with("/10/BAD"), "{held:?}");
    assert_eq!(held[0]["quantityList"][0]["quantity"], 10, "{held:?}");
    let bad = balance(app, &key, &product, "BAD").await;
    assert_eq!(
        (bad["status"].as_str(), bad["reserved"].as_i64(), bad["available"].as_i64()),
        (Some("recalled"), Some(0), Some(0))
    );
    // Recalled is final: the lot's status does not change by hand, and a late pallet of it is
    // received as recalled (the units are here, never sellable).
    let reopen = app
        .post(
            "/v1/stock/lot-status",
            &key,
            json!({"gtin": product, "lot": "BAD", "status": "available", "reason": "looks fine"}),
        )
        .await;
    assert!(reopen.is_problem(409, "/problems/lot-conflict"), "{:?}", reopen.body);
    // A receipt or transfer whose events were built before the recall (saying the units come in
    // or move as not recalled) is refused by the writer, for the server to build them again;
    // nothing moves.
    use store::fulfilment::RECALLED_MEANWHILE;
    let late = json!({"location": dc(), "pallets": [{"sscc": with_check_digit("38712345000000399"), "gtin": product,
                      "lot": "BAD", "expiry": in_days(10), "quantity": 1}]});
    let late = app.post("/v1/asns", &key, late).await;
    assert_eq!(late.status, StatusCode::CREATED, "{:?}", late.body);
    let before_recall = FulfilmentMutation::ReceiveAsn {
        asn_id: late.body["asn_id"].as_str().unwrap().to_owned(),
        receipt_id: "rcp_stale".into(),
        zone: network::ZoneName::parse("chill").unwrap(),
        ssccs: None,
        status: stock::LotStatus::Available,
        recalled: Some(Vec::new()),
    };
    let stale = app.store.tenant(&fish).write(store::Mutation::Fulfilment(before_recall), None).await;
    assert!(
        matches!(&stale, Err(store::WriteError::Refused { detail, .. }) if detail == RECALLED_MEANWHILE),
        "{stale:?}"
    );
    let moved_before_recall = FulfilmentMutation::Transfer {
        operation_id: "trf_stale".into(),
        gtin: gs1::Gtin::parse(&product).unwrap(),
        lot: "BAD".into(),
        from: (gs1::Gln::parse(&dc()).unwrap(), network::ZoneName::parse("chill").unwrap()),
        to: (gs1::Gln::parse(&pickup()).unwrap(), network::ZoneName::parse("chill").unwrap()),
        quantity: 1,
        reason: "rebalance".into(),
        recalled: Some(false),
    };
    let stale = app.store.tenant(&fish).write(store::Mutation::Fulfilment(moved_before_recall), None).await;
    assert!(
        matches!(&stale, Err(store::WriteError::Refused { detail, .. }) if detail == RECALLED_MEANWHILE),
        "{stale:?}"
    );
    assert_eq!(balance(app, &key, &product, "BAD").await["on_hand"], 10, "nothing moved");
    let received = app
        .post(&format!("/v1/asns/{}/receipts", late.body["asn_id"].as_str().unwrap()), &key, json!({"zone": "chill"}))
        .await;
    assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
    assert_eq!(received.body["lots"][0]["status"], "recalled", "{:?}", received.body);
    receive(app, &key, &product, &[("BAD", 10, 3)], 400).await; // 10 + 1 + 3 on hand
    let bad = balance(app, &key, &product, "BAD").await;
    assert_eq!(
        (bad["status"].as_str(), bad["on_hand"].as_i64(), bad["available"].as_i64()),
        (Some("recalled"), Some(14), Some(0))
    );
    // Its receiving event says so: the pallet came in recalled.
    let late_pallet = format!("MATCH_epc=https://id.gs1.org/00/{}", with_check_digit("38712345000000400"));
    let received = events_of(app, &key, "receiving", &late_pallet).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["disposition"], "recalled", "{received:?}");
    let first = app.get(&format!("/v1/orders/{first_id}"), &key).await;
    assert_eq!(first.body["shipments"][0]["picks"][0]["lot"], "GOOD");
    assert_eq!(first.body["status"], "allocated");
    // Picked again from the GOOD lot, it is packed on a new pallet: the SSCC of the one the
    // recall unpacked named that pallet, and is not taken again (GS1: not reused).
    walk(app, &first_path, &[json!({"status": "picking"})]).await;
    let reused = app.post(&first_path, &app.operator_key, json!({"status": "packed", "ssccs": [pallet]})).await;
    assert!(reused.is_problem(409, "/problems/conflict"), "{:?}", reused.body);
    assert_eq!(reused.pointers(), ["/ssccs/0"], "{:?}", reused.body);
    let new_pallet = with_check_digit("38712345100000202");
    walk(app, &first_path, &[json!({"status": "packed", "ssccs": [new_pallet]})]).await;
    // Each picking is in the journal of the lot it took, under the allocation it picked.
    let picks = |movements: Vec<Value>| -> Vec<String> {
        movements
            .iter()
            .filter(|movement| movement["kind"] == "pick")
            .map(|movement| movement["operation_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let bad_picks = picks(journal(app, &key, &format!("gtin={product}&lot=BAD"), 500).await);
    assert_eq!(bad_picks, [format!("{first_id}/picking"), format!("{second_id}/picking")]);
    let good_picks = picks(journal(app, &key, &format!("gtin={product}&lot=GOOD"), 500).await);
    assert!(
        good_picks.len() == 1
            && good_picks[0].starts_with(&format!("{first_id}/"))
            && !bad_picks.contains(&good_picks[0]),
        "{good_picks:?}"
    );
    let second = app.get(&format!("/v1/orders/{second_id}"), &key).await;
    assert_eq!(second.body["status"], "accepted");
    assert_eq!(second.body["flags"].as_array().unwrap().len(), 1, "{:?}", second.body);
    assert_eq!(second.body["shipments"], json!([]), "its voided allocation is not shown: {:?}", second.body);
    // The recall read later: each order keeps what the recall did to it, with its status now.
    let read = app.get(&recall_path, &key).await;
    let orders: Vec<(&str, &str, &str)> = read.body["affected_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| {
            (order["order_id"].as_str().unwrap(), order["outcome"].as_str().unwrap(), order["status"].as_str().unwrap())
        })
        .collect();
    assert_eq!(orders, [(first_id, "reallocated", "packed"), (second_id, "flagged", "accepted")]);
    // The recalled lot's history has one packing, the pallet the recall unpacked: the new pallet
    // holds GOOD only. (Its later receivings are the two late pallets received after the recall.)
    let steps: Vec<&str> =
        read.body["history"].as_array().unwrap().iter().map(|entry| entry["business_step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "commissioning",
            "receiving",
            "picking",
            "packing",
            "picking",
            "unpacking",
            "storing",
            "holding",
            "receiving",
            "receiving"
        ],
        "{:?}",
        read.body
    );
    // The flagged order is allocated again once stock arrives.
    assert!(
        app.post(&format!("/v1/orders/{second_id}/events"), &key, json!({"status": "allocated"}))
            .await
            .is_problem(409, "/problems/insufficient-stock")
    );
    receive(app, &key, &product, &[("NEW", 25, 5)], 300).await;
    let again = app.post(&format!("/v1/orders/{second_id}/events"), &key, json!({"status": "allocated"})).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["shipments"][0]["picks"][0]["lot"], "NEW");
    assert_eq!(again.body["reservation"], "pending");

    // A second recall takes that order's new lot too; it is allocated again a second time.
    let again_recall =
        app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["NEW"], "reason": "second"})).await;
    assert_eq!(again_recall.body["affected_orders"][0]["outcome"], "flagged", "{:?}", again_recall.body);
    // This time the only stock is at a DC farther off with a slower pick: the promise moves, and
    // the order keeps the one it was placed with (the SLA measures against it).
    let haarlem = gln("871234500104");
    let slow = json!({
        "gln": haarlem, "kind": "warehouse", "name": "Haarlem DC", "address": {"city": "Haarlem"}, "country": "NL",
        "latitude": 52.38, "longitude": 4.64, "time_zone": "Europe/Amsterdam",
        "zones": [{"name": "chill", "min_celsius": 0, "max_celsius": 2, "capacity_pallets": 40}],
        "cutoffs": {"next_day": EVERY_SERVICE}, "pick_pack_lead_minutes": 600
    });
    let created = app.post("/v1/locations", &app.operator_key, slow).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let asn = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": haarlem, "pallets": [{"sscc": with_check_digit("38712345000000310"), "gtin": product,
                   "lot": "NEWER", "expiry": in_days(26), "quantity": 5}]}),
        )
        .await;
    let asn_id = asn.body["asn_id"].as_str().unwrap();
    let received = app.post(&format!("/v1/asns/{asn_id}/receipts"), &key, json!({"zone": "chill"})).await;
    assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
    let third = app.post(&format!("/v1/orders/{second_id}/events"), &key, json!({"status": "allocated"})).await;
    assert_eq!(third.status, StatusCode::OK, "{:?}", third.body);
    assert_eq!(third.body["shipments"][0]["picks"][0]["lot"], "NEWER");
    assert_eq!(third.body["shipments"][0]["from"], haarlem);
    let instant = |value: &Value| value.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert_eq!(third.body["first_promised_by"], second_placed_promise, "{:?}", third.body);
    assert!(instant(&third.body["promised_by"]) > instant(&second_placed_promise), "{:?}", third.body);

    let status = app.send("GET", &status_path, None, None, &[]).await;
    assert_eq!(status.body["recalled"], true, "{:?}", status.body);
    assert_eq!(status.body["recall_id"], recall.body["recall_id"]);
    // The product stays while its ledger and its recall name it: deleting it would take the
    // recalled lots' public status with it.
    let product_path = format!("/v1/products/{product}");
    let deleted = app.send("DELETE", &product_path, Some(&key), None, &[]).await;
    assert!(deleted.is_problem(409, "/problems/in-use"), "{:?}", deleted.body);
    assert_eq!(app.get(&product_path, &key).await.status, StatusCode::OK, "not deleted");
    // The same lot through an individual item's link (AI 8006: the GTIN, then the piece), and
    // scanned: recalled too.
    let piece = app.send("GET", &format!("/recall-status/8006/{product:0>14}0102/10/BAD"), None, None, &[]).await;
    assert_eq!(
        (piece.body["recalled"].clone(), piece.body["recall_id"].clone()),
        (json!(true), recall.body["recall_id"].clone()),
        "{:?}",
        piece.body
    );
    for (data, recalled) in
        [(format!("(01){product:0>14}(10)BAD"), true), (format!("(01){product:0>14}(10)GOOD"), false)]
    {
        let scan = app.post("/v1/scan", &key, json!({"data": data})).await;
        assert_eq!(scan.body["recalled"], recalled, "{data}: {:?}", scan.body);
    }
    assert_eq!(
        app.send("GET", &format!("/recall-status/01/{product}/10/GOOD"), None, None, &[]).await.body["recalled"],
        false
    );
    // Named without a lot (a pack's EAN-13 carries none), the product is not said to be clear:
    // its recalled lots are listed, for the pack's lot to be checked against them.
    let bad = json!({"item": format!("https://id.gs1.org/01/{product:0>14}/10/BAD"), "gtin": format!("{product:0>14}"),
        "lot": "BAD", "recall_id": recall.body["recall_id"], "public_notice": null});
    let whole = app.send("GET", &format!("/recall-status/01/{product}"), None, None, &[]).await;
    let lots: Vec<&str> =
        whole.body["lots_recalled"].as_array().unwrap().iter().map(|lot| lot["lot"].as_str().unwrap()).collect();
    assert_eq!((&whole.body["recalled"], lots), (&Value::Null, vec!["BAD", "NEW"]), "{:?}", whole.body);
    assert_eq!((&whole.body["lots_recalled"][0], &whole.body["lots_recalled_more"]), (&bad, &json!(false)));
    let one_lot = app.send("GET", &status_path, None, None, &[]).await;
    assert_eq!(one_lot.body["lots_recalled"], json!([]), "a link with its lot says of that lot only");
    // (The product's GTIN is an EAN-13's 13 digits here.)
    let scanned = app.post("/v1/scan", &key, json!({"data": product})).await;
    assert_eq!(scanned.body["recalled"], Value::Null, "{:?}", scanned.body);
    assert_eq!(
        scanned.body["lots_recalled"],
        whole.body["lots_recalled"]
            .as_array()
            .unwrap()
            .iter()
            .map(|lot| {
                json!({"gtin": lot["gtin"], "lot": lot["lot"], "recall_id": lot["recall_id"], "public_notice": null})
            })
            .collect::<Value>(),
        "{:?}",
        scanned.body
    );
    let page = |path: String| async move {
        let answer = app.client.get(format!("{}{path}", app.base)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        answer.text().await.unwrap()
    };
    let product_page = page(format!("/01/{product}")).await;
    let banner = product_page.split("id=\"recall-lots\"").nth(1).unwrap_or_else(|| panic!("{product_page}"));
    assert!(banner.split("</div>").next().unwrap().contains("<code>BAD</code>"), "{product_page}");
    let lot_page = page(format!("/01/{product}/10/GOOD")).await;
    assert!(!lot_page.contains("id=\"recall-lots\""), "a lot's page speaks of its lot: {lot_page}");
}

/// Scrap and transfers take free units only, keep the lot's expiry and status, check the zone
/// they go to, and leave a movement each; a refused one changes nothing.
/// The operator's Utrecht cold depot (one zone, `cold`, 0–4 °C); with `ships` its cut-offs, so
/// allocation may ship from it. Answers its GLN.
pub async fn cold_depot(app: &TestApp, ships: bool) -> String {
    let depot = gln("871234500103");
    let mut cold = json!({
        "gln": depot, "kind": "cold_depot", "name": "Utrecht cold depot", "address": {"city": "Utrecht"},
        "country": "NL", "latitude": 52.09, "longitude": 5.12, "time_zone": "Europe/Amsterdam",
        "zones": [{"name": "cold", "min_celsius": 0, "max_celsius": 4, "capacity_pallets": 50}],
        "pick_pack_lead_minutes": 30
    });
    if ships {
        cold["cutoffs"] = json!({"standard": EVERY_SERVICE, "next_day": EVERY_SERVICE, "same_day": EVERY_SERVICE,
                                 "express_12h": EVERY_SERVICE});
    }
    let created = app.post("/v1/locations", &app.operator_key, cold).await;
    assert!(created.status.is_success(), "{:?}", created.body);
    depot
}

/// A lot's status reaches its later pallets: a lot on hold everywhere takes new pallets in on
/// hold, in its zone and in a zone new to it, and the receipt's answer says so. An ASN giving a
/// lot another expiry than its stock's is refused when announced, storing nothing. A count that
/// started from another on-hand than the one now is refused. A lot past its expiry date is not
/// made available.
pub async fn fulfilment_lot_status_reaches_new_pallets_and_counts_see_moves(app: &TestApp) {
    network(app).await;
    let depot = cold_depot(app, true).await;
    let (key, product) = merchant(app, "holder", "871234510072").await;
    receive(app, &key, &product, &[("HLD", 20, 10)], 72_000).await;
    let hold = json!({"gtin": product, "lot": "HLD", "status": "hold", "reason": "QA sample failed"});
    let held = app.post("/v1/stock/lot-status", &key, hold).await;
    assert_eq!(held.status, StatusCode::OK, "{:?}", held.body);

    let sscc = |number: u64| with_check_digit(&format!("38712345{number:09}"));
    let pallet = |number: u64, days: i64| json!({"sscc": sscc(number), "gtin": product, "lot": "HLD", "expiry": in_days(days), "quantity": 5});
    let receive_one = |location: String, zone: &'static str, number: u64| {
        let key = key.clone();
        let body = json!({"location": location, "pallets": [pallet(number, 20)]});
        async move {
            let asn = app.post("/v1/asns", &key, body).await;
            assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
            let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
            let received = app.post(&path, &key, json!({"zone": zone})).await;
            assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
            received.body
        }
    };
    // A later pallet into the held zone joins the hold (it was refused as a status conflict).
    let same_zone = receive_one(dc(), "chill", 72_100).await;
    assert_eq!(same_zone["status"], "available", "the status asked for: {same_zone:?}");
    assert_eq!(same_zone["ssccs"], json!([sscc(72_100)]));
    assert_eq!(
        same_zone["lots"],
        json!([{"gtin": format!("{product:0>14}"), "lot": "HLD", "expiry": in_days(20), "units": 5, "status": "hold"}]),
        "the status the units took"
    );
    // And a pallet into a zone new to the lot: every balance of it is on hold, so this one too.
    let new_zone = receive_one(depot.clone(), "cold", 72_101).await;
    assert_eq!(new_zone["lots"][0]["status"], "hold", "{new_zone:?}");
    let stock = app.get(&format!("/v1/stock?gtin={product}&lot=HLD"), &key).await;
    let rows: Vec<(String, String, i64, i64)> = stock.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["location"].as_str().unwrap().to_owned(),
                item["status"].as_str().unwrap().to_owned(),
                item["on_hand"].as_i64().unwrap(),
                item["available"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut expected = vec![(dc(), "hold".to_owned(), 15, 0), (depot.clone(), "hold".to_owned(), 5, 0)];
    expected.sort();
    let mut rows = rows;
    rows.sort();
    assert_eq!(rows, expected, "{:?}", stock.body);
    let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
    assert_eq!(placed.status, StatusCode::CONFLICT, "nothing of a held lot is sold: {:?}", placed.body);

    // Another expiry for the lot is refused when announced (it could never be received), and
    // nothing is stored: the SSCC is still free.
    let other_expiry = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet(72_102, 21)]})).await;
    assert_eq!(other_expiry.status, StatusCode::CONFLICT, "{:?}", other_expiry.body);
    assert_eq!(other_expiry.body["type"], "/problems/lot-conflict");
    assert_eq!(other_expiry.body["errors"][0]["pointer"], "/pallets/0/expiry", "{:?}", other_expiry.body);
    let same_expiry = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet(72_102, 20)]})).await;
    assert_eq!(same_expiry.status, StatusCode::CREATED, "{:?}", same_expiry.body);

    // A count that began at 10 on hand, posted after the later pallet came in: refused, nothing
    // written; counted from the on-hand now, it is applied.
    let count = |counted: i64, expected: i64| {
        json!({"location": dc(), "zone": "chill", "gtin": product, "lot": "HLD", "counted": counted,
               "expected_on_hand": expected, "reason": "shelf count"})
    };
    let on_hand = || async {
        let stock = app.get(&format!("/v1/stock?gtin={product}&lot=HLD&location={}", dc()), &key).await;
        stock.body["items"][0]["on_hand"].as_i64().unwrap()
    };
    let stale = app.post("/v1/stock/counts", &key, count(9, 10)).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{:?}", stale.body);
    assert_eq!(stale.body["type"], "/problems/count-stale");
    assert_eq!(stale.body["errors"][0]["pointer"], "/expected_on_hand", "{:?}", stale.body);
    assert_eq!(on_hand().await, 15, "a stale count writes nothing");
    let counted = app.post("/v1/stock/counts", &key, count(14, 15)).await;
    assert_eq!(counted.status, StatusCode::OK, "{:?}", counted.body);
    assert_eq!(on_hand().await, 14);
    let negative = app.post("/v1/stock/counts", &key, count(9, -1)).await;
    assert!(negative.is_problem(422, "/problems/validation-failed"), "{:?}", negative.body);
    assert_eq!(negative.pointers(), ["/expected_on_hand"], "{:?}", negative.body);
    assert_eq!(on_hand().await, 14, "a refused count writes nothing");

    // A lot that expires after its order was packed does not ship (its date moved back here, as
    // days passing would leave it).
    receive(app, &key, &product, &[("SHIP", 20, 5)], 72_300).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 2)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let path = format!("/v1/orders/{}/events?tenant=holder", placed.body["order_id"].as_str().unwrap());
    let packed = [json!({"status": "picking"}), json!({"status": "packed", "ssccs": [sscc(72_400)]})];
    walk(app, &path, &packed).await;
    app.execute_sql(&["UPDATE stock_balances SET expiry_date = '2000-01-01' WHERE lot = $1"], "SHIP").await;
    let shipped = app.post(&path, &app.operator_key, json!({"status": "shipped"})).await;
    assert!(shipped.is_problem(409, "/problems/lot-unavailable"), "{:?}", shipped.body);
    assert!(shipped.body["detail"].as_str().unwrap().contains("past its expiry date 2000-01-01"), "{:?}", shipped.body);

    // A split order whose second shipment's pick comes up empty ships without it: that pallet
    // is unpacked and named by no later event, and the order arrives with its first shipment.
    receive(app, &key, &product, &[("SPL", 20, 5)], 72_500).await;
    let at_depot = json!({"location": depot, "pallets": [{"sscc": sscc(72_501), "gtin": product, "lot": "SPL",
                          "expiry": in_days(20), "quantity": 5}]});
    let asn = app.post("/v1/asns", &key, at_depot).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
    assert_eq!(app.post(&path, &key, json!({"zone": "cold"})).await.status, StatusCode::CREATED);
    let placed = app.post("/v1/orders", &key, order_body(&product, 8)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let shipments = placed.body["shipments"].as_array().unwrap().clone();
    assert_eq!(shipments.len(), 2, "{:?}", placed.body);
    let first_units = shipments[0]["picks"][0]["quantity"].as_i64().unwrap();
    let second_units = shipments[1]["picks"][0]["quantity"].as_i64().unwrap();
    assert_eq!(first_units + second_units, 8);
    let path = format!("/v1/orders/{}/events?tenant=holder", placed.body["order_id"].as_str().unwrap());
    let pallets = [sscc(72_600), sscc(72_601)];
    walk(app, &path, &[json!({"status": "picking"}), json!({"status": "packed", "ssccs": pallets})]).await;
    let shipped = app.post(&path, &app.operator_key, json!({"status": "shipped", "shipped": [first_units, 0]})).await;
    assert_eq!(shipped.status, StatusCode::OK, "{:?}", shipped.body);
    assert_eq!(shipped.body["shipments"][1]["picks"][0]["shipped"], 0, "{:?}", shipped.body);
    walk(app, &path, &[json!({"status": "at_pickup_point"})]).await;
    for (pallet, expected) in [(&pallets[0], 1), (&pallets[1], 0)] {
        let matching = format!("MATCH_epc=https://id.gs1.org/00/{pallet}");
        for step in ["shipping", "arriving"] {
            assert_eq!(events_of(app, &key, step, &matching).await.len(), expected, "{step} of {pallet}");
        }
    }
    let emptied =
        events_of(app, &key, "unpacking", &format!("MATCH_parentID=https://id.gs1.org/00/{}", pallets[1])).await;
    assert_eq!(emptied.len(), 1, "{emptied:?}");
    assert_eq!(emptied[0]["childQuantityList"][0]["quantity"], second_units, "{emptied:?}");

    // A lot past its expiry date stays expired: the receipt says so, as the stock read does, and
    // an order refused for want of stock counts its units as expired.
    let old = json!({"location": dc(), "pallets": [{"sscc": sscc(72_200), "gtin": product, "lot": "OLD",
                     "expiry": in_days(-2), "quantity": 5}]});
    let asn = app.post("/v1/asns", &key, old).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
    let received = app.post(&path, &key, json!({"zone": "chill"})).await;
    assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
    assert_eq!(received.body["lots"][0]["status"], "expired", "{:?}", received.body);
    assert_eq!(balance(app, &key, &product, "OLD").await["status"], "expired");
    let short = app.post("/v1/orders", &key, order_body(&product, 1_000)).await;
    assert!(short.is_problem(409, "/problems/insufficient-stock"), "{:?}", short.body);
    let said = short.body["errors"][0]["detail"].as_str().unwrap();
    assert!(said.contains(" expired") && said.contains(" hold"), "{said}");
    let release = json!({"gtin": product, "lot": "OLD", "status": "available", "reason": "looks fine"});
    let refused = app.post("/v1/stock/lot-status", &key, release).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.body["type"], "/problems/lot-conflict");

    // Quarantine is an inspection of what came in: it does not reach another zone's pallets.
    for (location, zone, number, asked, took) in
        [(dc(), "chill", 72_110, "quarantine", "quarantine"), (depot.clone(), "cold", 72_111, "available", "available")]
    {
        let pallet = json!({"sscc": sscc(number), "gtin": product, "lot": "QC", "expiry": in_days(20), "quantity": 5});
        let asn = app.post("/v1/asns", &key, json!({"location": location, "pallets": [pallet]})).await;
        assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
        let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
        let received = app.post(&path, &key, json!({"zone": zone, "status": asked})).await;
        assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
        assert_eq!(received.body["lots"][0]["status"], took, "{:?}", received.body);
    }
}

pub async fn fulfilment_scrap_and_transfers(app: &TestApp) {
    network(app).await;
    let depot = cold_depot(app, false).await;
    let (key, product) = merchant(app, "scrapper", "871234510031").await;
    receive(app, &key, &product, &[("TRF", 20, 10)], 500).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 4)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let at = |location: &str, zone: &str| json!({"location": location, "zone": zone});
    let scrap = |quantity: i64| {
        json!({"location": dc(), "zone": "chill", "gtin": product, "lot": "TRF", "quantity": quantity,
               "reason": "crushed case"})
    };

    // Six units are free (four are reserved): scrapping seven is refused whole.
    let too_many = app.post("/v1/stock/scrap", &key, scrap(7)).await;
    assert!(too_many.is_problem(409, "/problems/insufficient-stock"), "{:?}", too_many.body);
    let bad = app.post("/v1/stock/scrap", &key, scrap(0)).await;
    assert!(bad.is_problem(422, "/problems/validation-failed") && bad.pointers() == ["/quantity"], "{:?}", bad.body);
    // Stock that is not there is named field by field, and nothing is written.
    let elsewhere = |field: &str, value: Value| {
        let mut body = scrap(1);
        body[field] = value;
        body
    };
    for (path, body, pointer) in [
        ("/v1/stock/scrap", elsewhere("zone", json!("ambient")), "/zone"),
        ("/v1/stock/scrap", elsewhere("location", json!(depot)), "/location"),
        ("/v1/stock/scrap", elsewhere("lot", json!("NONE")), "/lot"),
        (
            "/v1/stock/counts",
            json!({"location": dc(), "zone": "ambient", "gtin": product, "lot": "TRF", "counted": 3, "reason": "count"}),
            "/zone",
        ),
        ("/v1/stock/lot-status", json!({"gtin": product, "lot": "NONE", "status": "hold", "reason": "QA"}), "/lot"),
        (
            "/v1/stock/lot-status",
            json!({"gtin": product, "lot": "TRF", "location": depot, "status": "hold", "reason": "QA"}),
            "/location",
        ),
        (
            "/v1/stock/transfers",
            json!({"gtin": product, "lot": "TRF", "from": at(&dc(), "ambient"), "to": at(&depot, "cold"), "quantity": 1,
                   "reason": "consolidation"}),
            "/from/zone",
        ),
    ] {
        let refused = app.post(path, &key, body.clone()).await;
        assert!(refused.is_problem(422, "/problems/unknown-reference"), "{path} {body}: {:?}", refused.body);
        assert_eq!(refused.pointers(), [pointer], "{path} {body}: {:?}", refused.body);
    }
    assert_eq!(balance(app, &key, &product, "TRF").await["on_hand"], 10, "nothing written");
    assert_eq!(app.post("/v1/stock/scrap", &key, scrap(2)).await.status, StatusCode::OK);
    // The scrap is a physical step with its event; the refused ones recorded none.
    let destroyed = events_of(app, &key, "destroying", "EQ_disposition=destroyed").await;
    assert_eq!(destroyed.len(), 1, "{destroyed:?}");
    assert_eq!(destroyed[0]["action"], "DELETE", "{destroyed:?}");
    assert_eq!(destroyed[0]["quantityList"][0]["quantity"], 2, "{destroyed:?}");
    assert!(destroyed[0]["readPoint"]["id"].as_str().unwrap().contains(&dc()), "{destroyed:?}");
    let here = balance(app, &key, &product, "TRF").await;
    assert_eq!((here["on_hand"].as_i64(), here["reserved"].as_i64()), (Some(8), Some(4)));

    let transfer = |to: Value, quantity: i64| {
        json!({"gtin": product, "lot": "TRF", "from": at(&dc(), "chill"), "to": to, "quantity": quantity,
               "reason": "consolidation"})
    };
    // The ambient hall does not keep a chilled product; the same zone is no transfer; only free
    // units move; an unknown zone is named.
    let warm = app.post("/v1/stock/transfers", &key, transfer(at(&dc(), "ambient"), 1)).await;
    assert!(warm.is_problem(422, "/problems/zone-unsuitable"), "{:?}", warm.body);
    let same = app.post("/v1/stock/transfers", &key, transfer(at(&dc(), "chill"), 1)).await;
    assert!(same.is_problem(422, "/problems/validation-failed") && same.pointers() == ["/to"], "{:?}", same.body);
    let reserved = app.post("/v1/stock/transfers", &key, transfer(at(&depot, "cold"), 5)).await;
    assert!(reserved.is_problem(409, "/problems/insufficient-stock"), "{:?}", reserved.body);
    let nowhere = app.post("/v1/stock/transfers", &key, transfer(at(&depot, "frozen"), 1)).await;
    assert!(nowhere.is_problem(422, "/problems/unknown-reference"), "{:?}", nowhere.body);
    // A pickup point keeps no stock: nothing is transferred or announced there.
    let locker = app.post("/v1/stock/transfers", &key, transfer(at(&pickup(), "locker"), 1)).await;
    assert!(
        locker.is_problem(422, "/problems/validation-failed") && locker.pointers() == ["/to/location"],
        "{:?}",
        locker.body
    );
    let to_locker = json!({"location": pickup(), "pallets": [{"sscc": with_check_digit("38712345000000602"),
                           "gtin": product, "lot": "TRF", "expiry": in_days(20), "quantity": 1}]});
    let to_locker = app.post("/v1/asns", &key, to_locker).await;
    assert!(
        to_locker.is_problem(422, "/problems/validation-failed") && to_locker.pointers() == ["/location"],
        "{:?}",
        to_locker.body
    );
    // Neither stored anything: the locker's pallet is announced at the depot after all.
    let to_depot = json!({"location": depot, "pallets": [{"sscc": with_check_digit("38712345000000602"),
                          "gtin": product, "lot": "TRF", "expiry": in_days(20), "quantity": 1}]});
    assert_eq!(app.post("/v1/asns", &key, to_depot).await.status, StatusCode::CREATED);
    let here = balance(app, &key, &product, "TRF").await;
    assert_eq!((here["on_hand"].as_i64(), here["reserved"].as_i64()), (Some(8), Some(4)));

    // The same lot with another expiry cannot come in elsewhere either: a lot has one expiry.
    // Announced while the lot is in stock, it is refused at once.
    let pallet = |sscc: &str, lot: &str, days: i64| json!({"sscc": with_check_digit(sscc), "gtin": product, "lot": lot, "expiry": in_days(days), "quantity": 1});
    let asn = json!({"location": depot, "pallets": [pallet("38712345000000600", "TRF", 25)]});
    let other_date = app.post("/v1/asns", &key, asn).await;
    assert!(other_date.is_problem(409, "/problems/lot-conflict"), "{:?}", other_date.body);
    assert_eq!(other_date.body["errors"][0]["pointer"], "/pallets/0/expiry", "{:?}", other_date.body);
    let detail = other_date.body["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("expiry {}", in_days(20))) && !detail.contains("Some("), "{detail}");
    // Announced before the lot's first stock, its pallet gives the lot its date: another ASN
    // giving it another is refused at once (its pallet could never be received), and the first
    // is received.
    let asn = app
        .post("/v1/asns", &key, json!({"location": depot, "pallets": [pallet("38712345000000690", "TWO", 25)]}))
        .await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let other_date = app
        .post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet("38712345000000691", "TWO", 20)]}))
        .await;
    assert!(other_date.is_problem(409, "/problems/lot-conflict"), "{:?}", other_date.body);
    let detail = other_date.body["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("is announced with expiry {}", in_days(25))), "{detail}");
    let asn_id = asn.body["asn_id"].as_str().unwrap();
    let received = app.post(&format!("/v1/asns/{asn_id}/receipts"), &key, json!({"zone": "cold"})).await;
    assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);

    let moved = app.post("/v1/stock/transfers", &key, transfer(at(&depot, "cold"), 3)).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    let stock = app.get(&format!("/v1/stock?gtin={product}&lot=TRF"), &key).await;
    let mut places: Vec<(String, i64, i64, String, String)> = stock.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["location"].as_str().unwrap().to_owned(),
                item["on_hand"].as_i64().unwrap(),
                item["reserved"].as_i64().unwrap(),
                item["status"].as_str().unwrap().to_owned(),
                item["expiry"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    places.sort();
    let expiry = in_days(20);
    assert_eq!(
        places,
        [
            (dc(), 5, 4, "available".to_owned(), expiry.clone()),
            (depot.clone(), 3, 0, "available".to_owned(), expiry.clone())
        ]
    );
    let movements = journal(app, &key, &format!("gtin={product}&lot=TRF"), 500).await;
    let kinds: Vec<(&str, i64)> = movements
        .iter()
        .map(|movement| (movement["kind"].as_str().unwrap(), movement["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(kinds, [("receipt", 10), ("reserve", 4), ("scrap", 2), ("transfer_out", 3), ("transfer_in", 3)]);
    // The move to the depot is in the lot's events: shipped from the DC, received at the depot.
    let class = format!("https://id.gs1.org/01/{product:0>14}/10/TRF");
    let shipped = events_of(app, &key, "shipping", &format!("MATCH_epcClass={class}")).await;
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    assert_eq!(shipped[0]["quantityList"], json!([{"epcClass": class, "quantity": 3}]));
    assert!(shipped[0]["destinationList"][0]["destination"].as_str().unwrap().ends_with(&format!("/414/{depot}")));
    let received = events_of(app, &key, "receiving", &format!("MATCH_epcClass={class}")).await;
    assert!(
        received.iter().any(|event| event["bizLocation"]["id"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/414/{depot}/254/cold"))
            && event["sourceList"][0]["source"].as_str().unwrap().ends_with(&format!("/414/{}", dc()))),
        "{received:?}"
    );

    // A lot is commissioned once, where it enters the network: a later receipt of it elsewhere
    // only receives.
    let asn = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": depot, "pallets": [{"sscc": with_check_digit("38712345000000601"), "gtin": product,
                   "lot": "TRF", "expiry": in_days(20), "quantity": 2}]}),
        )
        .await;
    let asn_id = asn.body["asn_id"].as_str().unwrap();
    let again = app.post(&format!("/v1/asns/{asn_id}/receipts"), &key, json!({"zone": "cold"})).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    let commissioned = events_of(app, &key, "commissioning", &format!("MATCH_epcClass={class}")).await;
    assert_eq!(commissioned.len(), 1, "{commissioned:?}");
    assert_eq!(commissioned[0]["action"], "ADD");
    assert_eq!(commissioned[0]["quantityList"], json!([{"epcClass": class, "quantity": 10}]));
    assert!(commissioned[0]["bizLocation"]["id"].as_str().unwrap().ends_with(&format!("/414/{}/254/chill", dc())));
    // Received at the DC, by the transfer at the depot, and this pallet at the depot.
    assert_eq!(events_of(app, &key, "receiving", &format!("MATCH_epcClass={class}")).await.len(), 3);
    // The consumer's page says where the lot entered the network, not that it was harvested there.
    let page = lot_page(app, &product, "TRF").await;
    assert!(page.contains("Entered the network") && !page.contains("Harvested"), "{page}");
}

/// Many concurrent orders on one hot SKU, of which `received` units are received: never more
/// reserved than received, every acknowledged order stored, retries with the same key reserve
/// once. Each client orders 1, 2 or 3 units at a time, and sends each order twice with one key:
/// the second after the first's answer, or both at once (`retry_at_once`).
pub async fn hot_sku_orders(
    apps: &[&TestApp],
    clients: usize,
    orders_per_client: usize,
    received: i64,
    retry_at_once: bool,
) {
    let app = apps[0];
    network(app).await;
    let (key, product) = merchant(app, "hot", "871234510031").await;
    let demand: i64 = (0..clients)
        .flat_map(|client| (0..orders_per_client).map(move |index| 1 + ((client + index) % 3) as i64))
        .sum();
    receive(app, &key, &product, &[("HOT", 20, received)], 400).await;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let target = apps[client % apps.len()];
        let (base, http, key, product) = (target.base.clone(), target.client.clone(), key.clone(), product.clone());
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for index in 0..orders_per_client {
                let quantity = 1 + ((client + index) % 3) as i64;
                let idempotency = format!("c{client}-o{index}");
                // Each order is sent twice with the same key (a retry): it must reserve once.
                let send = || {
                    http.post(format!("{base}/v1/orders"))
                        .bearer_auth(&key)
                        .header("idempotency-key", &idempotency)
                        .json(&order_body(&product, quantity))
                        .send()
                };
                let responses = if retry_at_once {
                    let (first, second) = tokio::join!(send(), send());
                    vec![first.unwrap(), second.unwrap()]
                } else {
                    vec![send().await.unwrap(), send().await.unwrap()]
                };
                let mut first_id = None;
                for response in responses {
                    let status = response.status();
                    let body: Value = response.json().await.unwrap();
                    match status {
                        StatusCode::CREATED => {
                            let id = body["order_id"].as_str().unwrap().to_owned();
                            if let Some(first) = &first_id {
                                assert_eq!(first, &id, "a retry answered another order");
                            } else {
                                first_id = Some(id);
                            }
                        }
                        StatusCode::CONFLICT => assert_eq!(body["type"], "/problems/insufficient-stock", "{body:?}"),
                        other => panic!("{other}: {body:?}"),
                    }
                }
                if let Some(id) = first_id {
                    acknowledged.push((id, quantity));
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    let reserved_by_orders: i64 = acknowledged.iter().map(|(_, quantity)| quantity).sum();
    let stock = balance(app, &key, &product, "HOT").await;
    assert!(reserved_by_orders <= received, "oversold: {reserved_by_orders} of {received}");
    assert_eq!(stock["reserved"].as_i64(), Some(reserved_by_orders), "{stock:?}");
    assert_eq!(stock["on_hand"].as_i64(), Some(received));
    if demand > received {
        // The demand exceeded the stock: what is left is less than the largest order line.
        assert!(stock["available"].as_i64().unwrap() < 3, "{stock:?}");
    } else {
        assert_eq!(reserved_by_orders, demand, "every order served");
    }
    // The balance is the sum of its journal (read in pages of 50): one reserve movement per
    // acknowledged line.
    let movements = journal(app, &key, &format!("gtin={product}&lot=HOT"), 50).await;
    assert!(movements.len() > 50, "more than one page: {}", movements.len());
    let (mut on_hand, mut reserved) = (0i64, 0i64);
    for movement in &movements {
        let units = movement["quantity"].as_i64().unwrap();
        match movement["kind"].as_str().unwrap() {
            "receipt" => on_hand += units,
            "reserve" => reserved += units,
            other => panic!("unexpected movement {other}"),
        }
    }
    assert_eq!((on_hand, reserved), (received, reserved_by_orders));
    // Busy, the writers applied orders while the batch before them committed (on PostgreSQL,
    // with two nodes, on balances the other node moves meanwhile): the checks above hold for them
    // too.
    let applied_ahead: u64 = apps.iter().map(|app| app.store.writer_stats().phases.applied_ahead).sum();
    assert!(applied_ahead > 0, "no write applied ahead");
    if app.url.starts_with("sqlite:") {
        // Busy, the one writer left orders' reserves out of the balance's row (every read above
        // added them); idle again, it writes them.
        use sqlx::Connection;
        let stats = app.store.writer_stats();
        assert!(stats.batches_leaving_balances_behind > 0, "{stats:?}");
        let mut conn = sqlx::SqliteConnection::connect(&app.url).await.unwrap();
        let mut stored = 0;
        for _ in 0..100 {
            (stored,) = sqlx::query_as("SELECT reserved FROM stock_balances WHERE lot = 'HOT'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            if stored == reserved_by_orders {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(stored, reserved_by_orders, "the row as written once the writer is idle");
    }
    // Every acknowledged order is stored, with its units.
    let mut stored = 0;
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/v1/orders?limit=500{cursor}"), &key).await;
        for order in page.body["items"].as_array().unwrap() {
            let quantity = order["lines"][0]["quantity"].as_i64().unwrap();
            assert!(acknowledged.iter().any(|(id, units)| order["order_id"] == id.as_str() && *units == quantity));
            stored += 1;
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(stored, acknowledged.len());
}

/// The events of a business step that match an EPCIS query parameter (`MATCH_…=…`).
/// Moves an order (`path`: its events, for the operator) through the steps, each answered 200.
async fn walk(app: &TestApp, path: &str, bodies: &[Value]) {
    for body in bodies {
        let moved = app.post(path, &app.operator_key, body.clone()).await;
        assert_eq!(moved.status, StatusCode::OK, "{body}: {:?}", moved.body);
    }
}

/// Picks, packs (onto `pallet`, an SSCC) and ships an order whole, through its events' `path`.
async fn ship_whole(app: &TestApp, path: &str, pallet: &str) {
    let steps =
        [json!({"status": "picking"}), json!({"status": "packed", "ssccs": [pallet]}), json!({"status": "shipped"})];
    walk(app, path, &steps).await;
}

/// The consumer's page of a lot, in HTML.
async fn lot_page(app: &TestApp, product: &str, lot: &str) -> String {
    let page = app
        .client
        .get(format!("{}/01/{product:0>14}/10/{lot}", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

async fn events_of(app: &TestApp, key: &str, step: &str, matching: &str) -> Vec<Value> {
    let found = app.get(&format!("/events?EQ_bizStep={step}&{matching}"), key).await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    found.body["epcisBody"]["queryResults"]["resultsBody"]["eventList"].as_array().unwrap().clone()
}

/// Sends the requests (path, key, body) at the same moment, spread over the nodes; answers each
/// one's status and body, in order.
pub async fn all_at_once(apps: &[&TestApp], requests: Vec<(String, String, Value)>) -> Vec<(StatusCode, Value)> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for (index, (path, key, body)) in requests.into_iter().enumerate() {
        let target = apps[index % apps.len()];
        let (url, http, start) = (format!("{}{path}", target.base), target.client.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let response = http.post(url).bearer_auth(key).json(&body).send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Steps that build on an identifier being new decide it in the write, not before it: of
/// several orders packed onto one fresh SSCC at the same moment one is packed and the others get
/// a conflict, and of several receipts of one new lot at the same moment one commissions it.
pub async fn steps_name_pallets_and_lots_once(apps: &[&TestApp]) {
    const RACERS: usize = 8;
    let app = apps[0];
    network(app).await;
    let (key, product) = merchant(app, "race", "871234510055").await;
    receive(app, &key, &product, &[("R", 20, 100)], 700).await;
    let operator = &app.operator_key;
    let (mut ids, mut paths) = (Vec::new(), Vec::new());
    for _ in 0..RACERS {
        let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
        let id = placed.body["order_id"].as_str().unwrap().to_owned();
        let path = format!("/v1/orders/{id}/events?tenant=race");
        assert_eq!(app.post(&path, operator, json!({"status": "picking"})).await.status, StatusCode::OK);
        ids.push(id);
        paths.push(path);
    }
    let sscc = with_check_digit("38712345200000001");
    let packings = paths
        .iter()
        .map(|path| (path.clone(), operator.clone(), json!({"status": "packed", "ssccs": [sscc]})))
        .collect();
    let answers = all_at_once(apps, packings).await;
    let packed = answers.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    assert_eq!(packed, 1, "one SSCC, one pallet: {answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != StatusCode::OK) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body:?}");
        assert_eq!(body["type"], "/problems/conflict", "{body:?}");
        assert_eq!(body["errors"][0]["pointer"], "/ssccs/0", "{body:?}");
    }
    let packings = events_of(app, &key, "packing", &format!("MATCH_parentID=https://id.gs1.org/00/{sscc}")).await;
    assert_eq!(packings.len(), 1, "{packings:?}");
    let mut statuses = Vec::new();
    for id in &ids {
        statuses.push(app.get(&format!("/v1/orders/{id}"), &key).await.body["status"].as_str().unwrap().to_owned());
    }
    statuses.sort();
    let mut expected = vec!["picking".to_owned(); RACERS - 1];
    expected.insert(0, "packed".to_owned());
    assert_eq!(statuses, expected);

    // Two orders picked from one lot at one site at one moment (a wave scanned at once) are two
    // picks: each step's event names its order, so neither is taken for the other's copy.
    let mut wave = Vec::new();
    for _ in 0..2 {
        let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
        wave.push(placed.body["order_id"].as_str().unwrap().to_owned());
    }
    // To the millisecond, as steps are timed.
    let at = jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond()).unwrap().to_string();
    for id in &wave {
        let path = format!("/v1/orders/{id}/events?tenant=race");
        let picked = app.post(&path, operator, json!({"status": "picking", "at": at})).await;
        assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);
    }
    let class = format!("https://id.gs1.org/01/{product:0>14}/10/R");
    let picked: Vec<Value> = events_of(app, &key, "picking", &format!("MATCH_epcClass={class}"))
        .await
        .into_iter()
        .filter(|event| event["eventTime"] == at.as_str())
        .collect();
    assert_eq!(picked.len(), 2, "{picked:?}");
    let mut named: Vec<&str> =
        picked.iter().map(|event| event["bizTransactionList"][0]["bizTransaction"].as_str().unwrap()).collect();
    named.sort_unstable();
    let mut expected: Vec<String> = wave.iter().map(|id| format!("urn:keten:order:race:{id}")).collect();
    expected.sort_unstable();
    assert_eq!(named, expected, "{picked:?}");
    // One of them cancelled: its picked unit is put back, and its lot's trace says so.
    let cancelled = app.post(&format!("/v1/orders/{}/events", wave[0]), &key, json!({"status": "cancelled"})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    let stored = events_of(app, &key, "storing", &format!("MATCH_epcClass={class}")).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["quantityList"], json!([{"epcClass": class, "quantity": 1}]), "{stored:?}");
    assert_eq!(stored[0]["bizTransactionList"][0]["bizTransaction"], format!("urn:keten:order:race:{}", wave[0]));
    assert_eq!(stored[0].get("disposition"), None, "{stored:?}");
    // It is the order's, not the lot's: the consumer's page of the lot does not show it.
    let page = lot_page(app, &product, "R").await;
    assert!(page.contains("Received") && !page.contains("Stored"), "{page}");

    // Receipts of one new lot at several ASNs at the same moment.
    let mut receipts = Vec::new();
    for index in 0..RACERS {
        let pallet = json!({"sscc": with_check_digit(&format!("38712345{:09}", 800 + index)), "gtin": product,
                            "lot": "NEW", "expiry": in_days(20), "quantity": 5});
        let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet]})).await;
        assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
        let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
        receipts.push((path, key.clone(), json!({"zone": "chill"})));
    }
    let answers = all_at_once(apps, receipts).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::CREATED), "{answers:?}");
    let class = format!("https://id.gs1.org/01/{product:0>14}/10/NEW");
    let commissioned = events_of(app, &key, "commissioning", &format!("MATCH_epcClass={class}")).await;
    assert_eq!(commissioned.len(), 1, "a lot enters the network once: {commissioned:?}");
    assert_eq!(commissioned[0]["quantityList"], json!([{"epcClass": class, "quantity": 5}]));
    assert_eq!(events_of(app, &key, "receiving", &format!("MATCH_epcClass={class}")).await.len(), RACERS);

    // A recall of a lot and receipts of it at the same moment: whichever commits first, every
    // balance of the lot ends recalled (a receipt creating one waits for the recall, or the
    // recall for it).
    let mut requests = Vec::new();
    for index in 0..RACERS {
        let pallet = json!({"sscc": with_check_digit(&format!("38712345{:09}", 900 + index)), "gtin": product,
                            "lot": "RC", "expiry": in_days(20), "quantity": 5});
        let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet]})).await;
        assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
        let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
        requests.push((path, key.clone(), json!({"zone": "chill"})));
    }
    requests.insert(
        RACERS / 2,
        ("/v1/recalls".to_owned(), key.clone(), json!({"gtin": product, "lots": ["RC"], "reason": "race"})),
    );
    let answers = all_at_once(apps, requests).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::CREATED), "{answers:?}");
    let stock = app.get(&format!("/v1/stock?gtin={product}&lot=RC"), &key).await;
    let statuses: Vec<&str> =
        stock.body["items"].as_array().unwrap().iter().map(|item| item["status"].as_str().unwrap()).collect();
    assert!(!statuses.is_empty() && statuses.iter().all(|status| *status == "recalled"), "{:?}", stock.body);

    // A packing and a cancellation of one order at the same moment: whichever commits first, the
    // events fit the order's path (a step built for the order as read refuses once another step
    // moved it): a packed order that is cancelled is unpacked, and one cancelled first is never
    // packed.
    let mut requests = Vec::new();
    let mut raced = Vec::new();
    for index in 0..RACERS {
        let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
        let id = placed.body["order_id"].as_str().unwrap().to_owned();
        let path = format!("/v1/orders/{id}/events?tenant=race");
        assert_eq!(app.post(&path, operator, json!({"status": "picking"})).await.status, StatusCode::OK);
        let sscc = with_check_digit(&format!("38712345{:09}", 1_000 + index));
        requests.push((path.clone(), operator.clone(), json!({"status": "packed", "ssccs": [sscc]})));
        requests.push((path, operator.clone(), json!({"status": "cancelled"})));
        raced.push((id, sscc));
    }
    let answers = all_at_once(apps, requests).await;
    for (status, body) in &answers {
        assert!(*status == StatusCode::OK || body["type"] == "/problems/invalid-transition", "{body:?}");
    }
    for (id, sscc) in &raced {
        let order = app.get(&format!("/v1/orders/{id}"), &key).await;
        let path: Vec<&str> =
            order.body["events"].as_array().unwrap().iter().map(|event| event["status"].as_str().unwrap()).collect();
        let pallet = format!("MATCH_parentID=https://id.gs1.org/00/{sscc}");
        let packed = events_of(app, &key, "packing", &pallet).await.len();
        let unpacked = events_of(app, &key, "unpacking", &pallet).await.len();
        match path.as_slice() {
            ["allocated", "picking", "packed", "cancelled"] => assert_eq!((packed, unpacked), (1, 1), "{path:?}"),
            ["allocated", "picking", "packed"] => assert_eq!((packed, unpacked), (1, 0), "{path:?}"),
            ["allocated", "picking", "cancelled"] => assert_eq!((packed, unpacked), (0, 0), "{path:?}"),
            other => panic!("order {id} took the path {other:?}"),
        }
    }

    // ASNs announcing one SSCC at the same moment: one is stored (between two PostgreSQL nodes
    // the SSCC's lock decides), the others are refused.
    let sscc = with_check_digit("38712345000000960");
    let pallet = json!({"sscc": sscc, "gtin": product, "lot": "ONE", "expiry": in_days(20), "quantity": 5});
    let asns = (0..RACERS)
        .map(|_| ("/v1/asns".to_owned(), key.clone(), json!({"location": dc(), "pallets": [pallet.clone()]})))
        .collect();
    let answers = all_at_once(apps, asns).await;
    assert_eq!(answers.iter().filter(|(status, _)| *status == StatusCode::CREATED).count(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body:?}");
        assert_eq!(body["type"], "/problems/conflict", "{body:?}");
    }

    // A receipt of every pallet left and a receipt of one of them at the same moment: each
    // pallet is received once, and named by one receiving event if received.
    let ssccs: Vec<String> = (970..972).map(|number| with_check_digit(&format!("38712345{number:09}"))).collect();
    let pallets: Vec<Value> = ssccs
        .iter()
        .map(|sscc| json!({"sscc": sscc, "gtin": product, "lot": "RR", "expiry": in_days(20), "quantity": 5}))
        .collect();
    let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": pallets})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let asn_id = asn.body["asn_id"].as_str().unwrap();
    let path = format!("/v1/asns/{asn_id}/receipts");
    let receipts = vec![
        (path.clone(), key.clone(), json!({"zone": "chill"})),
        (path, key.clone(), json!({"zone": "chill", "ssccs": [ssccs[0]]})),
    ];
    let answers = all_at_once(apps, receipts).await;
    assert!(answers.iter().any(|(status, _)| *status == StatusCode::CREATED), "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == StatusCode::CREATED || body["type"] == "/problems/already-received", "{body:?}");
    }
    let read = app.get(&format!("/v1/asns/{asn_id}"), &key).await;
    for pallet in read.body["pallets"].as_array().unwrap() {
        let sscc = pallet["sscc"].as_str().unwrap();
        let named = events_of(app, &key, "receiving", &format!("MATCH_epc=https://id.gs1.org/00/{sscc}")).await;
        let received = usize::from(pallet["received_at"].is_string());
        assert_eq!(named.len(), received, "pallet {sscc}: {named:?} {:?}", read.body);
    }
}

/// Every item of a keyed list (`path` with its query), read in pages of the largest size (500).
async fn pages_of_500(app: &TestApp, key: &str, path: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    let separator = if path.contains('?') { '&' } else { '?' };
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}{separator}limit=500&cursor={cursor}"),
            None => format!("{path}{separator}limit=500"),
        };
        let page = app.get(&url, key).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {:?}", page.body);
        pages.push(page.body["items"].as_array().unwrap().clone());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
    }
}

/// The keyed lists (stock, orders, recalls) at their largest page, 500 items: a 501st item is
/// on a second page, reached by the first page's cursor. (They read one row past the page to
/// know that another follows; that row once fell to the store's own limit of 500.)
pub async fn fulfilment_lists_page_past_their_largest_page(app: &TestApp) {
    const ITEMS: usize = 501;
    network(app).await;
    let (key, product) = merchant(app, "pages", "871234510079").await;
    // One lot orders take first (the earliest expiry), and 501 lots of one unit.
    let lots: Vec<String> = (0..ITEMS).map(|index| format!("P{index:03}")).collect();
    let mut pallets: Vec<(&str, i64, i64)> = vec![("FIRST", 10, ITEMS as i64)];
    pallets.extend(lots.iter().map(|lot| (lot.as_str(), 20, 1)));
    receive(app, &key, &product, &pallets, 1_000).await;
    let stock = pages_of_500(app, &key, &format!("/v1/stock?gtin={product}")).await;
    assert_eq!(stock.iter().map(Vec::len).collect::<Vec<_>>(), [500, ITEMS + 1 - 500], "{ITEMS} lots and FIRST");

    for _ in 0..ITEMS {
        let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    }
    let orders = pages_of_500(app, &key, "/v1/orders?status=allocated").await;
    assert_eq!(orders.iter().map(Vec::len).collect::<Vec<_>>(), [500, ITEMS - 500]);
    let ids: std::collections::BTreeSet<&str> =
        orders.iter().flatten().map(|order| order["order_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), ITEMS, "no order twice");

    for lot in &lots {
        let recalled = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": [lot], "reason": "pages"})).await;
        assert_eq!(recalled.status, StatusCode::CREATED, "{:?}", recalled.body);
    }
    let recalls = pages_of_500(app, &key, "/v1/recalls").await;
    assert_eq!(recalls.iter().map(Vec::len).collect::<Vec<_>>(), [500, ITEMS - 500]);
}

/// Lists in bodies are refused on their length before their items are looked at, duplicates
/// and one lot's two expiries are found whatever the GTIN's spelling, and the list filters are
/// checked as the fields they name. Nothing is stored.
pub async fn fulfilment_lists_and_filters_are_checked_first(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "checks", "871234510086").await;
    let pallet = |serial: u64, gtin: &str, expiry: i64| {
        json!({"sscc": with_check_digit(&format!("3871234500{serial:07}")), "gtin": gtin, "lot": "ONE",
               "expiry": in_days(expiry), "quantity": 1})
    };
    // One pallet past the limit: one error, for the list (its items were not checked one by one).
    let pallets: Vec<Value> = (0..1_001).map(|serial| pallet(serial, &product, 20)).collect();
    let too_many = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": pallets})).await;
    assert!(
        too_many.is_problem(422, "/problems/validation-failed") && too_many.pointers() == ["/pallets"],
        "{:?}",
        too_many.body
    );
    // The GTIN as 13 digits and as 14 names one product: its lot has one expiry.
    let other_spelling = product.strip_prefix('0').map(str::to_owned).unwrap_or_else(|| format!("0{product}"));
    let two_dates = app
        .post(
            "/v1/asns",
            &key,
            json!({"location": dc(), "pallets": [pallet(1, &product, 20), pallet(2, &other_spelling, 21)]}),
        )
        .await;
    assert!(
        two_dates.is_problem(422, "/problems/validation-failed") && two_dates.pointers() == ["/pallets/1/expiry"],
        "{:?}",
        two_dates.body
    );
    // The refused ASNs stored nothing: their SSCCs are free for this one.
    let free: Vec<Value> = (0..4).map(|serial| pallet(serial, &product, 20)).collect();
    let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": free})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let receipts = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
    let none = app.post(&receipts, &key, json!({"zone": "chilled", "ssccs": []})).await;
    assert!(none.is_problem(422, "/problems/validation-failed") && none.pointers() == ["/ssccs"], "{:?}", none.body);
    let lots: Vec<String> = (0..101).map(|index| format!("L{index}")).collect();
    let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": lots, "reason": "too many"})).await;
    assert!(
        recall.is_problem(422, "/problems/validation-failed") && recall.pointers() == ["/lots"],
        "{:?}",
        recall.body
    );
    let step = "/v1/orders/ord_none/events";
    let ssccs: Vec<String> = (10..14).map(|serial| with_check_digit(&format!("3871234500{serial:07}"))).collect();
    let four = app.post(step, &key, json!({"status": "packed", "ssccs": ssccs})).await;
    assert!(four.is_problem(422, "/problems/validation-failed") && four.pointers() == ["/ssccs"], "{:?}", four.body);
    let nothing = app.post(step, &key, json!({"status": "shipped", "shipped": [0, 0]})).await;
    assert!(
        nothing.is_problem(422, "/problems/validation-failed") && nothing.pointers() == ["/shipped"],
        "{:?}",
        nothing.body
    );
    for (query, parameter) in [
        ("/v1/stock?location=hello".to_owned(), "?location"),
        ("/v1/stock?lot=a%20b".to_owned(), "?lot"),
        (format!("/v1/stock/movements?gtin={product}&lot={}", "L".repeat(21)), "?lot"),
    ] {
        let refused = app.get(&query, &key).await;
        assert!(
            refused.is_problem(400, "/problems/invalid-parameter") && refused.pointers() == [parameter],
            "{query}: {:?}",
            refused.body
        );
    }
    assert_eq!(app.get(&format!("/v1/stock?location={}", dc()), &key).await.body["items"], json!([]));
    // An operator naming a tenant that does not exist is told so, not shown an empty one.
    let operator = &app.operator_key;
    assert_eq!(app.get("/v1/stock?tenant=checks", operator).await.status, StatusCode::OK);
    let nobody = app.get("/v1/stock?tenant=nobody", operator).await;
    assert!(nobody.is_problem(404, "/problems/not-found"), "{:?}", nobody.body);
    assert!(nobody.body["detail"].as_str().unwrap().contains("tenant nobody"), "{:?}", nobody.body);

    assert_eq!(app.get(&format!("/v1/stock?gtin={product}"), &key).await.body["items"], json!([]), "nothing received");
    assert_eq!(app.get("/v1/recalls", &key).await.body["items"], json!([]), "no recall");
}

pub async fn fulfilment_steps_name_pallets_and_lots_once(app: &TestApp) {
    steps_name_pallets_and_lots_once(&[app]).await;
}

pub async fn fulfilment_hot_sku_never_oversells(app: &TestApp) {
    // Each order's two requests at once: on SQLite one may be applied ahead while the other
    // commits, and must then wait for it (`store::writer::Ahead`).
    hot_sku_orders(&[app], 64, 6, 400, true).await;
}

pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, String)>>>;

/// A webhook receiver on loopback that fails its first `fail` deliveries with 503.
/// The deliveries received so far, each checked against its `Keten-Signature`.
pub fn signed_deliveries(received: &Received, secret: &str) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(signature, body)| {
            // `t=<unix seconds>,sha256=<HMAC of "<t>." and the body>`, checked as a receiver
            // would, by hand: the time is recent and signed with the body.
            let signature = signature.as_deref().expect("signed");
            let (time, mac) = signature.strip_prefix("t=").and_then(|rest| rest.split_once(",sha256=")).unwrap();
            let time: i64 = time.parse().unwrap();
            assert!((jiff::Timestamp::now().as_second() - time).abs() < 300, "{signature}");
            let signed = format!("{time}.{body}");
            let expected = hex::encode(server::subscriptions::hmac_sha256(secret.as_bytes(), signed.as_bytes()));
            assert_eq!(mac, expected, "{signature}");
            serde_json::from_str(body).unwrap()
        })
        .collect()
}

pub async fn receiver(fail: u32) -> (String, Received) {
    receiver_slow_at_first(fail, std::time::Duration::ZERO).await
}

/// A merchant's webhook endpoint: it answers the first `fail` deliveries 503, takes `first_delay`
/// to answer the first of all, and keeps what it took (signature and body).
pub async fn receiver_slow_at_first(fail: u32, first_delay: std::time::Duration) -> (String, Received) {
    let (router, received) = receiver_router(fail, first_delay);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/orders", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

/// A merchant's webhook endpoint over TLS, its certificate for 127.0.0.1 signed by `ca`: its URL,
/// what it took, and how many TLS handshakes failed.
pub async fn tls_receiver(ca: &TestCa) -> (String, Received, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    let (router, received) = receiver_router(0, std::time::Duration::ZERO);
    let listener = TlsListener {
        tcp: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        acceptor: ca.acceptor(),
        failed_handshakes: Default::default(),
    };
    let failed = listener.failed_handshakes.clone();
    let url = format!("https://{}/orders", listener.tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received, failed)
}

/// A certificate authority of a test: its certificate (PEM) and what signs with it.
pub struct TestCa {
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        TestCa { pem: certificate.pem(), issuer: rcgen::Issuer::new(params, key) }
    }

    /// A server's TLS side for 127.0.0.1 and localhost, its certificate signed by this CA.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certificate.der().clone()], key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    }
}

/// TCP with TLS on top, for `axum::serve`: a connection whose handshake fails (the client refused
/// the certificate) is counted and dropped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    failed_handshakes: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else { continue };
            match self.acceptor.accept(stream).await {
                Ok(stream) => return (stream, address),
                Err(_) => {
                    self.failed_handshakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The routes of a merchant's webhook endpoint (see [`receiver_slow_at_first`]).
fn receiver_router(fail: u32, first_delay: std::time::Duration) -> (axum::Router, Received) {
    let received: Received = Default::default();
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(fail));
    let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/orders",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (sink, failures, first) = (sink.clone(), failures.clone(), first.clone());
            async move {
                if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(first_delay).await;
                }
                if failures.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    failures.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let signature = headers.get("keten-signature").and_then(|value| value.to_str().ok()).map(str::to_owned);
                sink.lock().unwrap().push((signature, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    (router, received)
}

/// Webhooks go to `https://` endpoints: delivered, signed, to a server whose certificate a
/// trusted root signed (here the operator's `--webhook-ca-file`); never to one whose certificate
/// nothing trusted signed (the handshake fails, the webhook keeps the reason and retries).
pub async fn fulfilment_webhooks_go_over_https_to_trusted_servers_only(app: &TestApp, trusted: &TestCa) {
    network(app).await;
    let (key, product) = merchant(app, "tls", "871234510117").await;
    receive(app, &key, &product, &[("W1", 20, 50)], 117).await;
    let (url, received, _) = tls_receiver(trusted).await;
    let stranger = TestCa::new("a CA nobody trusts");
    let (untrusted_url, untrusted_received, failed_handshakes) = tls_receiver(&stranger).await;
    let secret = "a-merchant-secret-of-32-characters";
    for (url, pointer) in [("https://", "/url"), ("ftp://example.com/hook", "/url")] {
        let refused = app.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await;
        assert!(refused.is_problem(422, "/problems/validation-failed"), "{url}: {:?}", refused.body);
        assert_eq!(refused.pointers(), [pointer], "{url}");
    }
    let hook = app.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let untrusted = app.post("/v1/webhooks", &key, json!({"url": untrusted_url, "secret": secret})).await;
    assert_eq!(untrusted.status, StatusCode::CREATED, "{:?}", untrusted.body);
    let listed = app.get("/v1/webhooks", &key).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(2), "refused webhooks are not stored: {:?}", listed.body);
    let order = app.post("/v1/orders", &key, order_body(&product, 2)).await;
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
    let order_id = order.body["order_id"].as_str().unwrap();
    let mut delivered = Vec::new();
    let mut untrusted_error = String::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        delivered = signed_deliveries(&received, secret);
        let listed = app.get("/v1/webhooks", &key).await;
        let untrusted_hook = listed.body.as_array().unwrap().iter().find(|hook| hook["url"] == untrusted_url.as_str());
        untrusted_error = untrusted_hook.and_then(|hook| hook["last_error"].as_str()).unwrap_or("").to_owned();
        if !delivered.is_empty() && !untrusted_error.is_empty() {
            break;
        }
    }
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["transitions"][0]["order_id"], order_id);
    assert_eq!(delivered[0]["transitions"][0]["status"], "allocated");
    // The client refused the stranger's certificate: nothing went over that connection.
    assert!(untrusted_received.lock().unwrap().is_empty());
    assert!(failed_handshakes.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(untrusted_error.contains("certificate"), "the reason is kept for the merchant: {untrusted_error:?}");
}

/// A server whose deliveries may take 1 s from their claim: an order webhook and an EPCIS
/// subscription whose endpoints never answer give up then (long before the client's 10 s
/// timeout) and record why; the endpoints see their connections closed.
pub async fn fulfilment_deliveries_give_up_at_their_deadline() {
    use std::sync::atomic::Ordering;
    let file = scratchdb::SqliteFile::new().unwrap();
    let app = super::spawn_app_configured(file.url(), Some(file), |config| {
        config.delivery_work_max = std::time::Duration::from_secs(1)
    })
    .await;
    network(&app).await;
    let (key, product) = merchant(&app, "patient", "871234510125").await;
    receive(&app, &key, &product, &[("D1", 20, 10)], 125_000).await;
    let (hook_url, _, hook_closed) = silent_endpoint("/orders").await;
    let (dest, _, dest_closed) = silent_endpoint("/events").await;
    let secret = "a-merchant-secret-of-32-characters";
    let hook = app.post("/v1/webhooks", &key, json!({"url": hook_url, "secret": secret})).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let query = json!({"name": "received", "query": {"EQ_bizStep": ["receiving"]}});
    assert_eq!(app.post("/queries", &key, query).await.status, StatusCode::CREATED);
    let subscribed = app
        .post(
            "/queries/received/subscriptions",
            &key,
            json!({"dest": dest, "stream": true, "initialRecordTime": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(subscribed.status, StatusCode::CREATED, "{:?}", subscribed.body);
    let started = std::time::Instant::now();
    let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let (mut hook_error, mut dest_error) = (String::new(), String::new());
    while started.elapsed() < std::time::Duration::from_secs(8) && (hook_error.is_empty() || dest_error.is_empty()) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        hook_error = app.get("/v1/webhooks", &key).await.body[0]["last_error"].as_str().unwrap_or("").to_owned();
        let listed = app.get("/queries/received/subscriptions", &key).await.body;
        dest_error = listed[0]["lastError"].as_str().unwrap_or("").to_owned();
    }
    let waited = started.elapsed();
    for error in [&hook_error, &dest_error] {
        assert!(error.contains("took longer than 1 s"), "after {waited:?}: {hook_error:?} {dest_error:?}");
    }
    assert!(waited >= std::time::Duration::from_secs(1), "{waited:?}");
    let closed = || hook_closed.load(Ordering::SeqCst) && dest_closed.load(Ordering::SeqCst);
    for _ in 0..50 {
        if closed() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(closed(), "the sends were given up");
}

/// An operator who delivers over `https://` only: `http://` webhooks and EPCIS subscriptions
/// are refused when created (and store nothing), `https://` ones accepted; one stored before the
/// switch gets nothing, and its merchant reads why.
pub async fn fulfilment_webhooks_over_https_only() {
    let file = scratchdb::SqliteFile::new().unwrap();
    let (url, received) = receiver(0).await;
    let secret = "a-merchant-secret-of-32-characters";
    let first = super::spawn_app_at(file.url(), None).await;
    network(&first).await;
    let (key, product) = merchant(&first, "plain", "871234510123").await;
    receive(&first, &key, &product, &[("P1", 20, 50)], 123_000).await;
    let hook = first.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let TestApp { _shutdown, server, .. } = first;
    drop(_shutdown);
    server.await.unwrap().unwrap();
    let app = super::spawn_app_configured(file.url(), None, |config| config.webhooks_https_only = true).await;
    let refused = app.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await;
    assert!(
        refused.is_problem(422, "/problems/validation-failed") && refused.pointers() == ["/url"],
        "{:?}",
        refused.body
    );
    assert!(refused.body.to_string().contains("https:// only"), "{:?}", refused.body);
    let listed = app.get("/v1/webhooks", &key).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1), "the refused one is not stored: {:?}", listed.body);
    let query = json!({"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}});
    assert_eq!(app.post("/queries", &key, query).await.status, StatusCode::CREATED);
    let subscribing = |dest: &str| json!({"dest": dest, "stream": true});
    let refused = app.post("/queries/shipments/subscriptions", &key, subscribing(&url)).await;
    assert!(
        refused.is_problem(422, "/problems/validation-failed") && refused.pointers() == ["/dest"],
        "{:?}",
        refused.body
    );
    let subscriptions = app.get("/queries/shipments/subscriptions", &key).await;
    assert_eq!(subscriptions.body.as_array().map(Vec::len), Some(0), "{:?}", subscriptions.body);
    let secure = app.post("/v1/webhooks", &key, json!({"url": "https://127.0.0.1:9/orders", "secret": secret})).await;
    assert_eq!(secure.status, StatusCode::CREATED, "{:?}", secure.body);
    let secure_id = secure.body["webhook_id"].as_str().unwrap();
    assert_eq!(
        app.send("DELETE", &format!("/v1/webhooks/{secure_id}"), Some(&key), None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    // The webhook stored before: an order's transition is not sent to it, and it says why.
    let order = app.post("/v1/orders", &key, order_body(&product, 2)).await;
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
    let mut last_error = String::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let listed = app.get("/v1/webhooks", &key).await;
        last_error = listed.body[0]["last_error"].as_str().unwrap_or("").to_owned();
        if !last_error.is_empty() {
            break;
        }
    }
    assert!(last_error.contains("https:// only"), "{last_error:?}");
    assert!(received.lock().unwrap().is_empty(), "nothing went over http");
}

pub async fn fulfilment_webhooks_deliver_transitions_signed(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510041").await;
    receive(app, &key, &product, &[("W1", 20, 50)], 500).await;
    let (url, received) = receiver(1).await;
    let secret = "a-merchant-secret-of-32-characters";
    assert!(
        app.post("/v1/webhooks", &key, json!({"url": "ftp://x", "secret": "short"}))
            .await
            .is_problem(422, "/problems/validation-failed")
    );
    let hook = app.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let listed = app.get("/v1/webhooks", &key).await;
    assert!(listed.body[0].get("secret").is_none(), "secrets are never listed");

    let order = app.post("/v1/orders", &key, order_body(&product, 3)).await;
    let order_id = order.body["order_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/orders/{order_id}/events");
    let picking = app.post(&format!("{path}?tenant=fish"), &app.operator_key, json!({"status": "picking"})).await;
    assert_eq!(picking.status, StatusCode::OK, "{:?}", picking.body);
    app.post(&path, &key, json!({"status": "cancelled"})).await;
    // The first delivery fails (503) and is retried; transitions arrive once, in order, signed.
    let mut statuses: Vec<String> = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        statuses = signed_deliveries(&received, secret)
            .iter()
            .flat_map(|delivery| {
                delivery["transitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|transition| {
                        assert_eq!(transition["order_id"], order_id.as_str());
                        transition["status"].as_str().unwrap().to_owned()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if statuses.len() >= 3 {
            break;
        }
    }
    // Placing the order is its first transition, then picking and cancelling.
    assert_eq!(statuses, ["allocated", "picking", "cancelled"]);
    let id = hook.body["webhook_id"].as_str().unwrap();
    assert_eq!(
        app.send("DELETE", &format!("/v1/webhooks/{id}"), Some(&key), None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(
        app.send("DELETE", &format!("/v1/webhooks/{id}"), Some(&key), None, &[])
            .await
            .is_problem(404, "/problems/not-found")
    );
}

/// A parcel on its way with units of a lot recalled since is flagged, arrives at its pickup
/// point, but is not handed to the consumer: it is taken back, its units restocked as recalled.
pub async fn fulfilment_a_recalled_parcel_is_not_handed_over(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "parcels", "871234510093").await;
    receive(app, &key, &product, &[("GONE", 20, 10), ("KEPT", 25, 10)], 93_000).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 3)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    assert_eq!(placed.body["shipments"][0]["picks"][0]["lot"], "GONE", "FEFO: {:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/orders/{order_id}/events?tenant=parcels");
    let pallet = with_check_digit("38712345000093100");
    ship_whole(app, &path, &pallet).await;
    // The merchant's own shop recorded two units of the lot on its shelf (captured, not ordered).
    let shop = gln("871234510094");
    let opened = app
        .post(
            "/v1/locations",
            &key,
            json!({"gln": shop, "kind": "store", "name": "Shop", "address": {"city": "Haarlem"}, "country": "NL",
                   "latitude": 52.38, "longitude": 4.64, "time_zone": "Europe/Amsterdam"}),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
    let shelf = json!({"type": "ObjectEvent", "eventTime": jiff::Timestamp::now().to_string(),
        "eventTimeZoneOffset": "+01:00", "action": "OBSERVE", "bizStep": "stocking",
        "bizLocation": {"id": format!("https://id.gs1.org/414/{shop}")},
        "quantityList": [{"epcClass": format!("https://id.gs1.org/01/{product:0>14}/10/GONE"), "quantity": 2}]});
    let job = app.capture_job(&key, super::epcis_interface::document(vec![shelf]), &[]).await;
    assert_eq!(job["success"], true, "{job}");
    let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["GONE"], "reason": "glass"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    assert_eq!(recall.body["affected_orders"][0]["outcome"], "shipped", "{:?}", recall.body);
    // Where the lot is within consumers' reach: where the order took it, and the shop its
    // events place it at.
    let mut expected = vec![pickup(), shop];
    expected.sort();
    assert_eq!(recall.body["pickup_points"], json!(expected), "{:?}", recall.body);
    let order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    let flags = order.body["flags"].as_array().unwrap();
    assert!(
        flags.len() == 1 && flags[0].as_str().unwrap().contains("3 units of the recalled lots"),
        "the parcel needs a person: {:?}",
        order.body
    );

    // No wave plans it any more: it goes back, not out.
    let departure = placed.body["shipments"][0]["last_mile_departure_at"].as_str().unwrap();
    let wave = app.post("/v1/operator/dispatch", &app.operator_key, json!({"depot": dc(), "wave": departure})).await;
    assert_eq!(wave.body["shipments"], 0, "{:?}", wave.body);
    // It arrives where it was going, but the consumer does not get it.
    walk(app, &path, &[json!({"status": "at_pickup_point"})]).await;
    // Read again, the recall's history has the parcel's arrival: an event naming the pallet, not
    // the lot, says what it was reached through. The shipping names the lot's units itself.
    let read = app.get(&format!("/v1/recalls/{}", recall.body["recall_id"].as_str().unwrap()), &key).await;
    let history = read.body["history"].as_array().unwrap();
    let through_of = |step: &str| -> Vec<Value> {
        history.iter().filter(|entry| entry["business_step"] == step).map(|entry| entry["through"].clone()).collect()
    };
    assert_eq!(through_of("arriving"), [json!(format!("https://id.gs1.org/00/{pallet}"))], "{history:?}");
    assert_eq!(through_of("shipping"), [Value::Null], "{history:?}");
    let handed = app.post(&path, &app.operator_key, json!({"status": "delivered"})).await;
    assert!(handed.is_problem(409, "/problems/lot-unavailable"), "{:?}", handed.body);
    assert!(handed.body["detail"].as_str().unwrap().contains("GONE"), "{:?}", handed.body);
    let sold = events_of(app, &key, "retail_selling", &format!("MATCH_epc=https://id.gs1.org/00/{pallet}")).await;
    assert!(sold.is_empty(), "{sold:?}");
    // A return whose events were built before the recall (saying no unit comes back recalled)
    // is refused by the writer, for the server to build them again; nothing moves.
    use store::fulfilment::{FulfilmentMutation, RECALLED_MEANWHILE, StepTime};
    let before_recall = FulfilmentMutation::OrderEvent {
        order_id: order_id.clone(),
        event_id: "returned".into(),
        to: orders::OrderStatus::Returned,
        ssccs: Vec::new(),
        units: Some(vec![3]),
        expected_reservation: None,
        expected_status: None,
        handed_over_unix_ms: None,
        restock_to: None,
        recalled: Some(Vec::new()),
        happened: StepTime::Recorded(store::now_unix_ms()),
    };
    let parcels = network::TenantId::parse("parcels").unwrap();
    let stale = app.store.tenant(&parcels).write(store::Mutation::Fulfilment(before_recall), None).await;
    assert!(
        matches!(&stale, Err(store::WriteError::Refused { detail, .. }) if detail == RECALLED_MEANWHILE),
        "{stale:?}"
    );
    assert_eq!(balance(app, &key, &product, "GONE").await["on_hand"], 7, "nothing moved");
    // Taken back: its units are in stock again, recalled.
    walk(app, &path, &[json!({"status": "returned", "restocked": [3]})]).await;
    let gone = balance(app, &key, &product, "GONE").await;
    assert_eq!((gone["status"].as_str(), gone["on_hand"].as_i64()), (Some("recalled"), Some(10)), "{gone:?}");
    assert_eq!(app.get(&format!("/v1/orders/{order_id}"), &key).await.body["status"], "returned");
    // Its events say so: the parcel came back (`returned`), its units as recalled, each naming
    // the order.
    let parcel = events_of(app, &key, "receiving", "EQ_disposition=returned").await;
    assert_eq!(parcel.len(), 1, "{parcel:?}");
    assert_eq!(parcel[0]["epcList"], json!([format!("https://id.gs1.org/00/{pallet}")]), "{parcel:?}");
    assert!(parcel[0].get("quantityList").is_none(), "{parcel:?}");
    let units_back = events_of(app, &key, "receiving", "EQ_disposition=recalled").await;
    assert_eq!(units_back.len(), 1, "{units_back:?}");
    let back = &units_back[0]["quantityList"];
    assert_eq!(back.as_array().map(Vec::len), Some(1), "{units_back:?}");
    assert!(back[0]["epcClass"].as_str().unwrap().ends_with(&format!("{product}/10/GONE")), "{units_back:?}");
    assert_eq!(back[0]["quantity"], 3, "{units_back:?}");
    assert_eq!(units_back[0]["bizLocation"], parcel[0]["bizLocation"], "{units_back:?}");
    for event in [&parcel[0], &units_back[0]] {
        assert!(event["bizTransactionList"].to_string().contains(&order_id), "{event:?}");
    }
    // Recalled units moved to another site say so in both of the move's events.
    let depot = cold_depot(app, false).await;
    let moved = json!({"gtin": product, "lot": "GONE", "from": {"location": dc(), "zone": "chill"},
                       "to": {"location": depot, "zone": "cold"}, "quantity": 2, "reason": "to the quarantine room"});
    let moved = app.post("/v1/stock/transfers", &key, moved).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    for step in ["shipping", "receiving"] {
        let found = events_of(app, &key, step, "EQ_disposition=recalled").await;
        // Receiving: the return's, then the move's.
        assert_eq!(found.len(), if step == "receiving" { 2 } else { 1 }, "{step}: {found:?}");
        assert_eq!(found.last().unwrap()["quantityList"][0]["quantity"], 2, "{step}: {found:?}");
    }

    // An address's free-text area stays the merchant's: reports count the order in the network's
    // region (the delivering site's city), so the operator's report shows no merchant's text.
    let home = json!({"latitude": 52.37, "longitude": 4.89, "time_zone": "Europe/Amsterdam",
                      "area": "Keizersgracht 123, Jan Jansen"});
    let placed = app
        .post(
            "/v1/orders",
            &key,
            json!({"lines": [{"gtin": product, "quantity": 1}], "destination": home, "service": "next_day"}),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    assert_eq!(placed.body["region"], "Amsterdam", "{:?}", placed.body);
    let report = app.get("/v1/operator/sla", &app.operator_key).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
    assert!(!report.body.to_string().contains("Keizersgracht"), "{:?}", report.body);
    let regions: Vec<&str> =
        report.body["rows"].as_array().unwrap().iter().map(|row| row["region"].as_str().unwrap()).collect();
    assert!(regions.contains(&"Amsterdam"), "{regions:?}");
    // An order stored before kept the area as its region: the migration moves it to the network's.
    let placed_id = placed.body["order_id"].as_str().unwrap();
    app.execute_sql(&["UPDATE orders SET region = 'Keizersgracht 123, Jan Jansen' WHERE order_id = $1"], placed_id)
        .await;
    let before = app.get("/v1/operator/sla", &app.operator_key).await;
    assert!(before.body.to_string().contains("Keizersgracht"), "as an older version left it: {:?}", before.body);
    app.run_script(
        include_str!("../../../store/migrations/sqlite/0022_order_regions.sql"),
        include_str!("../../../store/migrations/postgres/0019_order_regions.sql"),
    )
    .await;
    let after = app.get("/v1/operator/sla", &app.operator_key).await;
    assert!(!after.body.to_string().contains("Keizersgracht"), "{:?}", after.body);
    assert_eq!(app.get(&format!("/v1/orders/{placed_id}"), &key).await.body["region"], "Amsterdam");
}

/// Two recalls of a parcel's two lots at once, on one SQLite node or on two PostgreSQL nodes
/// (where the order's row is locked and read again before its flag is added): the order keeps
/// both flags, each naming its recall.
pub async fn fulfilment_recalls_at_once_keep_each_flag(apps: &[&TestApp]) {
    let app = apps[0];
    network(app).await;
    let (key, product) = merchant(app, "twolots", "871234510095").await;
    receive(app, &key, &product, &[("FIRST", 20, 2), ("SECOND", 25, 10)], 95_000).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 3)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let lots: Vec<&str> = placed.body["shipments"][0]["picks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pick| pick["lot"].as_str().unwrap())
        .collect();
    assert_eq!(lots, ["FIRST", "SECOND"], "FEFO, one parcel: {:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/orders/{order_id}/events?tenant=twolots");
    let pallet = with_check_digit("38712345000095100");
    ship_whole(app, &path, &pallet).await;
    let recalls = ["FIRST", "SECOND"]
        .map(|lot| ("/v1/recalls".to_owned(), key.clone(), json!({"gtin": product, "lots": [lot], "reason": "glass"})))
        .to_vec();
    let mut recall_ids = Vec::new();
    for (status, body) in all_at_once(apps, recalls).await {
        assert_eq!(status, StatusCode::CREATED, "{body:?}");
        recall_ids.push(body["recall_id"].as_str().unwrap().to_owned());
    }
    let order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    let flags = order.body["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 2, "{:?}", order.body);
    for recall_id in &recall_ids {
        assert!(
            flags.iter().any(|flag| flag.as_str().unwrap().starts_with(&format!("recall {recall_id}:"))),
            "{recall_id}: {:?}",
            order.body
        );
    }
}

/// Four sites (the DC and three cold depots) hold 2 units of salmon each. An order of 8 would
/// need all four: refused as too many shipments (the stock is there), and nothing is reserved.
/// An order of 6 ships from three of them.
pub async fn fulfilment_splits_take_at_most_three_sites(app: &TestApp) {
    network(app).await;
    let mut sites = vec![dc(), cold_depot(app, true).await];
    for (body, latitude, longitude) in [("871234500104", 52.38, 4.64), ("871234500105", 52.37, 5.22)] {
        let depot = json!({
            "gln": gln(body), "kind": "cold_depot", "name": format!("Depot {body}"), "address": {"city": "Noord-Holland"},
            "country": "NL", "latitude": latitude, "longitude": longitude, "time_zone": "Europe/Amsterdam",
            "zones": [{"name": "cold", "min_celsius": 0, "max_celsius": 4, "capacity_pallets": 50}],
            "cutoffs": {"next_day": EVERY_SERVICE}, "pick_pack_lead_minutes": 30
        });
        let created = app.post("/v1/locations", &app.operator_key, depot).await;
        assert!(created.status.is_success(), "{:?}", created.body);
        sites.push(gln(body));
    }
    let (key, product) = merchant(app, "spread", "871234510090").await;
    receive(app, &key, &product, &[("SPREAD", 20, 2)], 90_000).await;
    for (index, depot) in sites.iter().enumerate().skip(1) {
        let pallet = json!({"sscc": with_check_digit(&format!("38712345{:09}", 90_000 + index as u64)), "gtin": product,
                            "lot": "SPREAD", "expiry": in_days(20), "quantity": 2});
        let asn = app.post("/v1/asns", &key, json!({"location": depot, "pallets": [pallet]})).await;
        assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
        let path = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
        let received = app.post(&path, &key, json!({"zone": "cold"})).await;
        assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
    }
    let home = json!({"latitude": 52.37, "longitude": 4.90, "time_zone": "Europe/Amsterdam", "area": "Amsterdam"});
    let order = |quantity: i64| json!({"lines": [{"gtin": product, "quantity": quantity}], "destination": home, "service": "next_day"});
    let refused = app.post("/v1/orders", &key, order(8)).await;
    assert!(refused.is_problem(409, "/problems/insufficient-stock"), "{:?}", refused.body);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("no split into 3 shipments covers the order"), "{detail}");
    assert!(detail.contains("the sites together hold enough"), "{detail}");
    let stock = app.get(&format!("/v1/stock?gtin={product}&lot=SPREAD"), &key).await;
    let items = stock.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{:?}", stock.body);
    assert!(items.iter().all(|item| item["reserved"] == 0 && item["available"] == 2), "{:?}", stock.body);

    let placed = app.post("/v1/orders", &key, order(6)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let shipments = placed.body["shipments"].as_array().unwrap();
    assert_eq!(shipments.len(), 3, "{:?}", placed.body);
    let mut from: Vec<&str> = shipments.iter().map(|shipment| shipment["from"].as_str().unwrap()).collect();
    from.sort();
    from.dedup();
    assert_eq!(from.len(), 3, "three distinct sites: {from:?}");
    assert!(placed.body["allocation"]["rule"].as_str().unwrap().starts_with("3 shipments"), "{:?}", placed.body);
}

/// At the edge of the DC's last-mile reach (60 km due north), the promise answers what placing
/// the order would: 52.88955° N is 59.995 km away, but an order keeps 52.890° (60.045 km), beyond
/// the reach, so neither promises nor places it; 52.8894° is kept as 52.889° (59.93 km), within.
pub async fn fulfilment_promises_answer_what_placing_would_at_the_reach(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "edge", "871234510095").await;
    receive(app, &key, &product, &[("EDGE", 20, 10)], 95_000).await;
    for (latitude, within) in [("52.88955", false), ("52.8894", true)] {
        let to = format!("to={latitude},4.8&tz=Europe/Amsterdam");
        let promise = app.get(&format!("/v1/promise?gtin={product}&qty=1&{to}"), &key).await;
        assert_eq!(promise.status, StatusCode::OK, "{:?}", promise.body);
        let next_day = promise.body["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|service| service["service"] == "next_day")
            .unwrap();
        assert_eq!(next_day["available"], within, "{latitude}: {:?}", promise.body);
        let order = json!({"lines": [{"gtin": product, "quantity": 1}], "service": "next_day",
            "destination": {"latitude": latitude.parse::<f64>().unwrap(), "longitude": 4.8,
                            "time_zone": "Europe/Amsterdam", "area": "Noord-Holland"}});
        let placed = app.post("/v1/orders", &key, order).await;
        if within {
            assert_eq!(placed.status, StatusCode::CREATED, "{latitude}: {:?}", placed.body);
            // The same promise, give or take the minute that may pass between the two requests.
            let at = |value: &Value| value.as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_second();
            let apart = at(&placed.body["promised_by"]) - at(&next_day["promised_by"]);
            assert!((0..=60).contains(&apart), "{:?} against {next_day:?}", placed.body);
        } else {
            assert!(placed.is_problem(409, "/problems/insufficient-stock"), "{latitude}: {:?}", placed.body);
        }
    }
}

/// Waits until a session of the database waits for a lock (a write of the app held up by the
/// test's open transaction), or `done` turns true first; answers whether one waited.
async fn until_a_write_waits_for_a_lock(url: &str, done: &std::sync::atomic::AtomicBool) -> bool {
    use sqlx::Connection;
    let mut watcher = sqlx::PgConnection::connect(url).await.unwrap();
    for _ in 0..500 {
        if done.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no write waited for the open transaction within 10 s, and none finished");
}

/// Sends `request` while `other_node` (the test's open transaction, standing for another API
/// node's) holds rows the app's write needs, and commits it once a write waits for its locks (or
/// the request answered first). Answers the request's answer and whether a write waited.
async fn committed_while(
    url: &str,
    other_node: &mut sqlx::PgConnection,
    request: impl std::future::Future<Output = Answer>,
) -> (Answer, bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    let request = async {
        let answer = request.await;
        done.store(true, Ordering::SeqCst);
        answer
    };
    let commit = async {
        let waited = until_a_write_waits_for_a_lock(url, &done).await;
        sqlx::query("COMMIT").execute(&mut *other_node).await.unwrap();
        waited
    };
    tokio::join!(request, commit)
}

/// A location as read (`GET /v1/locations/{gln}`), as a PUT's body with its chill room's range
/// set to `range` (°C).
fn with_chill(location: &Value, range: (i64, i64)) -> Value {
    let mut location = location.clone();
    for zone in location["zones"].as_array_mut().unwrap() {
        if zone["name"] == "chill" {
            zone["min_celsius"] = json!(range.0);
            zone["max_celsius"] = json!(range.1);
        }
    }
    to_put(&location)
}

/// A location as read, but for what a PUT does not take.
fn to_put(location: &Value) -> Value {
    let fields = [
        "gln",
        "kind",
        "name",
        "address",
        "country",
        "latitude",
        "longitude",
        "time_zone",
        "zones",
        "cutoffs",
        "pick_pack_lead_minutes",
    ];
    Value::Object(fields.iter().map(|field| (field.to_string(), location[field].clone())).collect())
}

/// Units come back only into a zone still keeping their product: a return into the chill room the
/// operator warmed once it was empty is refused, and so is a count finding units there; once the
/// room is cold again, the return goes through.
pub async fn fulfilment_units_come_back_only_into_a_zone_that_keeps_them(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "comeback", "871234510119").await;
    receive(app, &key, &product, &[("ONLY", 20, 3)], 119_000).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 3)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let path = format!("/v1/orders/{}/events?tenant=comeback", placed.body["order_id"].as_str().unwrap());
    ship_whole(app, &path, &with_check_digit("38712345000119900")).await;
    walk(app, &path, &[json!({"status": "at_pickup_point"}), json!({"status": "delivered"})]).await;
    // The chill room holds nothing now: the operator may warm it.
    let dc_path = format!("/v1/locations/{}", dc());
    let location = app.get(&dc_path, &app.operator_key).await.body;
    let warmed = app.send("PUT", &dc_path, Some(&app.operator_key), Some(with_chill(&location, (8, 12))), &[]).await;
    assert_eq!(warmed.status, StatusCode::OK, "{:?}", warmed.body);
    let returned = app.post(&path, &app.operator_key, json!({"status": "returned", "restocked": [3]})).await;
    assert!(returned.is_problem(422, "/problems/zone-unsuitable"), "{:?}", returned.body);
    let found =
        json!({"location": dc(), "zone": "chill", "gtin": product, "lot": "ONLY", "counted": 1, "reason": "found"});
    let counted = app.post("/v1/stock/counts", &key, found).await;
    assert!(counted.is_problem(422, "/problems/zone-unsuitable"), "{:?}", counted.body);
    // Nor into a room taken out of the location.
    let mut without_chill = with_chill(&location, (0, 2));
    without_chill["zones"] = json!(
        without_chill["zones"].as_array().unwrap().iter().filter(|zone| zone["name"] != "chill").collect::<Vec<_>>()
    );
    let dropped = app.send("PUT", &dc_path, Some(&app.operator_key), Some(without_chill), &[]).await;
    assert_eq!(dropped.status, StatusCode::OK, "{:?}", dropped.body);
    let returned = app.post(&path, &app.operator_key, json!({"status": "returned", "restocked": [3]})).await;
    assert!(
        returned.is_problem(422, "/problems/unknown-reference") && returned.pointers() == ["/restocked"],
        "{:?}",
        returned.body
    );
    assert_eq!(balance(app, &key, &product, "ONLY").await["on_hand"], 0, "nothing came back");
    let order_path = path.replace("/events?tenant=comeback", "");
    assert_eq!(app.get(&order_path, &key).await.body["status"], "delivered", "the order did not move");
    // Cold again: the units come back.
    let cooled = app.send("PUT", &dc_path, Some(&app.operator_key), Some(with_chill(&location, (0, 2))), &[]).await;
    assert_eq!(cooled.status, StatusCode::OK, "{:?}", cooled.body);
    let returned = app.post(&path, &app.operator_key, json!({"status": "returned", "restocked": [3]})).await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(balance(app, &key, &product, "ONLY").await["on_hand"], 3);
}

/// PostgreSQL, several API nodes: a change of a location's zones and another node's receipt
/// into that zone, each not yet committed when the other runs, settle as if one came first. A
/// transaction the test holds open stands for the other node.
pub async fn location_changes_and_receipts_settle_on_two_nodes(app: &TestApp, url: &str) {
    use sqlx::Connection;
    network(app).await;
    let (key, product) = merchant(app, "zones", "871234510118").await;
    let stored = app.get(&format!("/v1/products/{product}"), &key).await.body["gtin"].as_str().unwrap().to_owned();
    let pallet = json!({"sscc": with_check_digit("38712345000118000"), "gtin": product, "lot": "A",
                        "expiry": in_days(20), "quantity": 4});
    // The ASN reads the network: the writer's snapshot has the chill room at 0–2 °C.
    let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet]})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let receipt = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
    // Another node warms the chill room to 8–12 °C (as its location change writes it, the row
    // locked first), not committed yet: the receipt waits, then sees the warm room and refuses.
    let mut other_node = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other_node).await.unwrap();
    for statement in [
        "SELECT 1 FROM locations WHERE tenant_id = 'network' AND gln = $1 FOR UPDATE",
        "UPDATE location_zones SET min_celsius = 8, max_celsius = 12 WHERE tenant_id = 'network' AND gln = $1 \
         AND zone_name = 'chill'",
    ] {
        sqlx::query(statement).bind(dc()).execute(&mut other_node).await.unwrap();
    }
    let (answer, waited) =
        committed_while(url, &mut other_node, app.post(&receipt, &key, json!({"zone": "chill"}))).await;
    assert!(waited, "the receipt did not wait for the location's change");
    assert!(answer.is_problem(422, "/problems/zone-unsuitable"), "{} {:?}", answer.status, answer.body);
    let stock = app.get(&format!("/v1/stock?gtin={product}"), &key).await;
    assert_eq!(stock.body["items"], json!([]), "nothing received: {:?}", stock.body);
    // Back to 0–2 °C, through the API. Then another node receives a lot into the chill room (its
    // location locked to share first), not committed yet: a change warming the room waits, then
    // sees the stock and is refused.
    let dc_path = format!("/v1/locations/{}", dc());
    let location = app.get(&dc_path, &app.operator_key).await.body;
    let cold = app.send("PUT", &dc_path, Some(&app.operator_key), Some(with_chill(&location, (0, 2))), &[]).await;
    assert_eq!(cold.status, StatusCode::OK, "{:?}", cold.body);
    sqlx::query("BEGIN").execute(&mut other_node).await.unwrap();
    sqlx::query("SELECT 1 FROM locations WHERE tenant_id = 'network' AND gln = $1 FOR SHARE")
        .bind(dc())
        .execute(&mut other_node)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO stock_balances (tenant_id, gtin, location_gln, zone, lot, expiry_date, status, on_hand, \
         reserved, updated_unix_ms) VALUES ('zones', $1, $2, 'chill', 'B', NULL, 'available', 5, 0, 0)",
    )
    .bind(&stored)
    .bind(dc())
    .execute(&mut other_node)
    .await
    .unwrap();
    let warm = with_chill(&location, (8, 12));
    let (answer, waited) =
        committed_while(url, &mut other_node, app.send("PUT", &dc_path, Some(&app.operator_key), Some(warm), &[]))
            .await;
    assert!(waited, "the change did not wait for the receipt");
    assert!(answer.is_problem(409, "/problems/in-use"), "{} {:?}", answer.status, answer.body);
    let zones = app.get(&dc_path, &app.operator_key).await.body["zones"].clone();
    let chill = zones.as_array().unwrap().iter().find(|zone| zone["name"] == "chill").unwrap().clone();
    assert_eq!((chill["min_celsius"].as_f64(), chill["max_celsius"].as_f64()), (Some(0.0), Some(2.0)), "{zones}");
}

/// PostgreSQL, several API nodes: a recall takes an order back while another node moves it on
/// (picking, not committed yet). The recall's status change waits, finds the order moved on,
/// and the recall is applied again on a fresh read: the order ends allocated from the other lot,
/// and each lot reserves exactly what the order holds.
pub async fn a_recall_and_an_order_moving_on_settle_on_two_nodes(app: &TestApp, url: &str) {
    use sqlx::Connection;
    network(app).await;
    let (key, product) = merchant(app, "moving", "871234510124").await;
    receive(app, &key, &product, &[("EARLY", 10, 5), ("LATE", 20, 5)], 124_000).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 2)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    assert_eq!(placed.body["shipments"][0]["picks"][0]["lot"], "EARLY", "FEFO: {:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let mut other_node = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other_node).await.unwrap();
    sqlx::query("UPDATE orders SET status = 'picking' WHERE tenant_id = 'moving' AND order_id = $1")
        .bind(&order_id)
        .execute(&mut other_node)
        .await
        .unwrap();
    let recalling = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["EARLY"], "reason": "glass"}));
    let (recall, waited) = committed_while(url, &mut other_node, recalling).await;
    assert!(waited, "the recall did not wait for the order's row");
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let affected = &recall.body["affected_orders"];
    assert_eq!(affected.as_array().map(Vec::len), Some(1), "{:?}", recall.body);
    assert_eq!(
        (affected[0]["order_id"].as_str(), affected[0]["outcome"].as_str()),
        (Some(order_id.as_str()), Some("reallocated"))
    );
    let order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    assert_eq!(order.body["status"], "allocated", "{:?}", order.body);
    assert_eq!(order.body["shipments"][0]["picks"][0]["lot"], "LATE", "{:?}", order.body);
    let stock = app.get(&format!("/v1/stock?gtin={product}"), &key).await;
    let reserved: Vec<(String, i64)> = stock.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|balance| (balance["lot"].as_str().unwrap().to_owned(), balance["reserved"].as_i64().unwrap()))
        .collect();
    assert_eq!(reserved, [("EARLY".to_owned(), 0), ("LATE".to_owned(), 2)], "{:?}", stock.body);
    // Another node cancels the order (its reservation voided, its units released), not committed
    // yet, while a recall of LATE takes it back: the recall waits, finds its reads outdated, and
    // applied again finds the order cancelled and nothing reserved.
    sqlx::query("BEGIN").execute(&mut other_node).await.unwrap();
    for statement in [
        "UPDATE reservations SET state = 'voided' WHERE tenant_id = 'moving' AND reservation_id = \
         (SELECT reservation_id FROM orders WHERE tenant_id = 'moving' AND order_id = $1)",
        "UPDATE stock_balances SET reserved = reserved - 2 WHERE tenant_id = 'moving' AND lot = 'LATE' AND $1 <> ''",
        "UPDATE orders SET status = 'cancelled' WHERE tenant_id = 'moving' AND order_id = $1",
    ] {
        sqlx::query(statement).bind(&order_id).execute(&mut other_node).await.unwrap();
    }
    let recalling = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["LATE"], "reason": "glass"}));
    let (recall, waited) = committed_while(url, &mut other_node, recalling).await;
    assert!(waited, "the recall did not wait for the reservation's row");
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let affected = &recall.body["affected_orders"];
    assert_eq!(
        (affected[0]["status"].as_str(), affected[0]["outcome"].as_str()),
        (Some("cancelled"), Some("released")),
        "{:?}",
        recall.body
    );
    let stock = app.get(&format!("/v1/stock?gtin={product}"), &key).await;
    let reserved: Vec<i64> =
        stock.body["items"].as_array().unwrap().iter().map(|balance| balance["reserved"].as_i64().unwrap()).collect();
    assert_eq!(reserved, [0, 0], "{:?}", stock.body);
}

/// PostgreSQL, several API nodes: deleting a product and another node's first stock of it (a
/// receipt's balance, a recall's lot), each not yet committed when the other runs, settle as if
/// one came first. A transaction the test holds open stands for the other node.
pub async fn product_deletion_and_first_stock_settle_on_two_nodes(app: &TestApp, url: &str) {
    use sqlx::Connection;
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510031").await;
    // The GTIN as stored (14 digits).
    let stored = app.get(&format!("/v1/products/{product}"), &key).await.body["gtin"].as_str().unwrap().to_owned();
    // Another node's receipt (its first balance of the product), and another's recall (its
    // first recalled lot), not committed yet: the deletion waits for each, then is refused.
    for (write, by) in [
        (
            "INSERT INTO stock_balances (tenant_id, gtin, location_gln, zone, lot, expiry_date, status, on_hand, \
             reserved, updated_unix_ms) VALUES ('fish', $1, $2, 'chill', 'A', NULL, 'available', 5, 0, 0)",
            "the stock ledger",
        ),
        (
            "INSERT INTO recalled_lots (tenant_id, gtin, lot, recall_id) VALUES ('fish', $1, 'A', 'rcl_other')",
            "a recall",
        ),
    ] {
        let mut other_node = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut other_node).await.unwrap();
        sqlx::query(write).bind(&stored).bind(dc()).execute(&mut other_node).await.unwrap();
        let path = format!("/v1/products/{product}");
        let (deleted, waited) =
            committed_while(url, &mut other_node, app.send("DELETE", &path, Some(&key), None, &[])).await;
        assert!(deleted.is_problem(409, "/problems/in-use"), "{by}: {} {:?}", deleted.status, deleted.body);
        assert!(deleted.body["detail"].as_str().unwrap().ends_with(by), "{:?}", deleted.body);
        assert!(waited, "the deletion answered before the other node committed");
        assert_eq!(app.get(&path, &key).await.status, StatusCode::OK);
        // The other node's row goes again (as a test's, not the app's, write).
        app.execute_sql(
            &[
                "DELETE FROM stock_balances WHERE tenant_id = 'fish' AND gtin = $1",
                "DELETE FROM recalled_lots WHERE tenant_id = 'fish' AND gtin = $1",
            ],
            &stored,
        )
        .await;
    }
    // The other way round: another node deletes the product and has not committed yet, while
    // this node receives a pallet of it. The receipt waits for the deletion, then is refused:
    // no balance names a deleted product.
    let pallet = json!({"sscc": with_check_digit("38712345000041000"), "gtin": product, "lot": "B",
                        "expiry": in_days(20), "quantity": 7});
    let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet]})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let asn_id = asn.body["asn_id"].as_str().unwrap().to_owned();
    let mut other_node = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other_node).await.unwrap();
    sqlx::query("DELETE FROM products WHERE tenant_id = 'fish' AND gtin = $1")
        .bind(&stored)
        .execute(&mut other_node)
        .await
        .unwrap();
    let path = format!("/v1/asns/{asn_id}/receipts");
    let (received, waited) =
        committed_while(url, &mut other_node, app.post(&path, &key, json!({"zone": "chill"}))).await;
    assert!(received.is_problem(422, "/problems/unknown-reference"), "{} {:?}", received.status, received.body);
    assert!(received.body["detail"].as_str().unwrap().contains(&product), "{:?}", received.body);
    assert!(waited, "the receipt answered before the other node committed");
    let balances = app.get(&format!("/v1/stock?gtin={product}"), &key).await;
    assert_eq!((balances.status, &balances.body["items"]), (StatusCode::OK, &json!([])), "{:?}", balances.body);
    let read = app.get(&format!("/v1/asns/{asn_id}"), &key).await;
    assert_eq!(read.body["received_pallets"], 0, "{:?}", read.body);
}

/// PostgreSQL, several API nodes: a receipt chosen twice as a deadlock's victim (another node
/// holds one of its lots' locks and then asks for one the receipt holds) is applied again each
/// time, and received once. A session the test holds stands for the other node; its locks are
/// session locks, so it can let one go and deadlock the receipt's retry as well.
pub async fn a_deadlocked_receipt_is_applied_again(app: &TestApp, url: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};

    use sqlx::Connection;
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510031").await;
    let stored = app.get(&format!("/v1/products/{product}"), &key).await.body["gtin"].as_str().unwrap().to_owned();
    let pallets: Vec<Value> = ["A", "B"]
        .iter()
        .enumerate()
        .map(|(index, lot)| {
            json!({"sscc": with_check_digit(&format!("38712345{:09}", 52_000 + index)), "gtin": product, "lot": lot,
                   "expiry": in_days(20), "quantity": 4})
        })
        .collect();
    let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": pallets})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let asn_id = asn.body["asn_id"].as_str().unwrap().to_owned();
    // The receipt's locks, as `store::fulfilment::lock_lots` names them; it takes A, then B.
    let lock = |lot: &str| format!("keten lot fish {stored} {lot}");
    let mut other_node = sqlx::PgConnection::connect(url).await.unwrap();
    // The other node is never the one PostgreSQL fails (it looks for a deadlock after a second).
    sqlx::query("SET deadlock_timeout = '60s'").execute(&mut other_node).await.unwrap();
    let deadlocks = || async {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let (count,): (i64,) =
            sqlx::query_as("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        count
    };
    let before = deadlocks().await;
    let take = "SELECT pg_advisory_lock(hashtextextended($1, 0))";
    let release = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";
    sqlx::query(take).bind(lock("B")).execute(&mut other_node).await.unwrap();
    let done = AtomicBool::new(false);
    let receive = async {
        let answer = app.post(&format!("/v1/asns/{asn_id}/receipts"), &key, json!({"zone": "chill"})).await;
        done.store(true, Ordering::SeqCst);
        answer
    };
    let other = async {
        // Twice: the receipt holds A and waits for B; the other node asks for A. PostgreSQL fails
        // the receipt's transaction, and the other node has A (and B).
        for round in 0..2 {
            assert!(until_a_write_waits_for_a_lock(url, &done).await, "round {round}: the receipt did not wait");
            sqlx::query(take).bind(lock("A")).execute(&mut other_node).await.unwrap();
            if round == 0 {
                // Its retry may take A again, and waits for B once more.
                sqlx::query(release).bind(lock("A")).execute(&mut other_node).await.unwrap();
            }
        }
        for lot in ["A", "B"] {
            sqlx::query(release).bind(lock(lot)).execute(&mut other_node).await.unwrap();
        }
    };
    let (received, ()) = tokio::join!(receive, other);
    assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
    assert_eq!(deadlocks().await - before, 2, "two deadlocks, each failing the receipt");
    let read = app.get(&format!("/v1/asns/{asn_id}"), &key).await;
    assert_eq!(read.body["received_pallets"], 2, "{:?}", read.body);
    let stock = app.get(&format!("/v1/stock?gtin={product}"), &key).await;
    let on_hand: Vec<(&str, i64)> = stock.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|balance| (balance["lot"].as_str().unwrap(), balance["on_hand"].as_i64().unwrap()))
        .collect();
    assert_eq!(on_hand, [("A", 4), ("B", 4)], "{:?}", stock.body);
}

/// A place that holds stock keeps it: the location is not deleted, and a change that would drop
/// a zone holding units, narrow its range past their goods' class or make the place one that
/// holds no stock is refused; nor is a place deleted while pallets announced to it wait. Once
/// its stock is gone, it may go.
pub async fn fulfilment_a_place_holding_stock_keeps_it(app: &TestApp) {
    network(app).await;
    let depot = cold_depot(app, false).await;
    let (key, product) = merchant(app, "keeper", "871234510031").await;
    receive(app, &key, &product, &[("KEEP", 20, 6)], 700).await;
    let dc_path = format!("/v1/locations/{}", dc());
    let location = app.get(&dc_path, &app.operator_key).await.body;
    let in_use = |answer: &Answer, what: &str| {
        assert!(answer.is_problem(409, "/problems/in-use"), "{what}: {} {:?}", answer.status, answer.body);
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(detail.contains(what) && detail.ends_with("stock held there"), "{detail}");
    };
    let deleted = app.send("DELETE", &dc_path, Some(&app.operator_key), None, &[]).await;
    in_use(&deleted, &format!("location {}", dc()));
    // The DC as read, but for one change at a time.
    let changed_from = |location: &Value, change: &dyn Fn(&mut Value)| {
        let mut body = json!({
            "gln": location["gln"], "kind": location["kind"], "name": location["name"], "address": location["address"],
            "country": location["country"], "latitude": location["latitude"], "longitude": location["longitude"],
            "time_zone": location["time_zone"], "zones": location["zones"], "cutoffs": location["cutoffs"],
            "pick_pack_lead_minutes": location["pick_pack_lead_minutes"]
        });
        change(&mut body);
        body
    };
    let changed = |change: &dyn Fn(&mut Value)| changed_from(&location, change);
    let without_chill = changed(&|body| {
        body["zones"] =
            json!(body["zones"].as_array().unwrap().iter().filter(|zone| zone["name"] != "chill").collect::<Vec<_>>());
    });
    let warmer = changed(&|body| {
        for zone in body["zones"].as_array_mut().unwrap() {
            if zone["name"] == "chill" {
                zone["min_celsius"] = json!(8);
                zone["max_celsius"] = json!(12);
            }
        }
    });
    let pickup_point = changed(&|body| {
        body["kind"] = json!("pickup_point");
        body["zones"] = json!([]);
        body["cutoffs"] = json!({});
    });
    for (body, what) in [
        (without_chill, format!("zone chill of location {}", dc())),
        (warmer, format!("zone chill of location {} (its new range would not keep product", dc())),
        (pickup_point, format!("location {} (a pickup_point holds no stock)", dc())),
    ] {
        let put = app.send("PUT", &dc_path, Some(&app.operator_key), Some(body), &[]).await;
        in_use(&put, &what);
    }
    // Nothing changed: the stock is still there and allocatable.
    assert_eq!(app.get(&dc_path, &app.operator_key).await.body["zones"], location["zones"]);
    let placed = app.post("/v1/orders", &key, order_body(&product, 2)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    // A change the stock survives (a wider chill room still within chilled goods' range) is taken.
    let colder = changed(&|body| {
        for zone in body["zones"].as_array_mut().unwrap() {
            if zone["name"] == "chill" {
                zone["max_celsius"] = json!(3);
            }
        }
    });
    let put = app.send("PUT", &dc_path, Some(&app.operator_key), Some(colder), &[]).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    // A zone left as it is passes, whatever its goods: the product became frozen since it came
    // in (refused now while the chill room holds it, but stored so before that rule), and the
    // operator renames the DC.
    let frozen = app
        .send(
            "PUT",
            &format!("/v1/products/{product}"),
            Some(&key),
            Some(json!({"gtin": product, "name": "Salmon", "temperature_class": "frozen", "shelf_life_days": 30,
                        "min_remaining_shelf_life_days": 3})),
            &[],
        )
        .await;
    assert!(frozen.is_problem(409, "/problems/in-use"), "{:?}", frozen.body);
    let stored_gtin = app.get(&format!("/v1/products/{product}"), &key).await.body["gtin"].as_str().unwrap().to_owned();
    app.execute_sql(&["UPDATE products SET temperature_class = 'frozen' WHERE gtin = $1"], &stored_gtin).await;
    let current = app.get(&dc_path, &app.operator_key).await.body;
    let renamed = changed_from(&current, &|body| body["name"] = json!("Amsterdam DC North"));
    let put = app.send("PUT", &dc_path, Some(&app.operator_key), Some(renamed), &[]).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    // A place with pallets announced to it waits for them: it is not deleted, nor made a place
    // that holds no stock.
    let pallet = json!({"sscc": with_check_digit("38712345000070900"), "gtin": product, "lot": "LATER",
                        "expiry": in_days(20), "quantity": 3});
    let asn = app.post("/v1/asns", &key, json!({"location": depot, "pallets": [pallet]})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let depot_path = format!("/v1/locations/{depot}");
    let depot_now = app.get(&depot_path, &app.operator_key).await.body;
    let pickup_point = changed_from(&depot_now, &|body| {
        body["kind"] = json!("pickup_point");
        body["zones"] = json!([]);
        body["cutoffs"] = json!({});
    });
    let put = app.send("PUT", &depot_path, Some(&app.operator_key), Some(pickup_point), &[]).await;
    assert!(put.is_problem(409, "/problems/in-use"), "{:?}", put.body);
    assert!(
        put.body["detail"].as_str().unwrap().ends_with("pallets announced to it and not received"),
        "{:?}",
        put.body
    );
    let deleted = app.send("DELETE", &depot_path, Some(&app.operator_key), None, &[]).await;
    assert!(deleted.is_problem(409, "/problems/in-use"), "{:?}", deleted.body);
    assert!(
        deleted.body["detail"].as_str().unwrap().ends_with("pallets announced to it and not received"),
        "{:?}",
        deleted.body
    );
    // Once the DC's stock is gone (the order cancelled, the units scrapped), the DC may go.
    let order_id = placed.body["order_id"].as_str().unwrap();
    let cancelled = app.post(&format!("/v1/orders/{order_id}/events"), &key, json!({"status": "cancelled"})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    let scrapped = app
        .post(
            "/v1/stock/scrap",
            &key,
            json!({"location": dc(), "zone": "chill", "gtin": product, "lot": "KEEP", "quantity": 6, "reason": "spoilt"}),
        )
        .await;
    assert_eq!(scrapped.status, StatusCode::OK, "{:?}", scrapped.body);
    let deleted = app.send("DELETE", &dc_path, Some(&app.operator_key), None, &[]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
}

/// A recalled parcel taken back without restocking (its units to be destroyed, not sold again)
/// is back all the same: the recall reads it `returned`, and its pickup point no longer within
/// consumers' reach.
pub async fn fulfilment_a_parcel_taken_back_unrestocked_is_back(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "takeback", "871234510095").await;
    receive(app, &key, &product, &[("BACK", 20, 10)], 95_000).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 3)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/orders/{order_id}/events?tenant=takeback");
    let pallet = with_check_digit("38712345000095100");
    ship_whole(app, &path, &pallet).await;
    let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["BACK"], "reason": "glass"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    assert_eq!(recall.body["affected_orders"][0]["outcome"], "shipped", "{:?}", recall.body);
    assert_eq!(recall.body["pickup_points"], json!([pickup()]), "{:?}", recall.body);
    walk(app, &path, &[json!({"status": "returned"})]).await;
    let read = app.get(&format!("/v1/recalls/{}", recall.body["recall_id"].as_str().unwrap()), &key).await;
    let affected = &read.body["affected_orders"][0];
    assert_eq!(
        (affected["status"].as_str(), affected["outcome"].as_str(), affected["units_shipped"].as_i64()),
        (Some("returned"), Some("returned"), Some(3)),
        "{:?}",
        read.body
    );
    assert_eq!(affected["units_returned"], 0, "nothing restocked: {:?}", read.body);
    assert_eq!(read.body["pickup_points"], json!([]), "{:?}", read.body);
}

/// Two API nodes share a webhook whose receiver takes a second and a half to answer its first
/// delivery: one node delivers while the other waits for the delivery's lease, so every
/// transition arrives once, and each order's in order.
pub async fn webhooks_deliver_once_on_two_nodes(apps: &[&TestApp]) {
    let app = apps[0];
    network(app).await;
    let (key, product) = merchant(app, "fish", "871234510041").await;
    receive(app, &key, &product, &[("W1", 20, 50)], 500).await;
    let (url, received) = receiver_slow_at_first(0, std::time::Duration::from_millis(1_500)).await;
    let secret = "a-merchant-secret-of-32-characters";
    let hook = app.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    // Three orders, one through each node and one more, each then picked through the other.
    let mut expected: Vec<(String, i64)> = Vec::new();
    for index in 0..3 {
        let (placing, stepping) = (apps[index % apps.len()], apps[(index + 1) % apps.len()]);
        let order = placing.post("/v1/orders", &key, order_body(&product, 1)).await;
        assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
        let order_id = order.body["order_id"].as_str().unwrap().to_owned();
        let path = format!("/v1/orders/{order_id}/events?tenant=fish");
        let picking = stepping.post(&path, &stepping.operator_key, json!({"status": "picking"})).await;
        assert_eq!(picking.status, StatusCode::OK, "{:?}", picking.body);
        expected.extend([(order_id.clone(), 1), (order_id, 2)]);
    }
    let mut delivered: Vec<(String, i64)> = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        delivered = signed_deliveries(&received, secret)
            .iter()
            .flat_map(|delivery| delivery["transitions"].as_array().unwrap().clone())
            .map(|transition| {
                (transition["order_id"].as_str().unwrap().to_owned(), transition["seq"].as_i64().unwrap())
            })
            .collect();
        if delivered.len() >= expected.len() {
            break;
        }
    }
    // Long enough for a slow first delivery, sent beside the one that arrived, to arrive too.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let again: usize = signed_deliveries(&received, secret)
        .iter()
        .map(|delivery| delivery["transitions"].as_array().unwrap().len())
        .sum();
    assert_eq!(again, delivered.len(), "no delivery after all had arrived");
    let mut once = delivered.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), delivered.len(), "a transition arrived twice: {delivered:?}");
    expected.sort();
    assert_eq!(once, expected, "{delivered:?}");
    for (order_id, _) in &expected {
        let seqs: Vec<i64> = delivered.iter().filter(|(id, _)| id == order_id).map(|(_, seq)| *seq).collect();
        assert_eq!(seqs, [1, 2], "{order_id}: {delivered:?}");
    }
}

/// An order to an address that a recall sends out from another site counts in that site's
/// region from then on.
pub async fn fulfilment_a_reallocated_order_counts_in_its_new_region(app: &TestApp) {
    network(app).await;
    let depot = cold_depot(app, true).await;
    let (key, product) = merchant(app, "regions", "871234510096").await;
    receive(app, &key, &product, &[("AMS", 20, 5)], 96_000).await;
    let pallet = json!({"sscc": with_check_digit("38712345000096500"), "gtin": product, "lot": "UTR",
                        "expiry": in_days(25), "quantity": 5});
    let asn = app.post("/v1/asns", &key, json!({"location": depot, "pallets": [pallet]})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let asn_id = asn.body["asn_id"].as_str().unwrap();
    let received = app.post(&format!("/v1/asns/{asn_id}/receipts"), &key, json!({"zone": "cold"})).await;
    assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
    let home = json!({"latitude": 52.37, "longitude": 4.89, "time_zone": "Europe/Amsterdam"});
    let placed = app
        .post(
            "/v1/orders",
            &key,
            json!({"lines": [{"gtin": product, "quantity": 2}], "destination": home, "service": "next_day"}),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    assert_eq!(placed.body["shipments"][0]["picks"][0]["lot"], "AMS", "FEFO: {:?}", placed.body);
    assert_eq!(placed.body["region"], "Amsterdam", "{:?}", placed.body);
    let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["AMS"], "reason": "glass"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    assert_eq!(recall.body["affected_orders"][0]["outcome"], "reallocated", "{:?}", recall.body);
    let order_id = placed.body["order_id"].as_str().unwrap();
    let order = app.get(&format!("/v1/orders/{order_id}"), &key).await;
    assert_eq!(order.body["shipments"][0]["picks"][0]["lot"], "UTR", "{:?}", order.body);
    assert_eq!(order.body["region"], "Utrecht", "{:?}", order.body);
    // From the depot it arrives at another time (later by day, sooner in the evening, when the
    // DC's next departure is the morning's): the promise is the depot's, the first promise is
    // kept, and judged by the SLA.
    assert_ne!(order.body["promised_by"], placed.body["promised_by"], "{:?}", order.body);
    assert_eq!(order.body["promised_by"], order.body["shipments"][0]["promised_by"], "{:?}", order.body);
    assert_eq!(order.body["first_promised_by"], placed.body["promised_by"], "{:?}", order.body);
    let report = app.get("/v1/sla", &key).await;
    let regions: Vec<&str> =
        report.body["rows"].as_array().unwrap().iter().map(|row| row["region"].as_str().unwrap()).collect();
    assert_eq!(regions, ["Utrecht"], "{:?}", report.body);
    // Its new lot recalled too, with no other stock: flagged. Allocated again on the merchant's
    // request once the DC has stock, it counts in Amsterdam again.
    let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["UTR"], "reason": "glass"})).await;
    assert_eq!(recall.body["affected_orders"][0]["outcome"], "flagged", "{:?}", recall.body);
    receive(app, &key, &product, &[("NEW", 30, 5)], 96_100).await;
    let again = app.post(&format!("/v1/orders/{order_id}/events"), &key, json!({"status": "allocated"})).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["shipments"][0]["picks"][0]["lot"], "NEW", "{:?}", again.body);
    assert_eq!(again.body["region"], "Amsterdam", "{:?}", again.body);
}

/// A recalled lot whose trace reaches more than the trace's limit of objects (here a lot made
/// into 501 others) says its history is not complete, in the recall's answer and read back.
pub async fn fulfilment_a_recall_says_when_its_history_is_cut(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "cut", "871234510097").await;
    receive(app, &key, &product, &[("WIDE", 20, 5), ("NARROW", 20, 5)], 97_000).await;
    let class = |lot: &str| format!("https://id.gs1.org/01/{product:0>14}/10/{lot}");
    let outputs: Vec<Value> =
        (0..501).map(|index| json!({"epcClass": class(&format!("PART{index}")), "quantity": 1})).collect();
    let made = json!({"type": "TransformationEvent", "eventTime": jiff::Timestamp::now().to_string(),
        "eventTimeZoneOffset": "+01:00", "inputQuantityList": [{"epcClass": class("WIDE"), "quantity": 5}],
        "outputQuantityList": outputs});
    let job = app.capture_job(&key, super::epcis_interface::document(vec![made]), &[]).await;
    assert_eq!(job["success"], true, "{job}");
    // WIDE's parts, as many as its trace reached, are listed up to the limit of the answer.
    let listed = server::fulfilment::RECALL_DERIVED_LOTS_MAX;
    for (lot, cut, parts) in [("NARROW", false, 0), ("WIDE", true, listed)] {
        let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": [lot], "reason": "glass"})).await;
        assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
        assert_eq!(recall.body["history_truncated"], cut, "{lot}");
        assert_eq!(recall.body["derived_lots"].as_array().map(Vec::len), Some(parts), "{lot}");
        let read = app.get(&format!("/v1/recalls/{}", recall.body["recall_id"].as_str().unwrap()), &key).await;
        assert_eq!(read.body["history_truncated"], cut, "{lot}");
        assert_eq!(read.body["derived_lots"].as_array().map(Vec::len), Some(parts), "{lot}");
    }
}

/// A recall names the lots made from the recalled one (EPCIS transformations, at any remove),
/// with the tenant's stock and orders of each, and leaves them as they are; another brand's
/// product made from it is named without them. Read back, a derived lot recalled since says so.
pub async fn fulfilment_a_recall_names_the_lots_made_from_it(app: &TestApp) {
    network(app).await;
    let (key, beef) = merchant(app, "mince", "871234510120").await;
    let lasagne = gtin("871234510121");
    chilled_product(app, &key, &lasagne, "Lasagne").await;
    // Another brand's GTIN, sorting before the tenant's.
    let stranger = gtin("871234510001");
    // As the answers write them: 14 digits.
    let (lasagne14, stranger14) = (format!("{lasagne:0>14}"), format!("{stranger:0>14}"));
    receive(app, &key, &beef, &[("BEEF1", 20, 10), ("BEEF2", 20, 10)], 120_000).await;
    receive(app, &key, &lasagne, &[("LAS1", 19, 8), ("LAS2", 20, 8)], 121_000).await;
    let class = |product: &str, lot: &str| format!("https://id.gs1.org/01/{product}/10/{lot}");
    let made = |inputs: Vec<Value>, outputs: Vec<Value>| {
        json!({"type": "TransformationEvent", "eventTime": jiff::Timestamp::now().to_string(),
            "eventTimeZoneOffset": "+01:00", "inputQuantityList": inputs, "outputQuantityList": outputs})
    };
    // BEEF1 went into LAS1, and LAS1 into a stranger's product; BEEF2 into LAS2.
    let events = vec![
        made(
            vec![json!({"epcClass": class(&beef, "BEEF1"), "quantity": 4})],
            vec![json!({"epcClass": class(&lasagne, "LAS1"), "quantity": 8})],
        ),
        made(
            vec![json!({"epcClass": class(&lasagne, "LAS1"), "quantity": 2})],
            vec![json!({"epcClass": class(&stranger, "BOX1"), "quantity": 1})],
        ),
        made(
            vec![json!({"epcClass": class(&beef, "BEEF2"), "quantity": 4})],
            vec![json!({"epcClass": class(&lasagne, "LAS2"), "quantity": 8})],
        ),
    ];
    // And each into a serialised item, whose record keeps its serial, not its lot.
    let item = |serial: &str| format!("https://id.gs1.org/01/{lasagne}/21/{serial}");
    let items = ["BEEF1", "BEEF2"].map(|lot| {
        let mut event = made(vec![json!({"epcClass": class(&beef, lot), "quantity": 1})], vec![]);
        event["outputEPCList"] = json!([item(&format!("S-{lot}"))]);
        event
    });
    let events: Vec<Value> = events.into_iter().chain(items).collect();
    let job = app.capture_job(&key, super::epcis_interface::document(events), &[]).await;
    assert_eq!(job["success"], true, "{job}");
    // An order of lasagne takes units of LAS1 (FEFO: it expires first).
    let placed = app.post("/v1/orders", &key, order_body(&lasagne, 2)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let taken = placed.body["shipments"][0]["picks"][0]["lot"].as_str().unwrap().to_owned();
    assert_eq!(taken, "LAS1", "{:?}", placed.body);
    let (beef_lot, other_lasagne) = ("BEEF1", "LAS2");
    // It ships to the pickup point: units of the recalled beef are within consumers' reach there.
    ship_whole(app, &format!("/v1/orders/{order_id}/events?tenant=mince"), &with_check_digit("38712345000122000"))
        .await;
    let recall = app.post("/v1/recalls", &key, json!({"gtin": beef, "lots": [beef_lot], "reason": "E. coli"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let derived = recall.body["derived_lots"].as_array().unwrap();
    let named: Vec<(&str, &str)> =
        derived.iter().map(|lot| (lot["gtin"].as_str().unwrap(), lot["lot"].as_str().unwrap())).collect();
    // The tenant's own first; BOX1 is two transformations away.
    assert_eq!(named, [(lasagne14.as_str(), "LAS1"), (stranger14.as_str(), "BOX1")], "{:?}", recall.body);
    let items = recall.body["derived_items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{:?}", recall.body);
    assert!(items[0]["item"].as_str().unwrap().ends_with(&format!("/21/S-{beef_lot}")), "{items:?}");
    assert_eq!((&items[0]["gtin"], &items[0]["made_from"]), (&json!(lasagne14), &json!([beef_lot])), "{items:?}");
    let ours = derived.iter().find(|lot| lot["gtin"] == lasagne14.as_str()).unwrap();
    assert_eq!(ours["made_from"], json!([beef_lot]), "{ours}");
    assert_eq!((ours["own_product"].as_bool(), ours["units_on_hand"].as_i64()), (Some(true), Some(6)), "{ours}");
    assert!(ours["recall_id"].is_null(), "{ours}");
    let orders = ours["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{ours}");
    assert_eq!(
        (orders[0]["order_id"].as_str(), orders[0]["status"].as_str(), orders[0]["units_shipped"].as_i64()),
        (Some(order_id.as_str()), Some("shipped"), Some(2)),
        "{ours}"
    );
    assert_eq!(recall.body["pickup_points"], json!([pickup()]), "{:?}", recall.body);
    let theirs = &derived[1];
    assert_eq!(theirs["own_product"], false, "{theirs}");
    assert!(theirs["orders"].as_array().unwrap().is_empty() && theirs["units_on_hand"] == 0, "{theirs}");
    // Not recalled by it: the order is not among those it took back.
    assert!(recall.body["affected_orders"].as_array().unwrap().is_empty(), "{:?}", recall.body);
    assert_eq!(recall.body["source_lots"], json!([]), "made from nothing the traces know");
    assert!(!recall.body.to_string().contains(other_lasagne), "{:?}", recall.body);
    assert_eq!(recall.body["history_truncated"], false, "{:?}", recall.body);
    // The derived lot recalled in turn: the first recall, read back, says so.
    let second = app.post("/v1/recalls", &key, json!({"gtin": lasagne, "lots": [taken], "reason": "E. coli"})).await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    // Its source: the beef lot, the tenant's own, recalled by the first.
    let beef14 = format!("{beef:0>14}");
    let source = json!([{"gtin": beef14, "lot": beef_lot, "used_in": [taken], "product": "Salmon", "brand": null,
                         "own_product": true, "recall_id": recall.body["recall_id"]}]);
    assert_eq!(second.body["source_lots"], source, "{:?}", second.body);
    let read = app.get(&format!("/v1/recalls/{}", recall.body["recall_id"].as_str().unwrap()), &key).await;
    let ours =
        read.body["derived_lots"].as_array().unwrap().iter().find(|lot| lot["gtin"] == lasagne14.as_str()).unwrap();
    assert_eq!(ours["recall_id"], second.body["recall_id"], "{:?}", read.body);
    assert_eq!(ours["orders"][0]["order_id"], order_id.as_str(), "{:?}", read.body);
}

/// A return may put its units into a returns zone, in quarantine until they are checked (GDP),
/// apart from the sellable units of the lot; the check releases that zone alone, and once emptied
/// it takes returns in quarantine again. Quarantine asked of the sellable zone's balance is
/// refused and changes nothing, as is a status other than available or quarantine, or a zone the
/// site does not have; units of a recalled lot come back recalled.
pub async fn fulfilment_a_return_may_wait_in_quarantine(app: &TestApp) {
    network(app).await;
    // The DC gets a chilled returns area, and one for recalled units.
    let dc_path = format!("/v1/locations/{}", dc());
    let mut location = app.get(&dc_path, &app.operator_key).await.body;
    for name in ["returns", "recalls"] {
        let zone = json!({"name": name, "min_celsius": 0, "max_celsius": 2, "capacity_pallets": 10});
        location["zones"].as_array_mut().unwrap().push(zone);
    }
    let updated = app.send("PUT", &dc_path, Some(&app.operator_key), Some(to_put(&location)), &[]).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    let (key, product) = merchant(app, "backflow", "871234510150").await;
    receive(app, &key, &product, &[("RET1", 20, 10)], 150_000).await;
    let shipped_order = |pallet: &'static str, units: i64| {
        let key = key.clone();
        let product = product.clone();
        async move {
            let placed = app.post("/v1/orders", &key, order_body(&product, units)).await;
            assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
            let path = format!("/v1/orders/{}/events?tenant=backflow", placed.body["order_id"].as_str().unwrap());
            ship_whole(app, &path, &with_check_digit(pallet)).await;
            path
        }
    };
    let balances = || zone_balances(app, &key, &product, "RET1");
    let first = shipped_order("38712345000159000", 3).await;
    let operator = &app.operator_key;
    // Refused, storing nothing: a status that is not for returns, a zone the DC lacks, the
    // fields without a return.
    let refusals = [
        (
            json!({"status": "returned", "restocked": [2], "restock_status": "hold"}),
            422,
            "validation-failed",
            "/restock_status",
        ),
        (
            json!({"status": "returned", "restocked": [2], "restock_zone": "attic"}),
            422,
            "unknown-reference",
            "has no zone attic",
        ),
        (json!({"status": "returned", "restock_zone": "returns"}), 422, "validation-failed", "/restock_zone"),
        (json!({"status": "delivered", "restock_status": "quarantine"}), 422, "validation-failed", "/restock_status"),
    ];
    for (body, status, problem, pointer) in refusals {
        let refused = app.post(&first, operator, body.clone()).await;
        assert!(refused.is_problem(status, &format!("/problems/{problem}")), "{body}: {:?}", refused.body);
        assert!(refused.body.to_string().contains(pointer), "{body}: {:?}", refused.body);
    }
    assert_eq!(balances().await, [("chill".into(), 7, "available".into())]);
    // Into the returns area, in quarantine: not sellable, the lot's other units are.
    let body =
        json!({"status": "returned", "restocked": [2], "restock_zone": "returns", "restock_status": "quarantine"});
    let returned = app.post(&first, operator, body).await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    let detail = returned.body["events"].as_array().unwrap().last().unwrap()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("into zone returns as quarantine"), "{detail}");
    assert_eq!(balances().await, [("chill".into(), 7, "available".into()), ("returns".into(), 2, "quarantine".into())]);
    // A second return asking quarantine of the sellable zone's balance is refused.
    let second = shipped_order("38712345000159100", 3).await;
    let body = json!({"status": "returned", "restocked": [1], "restock_status": "quarantine"});
    let refused = app.post(&second, operator, body).await;
    assert!(refused.is_problem(409, "/problems/lot-conflict"), "{:?}", refused.body);
    assert_eq!(
        app.get(&second.replace("/events", "").replace("?tenant=backflow", ""), &key).await.body["status"],
        "shipped"
    );
    assert_eq!(balances().await, [("chill".into(), 4, "available".into()), ("returns".into(), 2, "quarantine".into())]);
    // The check passes: the returns area alone is released (a zone only with a location).
    let release =
        json!({"gtin": product, "lot": "RET1", "zone": "returns", "status": "available", "reason": "checked"});
    let refused = app.post("/v1/stock/lot-status", &key, release.clone()).await;
    assert!(
        refused.is_problem(422, "/problems/validation-failed") && refused.pointers() == ["/zone"],
        "{:?}",
        refused.body
    );
    let mut release = release;
    release["location"] = json!(dc());
    let released = app.post("/v1/stock/lot-status", &key, release).await;
    assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
    assert_eq!(balances().await, [("chill".into(), 4, "available".into()), ("returns".into(), 2, "available".into())]);
    // Its event says where the units went.
    let returned = events_of(app, &key, "receiving", "EQ_disposition=returned").await;
    let places: Vec<&str> = returned.iter().map(|event| event["bizLocation"]["id"].as_str().unwrap()).collect();
    assert_eq!(places, [format!("https://id.gs1.org/414/{}/254/returns", dc())], "{returned:?}");
    // Moved back to the sellable zone, the area is empty and takes the next return in quarantine.
    let moved = json!({"gtin": product, "lot": "RET1", "from": {"location": dc(), "zone": "returns"},
                       "to": {"location": dc(), "zone": "chill"}, "quantity": 2, "reason": "put away"});
    let moved = app.post("/v1/stock/transfers", &key, moved).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    let third = shipped_order("38712345000159200", 3).await;
    let fourth = shipped_order("38712345000159300", 1).await;
    let body =
        json!({"status": "returned", "restocked": [1], "restock_zone": "returns", "restock_status": "quarantine"});
    let returned = app.post(&third, operator, body).await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(balances().await, [("chill".into(), 2, "available".into()), ("returns".into(), 1, "quarantine".into())]);
    // Units of a recalled lot come back recalled, whatever was asked, into a new zone too.
    let recall = app.post("/v1/recalls", &key, json!({"gtin": product, "lots": ["RET1"], "reason": "seal"})).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let body =
        json!({"status": "returned", "restocked": [1], "restock_zone": "recalls", "restock_status": "quarantine"});
    let returned = app.post(&fourth, operator, body).await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    let detail = returned.body["events"].as_array().unwrap().last().unwrap()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("into zone recalls as recalled"), "{detail}");
    // Its event says so, where they went.
    let units_back = events_of(app, &key, "receiving", "EQ_disposition=recalled").await;
    assert_eq!(units_back.len(), 1, "{units_back:?}");
    assert_eq!(units_back[0]["bizLocation"]["id"], format!("https://id.gs1.org/414/{}/254/recalls", dc()));
    assert_eq!(units_back[0]["quantityList"][0]["quantity"], 1, "{units_back:?}");
    assert_eq!(
        balances().await,
        [
            ("chill".into(), 2, "recalled".into()),
            ("recalls".into(), 1, "recalled".into()),
            ("returns".into(), 1, "recalled".into())
        ]
    );
}

/// A recall with `hold_derived` puts the tenant's own lots made from the recalled ones on hold
/// in its write, before the orders it takes back are allocated again: those and new orders take
/// other lots, an order holding units of a held lot does not ship, and the answer (and the recall
/// read back) counts the units on hold. Without it, such lots stay available.
pub async fn fulfilment_a_recall_may_hold_the_lots_made_from_it(app: &TestApp) {
    network(app).await;
    let (key, beef) = merchant(app, "holdmade", "871234510140").await;
    let lasagne = gtin("871234510141");
    chilled_product(app, &key, &lasagne, "Lasagne").await;
    receive(app, &key, &beef, &[("BEEF1", 19, 10), ("BEEF2", 20, 10), ("BEEF3", 21, 10)], 140_000).await;
    receive(app, &key, &lasagne, &[("LAS1", 19, 8), ("LAS2", 20, 8), ("LAS3", 21, 8), ("LAS4", 22, 8)], 141_000).await;
    // LAS4 waits for its QA release.
    let quarantined = app
        .post(
            "/v1/stock/lot-status",
            &key,
            json!({"gtin": lasagne, "lot": "LAS4", "status": "quarantine", "reason": "QA"}),
        )
        .await;
    assert_eq!(quarantined.status, StatusCode::OK, "{:?}", quarantined.body);
    let class = |product: &str, lot: &str| format!("https://id.gs1.org/01/{product}/10/{lot}");
    let made = |from: &str, into: &str| {
        json!({"type": "TransformationEvent", "eventTime": jiff::Timestamp::now().to_string(),
            "eventTimeZoneOffset": "+01:00", "inputQuantityList": [{"epcClass": class(&beef, from), "quantity": 4}],
            "outputQuantityList": [{"epcClass": class(&lasagne, into), "quantity": 8}]})
    };
    let events = vec![
        made("BEEF1", "LAS1"),
        made("BEEF2", "LAS2"),
        made("BEEF3", "LAS3"),
        made("BEEF1", "LAS4"),
        made("BEEF1", "LAS5"),
    ];
    let job = app.capture_job(&key, super::epcis_interface::document(events), &[]).await;
    assert_eq!(job["success"], true, "{job}");
    // One order of lasagne alone, one of beef and lasagne: both take LAS1 (FEFO), the second
    // BEEF1 too.
    let alone = app.post("/v1/orders", &key, order_body(&lasagne, 2)).await;
    assert_eq!(alone.status, StatusCode::CREATED, "{:?}", alone.body);
    let both = json!({"lines": [{"gtin": beef, "quantity": 1}, {"gtin": lasagne, "quantity": 1}],
                      "destination": {"pickup_point": pickup()}, "service": "next_day"});
    let both = app.post("/v1/orders", &key, both).await;
    assert_eq!(both.status, StatusCode::CREATED, "{:?}", both.body);
    let lots_of = |order: &Value| -> Vec<String> {
        let mut lots: Vec<String> = order["shipments"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|shipment| shipment["picks"].as_array().unwrap().iter())
            .map(|pick| pick["lot"].as_str().unwrap().to_owned())
            .collect();
        lots.sort();
        lots
    };
    assert_eq!(lots_of(&alone.body), ["LAS1"]);
    assert_eq!(lots_of(&both.body), ["BEEF1", "LAS1"]);
    // LAS5 is on its way, announced but not received.
    let pallet = json!({"sscc": with_check_digit("38712345000149100"), "gtin": lasagne, "lot": "LAS5",
                        "expiry": in_days(23), "quantity": 8});
    let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet]})).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);

    let recall = json!({"gtin": beef, "lots": ["BEEF1"], "reason": "E. coli", "hold_derived": true});
    let recall = app.post("/v1/recalls", &key, recall).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let recall_id = recall.body["recall_id"].as_str().unwrap().to_owned();
    let held = |body: &Value| {
        let lot = &body["derived_lots"][0];
        (lot["lot"].clone(), lot["units_on_hand"].clone(), lot["units_on_hold"].clone())
    };
    assert_eq!(held(&recall.body), (json!("LAS1"), json!(8), json!(8)), "{:?}", recall.body);
    let read = app.get(&format!("/v1/recalls/{recall_id}"), &key).await;
    assert_eq!(held(&read.body), (json!("LAS1"), json!(8), json!(8)), "{:?}", read.body);
    let stock = app.get(&format!("/v1/stock?gtin={lasagne}&lot=LAS1"), &key).await;
    let statuses: Vec<&str> =
        stock.body["items"].as_array().unwrap().iter().map(|balance| balance["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["hold"], "{:?}", stock.body);
    // In quarantine too: its QA release would not make it available.
    let stock = app.get(&format!("/v1/stock?gtin={lasagne}&lot=LAS4"), &key).await;
    assert_eq!(stock.body["items"][0]["status"], "hold", "{:?}", stock.body);
    assert_eq!(recall.body["derived_lots"][1]["units_on_hold"], 8, "{:?}", recall.body);
    // Received after the recall, the lot on its way comes in on hold too.
    let receipt = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
    let received = app.post(&receipt, &key, json!({"zone": "chill"})).await;
    assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
    let stock = app.get(&format!("/v1/stock?gtin={lasagne}&lot=LAS5"), &key).await;
    assert_eq!(stock.body["items"][0]["status"], "hold", "{:?}", stock.body);
    let journal = journal(app, &key, &format!("gtin={lasagne}&lot=LAS1"), 50).await;
    let status_change: Vec<&Value> = journal.iter().filter(|movement| movement["kind"] == "status").collect();
    assert_eq!(status_change.len(), 1, "{journal:?}");
    assert!(status_change[0]["reason"].as_str().unwrap().contains(&recall_id), "{journal:?}");
    // The order taken back is allocated again from other lots than the one held.
    let both_id = both.body["order_id"].as_str().unwrap();
    let affected = recall.body["affected_orders"].as_array().unwrap();
    assert_eq!((affected.len(), &affected[0]["outcome"]), (1, &json!("reallocated")), "{:?}", recall.body);
    let again = app.get(&format!("/v1/orders/{both_id}"), &key).await;
    assert_eq!(lots_of(&again.body), ["BEEF2", "LAS2"], "{:?}", again.body);
    let new = app.post("/v1/orders", &key, order_body(&lasagne, 1)).await;
    assert_eq!(lots_of(&new.body), ["LAS2"], "{:?}", new.body);
    // The order that holds units of LAS1 keeps them, and does not ship.
    let path = format!("/v1/orders/{}/events?tenant=holdmade", alone.body["order_id"].as_str().unwrap());
    let pallet = with_check_digit("38712345000149000");
    walk(app, &path, &[json!({"status": "picking"}), json!({"status": "packed", "ssccs": [pallet]})]).await;
    let refused = app.post(&path, &app.operator_key, json!({"status": "shipped"})).await;
    assert!(refused.is_problem(409, "/problems/lot-unavailable"), "{:?}", refused.body);
    // Lifting the hold on LAS4 leaves its quarantine: its check still waits; the check's release
    // then makes it available.
    for (reason, status) in [("cleared of the recall", "quarantine"), ("QA passed", "available")] {
        let release = json!({"gtin": lasagne, "lot": "LAS4", "status": "available", "reason": reason});
        let released = app.post("/v1/stock/lot-status", &key, release).await;
        assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
        let stock = app.get(&format!("/v1/stock?gtin={lasagne}&lot=LAS4"), &key).await;
        assert_eq!(stock.body["items"][0]["status"], status, "{reason}: {:?}", stock.body);
    }

    // Without it, the lot made from the recalled one stays available.
    let plain = app.post("/v1/recalls", &key, json!({"gtin": beef, "lots": ["BEEF3"], "reason": "E. coli"})).await;
    assert_eq!(held(&plain.body), (json!("LAS3"), json!(8), json!(0)), "{:?}", plain.body);
    let stock = app.get(&format!("/v1/stock?gtin={lasagne}&lot=LAS3"), &key).await;
    assert_eq!(stock.body["items"][0]["status"], "available", "{:?}", stock.body);
}

/// A recall's hold on a lot made from the recalled one is kept for the lot: units of it returned
/// into a zone where it has no balance come back on hold, and so does a pallet received after a
/// release at one place; a release of the whole lot ends the hold, and so does the deletion of a
/// product whose held lot had no stock.
pub async fn fulfilment_a_kept_hold_ends_with_its_lot(app: &TestApp) {
    network(app).await;
    let dc_path = format!("/v1/locations/{}", dc());
    let mut location = app.get(&dc_path, &app.operator_key).await.body;
    for name in ["returns", "spare", "overflow", "quarantine", "annex"] {
        let zone = json!({"name": name, "min_celsius": 0, "max_celsius": 2, "capacity_pallets": 10});
        location["zones"].as_array_mut().unwrap().push(zone);
    }
    let updated = app.send("PUT", &dc_path, Some(&app.operator_key), Some(to_put(&location)), &[]).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    let (key, beef) = merchant(app, "keephold", "871234510160").await;
    let (lasagne, ragu) = (gtin("871234510161"), gtin("871234510162"));
    chilled_product(app, &key, &lasagne, "Lasagne").await;
    chilled_product(app, &key, &ragu, "Ragu").await;
    receive(app, &key, &beef, &[("BEEF1", 20, 10)], 160_000).await;
    receive(app, &key, &lasagne, &[("LAS1", 20, 8)], 161_000).await;
    let class = |product: &str, lot: &str| format!("https://id.gs1.org/01/{product}/10/{lot}");
    let made = |into: String| {
        json!({"type": "TransformationEvent", "eventTime": jiff::Timestamp::now().to_string(),
            "eventTimeZoneOffset": "+01:00", "inputQuantityList": [{"epcClass": class(&beef, "BEEF1"), "quantity": 4}],
            "outputQuantityList": [{"epcClass": into, "quantity": 8}]})
    };
    // BEEF1 went into LAS1 (in stock) and RAGU1 (none yet).
    let events = vec![made(class(&lasagne, "LAS1")), made(class(&ragu, "RAGU1"))];
    let job = app.capture_job(&key, super::epcis_interface::document(events), &[]).await;
    assert_eq!(job["success"], true, "{job}");
    // Three units of LAS1 leave before the recall.
    let placed = app.post("/v1/orders", &key, order_body(&lasagne, 3)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order = format!("/v1/orders/{}/events?tenant=keephold", placed.body["order_id"].as_str().unwrap());
    ship_whole(app, &order, &with_check_digit("38712345000169000")).await;

    let recall = json!({"gtin": beef, "lots": ["BEEF1"], "reason": "E. coli", "hold_derived": true});
    let recall = app.post("/v1/recalls", &key, recall).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    let mut held: Vec<(String, i64)> = recall.body["derived_lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lot| (lot["lot"].as_str().unwrap().to_owned(), lot["units_on_hold"].as_i64().unwrap()))
        .collect();
    held.sort();
    assert_eq!(held, [("LAS1".to_owned(), 5), ("RAGU1".to_owned(), 0)], "{:?}", recall.body);
    let balances = |product: String, lot: &'static str| {
        let key = key.clone();
        async move { zone_balances(app, &key, &product, lot).await }
    };
    assert_eq!(balances(lasagne.clone(), "LAS1").await, [("chill".into(), 5, "hold".into())]);
    // Released at one place, the lot's hold stays for its other units: two returned into an
    // empty zone, asked available, come back on hold, and a pallet received later into another
    // zone comes in on hold.
    let release = |zone: Option<&str>| {
        let mut release = json!({"gtin": lasagne, "lot": "LAS1", "status": "available", "reason": "tested clean"});
        if let Some(zone) = zone {
            release["location"] = json!(dc());
            release["zone"] = json!(zone);
        }
        release
    };
    let released = app.post("/v1/stock/lot-status", &key, release(Some("chill"))).await;
    assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
    let body =
        json!({"status": "returned", "restocked": [2], "restock_zone": "returns", "restock_status": "available"});
    let returned = app.post(&order, &app.operator_key, body).await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(
        balances(lasagne.clone(), "LAS1").await,
        [("chill".into(), 5, "available".into()), ("returns".into(), 2, "hold".into())]
    );
    let into = |product: &str, lot: &str, zone: &str, sscc: &str, status: &str| {
        let pallet =
            json!({"sscc": with_check_digit(sscc), "gtin": product, "lot": lot, "expiry": in_days(20), "quantity": 4});
        let (key, zone, status) = (key.clone(), zone.to_owned(), status.to_owned());
        async move {
            let asn = app.post("/v1/asns", &key, json!({"location": dc(), "pallets": [pallet]})).await;
            assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
            let receipt = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());
            let received = app.post(&receipt, &key, json!({"zone": zone, "status": status})).await;
            assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
        }
    };
    into(&lasagne, "LAS1", "spare", "38712345000169100", "available").await;
    assert_eq!(
        balances(lasagne.clone(), "LAS1").await,
        [
            ("chill".into(), 5, "available".into()),
            ("returns".into(), 2, "hold".into()),
            ("spare".into(), 4, "hold".into())
        ]
    );
    // A pallet asked into quarantine joining a balance on hold leaves it on hold, its quarantine
    // kept: released there, the balance waits for its check.
    into(&lasagne, "LAS1", "spare", "38712345000169120", "quarantine").await;
    let released = app.post("/v1/stock/lot-status", &key, release(Some("spare"))).await;
    assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
    assert_eq!(balances(lasagne.clone(), "LAS1").await[2], ("spare".into(), 8, "quarantine".into()));
    // A pallet asked into quarantine comes in on hold too, its quarantine kept under the hold, and
    // so do the units moved from it: a release of the hold where they lie leaves them in
    // quarantine.
    into(&lasagne, "LAS1", "quarantine", "38712345000169150", "quarantine").await;
    let moved = json!({"gtin": lasagne, "lot": "LAS1", "from": {"location": dc(), "zone": "quarantine"},
                       "to": {"location": dc(), "zone": "annex"}, "quantity": 1, "reason": "space"});
    let moved = app.post("/v1/stock/transfers", &key, moved).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    for zone in ["quarantine", "annex"] {
        let released = app.post("/v1/stock/lot-status", &key, release(Some(zone))).await;
        assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
    }
    let lot = balances(lasagne.clone(), "LAS1").await;
    assert_eq!(&lot[..2], [("annex".into(), 1, "quarantine".into()), ("chill".into(), 5, "available".into())]);
    assert_eq!(lot[2], ("quarantine".into(), 3, "quarantine".into()));
    // Released again, the check is done: available.
    let released = app.post("/v1/stock/lot-status", &key, release(Some("annex"))).await;
    assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
    assert_eq!(balances(lasagne.clone(), "LAS1").await[0], ("annex".into(), 1, "available".into()));
    // Released whole, the lot is free: the next pallet comes in available.
    let released = app.post("/v1/stock/lot-status", &key, release(None)).await;
    assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
    into(&lasagne, "LAS1", "overflow", "38712345000169200", "available").await;
    let statuses: Vec<String> =
        balances(lasagne.clone(), "LAS1").await.into_iter().map(|(_, _, status)| status).collect();
    assert_eq!(statuses, ["available"; 6]);
    // Units asked into quarantine joining a balance set expired (before its date) keep their
    // quarantine too: released, the balance waits for its check.
    let mut expire = release(Some("overflow"));
    expire["status"] = json!("expired");
    let expired = app.post("/v1/stock/lot-status", &key, expire).await;
    assert_eq!(expired.status, StatusCode::OK, "{:?}", expired.body);
    into(&lasagne, "LAS1", "overflow", "38712345000169250", "quarantine").await;
    let released = app.post("/v1/stock/lot-status", &key, release(Some("overflow"))).await;
    assert_eq!(released.status, StatusCode::OK, "{:?}", released.body);
    let overflow = zone_balances(app, &key, &lasagne, "LAS1").await.into_iter().find(|(zone, _, _)| zone == "overflow");
    assert_eq!(overflow, Some(("overflow".into(), 8, "quarantine".into())));
    // RAGU1 had no stock: its product deleted, the hold goes with it; the brand registers the
    // product again and RAGU1 comes in available.
    let held_sql = "SELECT COUNT(*) FROM held_lots WHERE tenant_id = 'keephold' AND lot = $1";
    assert_eq!(app.count_sql(held_sql, "RAGU1").await, 1);
    let deleted = app.send("DELETE", &format!("/v1/products/{ragu}"), Some(&key), None, &[]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(app.count_sql(held_sql, "RAGU1").await, 0);
    chilled_product(app, &key, &ragu, "Ragu").await;
    into(&ragu, "RAGU1", "chill", "38712345000169300", "available").await;
    assert_eq!(balances(ragu.clone(), "RAGU1").await, [("chill".into(), 4, "available".into())]);
}

/// A consumer scanning a lot made from a recalled one (another brand's, at one or two
/// transformations' remove) is told so by its page and its `gs1:recallStatus`, though its own
/// brand has not recalled it; a lot or item made from another lot is not, and says it is not
/// recalled.
pub async fn fulfilment_a_lot_made_from_a_recalled_one_says_so(app: &TestApp) {
    network(app).await;
    let butcher = app.tenant("butcher", &["tenant:admin"]).await;
    let beef = gtin("871234510130");
    chilled_product(app, &butcher, &beef, "Beef mince").await;
    receive(app, &butcher, &beef, &[("BEEF1", 20, 10), ("BEEF2", 20, 10)], 130_000).await;
    let (pasta, lasagne) = (app.tenant("pasta", &["tenant:admin"]).await, gtin("871234510131"));
    chilled_product(app, &pasta, &lasagne, "Lasagne").await;
    let family = gtin("871234510132");
    chilled_product(app, &pasta, &family, "Family pack").await;
    receive(app, &pasta, &lasagne, &[("LAS1", 19, 8), ("LAS2", 20, 8)], 131_000).await;
    let class = |product: &str, lot: &str| format!("https://id.gs1.org/01/{product}/10/{lot}");
    let made = |input: String, output: Value| {
        let mut event = json!({"type": "TransformationEvent", "eventTime": jiff::Timestamp::now().to_string(),
            "eventTimeZoneOffset": "+01:00", "inputQuantityList": [{"epcClass": input, "quantity": 4}]});
        match output.as_str() {
            Some(item) => event["outputEPCList"] = json!([item]),
            None => event["outputQuantityList"] = json!([output]),
        }
        event
    };
    // BEEF1 into LAS1, LAS1 into a family pack FAM1, BEEF1 into a serialised lasagne; BEEF2
    // into LAS2.
    let events = vec![
        made(class(&beef, "BEEF1"), json!({"epcClass": class(&lasagne, "LAS1"), "quantity": 8})),
        made(class(&lasagne, "LAS1"), json!({"epcClass": class(&family, "FAM1"), "quantity": 1})),
        made(class(&beef, "BEEF1"), json!(format!("https://id.gs1.org/01/{lasagne}/21/S-1"))),
        made(class(&beef, "BEEF2"), json!({"epcClass": class(&lasagne, "LAS2"), "quantity": 8})),
    ];
    let job = app.capture_job(&pasta, super::epcis_interface::document(events), &[]).await;
    assert_eq!(job["success"], true, "{job}");
    let lasagne14 = format!("{lasagne:0>14}");
    let status = |path: String| async move { app.send("GET", &format!("/recall-status{path}"), None, None, &[]).await };
    let page = |path: String| async move {
        let answer = app.client.get(format!("{}{path}", app.base)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        answer.text().await.unwrap()
    };
    let las1 = format!("/01/{lasagne14}/10/LAS1");
    let before = status(las1.clone()).await;
    assert_eq!((&before.body["recalled"], &before.body["made_from_recalled"]), (&json!(false), &json!([])));
    let shown = page(las1.clone()).await;
    assert!(shown.contains("<li class=\"ok\">Not recalled</li>") && !shown.contains("id=\"recall-input\""), "{shown}");

    // What consumers are told is one paragraph of at most 500 characters; a refused one stores
    // nothing.
    for (notice, detail) in [
        ("x".repeat(501), "at most 500 characters"),
        ("Do not eat.\u{7}".to_owned(), "control characters"),
        (" ".to_owned(), "must not be empty"),
        ("Do not eat.\u{2029}Bring it back.".to_owned(), "U+2029"),
        ("Do not eat \u{202E}kcab ti gnirb".to_owned(), "U+202E"),
    ] {
        let body = json!({"gtin": beef, "lots": ["BEEF1"], "reason": "E. coli", "public_notice": notice});
        let refused = app.post("/v1/recalls", &butcher, body).await;
        assert!(refused.is_problem(422, "/problems/validation-failed"), "{:?}", refused.body);
        assert!(
            refused.pointers() == ["/public_notice"] && refused.body.to_string().contains(detail),
            "{:?}",
            refused.body
        );
    }
    assert_eq!(app.get("/v1/recalls", &butcher).await.body["items"], json!([]), "nothing stored");
    let notice = "Possible <E. coli>: do not eat it. Return it to the shop for a refund.";
    let body = json!({"gtin": beef, "lots": ["BEEF1"], "reason": "E. coli in batch test 41", "public_notice": notice});
    let recall = app.post("/v1/recalls", &butcher, body).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    assert_eq!(recall.body["public_notice"], notice, "{:?}", recall.body);
    let recall_id = recall.body["recall_id"].as_str().unwrap();
    let read = app.get(&format!("/v1/recalls/{recall_id}"), &butcher).await;
    assert_eq!(read.body["public_notice"], notice, "{:?}", read.body);
    let listed = app.get("/v1/recalls", &butcher).await;
    assert_eq!(listed.body["items"][0]["public_notice"], notice, "{:?}", listed.body);
    let beef1 = json!([{"item": class(&format!("{beef:0>14}"), "BEEF1"), "gtin": format!("{beef:0>14}"),
                        "lot": "BEEF1", "recall_id": recall_id, "public_notice": notice}]);
    // The recall statuses read are at most a second old.
    let recalled_at = std::time::Instant::now();
    loop {
        let now = status(las1.clone()).await;
        if now.body["made_from_recalled"] == beef1 {
            assert_eq!(now.body["recalled"], false, "not recalled by its own brand: {:?}", now.body);
            break;
        }
        assert!(
            recalled_at.elapsed() < server::provenance::RECALL_STATUS_LIFETIME + std::time::Duration::from_secs(1),
            "{:?}",
            now.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Two removes back; a serialised item made from it; an item of LAS1 named by lot and serial,
    // which no event names by its serial.
    for path in [
        format!("/01/{:0>14}/10/FAM1", family),
        format!("/01/{lasagne14}/21/S-1"),
        format!("/01/{lasagne14}/10/LAS1/21/S-9"),
    ] {
        let made_from = status(path.clone()).await;
        assert_eq!(made_from.body["made_from_recalled"], beef1, "{path}: {:?}", made_from.body);
        assert_eq!(made_from.body["made_from_truncated"], false, "{path}: {:?}", made_from.body);
    }
    // A till scanning the lasagne is told not to sell it; the other lot sells.
    let shop = app.tenant("shop", &["tenant:read"]).await;
    for (lot, recalled) in [("LAS1", beef1.clone()), ("LAS2", json!([]))] {
        let scanned = app.post("/v1/scan", &shop, json!({"data": format!("(01){lasagne14}(10){lot}")})).await;
        assert_eq!(scanned.status, StatusCode::OK, "{:?}", scanned.body);
        let without_items: Vec<Value> = recalled
            .as_array()
            .unwrap()
            .iter()
            .map(|lot| {
                json!({"gtin": lot["gtin"], "lot": lot["lot"], "recall_id": lot["recall_id"],
                       "public_notice": lot["public_notice"]})
            })
            .collect();
        assert_eq!(scanned.body["made_from_recalled"], json!(without_items), "{lot}: {:?}", scanned.body);
        assert_eq!((&scanned.body["recalled"], &scanned.body["recall_notice"]), (&json!(false), &Value::Null));
    }
    let other = status(format!("/01/{lasagne14}/10/LAS2")).await;
    assert_eq!((&other.body["recalled"], &other.body["made_from_recalled"]), (&json!(false), &json!([])));

    let shown = page(las1).await;
    assert!(shown.contains("role=\"alert\" id=\"recall-input\""), "{shown}");
    assert!(shown.contains("Beef mince") && shown.contains("<code>BEEF1</code>"), "{shown}");
    // The butcher's words, escaped, beside its lot; not the recall's reason.
    let escaped = "Possible &lt;E. coli&gt;: do not eat it. Return it to the shop for a refund.";
    assert!(
        shown.contains(&format!("<span class=\"recall-notice\" lang=\"\" dir=\"auto\">{escaped}</span>")),
        "{shown}"
    );
    assert!(!shown.contains("batch test 41"), "{shown}");
    assert!(shown.contains("<li class=\"failed\">Made from a recalled lot</li>"), "the check: {shown}");
    assert!(!shown.contains("Not recalled"), "{shown}");
    assert!(!shown.contains("id=\"recall\""), "the lot itself is not recalled: {shown}");
    let shown = page(format!("/01/{lasagne14}/10/LAS2")).await;
    assert!(shown.contains("<li class=\"ok\">Not recalled</li>") && !shown.contains("id=\"recall-input\""), "{shown}");

    // A lot made from more lots than a page checks says so, and does not claim to be clear.
    let inputs: Vec<Value> = (0..=server::provenance::ORIGIN_LOTS_CHECKED_MAX)
        .map(|index| json!({"epcClass": class(&beef, &format!("B{index}")), "quantity": 1}))
        .collect();
    let big = json!({"type": "TransformationEvent", "eventTime": jiff::Timestamp::now().to_string(),
        "eventTimeZoneOffset": "+01:00", "inputQuantityList": inputs,
        "outputQuantityList": [{"epcClass": class(&lasagne, "BIG1"), "quantity": 1}]});
    let job = app.capture_job(&pasta, super::epcis_interface::document(vec![big]), &[]).await;
    assert_eq!(job["success"], true, "{job}");
    let big1 = format!("/01/{lasagne14}/10/BIG1");
    let checked = status(big1.clone()).await;
    assert_eq!(checked.body["made_from_truncated"], true, "{:?}", checked.body);
    let shown = page(big1).await;
    assert!(shown.contains("BIG1") && !shown.contains("Not recalled"), "{shown}");

    // The pasta brand recalling its family pack finds where to look: the lasagne lot it made it
    // from, and two removes back, the butcher's recalled beef.
    let body = json!({"gtin": family, "lots": ["FAM1"], "reason": "E. coli", "public_notice": "Bring it back."});
    let recall = app.post("/v1/recalls", &pasta, body).await;
    assert_eq!(recall.status, StatusCode::CREATED, "{:?}", recall.body);
    // Its own notice, on its status, its page and the till's scan.
    let fam1_path = format!("/01/{:0>14}/10/FAM1", family);
    let own = status(fam1_path.clone()).await;
    assert_eq!(
        (&own.body["recalled"], &own.body["recall_id"], &own.body["public_notice"]),
        (&json!(true), &recall.body["recall_id"], &json!("Bring it back.")),
        "{:?}",
        own.body
    );
    let shown = page(fam1_path).await;
    let banner = shown.split("id=\"recall\"").nth(1).unwrap().split("</div>").next().unwrap();
    assert!(banner.contains("<p class=\"recall-notice\" lang=\"\" dir=\"auto\">Bring it back.</p>"), "{shown}");
    let scanned = app.post("/v1/scan", &shop, json!({"data": format!("(01){:0>14}(10)FAM1", family)})).await;
    assert_eq!((&scanned.body["recalled"], &scanned.body["recall_notice"]), (&json!(true), &json!("Bring it back.")));
    // A recall that says nothing to consumers: the status has no notice, the page none.
    let las2 = format!("/01/{lasagne14}/10/LAS2");
    let body = json!({"gtin": lasagne, "lots": ["LAS2"], "reason": "seal"});
    assert_eq!(app.post("/v1/recalls", &pasta, body).await.status, StatusCode::CREATED);
    let plain = status(las2.clone()).await;
    assert_eq!((&plain.body["recalled"], plain.body.get("public_notice")), (&json!(true), None), "{:?}", plain.body);
    // (Its page was read before the recall: its status is read again after at most a second.)
    tokio::time::sleep(server::provenance::RECALL_STATUS_LIFETIME + std::time::Duration::from_millis(100)).await;
    let shown = page(las2).await;
    assert!(shown.contains("id=\"recall\"") && !shown.contains("recall-notice"), "{shown}");
    let sources: Vec<(&str, &str, &Value, &Value, &Value)> = recall.body["source_lots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lot| {
            (
                lot["lot"].as_str().unwrap(),
                lot["product"].as_str().unwrap(),
                &lot["own_product"],
                &lot["recall_id"],
                &lot["used_in"],
            )
        })
        .collect();
    let fam1 = json!(["FAM1"]);
    assert_eq!(
        sources,
        [
            ("BEEF1", "Beef mince", &json!(false), &json!(recall_id), &fam1),
            ("LAS1", "Lasagne", &json!(true), &Value::Null, &fam1)
        ],
        "{:?}",
        recall.body
    );
}

/// A step uploaded late says when it happened: its EPCIS event and the order's arrival (so the
/// SLA) take that time. A time before the order, or ahead of the clock, is refused and stores
/// nothing.
pub async fn fulfilment_a_step_says_when_it_happened(app: &TestApp) {
    network(app).await;
    let (key, product) = merchant(app, "late", "871234510098").await;
    receive(app, &key, &product, &[("LATE", 20, 10)], 98_000).await;
    let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    // Placed 30 hours ago, as far as the order knows.
    app.execute_sql(&["UPDATE orders SET placed_unix_ms = placed_unix_ms - 108000000 WHERE order_id = $1"], &order_id)
        .await;
    let path = format!("/v1/orders/{order_id}/events?tenant=late");
    let pallet = with_check_digit("38712345000098100");
    let hours_ago = |hours: i64| (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours)).to_string();
    // The whole upload is late: picked, packed and shipped 29 to 27 hours ago.
    let steps = [
        json!({"status": "picking", "at": hours_ago(29)}),
        json!({"status": "packed", "ssccs": [pallet], "at": hours_ago(28)}),
        json!({"status": "shipped", "at": hours_ago(27)}),
    ];
    walk(app, &path, &steps).await;
    let ahead = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10)).to_string();
    for (at, said) in [(hours_ago(31), "before the order was placed"), (ahead, "ahead of now")] {
        let refused = app.post(&path, &app.operator_key, json!({"status": "at_pickup_point", "at": at})).await;
        assert!(
            refused.is_problem(422, "/problems/validation-failed") && refused.pointers() == ["/at"],
            "{:?}",
            refused.body
        );
        assert!(refused.body.to_string().contains(said), "{:?}", refused.body);
    }
    assert_eq!(app.get(&format!("/v1/orders/{order_id}"), &key).await.body["status"], "shipped");
    // It arrived ten hours ago, twenty after it was placed: within 24 hours.
    let at: jiff::Timestamp = hours_ago(10).parse().unwrap();
    let arrived = app.post(&path, &app.operator_key, json!({"status": "at_pickup_point", "at": at.to_string()})).await;
    assert_eq!(arrived.status, StatusCode::OK, "{:?}", arrived.body);
    let arrived_at: jiff::Timestamp = arrived.body["arrived_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(arrived_at.as_millisecond(), at.as_millisecond(), "{:?}", arrived.body);
    let events = events_of(app, &key, "arriving", &format!("MATCH_epc=https://id.gs1.org/00/{pallet}")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event_time: jiff::Timestamp = events[0]["eventTime"].as_str().unwrap().parse().unwrap();
    assert_eq!(event_time.as_millisecond(), at.as_millisecond(), "{events:?}");
    let sla = app.get("/v1/sla", &key).await;
    assert_eq!(
        (sla.body["total"]["delivered"].as_i64(), sla.body["total"]["delivered_within_24h"].as_i64()),
        (Some(1), Some(1)),
        "{:?}",
        sla.body
    );
}

/// The ledger under random operations through the API (receipts, orders, cancellations,
/// shipments short or whole, returns, scrap, counts above and below the reserved units; a fixed
/// seed): after each, every balance keeps its invariants (0 ≤ reserved ≤ on-hand), holds the
/// units the operations put there (a model kept beside), its reserved units are exactly those of
/// the orders holding it, and the journal's movements sum to it.
pub async fn fulfilment_random_operations_keep_the_ledger(app: &TestApp) {
    use std::collections::BTreeMap;
    network(app).await;
    let (key, product) = merchant(app, "random", "871234510099").await;
    const LOTS: [&str; 3] = ["R1", "R2", "R3"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let mut on_hand: BTreeMap<&str, i64> = LOTS.iter().map(|lot| (*lot, 0)).collect();
    let mut open: Vec<String> = Vec::new(); // allocated, not shipped
    let mut shipped: Vec<(String, Vec<(String, i64)>)> = Vec::new(); // with the units per pick
    let mut sscc_serial = 99_000u64;
    let picks_of = |order: &Value| -> Vec<(String, i64)> {
        order["shipments"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|shipment| shipment["picks"].as_array().unwrap().clone())
            .map(|pick| (pick["lot"].as_str().unwrap().to_owned(), pick["quantity"].as_i64().unwrap()))
            .collect()
    };
    let mut done = BTreeMap::<&str, u32>::new();
    let mut received = std::collections::BTreeSet::<&str>::new();
    // The reserved units as the last step left them (checked against the stock after each).
    let mut reserved_now: BTreeMap<String, i64> = BTreeMap::new();
    for step in 0..120 {
        let lot = LOTS[next(3) as usize];
        let operation = match next(9) {
            0 | 1 => {
                let units = 1 + next(12) as i64;
                sscc_serial += 1;
                let days = 20 + 5 * LOTS.iter().position(|name| *name == lot).unwrap() as i64;
                receive(app, &key, &product, &[(lot, days, units)], sscc_serial).await;
                *on_hand.get_mut(lot).unwrap() += units;
                received.insert(lot);
                "receipt"
            }
            2 | 3 => {
                let units = 1 + next(6) as i64;
                // Every lot is fresh and in one room of the one site: the order is served exactly
                // when the free units (on hand, less what the open orders hold) suffice.
                let free: i64 = on_hand.values().sum::<i64>() - reserved_now.values().sum::<i64>();
                let placed = app.post("/v1/orders", &key, order_body(&product, units)).await;
                if free >= units {
                    assert_eq!(placed.status, StatusCode::CREATED, "step {step}: {free} free: {:?}", placed.body);
                    let picked: i64 = picks_of(&placed.body).iter().map(|(_, quantity)| quantity).sum();
                    assert_eq!(picked, units, "step {step}: {:?}", placed.body);
                    open.push(placed.body["order_id"].as_str().unwrap().to_owned());
                } else {
                    assert!(placed.is_problem(409, "/problems/insufficient-stock"), "step {step}: {:?}", placed.body);
                }
                "order"
            }
            4 if !open.is_empty() => {
                let order_id = open.remove(next(open.len() as u64) as usize);
                let cancelled =
                    app.post(&format!("/v1/orders/{order_id}/events"), &key, json!({"status": "cancelled"})).await;
                assert_eq!(cancelled.status, StatusCode::OK, "step {step}: {:?}", cancelled.body);
                "cancel"
            }
            5 if !open.is_empty() => {
                let order_id = open.remove(next(open.len() as u64) as usize);
                let order = app.get(&format!("/v1/orders/{order_id}"), &key).await.body;
                if order["status"] != "allocated" {
                    // A count took its units and no other lot had any: flagged, not shipped.
                    continue;
                }
                let picks = picks_of(&order);
                // Some picks ship short; at least one unit goes.
                let mut units: Vec<i64> = picks.iter().map(|(_, quantity)| quantity - next(2) as i64).collect();
                if units.iter().all(|units| *units == 0) {
                    units[0] = 1;
                }
                sscc_serial += 1;
                let pallet = with_check_digit(&format!("38712345{sscc_serial:09}"));
                let path = format!("/v1/orders/{order_id}/events?tenant=random");
                walk(
                    app,
                    &path,
                    &[
                        json!({"status": "picking"}),
                        json!({"status": "packed", "ssccs": [pallet]}),
                        json!({"status": "shipped", "shipped": units}),
                    ],
                )
                .await;
                for ((lot, _), units) in picks.iter().zip(&units) {
                    *on_hand.get_mut(lot.as_str()).unwrap() -= units;
                }
                shipped.push((order_id, picks.iter().map(|(lot, _)| lot.clone()).zip(units).collect()));
                "ship"
            }
            6 if !shipped.is_empty() => {
                let (order_id, units) = shipped.remove(next(shipped.len() as u64) as usize);
                let restocked: Vec<i64> = units.iter().map(|(_, units)| next(*units as u64 + 1) as i64).collect();
                let path = format!("/v1/orders/{order_id}/events?tenant=random");
                walk(app, &path, &[json!({"status": "returned", "restocked": restocked})]).await;
                for ((lot, _), units) in units.iter().zip(&restocked) {
                    *on_hand.get_mut(lot.as_str()).unwrap() += units;
                }
                "return"
            }
            7 => {
                let units = 1 + next(4) as i64;
                let scrap = json!({"location": dc(), "zone": "chill", "gtin": product, "lot": lot, "quantity": units,
                                   "reason": "damaged"});
                let scrapped = app.post("/v1/stock/scrap", &key, scrap).await;
                let free = on_hand[lot] - reserved_now.get(lot).copied().unwrap_or(0);
                if !received.contains(lot) {
                    assert!(
                        scrapped.is_problem(422, "/problems/unknown-reference"),
                        "step {step}: {:?}",
                        scrapped.body
                    );
                } else if free >= units {
                    assert_eq!(scrapped.status, StatusCode::OK, "step {step}: {free} free: {:?}", scrapped.body);
                    *on_hand.get_mut(lot).unwrap() -= units;
                } else {
                    assert!(
                        scrapped.is_problem(409, "/problems/insufficient-stock"),
                        "step {step}: {:?}",
                        scrapped.body
                    );
                }
                "scrap"
            }
            _ => {
                let counted = (on_hand[lot] + 2 - next(6) as i64).max(0);
                let count = json!({"location": dc(), "zone": "chill", "gtin": product, "lot": lot, "counted": counted,
                                   "reason": "shelf count"});
                let answer = app.post("/v1/stock/counts", &key, count).await;
                if received.contains(lot) {
                    // No order rests picked or packed here: any count is taken (one below the
                    // reserved units takes them back from the newest orders).
                    assert_eq!(answer.status, StatusCode::OK, "step {step}: {:?}", answer.body);
                    *on_hand.get_mut(lot).unwrap() = counted;
                } else {
                    assert!(answer.is_problem(422, "/problems/unknown-reference"), "step {step}: {:?}", answer.body);
                }
                "count"
            }
        };
        *done.entry(operation).or_default() += 1;
        // The reserved units, from the orders holding stock now.
        let mut reserved: BTreeMap<String, i64> = BTreeMap::new();
        for order_id in &open {
            let order = app.get(&format!("/v1/orders/{order_id}"), &key).await.body;
            if order["status"] == "allocated" {
                for (lot, quantity) in picks_of(&order) {
                    *reserved.entry(lot).or_default() += quantity;
                }
            }
        }
        let stock = app.get(&format!("/v1/stock?gtin={product}&limit=500"), &key).await;
        let balances = stock.body["items"].as_array().unwrap();
        let listed: Vec<&str> = balances.iter().map(|balance| balance["lot"].as_str().unwrap()).collect();
        assert_eq!(listed, received.iter().copied().collect::<Vec<_>>(), "step {step} ({operation})");
        for balance in balances {
            let lot = balance["lot"].as_str().unwrap();
            let (held, holding) = (balance["on_hand"].as_i64().unwrap(), balance["reserved"].as_i64().unwrap());
            assert!(0 <= holding && holding <= held, "step {step} ({operation}): {balance:?}");
            assert_eq!(held, on_hand[lot], "step {step} ({operation}): on hand of {lot}");
            assert_eq!(
                holding,
                reserved.get(lot).copied().unwrap_or(0),
                "step {step} ({operation}): reserved of {lot}"
            );
        }
        reserved_now = reserved;
    }
    // The journal sums to every balance.
    let mut summed: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for movement in journal(app, &key, &format!("gtin={product}"), 500).await {
        let kind = stock::MovementKind::parse(movement["kind"].as_str().unwrap()).unwrap();
        let delta = kind.delta(movement["quantity"].as_i64().unwrap());
        let sum = summed.entry(movement["lot"].as_str().unwrap().to_owned()).or_default();
        *sum = (sum.0 + delta.on_hand, sum.1 + delta.reserved);
    }
    let stock = app.get(&format!("/v1/stock?gtin={product}&limit=500"), &key).await;
    for balance in stock.body["items"].as_array().unwrap() {
        let lot = balance["lot"].as_str().unwrap();
        assert_eq!(
            summed.get(lot).copied().unwrap_or_default(),
            (balance["on_hand"].as_i64().unwrap(), balance["reserved"].as_i64().unwrap()),
            "the journal of {lot}"
        );
    }
    // Every kind of operation ran.
    assert_eq!(done.len(), 7, "{done:?}");
}

/// An endpoint that accepts, reads and never answers: its URL (`path` on it), how many
/// connections it accepted, and whether keten gave up on one (closed it).
pub async fn silent_endpoint(
    path: &str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let (accepted, given_up) = (std::sync::Arc::new(AtomicUsize::new(0)), std::sync::Arc::new(AtomicBool::new(false)));
    let (accepting, closing) = (accepted.clone(), given_up.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            accepting.fetch_add(1, Ordering::SeqCst);
            let closing = closing.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while matches!(socket.read(&mut buffer).await, Ok(read) if read > 0) {}
                closing.store(true, Ordering::SeqCst);
            });
        }
    });
    (url, accepted, given_up)
}

/// A merchant's endpoint that takes a delivery and never answers holds up its own webhook only:
/// another merchant's transition arrives while that request still hangs.
pub async fn fulfilment_a_silent_endpoint_holds_up_only_its_own_webhook(app: &TestApp) {
    use std::sync::atomic::Ordering;
    network(app).await;
    let (silent_url, accepted, given_up) = silent_endpoint("/orders").await;
    let secret = "a-merchant-secret-of-32-characters";
    let mut orders = Vec::new();
    for (tenant, body) in [("silent", "871234510101"), ("heard", "871234510102")] {
        let (key, product) = merchant(app, tenant, body).await;
        receive(app, &key, &product, &[("S1", 20, 5)], if tenant == "silent" { 101_000 } else { 102_000 }).await;
        let url = if tenant == "silent" { silent_url.clone() } else { String::new() };
        orders.push((key, product, url));
    }
    let (heard_url, received) = receiver(0).await;
    orders[1].2 = heard_url;
    for (key, _, url) in &orders {
        let hook = app.post("/v1/webhooks", key, json!({"url": url, "secret": secret})).await;
        assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    }
    // The silent merchant's order first: its delivery hangs.
    let placed = app.post("/v1/orders", &orders[0].0, order_body(&orders[0].1, 1)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    for _ in 0..100 {
        if accepted.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(accepted.load(Ordering::SeqCst) > 0, "the silent endpoint was never called");
    let placed = app.post("/v1/orders", &orders[1].0, order_body(&orders[1].1, 1)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_owned();
    let mut heard = Vec::new();
    for _ in 0..200 {
        heard = signed_deliveries(&received, secret);
        if !heard.is_empty() || given_up.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(!heard.is_empty() && !given_up.load(Ordering::SeqCst), "the other merchant waited for the silent endpoint");
    assert_eq!(heard[0]["transitions"][0]["order_id"], order_id.as_str());
}

/// More webhooks are due than a poll hands out (110 with nothing to send, of 11 merchants at
/// their limit, ahead of the one that has something in key order and in the order of their
/// next attempts): the one with a transition still gets its turn.
pub async fn fulfilment_every_due_webhook_gets_its_turn(app: &TestApp) {
    network(app).await;
    let secret = "a-merchant-secret-of-32-characters";
    for tenant in 0..11 {
        let key = app.tenant(&format!("idle{tenant:02}"), &["tenant:admin"]).await;
        for hook in 0..10 {
            let url = format!("http://127.0.0.1:9/idle/{hook}");
            let created = app.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await;
            assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        }
    }
    let (key, product) = merchant(app, "zactive", "871234510103").await;
    receive(app, &key, &product, &[("T1", 20, 5)], 103_000).await;
    let (url, received) = receiver(0).await;
    let hook = app.post("/v1/webhooks", &key, json!({"url": url, "secret": secret})).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let placed = app.post("/v1/orders", &key, order_body(&product, 1)).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let mut heard = Vec::new();
    for _ in 0..150 {
        heard = signed_deliveries(&received, secret);
        if !heard.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(heard.len(), 1, "the active webhook never got its turn");
    assert_eq!(heard[0]["transitions"][0]["order_id"], placed.body["order_id"]);
}

/// An ASN of the most pallets an ASN takes (1,000: past the 128 keys of one SQLite statement), of
/// three products and 250 lots. SSCCs announced before and a lot awaited with another expiry are
/// named at their own pallets; the ASN then stored is received in two parts, each lot's units
/// counted once, a recalled lot's pallets as recalled; a third receipt finds nothing left.
pub async fn fulfilment_a_full_asn_is_checked_and_received_in_parts(app: &TestApp) {
    const PALLETS: usize = 1_000;
    const LOTS: usize = 250;
    network(app).await;
    let (key, first) = merchant(app, "bulk", "871234510101").await;
    let mut products = vec![first];
    for body in ["871234510102", "871234510103"] {
        let product = gtin(body);
        let created = app
            .post(
                "/v1/products",
                &key,
                json!({"gtin": product, "name": "Trout", "temperature_class": "chilled", "shelf_life_days": 30}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        products.push(product);
    }
    // Pallet i holds lot B(i % 250) of product (i % 250) % 3, expiring 20–29 days out by its lot.
    let lot_of = |index: usize| index % LOTS;
    let pallet = |serial: usize, index: usize| {
        let lot = lot_of(index);
        json!({"sscc": with_check_digit(&format!("3871234560{serial:07}")), "gtin": products[lot % 3],
               "lot": format!("B{lot}"), "expiry": in_days(20 + (lot % 10) as i64), "quantity": 1 + index % 5})
    };
    let big = |first_serial: usize, awaited_expiry: Option<&str>| {
        let pallets: Vec<Value> = (0..PALLETS)
            .map(|index| {
                let mut pallet = pallet(first_serial + index, index);
                if lot_of(index) == 123
                    && let Some(expiry) = awaited_expiry
                {
                    pallet["expiry"] = json!(expiry);
                }
                pallet
            })
            .collect();
        json!({"location": dc(), "pallets": pallets})
    };
    // Before it: an ASN announcing two of its SSCCs (pallets 700 and 999, as the big ASN has
    // them), one announcing lot B123 with another expiry, and lot B7 received and recalled.
    let taken = json!({"location": dc(), "pallets": [pallet(700, 700), pallet(999, 999)]});
    assert_eq!(app.post("/v1/asns", &key, taken).await.status, StatusCode::CREATED);
    let mut other_expiry = pallet(5_000, 123);
    other_expiry["expiry"] = json!(in_days(50));
    let awaited = json!({"location": dc(), "pallets": [other_expiry]});
    assert_eq!(app.post("/v1/asns", &key, awaited).await.status, StatusCode::CREATED);
    receive(app, &key, &products[7 % 3], &[("B7", 20 + 7, 4)], 5_001).await;
    let recall = json!({"gtin": products[7 % 3], "lots": ["B7"], "reason": "bulk test"});
    assert_eq!(app.post("/v1/recalls", &key, recall).await.status, StatusCode::CREATED);

    let announced = app.post("/v1/asns", &key, big(0, None)).await;
    assert!(announced.is_problem(409, "/problems/conflict"), "{:?}", announced.body);
    assert_eq!(announced.pointers(), ["/pallets/700/sscc", "/pallets/999/sscc"], "{:?}", announced.body);
    let other_date = app.post("/v1/asns", &key, big(10_000, None)).await;
    assert!(other_date.is_problem(409, "/problems/lot-conflict"), "{:?}", other_date.body);
    let expected: Vec<String> =
        (0..PALLETS).filter(|index| lot_of(*index) == 123).map(|index| format!("/pallets/{index}/expiry")).collect();
    assert_eq!(other_date.pointers(), expected, "{:?}", other_date.body);
    let expiry = in_days(50);
    let asn = app.post("/v1/asns", &key, big(10_000, Some(&expiry))).await;
    assert_eq!(asn.status, StatusCode::CREATED, "{:?}", asn.body);
    let receipts = format!("/v1/asns/{}/receipts", asn.body["asn_id"].as_str().unwrap());

    // The first 300 pallets by SSCC, then the rest.
    let first_part: Vec<String> =
        (0..300).map(|index| with_check_digit(&format!("3871234560{:07}", 10_000 + index))).collect();
    let mut units: std::collections::BTreeMap<(String, String), i64> = std::collections::BTreeMap::new();
    for (part, body) in [(0, json!({"zone": "chill", "ssccs": first_part})), (1, json!({"zone": "chill"}))] {
        let received = app.post(&receipts, &key, body).await;
        assert_eq!(received.status, StatusCode::CREATED, "{:?}", received.body);
        let indexes: Vec<usize> = if part == 0 { (0..300).collect() } else { (300..PALLETS).collect() };
        let mut expected: std::collections::BTreeMap<(String, String), i64> = std::collections::BTreeMap::new();
        for index in indexes {
            let lot = lot_of(index);
            // As answered: GTINs of 14 digits.
            let gtin = format!("{:0>14}", products[lot % 3]);
            *expected.entry((gtin, format!("B{lot}"))).or_default() += 1 + (index % 5) as i64;
        }
        let lots = received.body["lots"].as_array().unwrap();
        let said: std::collections::BTreeMap<(String, String), i64> = lots
            .iter()
            .map(|lot| {
                let recalled = lot["lot"] == "B7";
                assert_eq!(lot["status"], if recalled { "recalled" } else { "available" }, "{lot:?}");
                (
                    (lot["gtin"].as_str().unwrap().to_owned(), lot["lot"].as_str().unwrap().to_owned()),
                    lot["units"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(said, expected, "part {part}: each lot's units once");
        for (lot, received) in expected {
            *units.entry(lot).or_default() += received;
        }
    }
    let again = app.post(&receipts, &key, json!({"zone": "chill"})).await;
    assert!(again.is_problem(409, "/problems/already-received"), "{:?}", again.body);
    let read = app.get(&format!("/v1/asns/{}", asn.body["asn_id"].as_str().unwrap()), &key).await;
    assert_eq!(read.body["received_pallets"], PALLETS, "{:?}", read.body);
    // The stock: every lot's units, B7's four before it too, and nothing of the pallets only announced.
    *units.entry((format!("{:0>14}", products[7 % 3]), "B7".to_owned())).or_default() += 4;
    let mut stock: std::collections::BTreeMap<(String, String), i64> = std::collections::BTreeMap::new();
    for product in &products {
        let page = app.get(&format!("/v1/stock?gtin={product}&limit=500"), &key).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            let lot = (item["gtin"].as_str().unwrap().to_owned(), item["lot"].as_str().unwrap().to_owned());
            *stock.entry(lot).or_default() += item["on_hand"].as_i64().unwrap();
        }
    }
    assert_eq!(stock, units);
}
