//! `keten bench epcis`: EPCIS capture throughput (in-process and over HTTP, documents of 100 and
//! 1,000 events), then `MATCH_epc` and trace latency on a repository filled with generated events.
//!
//! The generated network: 50 products, serialised items moving between 100 read points, items
//! packed onto pallets (aggregations), and lots with temperature reports. Each event is distinct
//! (its own time and objects), so every capture stores new events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use network::TenantId;
use store::{Mutation, PutMode, Scope, Store, StoreConfig, Write};

#[derive(Debug, Args)]
pub struct EpcisOptions {
    /// Events in the repository before the query latencies are measured.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Events captured per capture-rate measurement.
    #[arg(long, default_value_t = 50_000)]
    pub capture_events: u64,
    /// Concurrent capturing clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Queries per latency measurement.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// The database (default: a fresh SQLite file that is removed afterwards).
    #[arg(long)]
    pub db: Option<String>,
}

/// Distinct serials per product: each serial appears in a handful of events per million.
const SERIALS: u64 = 20_000;
const PRODUCTS: u64 = 50;
pub(crate) const SEED: u64 = 0x006b_6574_656e;

pub(crate) struct Generator {
    state: u64,
    next_event: u64,
    next_pallet: u64,
}

fn gtin(product: u64) -> String {
    let body = format!("{:013}", 9_506_000_100_000 + product);
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    format!("{body}{}", gs1::check_digit(&digits))
}

fn serial(product: u64, number: u64) -> String {
    format!("https://id.gs1.org/01/{}/21/{number}", gtin(product))
}

fn gln(number: u64) -> String {
    let body = format!("{:012}", 950_600_000_000 + number);
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    format!("https://id.gs1.org/414/{body}{}", gs1::check_digit(&digits))
}

fn sscc(number: u64) -> String {
    let body = format!("0{:016}", 9_506_000_000_000_000 + number);
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    format!("https://id.gs1.org/00/{body}{}", gs1::check_digit(&digits))
}

impl Generator {
    pub(crate) fn new(seed: u64, first_event: u64) -> Generator {
        Generator { state: seed | 1, next_event: first_event, next_pallet: first_event }
    }

    fn random(&mut self, below: u64) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % below
    }

    fn item(&mut self) -> String {
        let product = self.random(PRODUCTS);
        let number = self.random(SERIALS);
        serial(product, number)
    }

    fn event(&mut self) -> String {
        let index = self.next_event;
        self.next_event += 1;
        // One event per second from 2024-01-01, each at its own time.
        let time = jiff::Timestamp::from_second(1_704_067_200 + index as i64).unwrap_or_default();
        let kind = self.random(10);
        let read_point = gln(self.random(100));
        if kind < 7 {
            let steps = ["shipping", "receiving", "storing", "picking", "loading"];
            let step = steps[self.random(steps.len() as u64) as usize];
            let epcs = format!("\"{}\",\"{}\"", self.item(), self.item());
            format!(
                r#"{{"type":"ObjectEvent","eventTime":"{time}","eventTimeZoneOffset":"+01:00","action":"OBSERVE","bizStep":"{step}","epcList":[{epcs}],"readPoint":{{"id":"{read_point}"}}}}"#
            )
        } else if kind < 9 {
            self.next_pallet += 1;
            let parent = sscc(self.next_pallet);
            let children: Vec<String> = (0..4).map(|_| format!("\"{}\"", self.item())).collect();
            format!(
                r#"{{"type":"AggregationEvent","eventTime":"{time}","eventTimeZoneOffset":"+01:00","action":"ADD","bizStep":"packing","parentID":"{parent}","childEPCs":[{}],"bizLocation":{{"id":"{read_point}"}}}}"#,
                children.join(",")
            )
        } else {
            let lot = format!("https://id.gs1.org/01/{}/10/L{}", gtin(self.random(PRODUCTS)), self.random(5_000));
            let kelvin = 275.15 + self.random(40) as f64 / 10.0;
            format!(
                r#"{{"type":"ObjectEvent","eventTime":"{time}","eventTimeZoneOffset":"+01:00","action":"OBSERVE","bizStep":"sensor_reporting","epcList":[],"quantityList":[{{"epcClass":"{lot}","quantity":20,"uom":"KGM"}}],"sensorElementList":[{{"sensorReport":[{{"type":"Temperature","value":{kelvin:.2},"uom":"KEL"}}]}}]}}"#
            )
        }
    }

    pub(crate) fn document(&mut self, events: usize) -> String {
        let list: Vec<String> = (0..events).map(|_| self.event()).collect();
        format!(
            r#"{{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2024-01-01T00:00:00Z","epcisBody":{{"eventList":[{}]}}}}"#,
            list.join(",")
        )
    }
}

