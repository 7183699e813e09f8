//! `keten bench …`: benchmarks that generate their own data and end with one summary line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use network::{Nutrition, Product, TemperatureClass, TenantId};
use sha2::Digest;
use store::{IdempotencyRecord, Mutation, PutMode, Store, StoreConfig, StoredResponse, Write, WriterConfig};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Small idempotent writes (product upserts) through the group-commit writer vs one
    /// transaction per request, on SQLite and PostgreSQL, durable.
    Writes(WritesOptions),
    /// Parse + validate throughput of GS1 element strings, scanner data and Digital Link URIs, one core.
    Gs1(Gs1Options),
    /// Resolver requests per second over loopback (linkset JSON and the consumer page), in-process load generator.
    Resolver(ResolverOptions),
    /// The routing engine on Solomon, Gehring & Homberger or Li & Lim, against the best known solutions.
    Routing(crate::bench_routing::RoutingOptions),
    /// EPCIS capture rate (in-process and HTTP) and MATCH_epc / trace latency on generated events.
    Epcis(crate::bench_epcis::EpcisOptions),
    /// Transparency log: entries appended per second (durable), capture-to-checkpoint time,
    /// proof latency on a filled log, and `verify log` speed.
    Log(crate::bench_log::LogOptions),
    /// Orders captured, allocated and reserved (3 lines, durable) on a generated network, and the
    /// row-lock baseline (one PostgreSQL transaction per order, SELECT … FOR UPDATE) beside it.
    Orders(crate::bench_orders::OrdersOptions),
    /// A generated dispatch wave (home deliveries, chilled/frozen/ambient, promise windows, a
    /// mixed fleet) planned at several time limits, against one trip per shipment.
    Dispatch(crate::bench_dispatch::DispatchOptions),
    /// Temperature readings ingested per second (SenML packs in-process and over HTTP), and a
    /// plain multi-row insert of the same readings beside it.
    Readings(crate::bench_readings::ReadingsOptions),
}

#[derive(Debug, Args)]
pub struct Gs1Options {
    /// Seconds per form and round.
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// Rounds; the median round is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

#[derive(Debug, Args)]
pub struct ResolverOptions {
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Args)]
pub struct WritesOptions {
    /// Seconds each configuration runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    backend: BackendChoice,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Writes(options) => writes(options).await,
        BenchCommand::Gs1(options) => crate::bench_gs1::gs1(options),
        BenchCommand::Resolver(options) => crate::bench_gs1::resolver(options).await,
        BenchCommand::Epcis(options) => crate::bench_epcis::epcis(options).await,
        BenchCommand::Log(options) => crate::bench_log::log(options).await,
        BenchCommand::Orders(options) => crate::bench_orders::orders(options).await,
        BenchCommand::Readings(options) => crate::bench_readings::readings(options).await,
        BenchCommand::Dispatch(options) => {
            tokio::task::spawn_blocking(move || crate::bench_dispatch::dispatch(options)).await?
        }
        BenchCommand::Routing(options) => {
            tokio::task::spawn_blocking(move || crate::bench_routing::routing(options)).await?
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Batched,
    PerRequest,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Batched => "group commit",
            Mode::PerRequest => "one tx per request",
        }
    }
}

#[derive(Debug)]
struct Measured {
    writes: u64,
    seconds: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    batches: u64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.writes as f64 / self.seconds
    }
}

fn percentile(sorted_micros: &[u32], fraction: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let index = ((sorted_micros.len() as f64 - 1.0) * fraction).round() as usize;
    f64::from(sorted_micros[index]) / 1000.0
}

fn gtin_of(number: u64) -> gs1::Gtin {
    let body = format!("{:013}", 2_000_000_000_000 + number);
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    gs1::Gtin::parse(&format!("{body}{}", gs1::check_digit(&digits))).expect("generated GTIN")
}

/// The distinct products the clients upsert (later writes update earlier rows).
const PRODUCTS_DISTINCT: u64 = 50_000;

