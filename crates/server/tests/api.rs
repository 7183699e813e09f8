//! End-to-end tests of the HTTP API: each spawns the real application on port 0 with a fresh
//! database, on SQLite and on PostgreSQL (skipped loudly without PostgreSQL; a failure under CI=true).

use reqwest::StatusCode;
use serde_json::{Value, json};
use store::{Store, StoreConfig};

struct TestApp {
    base: String,
    client: reqwest::Client,
    store: Store,
    /// The database's URL, for a test that changes rows as an older version left them.
    url: String,
    operator_key: String,
    _sqlite: Option<scratchdb::SqliteFile>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn spawn_app(backend: Backend, test: &str) -> Option<TestApp> {
    let (url, sqlite) = match backend {
        Backend::Sqlite => {
            let file = scratchdb::SqliteFile::new().unwrap();
            (file.url(), Some(file))
        }
        Backend::Postgres => (scratchdb::postgres_or_skip(test)?, None),
    };
    Some(spawn_app_at(url, sqlite).await)
}

/// Starts the application on an existing database (a restart when one ran there before).
async fn spawn_app_at(url: String, sqlite: Option<scratchdb::SqliteFile>) -> TestApp {
    spawn_app_configured(url, sqlite, |_| {}).await
}

async fn spawn_app_configured(
    url: String,
    sqlite: Option<scratchdb::SqliteFile>,
    configure: impl FnOnce(&mut server::ServerConfig),
) -> TestApp {
    // A failing test shows what the app logged (errors by default, `RUST_LOG` for more): an
    // internal error's cause is in the log, not in the answer.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
    let store = Store::open(StoreConfig::new(url.clone())).await.unwrap();
    let operator_key = {
        use store::{Mutation, PutMode, Write};
        let network = network::TenantId::network();
        store
            .write(Write {
                tenant_id: network.clone(),
                mutation: Mutation::PutTenant { name: "network".into(), mode: PutMode::Upsert },
                idempotency: None,
            })
            .await
            .unwrap();
        demo::mint(&store, &network, store::Scope::Operator, "test operator").await.unwrap()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let mut config = server::ServerConfig::new("test.keten/log", base.clone());
    // The test's webhook receivers listen on loopback.
    config.webhooks_to_private_addresses = true;
    configure(&mut config);
    let server = tokio::spawn(server::serve(listener, store.clone(), config, async move {
        let _ = stop.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        store,
        url,
        operator_key,
        _sqlite: sqlite,
        _shutdown: shutdown,
        server,
    }
}

/// A response: status, headers and JSON body (Null when empty or not JSON).
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }

    fn pointers(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|error| error["pointer"].as_str()).collect())
            .unwrap_or_default()
    }

    fn is_problem(&self, status: u16, problem_type: &str) -> bool {
        let content_type = self.headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or("");
        self.status.as_u16() == status
            && self.problem_type() == problem_type
            && content_type == "application/problem+json"
            && self.body["status"] == status
            && self.body["title"].is_string()
            && self.body["detail"].is_string()
    }
}

impl TestApp {
    /// Runs statements on the app's database beside the app (as an older version, or another
    /// tool, would have left the rows), each with the one text argument `$1`.
    async fn execute_sql(&self, statements: &[&str], argument: &str) {
        use sqlx::Connection;
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            for statement in statements {
                sqlx::query(statement).bind(argument).execute(&mut conn).await.unwrap();
            }
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            for statement in statements {
                sqlx::query(statement).bind(argument).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// Counts rows beside the app: `sql` answers one integer, given the one text argument `$1`.
    async fn count_sql(&self, sql: &str, argument: &str) -> i64 {
        use sqlx::Connection;
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).bind(argument).fetch_one(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).bind(argument).fetch_one(&mut conn).await.unwrap()
        }
    }

    /// Runs a migration's script again on the app's database (one for each backend), after a
    /// test left rows as an older version would have.
    async fn run_script(&self, sqlite: &str, postgres: &str) {
        use sqlx::Connection;
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sqlite).execute(&mut conn).await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(postgres).execute(&mut conn).await.unwrap();
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        Answer { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        self.send("GET", path, Some(key), None, &[]).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.send("POST", path, Some(key), Some(body), &[]).await
    }

    async fn raw_post(&self, path: &str, key: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        Answer { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// Creates a tenant and answers a key with the given scopes.
    async fn tenant(&self, tenant_id: &str, scopes: &[&str]) -> String {
        let created = self
            .post("/v1/operator/tenants", &self.operator_key, json!({"tenant_id": tenant_id, "name": tenant_id}))
            .await;
        assert!(created.status == StatusCode::CREATED || created.status == StatusCode::CONFLICT, "{:?}", created.body);
        let key = self
            .post(
                &format!("/v1/operator/tenants/{tenant_id}/keys"),
                &self.operator_key,
                json!({"name": "test", "scopes": scopes}),
            )
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{:?}", key.body);
        key.body["secret"].as_str().unwrap().to_owned()
    }
}

macro_rules! end_to_end {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = super::spawn_app(super::Backend::Sqlite, stringify!($name)).await.unwrap();
                super::$name(&app).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(app) = super::spawn_app(super::Backend::Postgres, stringify!($name)).await else { return };
                super::$name(&app).await;
            })*
        }
    };
}

#[path = "dispatch/mod.rs"]
mod dispatch;
#[path = "epcis_interface/mod.rs"]
mod epcis_interface;
#[path = "fulfilment/mod.rs"]
mod fulfilment;
#[path = "log/mod.rs"]
mod log;
#[path = "readings/mod.rs"]
mod readings;
#[path = "web/mod.rs"]
mod web_faces;
use dispatch::{
    dispatch_hands_over_a_split_orders_clean_parcel_after_a_recall,
    dispatch_leaves_out_a_shipment_that_shipped_nothing, dispatch_plans_waves_and_couriers_deliver,
};
use epcis_interface::{
    epcis_a_silent_subscriber_holds_up_only_its_own_subscription, epcis_bad_documents_store_nothing,
    epcis_capture_and_query, epcis_corpora_are_captured_and_queried_back, epcis_named_queries,
    epcis_query_families_match_the_predicate, epcis_trace_follows_lots,
};
use fulfilment::{
    fulfilment_a_changed_product_is_read_again, fulfilment_a_count_below_the_reserved_units_releases_the_newest_orders,
    fulfilment_a_full_asn_is_checked_and_received_in_parts, fulfilment_a_kept_hold_ends_with_its_lot,
    fulfilment_a_lot_made_from_a_recalled_one_says_so, fulfilment_a_parcel_taken_back_unrestocked_is_back,
    fulfilment_a_place_holding_stock_keeps_it, fulfilment_a_reallocated_order_counts_in_its_new_region,
    fulfilment_a_recall_from_before_outcomes_were_kept_reads_back, fulfilment_a_recall_may_hold_the_lots_made_from_it,
    fulfilment_a_recall_names_the_lots_made_from_it, fulfilment_a_recall_says_when_its_history_is_cut,
    fulfilment_a_recalled_parcel_is_not_handed_over, fulfilment_a_return_may_wait_in_quarantine,
    fulfilment_a_silent_endpoint_holds_up_only_its_own_webhook, fulfilment_a_step_says_when_it_happened,
    fulfilment_every_due_webhook_gets_its_turn, fulfilment_hot_sku_never_oversells,
    fulfilment_lists_and_filters_are_checked_first, fulfilment_lists_page_past_their_largest_page,
    fulfilment_lot_status_reaches_new_pallets_and_counts_see_moves,
    fulfilment_promises_answer_what_placing_would_at_the_reach, fulfilment_random_operations_keep_the_ledger,
    fulfilment_reallocation_keeps_the_hold, fulfilment_recalls_reallocate_or_flag,
    fulfilment_receipts_orders_and_the_lifecycle, fulfilment_scrap_and_transfers,
    fulfilment_sla_measures_arrivals_and_failed_deliveries, fulfilment_splits_take_at_most_three_sites,
    fulfilment_steps_name_pallets_and_lots_once, fulfilment_the_worker_expires_lapsed_holds,
    fulfilment_units_come_back_only_into_a_zone_that_keeps_them, fulfilment_webhooks_deliver_transitions_signed,
};
use log::{log_checkpoints_tiles_and_proofs, log_event_proofs_disclose_and_hide};
use readings::{
    coldchain_alarms_do_not_depend_on_batching, coldchain_alarms_hold_pharma_lots_and_notify,
    readings_are_ingested_with_partial_success,
};
use web_faces::{
    consumer_pages_count_hours_in_zones_that_keep_the_product_cold, consumer_pages_prove_their_steps_and_nothing_else,
    sessions_open_the_portal_and_the_console,
};