/// Captures documents in-process through the one capture function; answers events/s.
pub(crate) async fn capture_in_process(
    store: &Store,
    tenant: &TenantId,
    documents: Vec<String>,
    clients: usize,
) -> anyhow::Result<(u64, f64)> {
    let queue = Arc::new(std::sync::Mutex::new(documents));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let queue = queue.clone();
        let store = store.clone();
        let tenant = tenant.clone();
        tasks.push(tokio::spawn(async move {
            let mut events = 0u64;
            loop {
                let Some(text) = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop() else { break };
                let document = tokio::task::spawn_blocking(move || epcis::parse_json_document(&text))
                    .await?
                    .map_err(|errors| anyhow::anyhow!("generated document rejected: {errors}"))?;
                let receipt = server::epcis::capture_valid_document(&store, &tenant, &document)
                    .await
                    .map_err(|problem| anyhow::anyhow!("capture failed: {}", problem.detail))?;
                events += receipt.event_ids.len() as u64;
            }
            anyhow::Ok(events)
        }));
    }
    let mut events = 0;
    for task in tasks {
        events += task.await??;
    }
    Ok((events, started.elapsed().as_secs_f64()))
}

/// Captures documents over HTTP (`POST /capture`); answers events/s.
async fn capture_over_http(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    documents: Vec<String>,
    events_per_document: u64,
    clients: usize,
) -> anyhow::Result<(u64, f64)> {
    let queue = Arc::new(std::sync::Mutex::new(documents));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let queue = queue.clone();
        let client = client.clone();
        let url = format!("{base}/capture");
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut events = 0u64;
            loop {
                let Some(text) = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop() else { break };
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/ld+json")
                    .body(text)
                    .send()
                    .await?;
                anyhow::ensure!(response.status().as_u16() == 202, "capture answered {}", response.status());
                events += events_per_document;
            }
            anyhow::Ok(events)
        }));
    }
    let mut events = 0;
    for task in tasks {
        events += task.await??;
    }
    Ok((events, started.elapsed().as_secs_f64()))
}

/// Sequential GETs; answers (p50 ms, p99 ms, mean events per answer).
pub(crate) async fn latencies(
    client: &reqwest::Client,
    key: &str,
    urls: &[String],
    count_path: &[&str],
) -> anyhow::Result<(f64, f64, f64)> {
    let mut micros = Vec::with_capacity(urls.len());
    let mut found = 0usize;
    for url in urls {
        let sent = Instant::now();
        let response = client.get(url).bearer_auth(key).send().await?;
        anyhow::ensure!(response.status().is_success(), "{url}: {}", response.status());
        let body: serde_json::Value = response.json().await?;
        micros.push(sent.elapsed().as_micros() as u64);
        let mut value = &body;
        for step in count_path {
            value = &value[*step];
        }
        found += value.as_array().map_or(0, Vec::len);
    }
    micros.sort_unstable();
    let at = |fraction: f64| micros[((micros.len() - 1) as f64 * fraction).round() as usize] as f64 / 1000.0;
    Ok((at(0.5), at(0.99), found as f64 / urls.len().max(1) as f64))
}

fn encode(text: &str) -> String {
    server::epcis::encode_path_segment(text)
}

/// The database of a capture benchmark (`db`, or a fresh SQLite file, removed when the returned
/// file is dropped) with the tenant `bench`.
pub(crate) async fn open_bench_store(db: Option<String>) -> anyhow::Result<(Store, TenantId, scratchdb::SqliteFile)> {
    let file = scratchdb::SqliteFile::new()?;
    let url = db.unwrap_or_else(|| file.url());
    let mut config = StoreConfig::new(url.clone());
    config.read_connections_max = 16;
    let store = Store::open(config).await.with_context(|| format!("opening {url}"))?;
    let tenant = TenantId::parse("bench").map_err(|error| anyhow::anyhow!("{error}"))?;
    store
        .write(Write {
            tenant_id: tenant.clone(),
            mutation: Mutation::PutTenant { name: "bench".into(), mode: PutMode::Upsert },
            idempotency: None,
        })
        .await?;
    Ok((store, tenant, file))
}