async fn measure(url: &str, mode: Mode, clients: usize, duration: Duration) -> anyhow::Result<Measured> {
    let mut config = StoreConfig::new(url);
    config.read_connections_max = clients as u32 + 4;
    config.writer = match mode {
        Mode::Batched => WriterConfig::default(),
        // SQLite has one writing connection whatever the task count; PostgreSQL gets one
        // connection per client, as a conventional server would.
        Mode::PerRequest => WriterConfig::unbatched(if url.starts_with("sqlite") { 1 } else { clients }),
    };
    let store = Arc::new(Store::open(config).await.with_context(|| format!("opening {url}"))?);
    let tenant_id = TenantId::parse("bench").expect("tenant id");
    store
        .write(Write {
            tenant_id: tenant_id.clone(),
            mutation: Mutation::PutTenant { name: "Bench".into(), mode: PutMode::Upsert },
            idempotency: None,
        })
        .await?;
    let batches_before = store.writer_stats().batches;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients as u64 {
        let store = store.clone();
        let tenant_id = tenant_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                sequence += 1;
                let number = (client * 7919 + sequence * 104_729) % PRODUCTS_DISTINCT;
                let product = Product {
                    gtin: gtin_of(number),
                    name: format!("Bench product {number} v{sequence}"),
                    brand: Some("Bench".into()),
                    description: None,
                    temperature_class: TemperatureClass::Chilled,
                    shelf_life_days: Some(10),
                    min_remaining_shelf_life_days: None,
                    nutrition: Some(Nutrition { protein_g: Some(12.5), ..Nutrition::default() }),
                    country_of_origin: None,
                    supplier_party_id: None,
                };
                let key = format!("bench-{client}-{sequence}");
                let request_sha256: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
                let idempotency = IdempotencyRecord {
                    tenant_id: tenant_id.clone(),
                    key,
                    request_sha256,
                    respond: Box::new(|applied| StoredResponse {
                        status: if applied.created { 201 } else { 200 },
                        body: b"{}".to_vec(),
                    }),
                };
                let sent = Instant::now();
                let result = store
                    .write(Write {
                        tenant_id: tenant_id.clone(),
                        mutation: Mutation::PutProduct { product, mode: PutMode::Upsert },
                        idempotency: Some(idempotency),
                    })
                    .await;
                if result.is_err() {
                    return Err(anyhow::anyhow!("write failed: {result:?}"));
                }
                latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let batches = store.writer_stats().batches - batches_before;
    store.close().await;
    latencies.sort_unstable();
    Ok(Measured {
        writes: latencies.len() as u64,
        seconds,
        latency_p50_ms: percentile(&latencies, 0.5),
        latency_p99_ms: percentile(&latencies, 0.99),
        batches,
    })
}

async fn writes(options: WritesOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.clients >= 1 && options.clients <= 256, "--clients must be 1..=256");
    anyhow::ensure!(options.seconds > 0.0 && options.seconds <= 600.0, "--seconds must be within (0, 600]");
    let duration = Duration::from_secs_f64(options.seconds);
    let mut backends: Vec<&str> = Vec::new();
    if matches!(options.backend, BackendChoice::Sqlite | BackendChoice::Both) {
        backends.push("sqlite");
    }
    let postgres = if matches!(options.backend, BackendChoice::Postgres | BackendChoice::Both) {
        backends.push("postgres");
        Some(
            scratchdb::PostgresServer::start(scratchdb::PostgresOptions::BENCH)
                .context("starting a scratch PostgreSQL (fsync on)")?,
        )
    } else {
        None
    };
    println!(
        "bench writes: product upserts with Idempotency-Keys, {} clients, {} s per run, durable commits",
        options.clients, options.seconds
    );
    println!(
        "{:<10} {:<20} {:>10} {:>12} {:>9} {:>9} {:>11}",
        "backend", "writer", "writes", "writes/s", "p50 ms", "p99 ms", "writes/tx"
    );
    let mut summary = Vec::new();
    for backend in backends {
        let mut rates = Vec::new();
        for mode in [Mode::Batched, Mode::PerRequest] {
            let sqlite_file;
            let url = if backend == "sqlite" {
                sqlite_file = scratchdb::SqliteFile::new()?;
                sqlite_file.url()
            } else {
                postgres.as_ref().expect("started above").create_database()?
            };
            let measured = measure(&url, mode, options.clients, duration).await?;
            println!(
                "{:<10} {:<20} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>11.1}",
                backend,
                mode.name(),
                measured.writes,
                measured.rate(),
                measured.latency_p50_ms,
                measured.latency_p99_ms,
                measured.writes as f64 / measured.batches.max(1) as f64
            );
            rates.push(measured.rate());
        }
        summary.push(format!(
            "{backend} {:.0}/s vs {:.0}/s ({:.1}×)",
            rates[0],
            rates[1],
            rates[0] / rates[1].max(1e-9)
        ));
    }
    println!("summary: group commit vs one transaction per request: {}", summary.join("; "));
    Ok(())
}

/// A port of this machine's loopback, bound for the real server: its address is known before the
/// server's configuration (which names its public URL) is made.
pub(crate) struct Listening {
    listener: tokio::net::TcpListener,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

impl Listening {
    pub(crate) async fn bind() -> anyhow::Result<Listening> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        Ok(Listening { listener, base })
    }

    /// The server's configuration a benchmark serves with: its log named `bench.keten/log`.
    pub(crate) fn config(&self) -> server::ServerConfig {
        server::ServerConfig::new("bench.keten/log", self.base.clone())
    }

    /// Serves `store` with `config` (`server::serve`) until [`Served::stop`].
    pub(crate) fn serve(self, store: Store, config: server::ServerConfig) -> Served {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(self.listener, store, config, async move {
            let _ = stopped.await;
        }));
        Served { base: self.base, stop, task }
    }
}

/// The real server, serving a benchmark's store in this process.
pub(crate) struct Served {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Binds a port and serves `store` with the benchmarks' configuration ([`Listening::config`]).
    pub(crate) async fn start(store: Store) -> anyhow::Result<Served> {
        let listening = Listening::bind().await?;
        let config = listening.config();
        Ok(listening.serve(store, config))
    }

    /// Shuts the server down gracefully and waits for it.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}