end_to_end!(
    consumer_pages_prove_their_steps_and_nothing_else,
    consumer_pages_count_hours_in_zones_that_keep_the_product_cold,
    sessions_open_the_portal_and_the_console,
    readings_are_ingested_with_partial_success,
    coldchain_alarms_hold_pharma_lots_and_notify,
    coldchain_alarms_do_not_depend_on_batching,
    dispatch_plans_waves_and_couriers_deliver,
    dispatch_leaves_out_a_shipment_that_shipped_nothing,
    dispatch_hands_over_a_split_orders_clean_parcel_after_a_recall,
    fulfilment_receipts_orders_and_the_lifecycle,
    fulfilment_the_worker_expires_lapsed_holds,
    fulfilment_recalls_reallocate_or_flag,
    fulfilment_a_recalled_parcel_is_not_handed_over,
    fulfilment_units_come_back_only_into_a_zone_that_keeps_them,
    fulfilment_a_recall_from_before_outcomes_were_kept_reads_back,
    fulfilment_reallocation_keeps_the_hold,
    fulfilment_a_count_below_the_reserved_units_releases_the_newest_orders,
    fulfilment_a_parcel_taken_back_unrestocked_is_back,
    fulfilment_a_reallocated_order_counts_in_its_new_region,
    fulfilment_a_recall_says_when_its_history_is_cut,
    fulfilment_a_recall_names_the_lots_made_from_it,
    fulfilment_a_lot_made_from_a_recalled_one_says_so,
    fulfilment_a_recall_may_hold_the_lots_made_from_it,
    fulfilment_a_kept_hold_ends_with_its_lot,
    fulfilment_a_return_may_wait_in_quarantine,
    fulfilment_a_step_says_when_it_happened,
    fulfilment_random_operations_keep_the_ledger,
    fulfilment_a_silent_endpoint_holds_up_only_its_own_webhook,
    fulfilment_every_due_webhook_gets_its_turn,
    fulfilment_a_place_holding_stock_keeps_it,
    fulfilment_a_changed_product_is_read_again,
    fulfilment_hot_sku_never_oversells,
    fulfilment_lists_page_past_their_largest_page,
    fulfilment_lists_and_filters_are_checked_first,
    fulfilment_a_full_asn_is_checked_and_received_in_parts,
    fulfilment_scrap_and_transfers,
    fulfilment_lot_status_reaches_new_pallets_and_counts_see_moves,
    fulfilment_sla_measures_arrivals_and_failed_deliveries,
    fulfilment_steps_name_pallets_and_lots_once,
    fulfilment_splits_take_at_most_three_sites,
    fulfilment_promises_answer_what_placing_would_at_the_reach,
    fulfilment_webhooks_deliver_transitions_signed,
    log_checkpoints_tiles_and_proofs,
    log_event_proofs_disclose_and_hide,
    epcis_capture_and_query,
    epcis_bad_documents_store_nothing,
    epcis_corpora_are_captured_and_queried_back,
    epcis_named_queries,
    epcis_a_silent_subscriber_holds_up_only_its_own_subscription,
    epcis_trace_follows_lots,
    epcis_query_families_match_the_predicate,
    keys_scopes_and_revocation,
    products_crud,
    bad_input_gets_a_problem_and_stores_nothing,
    queries_are_refused_where_an_operation_takes_none,
    idempotency_keys_replay_the_first_answer,
    tenants_cannot_see_each_other,
    locations_lanes_and_devices,
    pagination_follows_cursors_within_limits,
    service_endpoints_answer,
    operator_reads_usage,
    resolver_answers_by_link_type_and_accept,
    resolver_rejects_bad_uris_and_unknown_keys,
    qr_codes_decode_to_the_digital_link,
    scans_are_read_in_every_form,
    merchants_add_links_to_their_products,
);

fn salmon(gtin: &str) -> Value {
    json!({
        "gtin": gtin,
        "name": "Salmon fillets",
        "brand": "Nordfjord",
        "temperature_class": "chilled",
        "shelf_life_days": 12,
        "nutrition": {"energy_kj": 858, "fat_g": 13.4, "saturates_g": 2.3, "protein_g": 20.4},
        "country_of_origin": "NO"
    })
}

fn warehouse(gln: &str) -> Value {
    json!({
        "gln": gln,
        "kind": "cold_depot",
        "name": "Depot",
        "address": {"city": "Oslo"},
        "country": "NO",
        "latitude": 59.91,
        "longitude": 10.75,
        "time_zone": "Europe/Oslo",
        "zones": [{"name": "chill-1", "min_celsius": 0, "max_celsius": 2, "capacity_pallets": 40}],
        "cutoffs": {"next_day": "16:00"},
        "pick_pack_lead_minutes": 60
    })
}

