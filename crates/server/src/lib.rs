//! Keten's HTTP edge.
//!
//! API boundary: this crate alone knows the JSON wire formats (`dto`), maps every failure to an
//! RFC 9457 problem (`problem`), authenticates keys and checks scopes (`extract`), and turns
//! requests into store reads and writer mutations (`api`). No handler builds SQL; no store query
//! runs without a tenant.

pub mod alarms;
pub mod api;
pub mod console;
pub mod dispatch;
pub mod dto;
pub mod epcis;
pub mod extract;
pub mod fulfilment;
pub mod log;
pub mod metrics;
pub mod mqtt;
pub mod pages;
pub mod problem;
pub mod provenance;
pub mod readings;
pub mod reports;
pub mod resolver;
pub mod scan;
pub mod session;
pub mod steps;
pub mod subscriptions;
pub mod trace;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use store::Store;
use utoipa::OpenApi;

use crate::metrics::Metrics;
use crate::problem::Problem;

/// The largest request body accepted (1 MiB).
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The name of the transparency log (its checkpoints' origin line).
    pub log_origin: String,
    /// The transparency log's signer, checkpoint interval and witnesses.
    pub log: log::LogConfig,
    /// The address the world reaches this server at, e.g. `https://keten.example`: the domain of
    /// Keten's own GS1 Digital Links and of the links in linksets.
    pub public_url: String,
    /// The EPCIS 2.0 JSON schema: when given, JSON captures are checked against it before the
    /// semantic layer (which alone already refuses every malformed document).
    pub epcis_schema: Option<Arc<::epcis::schema::SchemaValidator>>,
    /// Whether webhook destinations may be private, loopback or link-local addresses (off by
    /// default: a tenant must not reach the operator's internal network through keten).
    pub webhooks_to_private_addresses: bool,
    /// Whether webhook and EPCIS subscription destinations must be `https://` (off by default:
    /// `http://` is the merchant's choice). On, `http://` ones are refused when created, and
    /// those stored before are not delivered to (each delivery fails with the reason).
    pub webhooks_https_only: bool,
    /// How long a webhook or EPCIS subscription delivery may take from its claim (default and
    /// most: [`subscriptions::DELIVERY_WORK_MAX`]; tests shorten it).
    pub delivery_work_max: std::time::Duration,
    /// Certificates trusted as roots for `https://` webhook and EPCIS subscription destinations,
    /// besides the system's (`--webhook-ca-file`: an operator's or a merchant's private CA).
    pub webhook_roots: Vec<reqwest::Certificate>,
    /// The MQTT broker to take readings from (`--mqtt`), if any.
    pub mqtt: Option<mqtt::MqttConfig>,
    /// How often the worker looks for lapsed order holds and expires them (default
    /// [`subscriptions::HOLD_SWEEP_INTERVAL`]); `None` leaves them to the next fulfilment write.
    pub hold_sweep_interval: Option<std::time::Duration>,
}

impl ServerConfig {
    /// A configuration whose log signs with a fresh random key (`keten serve` sets the stored
    /// one). Panics when `log_origin` is no valid key name (see [`tlog::note::validate_key_name`]).
    pub fn new(log_origin: impl Into<String>, public_url: impl Into<String>) -> ServerConfig {
        let log_origin = log_origin.into();
        ServerConfig {
            log: log::LogConfig::generate(&log_origin).expect("the log origin is a valid key name"),
            log_origin,
            public_url: public_url.into(),
            epcis_schema: None,
            webhooks_to_private_addresses: false,
            webhooks_https_only: false,
            delivery_work_max: subscriptions::DELIVERY_WORK_MAX,
            webhook_roots: Vec::new(),
            mqtt: None,
            hold_sweep_interval: Some(subscriptions::HOLD_SWEEP_INTERVAL),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub openapi: Arc<utoipa::openapi::OpenApi>,
    /// What the resolver read recently (for at most `resolver::ITEM_CACHE_LIFETIME`).
    pub item_cache: Arc<resolver::ItemCache>,
    /// The consumer pages' templates and caches (`provenance`).
    pub consumer_pages: Arc<provenance::ConsumerPages>,
    /// Wakes the subscription worker after a capture.
    pub subscriptions_wake: Arc<tokio::sync::Notify>,
    /// Travel distances and times for dispatch: great-circle distance × the road factor by
    /// default; a road-network table plugs in here (an implementation of the trait).
    pub matrix: Arc<dyn ::dispatch::TravelMatrix>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AppState")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The whole application.
pub fn app(store: Store, config: ServerConfig) -> Router {
    build_app(store, config, Arc::new(tokio::sync::Notify::new()))
}

fn build_app(store: Store, config: ServerConfig, subscriptions_wake: Arc<tokio::sync::Notify>) -> Router {
    let metrics = Metrics::new(store.writer_counters());
    store.observe_writer(metrics.clone());
    let (api_router, api_doc) = api::router().split_for_parts();
    let api_router = api_router.route_layer(axum::middleware::from_fn_with_state(
        api::QueryTakers::of(&api_doc),
        api::refuse_unexpected_query,
    ));
    let mut document = api::ApiDoc::openapi();
    document.merge(api_doc);
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let state = AppState {
        store,
        config: Arc::new(config),
        metrics,
        openapi: Arc::new(document),
        item_cache: Arc::new(resolver::ItemCache::default()),
        consumer_pages: Arc::new(provenance::ConsumerPages::default()),
        subscriptions_wake,
        matrix: Arc::new(::dispatch::Haversine::default()),
    };
    Router::new()
        .merge(api_router)
        .merge(resolver::routes())
        .merge(provenance::routes())
        .merge(console::routes())
        .merge(epcis::layered(state.clone()))
        .merge(log::routes())
        .route("/", get(pages::index))
        .route("/docs", get(pages::docs))
        .route("/openapi.json", get(openapi_json))
        .route("/problems", get(pages::problems))
        .route("/problems/{code}", get(pages::problem))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(page_headers))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn(catch_panics))
        .with_state(state)
}

/// Every page carries the Content-Security-Policy (styles and scripts from this server only),
/// `nosniff` and `no-referrer`: those that do not set them themselves get them here.
async fn page_headers(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.starts_with("text/html"));
    if html {
        let headers = response.headers_mut();
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                axum::http::HeaderValue::from_static(web::CONTENT_SECURITY_POLICY),
            );
        }
        headers.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(axum::http::HeaderValue::from_static("nosniff"));
        headers.entry(header::REFERRER_POLICY).or_insert(axum::http::HeaderValue::from_static("no-referrer"));
    }
    response
}