pub async fn epcis(options: EpcisOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.clients >= 1 && options.clients <= 64, "--clients must be 1..=64");
    anyhow::ensure!(options.events <= 100_000_000, "--events must be at most 100,000,000");
    anyhow::ensure!(options.queries >= 1 && options.queries <= 100_000, "--queries must be 1..=100,000");
    let (store, tenant, file) = open_bench_store(options.db.clone()).await?;
    let key = demo::mint(&store, &tenant, Scope::TenantAdmin, "bench epcis").await?;
    let served = crate::bench::Served::start(store.clone()).await?;
    let base = served.base.clone();
    let client = reqwest::Client::builder().pool_max_idle_per_host(options.clients).build()?;
    println!(
        "bench epcis: {} backend, {} capturing clients, {} events per capture measurement, durable commits",
        store.backend().name(),
        options.clients,
        options.capture_events
    );
    let mut generator = Generator::new(SEED, 0);
    let mut summary = Vec::new();
    println!("{:<34} {:>10} {:>10} {:>12}", "capture", "events", "seconds", "events/s");
    for (path, per_document) in
        [("in-process", 100u64), ("in-process", 1000), ("HTTP POST /capture", 100), ("HTTP POST /capture", 1000)]
    {
        let documents: Vec<String> = (0..options.capture_events.div_ceil(per_document))
            .map(|_| generator.document(per_document as usize))
            .collect();
        let (events, seconds) = match path {
            "in-process" => capture_in_process(&store, &tenant, documents, options.clients).await?,
            _ => capture_over_http(&client, &base, &key, documents, per_document, options.clients).await?,
        };
        let rate = events as f64 / seconds;
        let name = format!("{path}, {per_document}-event documents");
        println!("{name:<34} {events:>10} {seconds:>10.1} {rate:>12.0}");
        summary.push(format!(
            "{} {per_document}/doc {rate:.0}/s",
            if path == "in-process" { "in-process" } else { "HTTP" }
        ));
    }
    // Fill the repository to the size asked, in-process with 1,000-event documents.
    let stored = store.epcis_event_count().await? as u64;
    if stored < options.events {
        let started = Instant::now();
        let mut remaining = options.events - stored;
        let mut last_report = Instant::now();
        while remaining > 0 {
            let chunk = remaining.min(20_000);
            let documents: Vec<String> = (0..chunk.div_ceil(1000)).map(|_| generator.document(1000)).collect();
            let (events, _) = capture_in_process(&store, &tenant, documents, options.clients).await?;
            remaining = remaining.saturating_sub(events);
            if last_report.elapsed() > Duration::from_secs(10) {
                last_report = Instant::now();
                let done = options.events - remaining;
                println!(
                    "  filling: {done} events, {:.0} events/s",
                    (done - stored) as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        println!("filled to {} events in {:.0} s", options.events, started.elapsed().as_secs_f64());
    }
    let total = store.epcis_event_count().await?;
    // Query items that exist: replay the generator and take each event's first serialised item.
    let mut replay = Generator::new(SEED, 0);
    let mut items = Vec::with_capacity(options.queries);
    while items.len() < options.queries {
        let event = replay.event();
        if let Some(start) = event.find("https://id.gs1.org/01/")
            && let Some(length) = event[start..].find('"')
            && event[start..start + length].contains("/21/")
        {
            items.push(event[start..start + length].to_owned());
        }
    }
    let match_urls: Vec<String> =
        items.iter().map(|item| format!("{base}/events?MATCH_epc={}&perPage=100", encode(item))).collect();
    let trace_urls: Vec<String> = items.iter().map(|item| format!("{base}/v1/trace?epc={}", encode(item))).collect();
    println!("{:<34} {:>10} {:>10} {:>12}", format!("query on {total} events"), "p50 ms", "p99 ms", "events/answer");
    let (p50, p99, mean) =
        latencies(&client, &key, &match_urls, &["epcisBody", "queryResults", "resultsBody", "eventList"]).await?;
    println!("{:<34} {p50:>10.2} {p99:>10.2} {mean:>12.1}", "GET /events?MATCH_epc=…");
    summary.push(format!("MATCH_epc p50 {p50:.1} ms p99 {p99:.1} ms"));
    let (p50, p99, mean) = latencies(&client, &key, &trace_urls, &["timeline"]).await?;
    println!("{:<34} {p50:>10.2} {p99:>10.2} {mean:>12.1}", "GET /v1/trace?epc=…");
    summary.push(format!("trace p50 {p50:.1} ms p99 {p99:.1} ms"));
    let proof_urls: Vec<String> = trace_urls.iter().map(|url| format!("{url}&proofs=true")).collect();
    let (p50, p99, mean) = latencies(&client, &key, &proof_urls, &["timeline"]).await?;
    println!("{:<34} {p50:>10.2} {p99:>10.2} {mean:>12.1}", "GET /v1/trace?epc=…&proofs=true");
    summary.push(format!("trace with proofs p50 {p50:.1} ms p99 {p99:.1} ms"));
    served.stop().await?;
    println!("summary: epcis on {} with {total} events: {}", store.backend().name(), summary.join("; "));
    drop(file);
    Ok(())
}