async fn keys_scopes_and_revocation(app: &TestApp) {
    assert!(app.send("GET", "/v1/products", None, None, &[]).await.is_problem(401, "/problems/unauthorized"));
    assert!(app.get("/v1/products", "ktn_nobody_0011223344556677_00").await.is_problem(401, "/problems/unauthorized"));
    let admin = app.tenant("acme", &["tenant:admin"]).await;
    let reader = app.post("/v1/keys", &admin, json!({"name": "dashboard", "scopes": ["tenant:read"]})).await;
    assert_eq!(reader.status, StatusCode::CREATED);
    let reader_key = reader.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/v1/products", &reader_key).await.status, StatusCode::OK);
    assert!(
        app.post("/v1/products", &reader_key, salmon("09506000134352")).await.is_problem(403, "/problems/forbidden")
    );
    assert!(app.get("/v1/operator/tenants", &admin).await.is_problem(403, "/problems/forbidden"));
    assert!(
        app.post("/v1/keys", &admin, json!({"name": "x", "scopes": ["operator"]}))
            .await
            .is_problem(422, "/problems/validation-failed")
    );
    // A network key that is not an operator key neither mints operator keys nor writes the network.
    let network_admin = app
        .post("/v1/operator/tenants/network/keys", &app.operator_key, json!({"name": "n", "scopes": ["tenant:admin"]}))
        .await;
    let network_admin = network_admin.body["secret"].as_str().unwrap().to_owned();
    assert!(
        app.post("/v1/keys", &network_admin, json!({"name": "x", "scopes": ["operator"]}))
            .await
            .is_problem(403, "/problems/forbidden")
    );
    assert!(
        app.post("/v1/locations", &network_admin, warehouse("7098765000017"))
            .await
            .is_problem(403, "/problems/forbidden")
    );
    assert!(app.get("/v1/products?cursor=%00", &admin).await.is_problem(400, "/problems/invalid-parameter"));
    let keys = app.get("/v1/keys", &admin).await;
    assert_eq!(keys.body.as_array().unwrap().len(), 2);
    assert!(
        keys.body.as_array().unwrap().iter().all(|key| key.get("secret").is_none()),
        "secrets must never be listed"
    );
    let reader_id = reader.body["key_id"].as_str().unwrap();
    assert_eq!(
        app.send("DELETE", &format!("/v1/keys/{reader_id}"), Some(&admin), None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(app.get("/v1/products", &reader_key).await.is_problem(401, "/problems/unauthorized"));
    // The operator revokes a tenant's key too.
    let admin_id = app
        .get("/v1/keys", &admin)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["revoked_at"].is_null())
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.send("DELETE", &format!("/v1/operator/tenants/acme/keys/{admin_id}"), Some(&app.operator_key), None, &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(app.get("/v1/keys", &admin).await.is_problem(401, "/problems/unauthorized"));
}

async fn products_crud(app: &TestApp) {
    let key = app.tenant("acme", &["tenant:write"]).await;
    let created = app.post("/v1/products", &key, salmon("9506000134352")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["gtin"], "09506000134352", "GTIN-13 normalised to GTIN-14");
    assert_eq!(created.body["temperature_max_celsius"], 4.0);
    assert_eq!(created.headers["location"], "/v1/products/09506000134352", "the product created");
    let fetched = app.get("/v1/products/09506000134352", &key).await;
    assert_eq!(fetched.body, created.body);
    assert!(app.post("/v1/products", &key, salmon("09506000134352")).await.is_problem(409, "/problems/conflict"));
    let mut renamed = salmon("09506000134352");
    renamed["name"] = json!("Salmon loin");
    let replaced = app.send("PUT", "/v1/products/9506000134352", Some(&key), Some(renamed), &[]).await;
    assert_eq!((replaced.status, replaced.body["name"].clone()), (StatusCode::OK, json!("Salmon loin")));
    assert!(replaced.headers.get("location").is_none(), "a 200 created nothing");
    let listed = app.get("/v1/products?temperature_class=chilled", &key).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/v1/products?temperature_class=frozen", &key).await.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        app.send("DELETE", "/v1/products/09506000134352", Some(&key), None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(app.get("/v1/products/09506000134352", &key).await.is_problem(404, "/problems/not-found"));
    assert!(
        app.send("DELETE", "/v1/products/09506000134352", Some(&key), None, &[])
            .await
            .is_problem(404, "/problems/not-found")
    );
}

/// A query string on an operation that takes none is refused, not ignored: `?tenant=` on an
/// endpoint that acts for the key's own tenant would otherwise write where the caller did not mean.
async fn queries_are_refused_where_an_operation_takes_none(app: &TestApp) {
    let key = app.tenant("acme", &["tenant:write"]).await;
    let misplaced = app.post("/v1/products?tenant=beta", &key, salmon("9506000134352")).await;
    assert!(misplaced.is_problem(400, "/problems/invalid-parameter"), "{:?}", misplaced.body);
    assert_eq!(misplaced.pointers(), ["?tenant"]);
    assert!(misplaced.body["detail"].as_str().unwrap().contains("POST /v1/products takes no query parameters"));
    // Nothing was stored.
    assert!(app.get("/v1/products/09506000134352", &key).await.is_problem(404, "/problems/not-found"));
    assert_eq!(app.post("/v1/products", &key, salmon("9506000134352")).await.status, StatusCode::CREATED);
    let fetched = app.get("/v1/products/09506000134352?fields=name", &key).await;
    assert!(fetched.is_problem(400, "/problems/invalid-parameter"), "{:?}", fetched.body);
    assert_eq!(fetched.pointers(), ["?fields"]);
    let deleted = app.send("DELETE", "/v1/products/09506000134352?force", Some(&key), None, &[]).await;
    assert!(deleted.is_problem(400, "/problems/invalid-parameter"), "{:?}", deleted.body);
    assert_eq!(app.get("/v1/products/09506000134352", &key).await.status, StatusCode::OK, "not deleted");
    // An operator's key too: creating a tenant takes no `?tenant`.
    let operator = app
        .post("/v1/operator/tenants?tenant=acme", &app.operator_key, json!({"tenant_id": "gamma", "name": "gamma"}))
        .await;
    assert!(operator.is_problem(400, "/problems/invalid-parameter"), "{:?}", operator.body);
    // Operations that take query parameters still answer them, and an empty query is none.
    assert_eq!(app.get("/v1/products?limit=1", &key).await.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.send("HEAD", "/v1/products?limit=1", Some(&key), None, &[]).await.status, StatusCode::OK);
    assert_eq!(app.get("/v1/products/09506000134352?", &key).await.status, StatusCode::OK);
    // Pages outside the API are not concerned.
    assert_eq!(app.send("GET", "/healthz?probe=1", None, None, &[]).await.status, StatusCode::OK);
}

async fn bad_input_gets_a_problem_and_stores_nothing(app: &TestApp) {
    let key = app.tenant("acme", &["tenant:write"]).await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"gtin": "09506000134353", "name": "x", "temperature_class": "chilled"}),
            422,
            "/problems/validation-failed",
            "/gtin",
        ),
        (
            json!({"gtin": "09506000134352", "name": 7, "temperature_class": "chilled"}),
            422,
            "/problems/validation-failed",
            "/name",
        ),
        (
            json!({"gtin": "09506000134352", "name": "x", "temperature_class": "chilled", "colour": "red"}),
            422,
            "/problems/validation-failed",
            "/colour",
        ),
        (
            json!({"gtin": "09506000134352", "temperature_class": "chilled"}),
            422,
            "/problems/validation-failed",
            "/name",
        ),
        (
            json!({"gtin": "09506000134352", "name": "x", "temperature_class": "custom", "temperature_min_celsius": 8, "temperature_max_celsius": 2}),
            422,
            "/problems/validation-failed",
            "/temperature_min_celsius",
        ),
        (
            json!({"gtin": "09506000134352", "name": "x", "temperature_class": "custom", "temperature_min_celsius": 2, "temperature_max_celsius": 900}),
            422,
            "/problems/validation-failed",
            "/temperature_max_celsius",
        ),
        (
            json!({"gtin": "09506000134352", "name": "x", "temperature_class": "custom", "temperature_min_celsius": 2}),
            422,
            "/problems/validation-failed",
            "/temperature_max_celsius",
        ),
        (
            json!({"gtin": "09506000134352", "name": "x", "temperature_class": "chilled", "temperature_max_celsius": 5}),
            422,
            "/problems/validation-failed",
            "/temperature_max_celsius",
        ),
        (
            json!({"gtin": "09506000134352", "name": "x", "temperature_class": "chilly"}),
            422,
            "/problems/validation-failed",
            "/temperature_class",
        ),
        (
            json!({"gtin": "09506000134352", "name": "x", "temperature_class": "chilled", "nutrition": {"fat_g": -1}}),
            422,
            "/problems/validation-failed",
            "/nutrition/fat_g",
        ),
        (
            json!({"gtin": "09506000134352", "name": "x", "temperature_class": "chilled", "supplier_party_id": "nobody"}),
            422,
            "/problems/unknown-reference",
            "/supplier_party_id",
        ),
    ];
    for (body, status, problem_type, pointer) in cases {
        let answer = app.post("/v1/products", &key, body.clone()).await;
        assert!(answer.is_problem(status, problem_type), "{body}: {} {:?}", answer.status, answer.body);
        assert!(answer.pointers().contains(&pointer), "{body}: {:?}", answer.body);
    }
    let malformed = app.raw_post("/v1/products", &key, "application/json", b"{\"gtin\": ".to_vec()).await;
    assert!(malformed.is_problem(400, "/problems/malformed-json"), "{:?}", malformed.body);
    assert!(
        app.raw_post("/v1/products", &key, "text/plain", b"{}".to_vec())
            .await
            .is_problem(415, "/problems/unsupported-media-type")
    );
    let oversize = app.raw_post("/v1/products", &key, "application/json", vec![b' '; server::BODY_BYTES_MAX + 1]).await;
    assert!(oversize.is_problem(413, "/problems/payload-too-large"), "{} {:?}", oversize.status, oversize.body);
    let mut location = warehouse("7098765000017");
    location["zones"][0]["min_celsius"] = json!(5);
    let zone = app.post("/v1/locations", &key, location).await;
    assert!(
        zone.is_problem(422, "/problems/validation-failed") && zone.pointers().contains(&"/zones/0"),
        "{:?}",
        zone.body
    );
    let bad_gln = app.post("/v1/locations", &key, warehouse("7098765000018")).await;
    assert!(
        bad_gln.is_problem(422, "/problems/validation-failed") && bad_gln.pointers().contains(&"/gln"),
        "{:?}",
        bad_gln.body
    );
    let lane = app.post("/v1/lanes", &key, json!({"lane_id": "l1", "from": "7098765000017", "to": "8712345000011", "transit_minutes": 60, "temperature_classes": ["chilled"]})).await;
    assert!(
        lane.is_problem(422, "/problems/unknown-reference") && lane.pointers().contains(&"/from"),
        "{:?}",
        lane.body
    );
    // Nothing of the above was stored.
    assert_eq!(app.get("/v1/products", &key).await.body["items"], json!([]));
    assert_eq!(app.get("/v1/locations", &key).await.body["items"], json!([]));
    assert_eq!(app.get("/v1/lanes", &key).await.body["items"], json!([]));
    let tenant = network::TenantId::parse("acme").unwrap();
    assert_eq!(app.store.storage_rows(&tenant).await.unwrap(), 0);
}