async fn openapi_json(State(app): State<AppState>) -> Response {
    let body = serde_json::to_vec_pretty(&*app.openapi).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<AppState>) -> Result<&'static str, Problem> {
    if app.store.writer_failed() {
        return Err(Problem::new(
            "unavailable",
            "this node's writer stopped after an internal error (see its log); restart it",
        ));
    }
    app.store.ping().await?;
    Ok("ready\n")
}

async fn metrics_text(State(app): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.render())
        .into_response()
}

async fn not_found() -> Problem {
    Problem::new("not-found", "no such route")
}

async fn method_not_allowed() -> Problem {
    Problem::new("method-not-allowed", "this resource does not support this method")
}

/// Turns a panic in a handler into a 500 problem instead of a dropped connection.
async fn catch_panics(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures_util_lite::CatchUnwindFuture;
    match CatchUnwindFuture::new(next.run(request)).await {
        Ok(response) => response,
        Err(message) => {
            tracing::error!(panic = %message, "handler panicked");
            let mut response =
                Problem::new("internal", "an unexpected error occurred; it has been logged").into_response();
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

mod futures_util_lite {
    //! `catch_unwind` for a future, without pulling in a futures crate for it.
    use std::any::Any;
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct CatchUnwindFuture<F> {
        inner: Pin<Box<F>>,
    }

    impl<F: Future> CatchUnwindFuture<F> {
        pub fn new(inner: F) -> Self {
            CatchUnwindFuture { inner: Box::pin(inner) }
        }
    }

    fn message(payload: Box<dyn Any + Send>) -> String {
        payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    }

    impl<F: Future> Future for CatchUnwindFuture<F> {
        type Output = Result<F::Output, String>;
        fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
            let inner = self.inner.as_mut();
            match catch_unwind(AssertUnwindSafe(|| inner.poll(context))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
                Err(payload) => Poll::Ready(Err(message(payload))),
            }
        }
    }
}

/// How long a stopping server waits for its worker to record the deliveries under way (each
/// gives up its send at once, and records that).
pub const WORKER_STOP_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves until `shutdown` resolves, then stops taking connections, finishes in-flight requests
/// and write batches, and closes the store.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let wake = Arc::new(tokio::sync::Notify::new());
    let rules = subscriptions::DeliveryRules {
        private_destinations: config.webhooks_to_private_addresses,
        work_max: config.delivery_work_max,
    };
    let https_only = config.webhooks_https_only;
    let webhook_roots = config.webhook_roots.clone();
    let hold_sweep_interval = config.hold_sweep_interval;
    let log_config = config.log.clone();
    let mqtt_config = config.mqtt.clone();
    let router = build_app(store.clone(), config, wake.clone());
    let address: SocketAddr = listener.local_addr()?;
    tracing::info!(%address, backend = store.backend().name(), "serving");
    // Before the first request: after a crash the log may hold entries committed after the last
    // checkpoint, and the first checkpoint served covers them all.
    if let Err(error) = log::checkpoint_now(&store, &log_config.signer).await {
        tracing::warn!(detail = %error.detail, "the start-up checkpoint failed; the checkpointer retries");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(subscriptions::run(
        store.clone(),
        wake,
        stopped.clone(),
        rules,
        (https_only, webhook_roots),
        hold_sweep_interval,
    ));
    let checkpointer = tokio::spawn(log::run_checkpointer(
        store.clone(),
        log_config.signer.clone(),
        log_config.checkpoint_interval,
        stopped,
    ));
    let mqtt = mqtt_config.map(|mqtt_config| tokio::spawn(mqtt::run(store.clone(), mqtt_config, stop.subscribe())));
    // A node whose writer failed (a bug) stops too, so that its supervisor restarts it: it would
    // otherwise serve reads and refuse every write.
    let failing = store.clone();
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown => {}
                () = failing.writer_failure() => {
                    tracing::error!("the writer failed: stopping, for this node to be restarted");
                }
            }
        })
        .await;
    let _ = stop.send(true);
    if let Some(mqtt) = mqtt {
        let _ = mqtt.await;
    }
    // The worker's deliveries under way give up their sends and record them (due again at once),
    // so none stays claimed until its lease ends; past this bound it is stopped where it is.
    let mut worker = worker;
    if tokio::time::timeout(WORKER_STOP_SLACK, &mut worker).await.is_err() {
        worker.abort();
        let _ = worker.await;
    }
    let _ = checkpointer.await;
    // The last checkpoint covers every event captured before the shutdown.
    if let Err(error) = log::checkpoint_now(&store, &log_config.signer).await {
        tracing::warn!(detail = %error.detail, "the shutdown checkpoint failed");
    }
    served?;
    store.close().await;
    if store.writer_failed() {
        return Err(std::io::Error::other("the writer stopped after an internal error (see the log above)"));
    }
    tracing::info!("stopped");
    Ok(())
}
