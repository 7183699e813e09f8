//! Prometheus metrics: requests, latencies, write batch sizes and database time per batch, and the
//! writer's counters (`store::WriterStats`: batches, writes, time per phase, writes applied ahead).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    batch_writes: Histogram,
    batch_seconds: Histogram,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// The writer's counters, read at each scrape. Not the store itself: the store holds these
/// metrics (as its writer's observer), and holding it back would keep it alive for good.
#[derive(Debug)]
struct WriterCollector(store::WriterCounters);

impl Collector for WriterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        let phases = stats.phases;
        let counters = [
            ("writer_batches", "Group-commit batches the writer took (committed or not)", stats.batches),
            ("writer_writes", "Writes in the batches the writer took (committed or not)", stats.writes),
            (
                "writer_batches_leaving_balances_behind",
                "Batches of orders that left their reserves out of the balances' rows (SQLite, while busy)",
                stats.batches_leaving_balances_behind,
            ),
            (
                "writer_writes_applied_ahead",
                "Writes applied on the other core while the batch before was written (SQLite)",
                phases.applied_ahead,
            ),
            (
                "writer_batches_applied_ahead_dropped",
                "Batches applied ahead and then applied again in their transaction (a failed batch before, \
                 or another process wrote the file)",
                stats.batches_applied_ahead_dropped,
            ),
            (
                "writer_batches_applied_one_by_one",
                "Batches a statement failed in (a refused row, a race lost to another node, a deadlock, a full lock \
                 table), rolled back and applied again write by write",
                stats.batches_applied_one_by_one,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let largest = ConstGauge::new(stats.batch_writes_largest as i64);
        largest.encode(encoder.encode_descriptor(
            "writer_batch_writes_largest",
            "The most writes one batch has held",
            None,
            largest.metric_type(),
        )?)?;
        let seconds = [
            ("keys", phases.keys_micros),
            ("stock_read", phases.stock_read_micros),
            ("apply", phases.apply_micros),
            ("flush", phases.flush_micros),
            ("commit", phases.commit_micros),
            ("ahead", phases.ahead_micros),
        ];
        let mut family = encoder.encode_descriptor(
            "writer_phase_seconds",
            "Time committed batches spent in each phase (ahead: applying writes while the batch before was written)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (phase, micros) in seconds {
            let labels = PhaseLabels { phase };
            ConstCounter::new(micros as f64 / 1e6).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// The registry, with the writer's counters read at each scrape.
    pub fn new(writer: store::WriterCounters) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("keten");
        registry.register_collector(Box::new(WriterCollector(writer)));
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let batch_writes = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let batch_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer an HTTP request", request_seconds.clone());
        registry.register("writer_batch_writes", "Writes per group-commit batch", batch_writes.clone());
        registry.register(
            "writer_batch_duration_seconds",
            "Database time per group-commit batch, commit included",
            batch_seconds.clone(),
        );
        Arc::new(Metrics { registry, requests, request_seconds, batch_writes, batch_seconds })
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

impl store::WriterObserver for Metrics {
    fn batch_committed(&self, writes: usize, duration: Duration) {
        self.batch_writes.observe(writes as f64);
        self.batch_seconds.observe(duration.as_secs_f64());
    }
}

/// Counts and times every request by its route template (not its concrete path).
pub async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Known methods only: a made-up method must not create a new time series.
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known.to_owned(),
        _ => "other".to_owned(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics.requests.get_or_create(&RequestLabels { method: method.clone(), route: route.clone(), status }).inc();
    app.metrics
        .request_seconds
        .get_or_create(&RouteLabels { method: method.clone(), route: route.clone() })
        .observe(elapsed.as_secs_f64());
    tracing::debug!(%method, %route, status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
    response
}