async fn idempotency_keys_replay_the_first_answer(app: &TestApp) {
    let key = app.tenant("acme", &["tenant:admin"]).await;
    let idempotency = [("idempotency-key", "order-2026-0001")];
    let first = app.send("POST", "/v1/products", Some(&key), Some(salmon("09506000134352")), &idempotency).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = app.send("POST", "/v1/products", Some(&key), Some(salmon("09506000134352")), &idempotency).await;
    assert_eq!(
        (retry.status, &retry.body),
        (StatusCode::CREATED, &first.body),
        "a retry gets the first answer, not a conflict"
    );
    assert_eq!(retry.headers.get("idempotent-replayed").unwrap(), "true");
    let mut other = salmon("09506000134352");
    other["name"] = json!("Something else");
    assert!(
        app.send("POST", "/v1/products", Some(&key), Some(other), &idempotency)
            .await
            .is_problem(422, "/problems/idempotency-key-reused")
    );
    assert_eq!(app.get("/v1/products/09506000134352", &key).await.body["name"], "Salmon fillets");
    assert!(
        app.send("POST", "/v1/products", Some(&key), Some(salmon("09506000134352")), &[("idempotency-key", "")])
            .await
            .is_problem(400, "/problems/invalid-idempotency-key")
    );
    // A retried key creation never shows the secret again.
    let key_request = [("idempotency-key", "mint-1")];
    let minted = app
        .send("POST", "/v1/keys", Some(&key), Some(json!({"name": "scanner", "scopes": ["device"]})), &key_request)
        .await;
    assert!(minted.body["secret"].is_string());
    let replayed = app
        .send("POST", "/v1/keys", Some(&key), Some(json!({"name": "scanner", "scopes": ["device"]})), &key_request)
        .await;
    assert_eq!(
        (replayed.status, replayed.body["key_id"].clone()),
        (StatusCode::CREATED, minted.body["key_id"].clone())
    );
    assert!(replayed.body.get("secret").is_none());
    assert_eq!(app.get("/v1/keys", &key).await.body.as_array().unwrap().len(), 2, "the retry minted no second key");
}

async fn tenants_cannot_see_each_other(app: &TestApp) {
    let alpha = app.tenant("alpha", &["tenant:admin"]).await;
    let beta = app.tenant("beta", &["tenant:admin"]).await;
    assert_eq!(app.post("/v1/products", &alpha, salmon("09506000134352")).await.status, StatusCode::CREATED);
    assert_eq!(app.post("/v1/locations", &alpha, warehouse("7098765000017")).await.status, StatusCode::CREATED);
    assert!(app.get("/v1/products/09506000134352", &beta).await.is_problem(404, "/problems/not-found"));
    assert!(app.get("/v1/locations/7098765000017", &beta).await.is_problem(404, "/problems/not-found"));
    assert_eq!(app.get("/v1/products", &beta).await.body["items"], json!([]));
    assert_eq!(app.get("/v1/locations", &beta).await.body["items"], json!([]));
    let mut renamed = salmon("09506000134352");
    renamed["name"] = json!("Beta's");
    // A GTIN belongs to the brand that registered it: beta can neither take it over nor shadow
    // alpha's public page; alpha's product is untouched.
    let hijack = app.send("PUT", "/v1/products/09506000134352", Some(&beta), Some(renamed), &[]).await;
    assert!(hijack.is_problem(409, "/problems/conflict"), "{:?}", hijack.body);
    assert_eq!(app.get("/v1/products/09506000134352", &alpha).await.body["name"], "Salmon fillets");
    assert!(app.get("/v1/products/09506000134352", &beta).await.is_problem(404, "/problems/not-found"));
    let page = app.client.get(format!("{}/01/09506000134352", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Salmon fillets") && !page.contains("Beta's"));
    // Nor can beta take alpha's GLN; and alpha's location is not public (only network sites and origins are).
    let mut store_location = warehouse("7098765000017");
    store_location["kind"] = json!("store");
    assert!(app.post("/v1/locations", &beta, store_location).await.is_problem(409, "/problems/conflict"));
    assert_eq!(
        app.client.get(format!("{}/414/7098765000017", app.base)).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        app.send("DELETE", "/v1/locations/7098765000017", Some(&beta), None, &[])
            .await
            .is_problem(404, "/problems/not-found")
    );
    let alpha_key_id = app.get("/v1/keys", &alpha).await.body[0]["key_id"].as_str().unwrap().to_owned();
    assert!(
        app.send("DELETE", &format!("/v1/keys/{alpha_key_id}"), Some(&beta), None, &[])
            .await
            .is_problem(404, "/problems/not-found")
    );
    assert_eq!(app.get("/v1/products", &alpha).await.status, StatusCode::OK, "alpha's key still works");
    assert!(app.get("/v1/keys", &beta).await.body.as_array().unwrap().iter().all(|key| key["tenant_id"] == "beta"));
    // Usage of one tenant does not show in the other's report.
    let usage = app.get("/v1/usage", &beta).await;
    assert!(
        usage.body["counters"].as_array().unwrap().iter().all(|row| row["tenant_id"] == "beta"),
        "{:?}",
        usage.body
    );
}

async fn locations_lanes_and_devices(app: &TestApp) {
    let key = app.tenant("acme", &["tenant:write"]).await;
    // The operator registers a network depot; the tenant sees it and may draw a lane to it.
    let depot = app.post("/v1/locations", &app.operator_key, warehouse("7098765000017")).await;
    assert_eq!(
        (depot.status, depot.body["owner"].clone()),
        (StatusCode::CREATED, json!("network")),
        "{:?}",
        depot.body
    );
    let mut farm = warehouse("7098765001014");
    farm["kind"] = json!("farm");
    farm["zones"] = json!([]);
    assert_eq!(app.post("/v1/locations", &key, farm).await.status, StatusCode::CREATED);
    let listed = app.get("/v1/locations", &key).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().iter().map(|item| item["owner"].as_str().unwrap()).collect::<Vec<_>>(),
        ["network", "acme"]
    );
    assert_eq!(app.get("/v1/locations/7098765000017", &key).await.body["zones"][0]["max_celsius"], 2.0);
    let lane = app.post("/v1/lanes", &key, json!({"lane_id": "farm-depot", "from": "7098765001014", "to": "7098765000017", "transit_minutes": 480, "departures": ["14:00", "06:00"], "temperature_classes": ["chilled"], "cost_per_pallet_cents": 18000})).await;
    assert_eq!(lane.status, StatusCode::CREATED, "{:?}", lane.body);
    assert_eq!(lane.body["departures"], json!(["06:00", "14:00"]));
    let device = app.post("/v1/devices", &key, json!({"device_id": "logger-1", "kind": "data_logger", "name": "Logger", "location_gln": "7098765000017", "zone": "freezer", "reading_interval_seconds": 60})).await;
    assert!(
        device.is_problem(422, "/problems/unknown-reference") && device.pointers().contains(&"/zone"),
        "{:?}",
        device.body
    );
    let device = app.post("/v1/devices", &key, json!({"device_id": "logger-1", "kind": "data_logger", "name": "Logger", "location_gln": "7098765000017", "zone": "chill-1", "reading_interval_seconds": 60})).await;
    assert_eq!(device.status, StatusCode::CREATED, "{:?}", device.body);
    assert_eq!(app.get("/v1/devices?location=7098765000017", &key).await.body["items"].as_array().unwrap().len(), 1);
    // A tenant cannot change the network's depot, nor delete a location its lane uses.
    assert!(
        app.send("DELETE", "/v1/locations/7098765000017", Some(&key), None, &[])
            .await
            .is_problem(404, "/problems/not-found")
    );
    assert!(
        app.send("DELETE", "/v1/locations/7098765001014", Some(&key), None, &[])
            .await
            .is_problem(409, "/problems/in-use")
    );
    // A device left naming a zone of a place that is gone (nodes racing on PostgreSQL; written
    // here directly): a location made there without that zone is refused, and leaves its GLN
    // unclaimed.
    let stray = "INSERT INTO devices (tenant_id, device_id, kind, name, location_gln, zone_name, \
                 reading_interval_seconds, created_unix_ms, updated_unix_ms) \
                 VALUES ('acme', 'logger-stray', 'data_logger', 'Stray', $1, 'cold', 60, 0, 0)";
    app.execute_sql(&[stray], "7098765002011").await;
    let refused = app.post("/v1/locations", &key, warehouse("7098765002011")).await;
    assert!(refused.is_problem(409, "/problems/in-use"), "{:?}", refused.body);
    assert_eq!(app.count_sql("SELECT COUNT(*) FROM gln_owners WHERE gln = $1", "7098765002011").await, 0);
}

async fn pagination_follows_cursors_within_limits(app: &TestApp) {
    let key = app.tenant("acme", &["tenant:write"]).await;
    let gtins = ["09506000134352", "00614141000036", "00000095010014", "04006381333931", "05012345678900"];
    for gtin in gtins {
        assert_eq!(app.post("/v1/products", &key, salmon(gtin)).await.status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/products?limit=2".to_owned();
    loop {
        let page = app.get(&path, &key).await;
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|item| item["gtin"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/products?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut expected: Vec<String> = gtins.iter().map(|gtin| (*gtin).to_owned()).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(app.get("/v1/products?limit=501", &key).await.is_problem(400, "/problems/invalid-parameter"));
    assert!(app.get("/v1/products?limit=0", &key).await.is_problem(400, "/problems/invalid-parameter"));
    assert!(app.get("/v1/products?cursor=%%%", &key).await.is_problem(400, "/problems/invalid-parameter"));
    assert!(app.get("/v1/products?shape=round", &key).await.is_problem(400, "/problems/invalid-parameter"));
}

/// A writer task that panics (a bug; injected here) leaves no zombie node: the write it held and
/// those after are answered 503 with the writer's failure (not "shutting down"), `/readyz` never
/// says ready again, and the server stops with an error, for its supervisor to restart it. What
/// committed before stays, and nothing of the refused write is stored.
async fn a_failed_writer_stops_the_node(mut app: TestApp) {
    let key = app.tenant("acme", &["tenant:write"]).await;
    assert_eq!(app.post("/v1/products", &key, salmon("9506000134352")).await.status, StatusCode::CREATED);
    assert!(!app.store.writer_failed());
    assert_eq!(app.client.get(format!("{}/readyz", app.base)).send().await.unwrap().status(), StatusCode::OK);
    app.store.inject_writer_panic().await;
    let refused = app.post("/v1/products", &key, salmon("9506000134369")).await;
    assert!(refused.is_problem(503, "/problems/unavailable"), "{:?}", refused.body);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("writer stopped after an internal error"), "{detail}");
    assert!(app.store.writer_failed());
    // Ready no more, while it still answers at all (it is stopping).
    if let Ok(ready) = app.client.get(format!("{}/readyz", app.base)).send().await {
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), &mut app.server).await;
    let error = stopped.expect("the server stops").unwrap().expect_err("with an error");
    assert!(error.to_string().contains("writer stopped"), "{error}");
    let stored = |gtin: &'static str| {
        let app = &app;
        async move {
            app.count_sql(&format!("SELECT COUNT(*) FROM products WHERE tenant_id = $1 AND gtin = '{gtin}'"), "acme")
                .await
        }
    };
    assert_eq!(stored("09506000134352").await, 1, "what committed before stays");
    assert_eq!(stored("09506000134369").await, 0, "the refused write stored nothing");
}

async fn service_endpoints_answer(app: &TestApp) {
    let health = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(app.client.get(format!("{}/readyz", app.base)).send().await.unwrap().status(), StatusCode::OK);
    let openapi: Value =
        app.client.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/products",
        "/v1/products/{gtin}",
        "/v1/locations",
        "/v1/lanes",
        "/v1/operator/tenants",
        "/v1/operator/usage",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    // A generated client builds its URLs from the parameters' places: a path parameter is one the
    // path names, and every other one is a query (or header) parameter.
    let mut misplaced = Vec::new();
    let mut queries = 0;
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let (name, place) = (parameter["name"].as_str().unwrap(), parameter["in"].as_str().unwrap());
                queries += usize::from(place == "query");
                if (place == "path") != path.contains(&format!("{{{name}}}")) {
                    misplaced.push(format!("{method} {path}: {name} in {place}"));
                }
            }
        }
    }
    assert_eq!(misplaced, Vec::<String>::new());
    assert!(queries > 20, "the query parameters are described ({queries})");
    let docs = app.client.get(format!("{}/docs", app.base)).send().await.unwrap();
    // Every page carries the policy; the plain pages' styles come from this server's stylesheet.
    assert_eq!(docs.headers()["content-security-policy"], web::CONTENT_SECURITY_POLICY);
    assert_eq!(docs.headers()["x-content-type-options"], "nosniff");
    let docs = docs.text().await.unwrap();
    assert!(docs.contains("/v1/products/{gtin}") && docs.contains("/assets/plain.css") && !docs.contains("<style"));
    let stylesheet = app.client.get(format!("{}/assets/plain.css", app.base)).send().await.unwrap();
    assert_eq!(stylesheet.headers()["content-type"], "text/css; charset=utf-8");
    // Generate a write so the batch metrics have something to show.
    let key = app.tenant("acme", &["tenant:write"]).await;
    app.post("/v1/products", &key, salmon("09506000134352")).await;
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("keten_http_requests_total{method=\"POST\",route=\"/v1/products\",status=\"201\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("keten_writer_batch_writes_count"), "{metrics}");
    assert!(metrics.contains("keten_writer_batch_duration_seconds_sum"), "{metrics}");
    // The writer's own counters: the product's write among them.
    let counter = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name}: {metrics}"))
    };
    assert!(counter("keten_writer_writes_total") >= 1.0 && counter("keten_writer_batches_total") >= 1.0);
    assert!(counter("keten_writer_batch_writes_largest") >= 1.0);
    assert!(counter("keten_writer_phase_seconds_total{phase=\"commit\"}") > 0.0, "{metrics}");
    assert_eq!(counter("keten_writer_batches_applied_ahead_dropped_total"), 0.0);
    assert_eq!(counter("keten_writer_batches_applied_one_by_one_total"), 0.0);
    assert!(app.send("GET", "/v1/nothing-here", Some(&key), None, &[]).await.is_problem(404, "/problems/not-found"));
    assert!(
        app.send("PATCH", "/v1/products", Some(&key), None, &[]).await.is_problem(405, "/problems/method-not-allowed")
    );
    let problem_page = app.client.get(format!("{}/problems/validation-failed", app.base)).send().await.unwrap();
    assert_eq!(problem_page.status(), StatusCode::OK);
}

async fn operator_reads_usage(app: &TestApp) {
    let key = app.tenant("acme", &["tenant:write"]).await;
    for gtin in ["09506000134352", "00614141000036"] {
        app.post("/v1/products", &key, salmon(gtin)).await;
    }
    app.send("DELETE", "/v1/products/00614141000036", Some(&key), None, &[]).await;
    let report = app.get("/v1/operator/usage?tenant=acme", &app.operator_key).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
    let quantity = |unit: &str| {
        report.body["counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["unit"] == unit)
            .map(|row| row["quantity"].clone())
    };
    assert_eq!(quantity("storage_rows_created"), Some(json!(2)));
    assert_eq!(quantity("storage_rows_deleted"), Some(json!(1)));
    assert_eq!(report.body["storage_rows"]["acme"], 1);
    assert!(app.get("/v1/operator/usage", &key).await.is_problem(403, "/problems/forbidden"));
    assert!(
        app.get("/v1/operator/usage?from=2026-13-01", &app.operator_key)
            .await
            .is_problem(400, "/problems/invalid-parameter")
    );
    assert!(app.get("/v1/operator/usage?tenant=ghost", &app.operator_key).await.is_problem(404, "/problems/not-found"));
}

/// A product and its farm, for the resolver tests; answers the tenant's key.
async fn salmon_with_farm(app: &TestApp) -> String {
    let key = app.tenant("nordfjord", &["tenant:write"]).await;
    let farm = json!({"party_id": "fjordlaks", "kind": "fishery", "name": "Fjordlaks", "person_name": "Ingrid Solberg", "publish_name": true, "country": "NO"});
    assert_eq!(app.post("/v1/parties", &key, farm).await.status, StatusCode::CREATED);
    let mut product = salmon("09506000134352");
    product["supplier_party_id"] = json!("fjordlaks");
    assert_eq!(app.post("/v1/products", &key, product).await.status, StatusCode::CREATED);
    key
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn resolver_answers_by_link_type_and_accept(app: &TestApp) {
    salmon_with_farm(app).await;
    let client = no_redirects();
    let url = format!("{}/01/09506000134352/10/LOT-7?17=261231", app.base);
    let page = client.get(&url).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let link_header = page.headers().get("link").unwrap().to_str().unwrap().to_owned();
    assert_eq!(
        link_header,
        format!(
            "<{}/01/09506000134352/10/LOT-7?linkType=linkset>; rel=\"linkset\"; type=\"application/linkset+json\"",
            app.base
        )
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Salmon fillets") && html.contains("LOT-7") && html.contains("Ingrid Solberg"), "{html}");
    for request in [
        client.get(&url).header("accept", "application/linkset+json"),
        client.get(format!("{}/01/09506000134352?linkType=linkset", app.base)),
    ] {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers().get("content-type").unwrap(), "application/linkset+json");
        assert!(answer.headers().get("link").is_some());
        let linkset: Value = answer.json().await.unwrap();
        let context = &linkset["linkset"][0];
        assert!(context["anchor"].as_str().unwrap().starts_with("https://id.gs1.org/01/09506000134352"));
        for link_type in ["pip", "traceability", "epcis", "certificationInfo", "recallStatus"] {
            let targets = context[format!("https://gs1.org/voc/{link_type}")]
                .as_array()
                .unwrap_or_else(|| panic!("{link_type} missing: {linkset}"));
            assert!(targets[0]["href"].as_str().unwrap().starts_with("http"), "{link_type}");
            assert!(targets[0]["title"].is_string(), "{link_type}");
        }
        assert_eq!(context["https://gs1.org/voc/pip"][0]["hreflang"], json!(["en", "nl"]));
    }
    let redirect =
        client.get(format!("{}/01/09506000134352/10/LOT-7?linkType=gs1:recallStatus", app.base)).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = redirect.headers().get("location").unwrap().to_str().unwrap().to_owned();
    assert_eq!(location, format!("{}/recall-status/01/09506000134352/10/LOT-7", app.base));
    let status: Value = client.get(&location).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (status["recalled"].clone(), status["item"].clone()),
        (json!(false), json!("https://id.gs1.org/01/09506000134352/10/LOT-7"))
    );
    let pip =
        client.get(format!("{}/01/09506000134352?linkType=https://gs1.org/voc/pip", app.base)).send().await.unwrap();
    assert_eq!(pip.status(), StatusCode::TEMPORARY_REDIRECT);
    let pip_page = client.get(pip.headers().get("location").unwrap().to_str().unwrap()).send().await.unwrap();
    assert_eq!(pip_page.status(), StatusCode::OK, "the pip link resolves to the page, not back to the resolver");
    // A link type the item lacks is a problem, to a browser too (the code itself is known).
    let unknown_type = client
        .get(format!("{}/01/09506000134352?linkType=gs1:smpc", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_type.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown_type.headers().get("content-type").unwrap(), "application/problem+json");
    let well_known: Value =
        client.get(format!("{}/.well-known/gs1resolver", app.base)).send().await.unwrap().json().await.unwrap();
    let keys = well_known["supportedPrimaryKeys"].as_array().unwrap();
    for key in ["01", "00", "414", "8006"] {
        assert!(keys.contains(&json!(key)), "{key}");
    }
    // A GTIN-13 in the path resolves to the same item.
    assert_eq!(client.get(format!("{}/01/9506000134352", app.base)).send().await.unwrap().status(), StatusCode::OK);

    // The default link is named, and goes where a plain request goes.
    let linkset: Value = client
        .get(format!("{}/01/09506000134352/10/LOT-7?linkType=linkset", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page_link = format!("{}/provenance/01/09506000134352/10/LOT-7", app.base);
    assert_eq!(linkset["linkset"][0]["https://gs1.org/voc/defaultLink"][0]["href"], page_link, "{linkset}");
    // A redirect passes the request's query on to the target, but its link type.
    let redirect = client
        .get(format!("{}/01/09506000134352/10/LOT-7?17=261231&linkType=gs1:defaultLink&lang=nl", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(redirect.headers()["location"], format!("{page_link}?17=261231&lang=nl").as_str());
    let followed = client.get(format!("{page_link}?17=261231&lang=nl")).send().await.unwrap();
    assert_eq!(followed.status(), StatusCode::OK);
    assert!(followed.text().await.unwrap().contains("<html lang=\"nl\""), "the page in the language asked");
    let traceability = client
        .get(format!("{}/01/09506000134352/10/LOT-7?linkType=gs1:traceability&lang=nl", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(traceability.headers()["location"], format!("{page_link}?lang=nl#journey").as_str());
    // The EPCIS query's target has a query of its own, which takes no other parameter: kept.
    let epcis = client
        .get(format!("{}/01/09506000134352/10/LOT-7?17=261231&linkType=gs1:epcis", app.base))
        .send()
        .await
        .unwrap();
    let epcis_target = epcis.headers()["location"].to_str().unwrap().to_owned();
    assert!(epcis_target.contains("/events?MATCH_anyEPCClass=") && !epcis_target.contains("17="), "{epcis_target}");
    // Accept's weights decide between the page and the linkset.
    for (accept, linkset_wanted) in [
        ("text/html;q=0.5, application/linkset+json", true),
        ("application/linkset+json;q=0.5, text/html", false),
        ("application/json, text/html", false),
        ("application/json;q=0", false),
    ] {
        let answer = client.get(&url).header("accept", accept).send().await.unwrap();
        let content_type = answer.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type == "application/linkset+json", linkset_wanted, "{accept}: {content_type}");
    }
    // Any origin's app may read the resolver's answers (CORS), and ask first (OPTIONS).
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://scanner.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("GET"));
    for path in ["/01/09506000134352/10/LOT-7", "/recall-status/01/09506000134352/10/LOT-7", "/.well-known/gs1resolver"]
    {
        let answer = client
            .get(format!("{}{path}", app.base))
            .header("origin", "https://scanner.example")
            .header("accept", "application/linkset+json")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_eq!(answer.headers()["access-control-allow-origin"], "*", "{path}");
    }
}

async fn resolver_rejects_bad_uris_and_unknown_keys(app: &TestApp) {
    salmon_with_farm(app).await;
    let client = no_redirects();
    let cases = [
        ("/01/09506000134353", 400, "/problems/invalid-digital-link", "check digit"),
        ("/01/09506000134352/21/A/10/B", 400, "/problems/invalid-digital-link", "order"),
        ("/01/09506000134352/", 400, "/problems/invalid-digital-link", "must not end with"),
        ("/01/09506000134352?21=SN1", 400, "/problems/invalid-digital-link", "data attribute"),
        ("/01/00614141000036", 404, "/problems/not-found", "no record"),
        ("/00/006141411234567890", 404, "/problems/not-found", "no record"),
        ("/414/9506000134352", 404, "/problems/not-found", "no record"),
    ];
    for (path, status, problem_type, detail) in cases {
        let answer = client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{path}");
        assert!(answer.headers().get("link").is_none(), "no linkset for what is not known: {path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["type"], problem_type, "{path}: {body}");
        assert!(body["detail"].as_str().unwrap().contains(detail), "{path}: {body}");
        // A browser (a consumer scanning a misprinted or unknown code) gets a page, in its
        // language, with the same status.
        let page = client
            .get(format!("{}{path}", app.base))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .header("accept-language", "nl-NL,nl;q=0.9")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), status, "{path}");
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        assert_eq!(page.headers()["content-security-policy"], web::CONTENT_SECURITY_POLICY, "{path}");
        let html = page.text().await.unwrap();
        assert!(!html.contains("<style"), "styles come from this server's stylesheet: {html}");
        let expected =
            if status == 404 { "Deze code is hier niet bekend" } else { "Deze code kan niet worden gelezen" };
        assert!(html.contains("<html lang=\"nl\">") && html.contains(expected), "{path}: {html}");
    }
}

async fn qr_codes_decode_to_the_digital_link(app: &TestApp) {
    salmon_with_farm(app).await;
    let png = app
        .client
        .get(format!("{}/qr/01/09506000134352/10/LOT-7?17=261231&format=png", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers().get("content-type").unwrap(), "image/png");
    let bytes = png.bytes().await.unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, format!("{}/01/09506000134352/10/LOT-7?17=261231", app.base));
    let svg = app.client.get(format!("{}/qr/01/09506000134352", app.base)).send().await.unwrap();
    assert_eq!(svg.headers().get("content-type").unwrap(), "image/svg+xml");
    assert!(svg.text().await.unwrap().starts_with("<?xml"));
    let bad = app.client.get(format!("{}/qr/01/09506000134353", app.base)).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad_format = app.client.get(format!("{}/qr/01/09506000134352?format=gif", app.base)).send().await.unwrap();
    assert_eq!(bad_format.status(), StatusCode::BAD_REQUEST);
    // Nothing but data attributes goes into the code.
    let sized =
        app.client.get(format!("{}/qr/01/09506000134352?size=99999&format=png", app.base)).send().await.unwrap();
    assert_eq!(sized.status(), StatusCode::BAD_REQUEST);
    let body: Value = sized.json().await.unwrap();
    assert_eq!(body["errors"][0]["pointer"], "?size", "{body}");
}

async fn scans_are_read_in_every_form(app: &TestApp) {
    let key = salmon_with_farm(app).await;
    let scan = |data: &str| app.post("/v1/scan", &key, json!({ "data": data }));
    let fish = scan("]C1010950600013435217261231310300019510LOT-7\u{1d}39221295").await;
    assert_eq!(fish.status, StatusCode::OK, "{:?}", fish.body);
    assert_eq!(fish.body["form"], "scanner_output");
    assert_eq!(fish.body["symbology"], "]C1");
    assert_eq!(fish.body["gtin"], "09506000134352");
    assert_eq!(fish.body["lot"], "LOT-7");
    assert_eq!(fish.body["expiry_date"], "2026-12-31");
    assert_eq!(fish.body["net_weight_kg"], "0.195");
    assert_eq!(fish.body["price"]["amount"], "12.95");
    assert_eq!(fish.body["product"]["name"], "Salmon fillets");
    assert_eq!(fish.body["recalled"], false);
    assert_eq!(
        fish.body["digital_link"],
        format!("{}/01/09506000134352/10/LOT-7?17=261231&3103=000195&3922=1295", app.base)
    );
    let expired = scan("(01)09506000134352(17)200131(10)OLD").await;
    assert_eq!(
        (expired.body["form"].clone(), expired.body["expired"].clone()),
        (json!("bracketed_element_string"), json!(true))
    );
    let link = scan("https://example.com/shop/01/09506000134352/21/SN1").await;
    assert_eq!((link.body["form"].clone(), link.body["serial"].clone()), (json!("digital_link"), json!("SN1")));
    let month_end = scan("(01)09506000134352(17)270200").await;
    assert_eq!(month_end.body["expiry_date"], "2027-02-28", "DD=00 is the last day of the month");
    let unknown = scan("(01)00614141000036").await;
    assert_eq!(unknown.body["product"], Value::Null);
    for (data, fragment) in [("(01)09506000134353", "check digit"), ("(10)LOT", "requires"), ("hello", ""), ("]C1", "")]
    {
        let answer = scan(data).await;
        assert!(answer.is_problem(400, "/problems/invalid-scan-data"), "{data}: {:?}", answer.body);
        assert!(answer.body["detail"].as_str().unwrap().contains(fragment), "{data}: {:?}", answer.body);
    }
}

async fn merchants_add_links_to_their_products(app: &TestApp) {
    let key = salmon_with_farm(app).await;
    let other = app.tenant("appelhof", &["tenant:write"]).await;
    let recipe = json!({"link_type": "gs1:recipeInfo", "href": "https://nordfjord.example/recipes/salmon", "title": "Salmon with dill", "language": "en"});
    let created = app.post("/v1/products/09506000134352/links", &key, recipe.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let reserved = app
        .post(
            "/v1/products/09506000134352/links",
            &key,
            json!({"link_type": "gs1:recallStatus", "href": "https://x.example/", "title": "x"}),
        )
        .await;
    assert!(reserved.is_problem(422, "/problems/validation-failed") && reserved.pointers().contains(&"/link_type"));
    let bad_href = app
        .post(
            "/v1/products/09506000134352/links",
            &key,
            json!({"link_type": "gs1:instructions", "href": "javascript:alert(1)", "title": "x"}),
        )
        .await;
    assert!(bad_href.is_problem(422, "/problems/validation-failed") && bad_href.pointers().contains(&"/href"));
    assert!(
        app.post("/v1/products/09506000134352/links", &other, recipe).await.is_problem(404, "/problems/not-found"),
        "another tenant's product is not found"
    );
    let linkset: Value = app
        .client
        .get(format!("{}/01/09506000134352?linkType=linkset", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recipes = &linkset["linkset"][0]["https://gs1.org/voc/recipeInfo"];
    assert_eq!(recipes[0]["href"], "https://nordfjord.example/recipes/salmon");
    assert_eq!(recipes[0]["hreflang"], json!(["en"]));
    let redirect =
        no_redirects().get(format!("{}/01/09506000134352?linkType=gs1:recipeInfo", app.base)).send().await.unwrap();
    assert_eq!(redirect.headers().get("location").unwrap(), "https://nordfjord.example/recipes/salmon");
    let link_id = created.body["link_id"].as_str().unwrap();
    assert_eq!(app.get("/v1/products/09506000134352/links", &key).await.body.as_array().unwrap().len(), 1);
    assert_eq!(
        app.send("DELETE", &format!("/v1/products/09506000134352/links/{link_id}"), Some(&key), None, &[]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get("/v1/products/09506000134352/links", &key).await.body, json!([]));
}

/// Tests that start (and restart) their own applications.
mod own_apps {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_writer_stops_the_node_sqlite() {
        let app = super::spawn_app(super::Backend::Sqlite, "a_failed_writer_stops_the_node_sqlite").await.unwrap();
        super::a_failed_writer_stops_the_node(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_writer_stops_the_node_postgres() {
        let Some(app) = super::spawn_app(super::Backend::Postgres, "a_failed_writer_stops_the_node_postgres").await
        else {
            return;
        };
        super::a_failed_writer_stops_the_node(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhooks_go_over_https_to_trusted_servers_only() {
        let trusted = super::fulfilment::TestCa::new("the operator's CA");
        let roots = server::subscriptions::roots_from_pem(trusted.pem.as_bytes()).unwrap();
        let file = scratchdb::SqliteFile::new().unwrap();
        let app = super::spawn_app_configured(file.url(), Some(file), |config| config.webhook_roots = roots).await;
        super::fulfilment::fulfilment_webhooks_go_over_https_to_trusted_servers_only(&app, &trusted).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deliveries_give_up_at_their_deadline() {
        super::fulfilment::fulfilment_deliveries_give_up_at_their_deadline().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhooks_over_https_only() {
        super::fulfilment::fulfilment_webhooks_over_https_only().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhooks_sqlite() {
        super::epcis_interface::epcis_webhooks_survive_a_restart(super::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhooks_postgres() {
        super::epcis_interface::epcis_webhooks_survive_a_restart(super::Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn epcis_a_stopping_server_gives_up_its_deliveries() {
        super::epcis_interface::epcis_a_stopping_server_gives_up_its_deliveries().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn epcis_schema_layer() {
        super::epcis_interface::epcis_schema_layer().await;
    }

    /// Two API nodes (each its own store, writer and stock cache) on one fresh PostgreSQL
    /// database, or none when PostgreSQL is not installed (see `scratchdb::postgres_or_skip`).
    async fn two_nodes(test: &str) -> Option<(super::TestApp, super::TestApp)> {
        let url = scratchdb::postgres_or_skip(test)?;
        Some((super::spawn_app_at(url.clone(), None).await, super::spawn_app_at(url, None).await))
    }

    /// Two API nodes (each its own store, writer and stock cache) share one PostgreSQL database;
    /// 64 clients split between them order one hot SKU.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hot_sku_on_two_nodes_postgres() {
        let Some((first, second)) = two_nodes("hot_sku_on_two_nodes_postgres").await else { return };
        super::fulfilment::hot_sku_orders(&[&first, &second], 64, 6, 400, false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_count_judges_the_stock_as_stored_whichever_node_moved_it_postgres() {
        let Some((first, second)) =
            two_nodes("a_count_judges_the_stock_as_stored_whichever_node_moved_it_postgres").await
        else {
            return;
        };
        super::fulfilment::a_count_judges_the_stock_as_stored_whichever_node_moved_it(&first, &second).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lot_one_node_receives_is_allocated_by_the_other_postgres() {
        let Some((first, second)) = two_nodes("a_lot_one_node_receives_is_allocated_by_the_other_postgres").await
        else {
            return;
        };
        super::fulfilment::a_lot_one_node_receives_is_allocated_by_the_other(&first, &second).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rules_and_sites_one_node_changes_reach_the_other_postgres() {
        let Some((first, second)) = two_nodes("rules_and_sites_one_node_changes_reach_the_other_postgres").await else {
            return;
        };
        super::fulfilment::rules_and_sites_one_node_changes_reach_the_other(&first, &second).await;
    }

    /// Other processes open the SQLite file while orders pour in (as `keten admin` commands do):
    /// each one's writer writes the reserves the server's writer left behind and moves the clock.
    /// The server's writer then drops its cache and what it applied ahead, and applies those
    /// writes again: the orders stay exact and the balance's row counts each reserve once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hot_sku_while_other_processes_open_the_file_sqlite() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let app = super::spawn_app(super::Backend::Sqlite, "hot_sku_while_other_processes_open_the_file_sqlite")
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let others = {
            let (url, stop) = (app.url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut opened = 0;
                while !stop.load(Ordering::Relaxed) {
                    let other = store::Store::open(store::StoreConfig::new(url.clone())).await.unwrap();
                    other.close().await;
                    opened += 1;
                }
                opened
            })
        };
        // And, more often than a store opens, a smaller write of another process: the clock moved.
        let clock = {
            let (url, stop) = (app.url.clone(), stop.clone());
            tokio::spawn(async move {
                use sqlx::Connection;
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                let mut writes = 0;
                while !stop.load(Ordering::Relaxed) {
                    sqlx::query("UPDATE writer_clock SET last_batch_unix_ms = last_batch_unix_ms + 1")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    writes += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                writes
            })
        };
        // Enough stock for every order: a balance's row counted twice would not trip its guard
        // (`reserved <= on_hand`), so only the writer's dropping keeps it right.
        super::fulfilment::hot_sku_orders(&[&app], 64, 12, 10_000, false).await;
        stop.store(true, Ordering::Relaxed);
        assert!(others.await.unwrap() > 0 && clock.await.unwrap() > 0);
        let stats = app.store.writer_stats();
        assert!(stats.batches_applied_ahead_dropped > 0, "{stats:?}");
    }

    /// Holds that lapse while no write comes: reads count their units as free at once, the next
    /// stock write releases them and cancels their orders (the worker's sweep off, so that the
    /// lazy path is what is checked).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fulfilment_holds_expire_and_promises_answer_sqlite() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let app = super::spawn_app_configured(file.url(), Some(file), |config| config.hold_sweep_interval = None).await;
        super::fulfilment::fulfilment_holds_expire_and_promises_answer(&app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fulfilment_holds_expire_and_promises_answer_postgres() {
        let Some(url) = scratchdb::postgres_or_skip("fulfilment_holds_expire_and_promises_answer_postgres") else {
            return;
        };
        let app = super::spawn_app_configured(url, None, |config| config.hold_sweep_interval = None).await;
        super::fulfilment::fulfilment_holds_expire_and_promises_answer(&app).await;
    }

    /// More holds lapse at once than a batch expires, with the worker's sweep of lapsed holds off
    /// (it would expire them a second at a time): the next order's batch finds them all due.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fulfilment_more_lapsed_holds_than_a_batch_expires_sqlite() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let app = super::spawn_app_configured(file.url(), Some(file), |config| config.hold_sweep_interval = None).await;
        super::fulfilment::fulfilment_more_lapsed_holds_than_a_batch_expires(&app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fulfilment_more_lapsed_holds_than_a_batch_expires_postgres() {
        let Some(url) = scratchdb::postgres_or_skip("fulfilment_more_lapsed_holds_than_a_batch_expires_postgres")
        else {
            return;
        };
        let app = super::spawn_app_configured(url, None, |config| config.hold_sweep_interval = None).await;
        super::fulfilment::fulfilment_more_lapsed_holds_than_a_batch_expires(&app).await;
    }

    /// Two API nodes pack one SSCC onto several orders, and receive one new lot at several
    /// ASNs, at the same moment: one pallet, one commissioning.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn steps_name_pallets_and_lots_once_on_two_nodes_postgres() {
        let Some((first, second)) = two_nodes("steps_name_pallets_and_lots_once_on_two_nodes_postgres").await else {
            return;
        };
        super::fulfilment::steps_name_pallets_and_lots_once(&[&first, &second]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recalls_at_once_keep_each_flag_sqlite() {
        let app = super::spawn_app(super::Backend::Sqlite, "recalls_at_once_keep_each_flag_sqlite").await.unwrap();
        super::fulfilment::fulfilment_recalls_at_once_keep_each_flag(&[&app]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recalls_at_once_keep_each_flag_on_two_nodes_postgres() {
        let Some((first, second)) = two_nodes("recalls_at_once_keep_each_flag_on_two_nodes_postgres").await else {
            return;
        };
        super::fulfilment::fulfilment_recalls_at_once_keep_each_flag(&[&first, &second]).await;
    }

    /// A route started several times at once, on one SQLite node and on two PostgreSQL nodes:
    /// its orders leave once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_start_once_sqlite() {
        let app = super::spawn_app(super::Backend::Sqlite, "routes_start_once_sqlite").await.unwrap();
        super::dispatch::routes_start_once(&[&app]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_start_once_on_two_nodes_postgres() {
        let Some((first, second)) = two_nodes("routes_start_once_on_two_nodes_postgres").await else { return };
        super::dispatch::routes_start_once(&[&first, &second]).await;
    }

    /// Deleting a product and another node's first stock of it, neither committed, settle as if
    /// one came first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn product_deletion_and_first_stock_settle_on_two_nodes_postgres() {
        let Some(url) = scratchdb::postgres_or_skip("product_deletion_and_first_stock_settle_on_two_nodes_postgres")
        else {
            return;
        };
        let app = super::spawn_app_at(url.clone(), None).await;
        super::fulfilment::product_deletion_and_first_stock_settle_on_two_nodes(&app, &url).await;
    }

    /// A change of a location's zones and another node's receipt into it settle as if one came first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn location_changes_and_receipts_settle_on_two_nodes_postgres() {
        let Some(url) = scratchdb::postgres_or_skip("location_changes_and_receipts_settle_on_two_nodes_postgres")
        else {
            return;
        };
        let app = super::spawn_app_at(url.clone(), None).await;
        super::fulfilment::location_changes_and_receipts_settle_on_two_nodes(&app, &url).await;
    }

    /// A recall's status change and another node's step on the same order settle as if one came first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recall_and_an_order_moving_on_settle_on_two_nodes_postgres() {
        let Some(url) = scratchdb::postgres_or_skip("a_recall_and_an_order_moving_on_settle_on_two_nodes_postgres")
        else {
            return;
        };
        let app = super::spawn_app_at(url.clone(), None).await;
        super::fulfilment::a_recall_and_an_order_moving_on_settle_on_two_nodes(&app, &url).await;
    }

    /// A receipt that PostgreSQL fails to break a deadlock, twice, is applied again each time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadlocked_receipt_is_applied_again_postgres() {
        let Some(url) = scratchdb::postgres_or_skip("a_deadlocked_receipt_is_applied_again_postgres") else {
            return;
        };
        let app = super::spawn_app_at(url.clone(), None).await;
        super::fulfilment::a_deadlocked_receipt_is_applied_again(&app, &url).await;
    }

    /// A subscription two API nodes share sends each event once, even when its receiver is slow.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn epcis_subscriptions_deliver_once_on_two_nodes_postgres() {
        let Some((first, second)) = two_nodes("epcis_subscriptions_deliver_once_on_two_nodes_postgres").await else {
            return;
        };
        super::epcis_interface::epcis_subscriptions_deliver_once_on_two_nodes(&[&first, &second]).await;
    }

    /// A webhook two API nodes share sends each transition once, even when its receiver is slow.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhooks_deliver_once_on_two_nodes_postgres() {
        let Some((first, second)) = two_nodes("webhooks_deliver_once_on_two_nodes_postgres").await else { return };
        super::fulfilment::webhooks_deliver_once_on_two_nodes(&[&first, &second]).await;
    }

    /// A transaction that began before a page of the movement journal was read, and commits
    /// after it, still comes after that page's cursor.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn journal_cursor_is_not_passed_by_a_later_commit_postgres() {
        let Some(url) = scratchdb::postgres_or_skip("journal_cursor_is_not_passed_by_a_later_commit_postgres") else {
            return;
        };
        let app = super::spawn_app_at(url.clone(), None).await;
        super::fulfilment::journal_cursor_is_not_passed_by_a_later_commit(&app, &url).await;
    }

    /// An order transition written by a transaction that began before a webhook delivery was
    /// read, and commits after it, is still delivered, and first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_cursor_is_not_passed_by_a_later_commit_postgres() {
        let Some(url) = scratchdb::postgres_or_skip("webhook_cursor_is_not_passed_by_a_later_commit_postgres") else {
            return;
        };
        let app = super::spawn_app_at(url.clone(), None).await;
        super::fulfilment::webhook_cursor_is_not_passed_by_a_later_commit(&app, &url).await;
    }
}
