//! `keten`: the platform on one binary.

mod bench;
mod bench_dispatch;
mod bench_epcis;
mod bench_gs1;
mod bench_log;
mod bench_orders;
mod bench_readings;
mod bench_routing;
mod coldchain;
mod demo_coldchain;
mod demo_orders;
mod log;

use std::net::SocketAddr;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use network::TenantId;
use store::{ApiKeySecret, Mutation, PageRequest, PutMode, Scope, Store, StoreConfig, Write};

/// The writer's rows are built on the runtime's threads and freed on the SQLite driver's thread;
/// glibc's allocator pays for such cross-thread frees in its arena locks (about a tenth of the
/// writer's time in `keten bench orders`), mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "keten", version, about = "Keten: an open Retail-as-a-Service supply-chain platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(ServeOptions),
    /// Load the demo network, print keys and links, and serve.
    Demo(ServeOptions),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseOption),
    /// Administer tenants and keys directly in the database.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Cold-chain tools that need no server.
    Coldchain {
        #[command(subcommand)]
        command: coldchain::ColdchainCommand,
    },
    /// The transparency log's key.
    Log {
        #[command(subcommand)]
        command: log::LogCommand,
    },
    /// Verify a proof bundle offline, or monitor a log.
    Verify {
        #[command(subcommand)]
        command: log::VerifyCommand,
    },
    /// Witness another Keten log: cosign its checkpoints once proven consistent.
    Witness(log::WitnessOptions),
    /// Measure a part of the system; every benchmark generates its own data.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Debug, Args)]
struct DatabaseOption {
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST:PORT/DATABASE`.
    #[arg(long, env = "KETEN_DB", default_value = "sqlite://keten.db")]
    db: String,
    /// On SQLite, the core the writer and its connection run on: `last` (the last core this
    /// process may use), `off` (not pinned) or a core's number.
    #[arg(long, env = "KETEN_WRITER_CORE", default_value = "last")]
    writer_core: store::WriterCore,
}

#[derive(Debug, Args)]
struct ServeOptions {
    /// Address to listen on.
    #[arg(long, env = "KETEN_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    database: DatabaseOption,
    /// The transparency log's name (the origin line of its checkpoints).
    #[arg(long, env = "KETEN_LOG_ORIGIN", default_value = "keten.localhost/log")]
    log_origin: String,
    #[command(flatten)]
    log_key: log::LogKeyOptions,
    /// The longest an entry waits for a signed checkpoint, in milliseconds (10 to 60,000): one is
    /// signed at once after a quiet spell, then at most this often while entries arrive.
    #[arg(long, env = "KETEN_CHECKPOINT_INTERVAL_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    checkpoint_interval_ms: u64,
    /// A witness whose cosignatures the log accepts and serves (its verifier key; repeatable).
    #[arg(long = "witness-key", env = "KETEN_WITNESS_KEYS", value_delimiter = ',')]
    witness_keys: Vec<String>,
    /// The address the world reaches this server at: the domain of Keten's own GS1 Digital
    /// Links and QR codes. Default: http://<listen>.
    #[arg(long, env = "KETEN_PUBLIC_URL")]
    public_url: Option<String>,
    /// The EPCIS 2.0 JSON schema file (`EPCIS-JSON-Schema.json` of GS1): when given, JSON
    /// captures are also checked against it.
    #[arg(long, env = "KETEN_EPCIS_SCHEMA")]
    epcis_schema: Option<std::path::PathBuf>,
    /// Let EPCIS webhook subscriptions deliver to loopback, private and link-local addresses
    /// (refused by default).
    #[arg(long, env = "KETEN_WEBHOOKS_TO_PRIVATE_ADDRESSES")]
    webhooks_to_private_addresses: bool,
    /// Deliver webhooks and EPCIS subscriptions over `https://` only: `http://` destinations are
    /// refused when created, and those stored before fail each delivery with the reason.
    #[arg(long, env = "KETEN_WEBHOOKS_HTTPS_ONLY")]
    webhooks_https_only: bool,
    /// PEM certificates (a bundle) trusted as roots for `https://` webhook and EPCIS subscription
    /// destinations, besides the system's: a private CA's.
    #[arg(long, env = "KETEN_WEBHOOK_CA_FILE")]
    webhook_ca_file: Option<std::path::PathBuf>,
    /// Take temperature readings from this MQTT broker (`mqtt://host:port`): topic
    /// `keten/<tenant>/<device>/readings`, payload SenML or a JSON batch, at least once.
    #[arg(long, env = "KETEN_MQTT")]
    mqtt: Option<String>,
    /// The MQTT client id of this node's persistent session.
    #[arg(long, env = "KETEN_MQTT_CLIENT_ID", default_value = "keten")]
    mqtt_client_id: String,
}

impl ServeOptions {
    fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)).trim_end_matches('/').to_owned()
    }
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Lowercase letters, digits and `-`, 2-32 characters.
        tenant_id: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: DatabaseOption,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        database: DatabaseOption,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create an API key and print it once. Use tenant `network` with scope `operator` for an operator key.
    Create {
        #[arg(long)]
        tenant: String,
        /// operator, tenant:admin, tenant:write, tenant:read, device or courier (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        database: DatabaseOption,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(long)]
        tenant: String,
        key_id: String,
        #[command(flatten)]
        database: DatabaseOption,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Coldchain { command } => return coldchain::run(command),
        Command::Log { command } => return log::run_log(command),
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli.command))
}

async fn open(database: &DatabaseOption) -> anyhow::Result<Store> {
    let mut config = StoreConfig::new(&database.db);
    config.writer.core = database.writer_core;
    Store::open(config).await.with_context(|| format!("opening {}", database.db))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(options) => {
            let store = open(&options.database).await?;
            serve(options, store).await
        }
        Command::Demo(options) => {
            let store = open(&options.database).await?;
            let demo = demo::load(&store).await?;
            capture_demo_journey(&store).await?;
            let courier_key = demo_orders::load(&store).await?;
            demo_coldchain::load(&store).await?;
            demo_coldchain::load_salmon(&store, demo_orders::salmon_pallet()?).await?;
            print_demo(&options, &demo, &courier_key);
            serve(options, store).await
        }
        Command::Migrate(database) => {
            let applied = Store::migrate_only(&database.db).await?;
            if applied.is_empty() {
                println!("{}: up to date", database.db);
            }
            for migration in applied {
                println!("{}: applied {migration}", database.db);
            }
            Ok(())
        }
        Command::Admin { command } => admin(command).await,
        Command::Bench { command } => bench::run(command).await,
        Command::Coldchain { command } => coldchain::run(command),
        Command::Log { command } => log::run_log(command),
        Command::Verify { command } => log::run_verify(command).await,
        Command::Witness(options) => log::run_witness(options).await,
    }
}

/// Records the salmon lot's journey through the one capture function (idempotent).
pub(crate) async fn capture_demo_journey(store: &Store) -> anyhow::Result<()> {
    let document = epcis::parse_json_document(&demo::salmon_journey_document())
        .map_err(|errors| anyhow::anyhow!("the demo journey is not a valid EPCIS document: {errors}"))?;
    server::epcis::capture_valid_document(store, &demo::salmon_tenant(), &document)
        .await
        .map_err(|problem| anyhow::anyhow!("capturing the demo journey: {}", problem.detail))?;
    Ok(())
}

fn print_demo(options: &ServeOptions, demo: &demo::Demo, courier_key: &str) {
    let base = options.public_url();
    println!("Keten demo on {} ({})", base, options.database.db);
    println!(
        "  loaded: {} tenants, {} parties, {} products, {} locations, {} lanes, {} devices",
        demo.counts.tenants,
        demo.counts.parties,
        demo.counts.products,
        demo.counts.locations,
        demo.counts.lanes,
        demo.counts.devices
    );
    println!();
    println!("  console, portal: {base}/sign-in   (the operator key opens the console, a tenant key its portal)");
    println!("  API reference:  {base}/docs   (OpenAPI: {base}/openapi.json)");
    println!("  operator key:   {}", demo.operator_key);
    for (tenant_id, name, key) in &demo.tenant_keys {
        println!("  {name} ({tenant_id}) key: {key}");
    }
    println!("  courier key ({}): {courier_key}", demo_orders::VAN);
    println!("  salmon pack (GS1 Digital Link): {base}/01/{}", demo.salmon_gtin);
    println!(
        "  its lot's provenance page: {base}/01/{}/10/{}   (?lang=nl, ?view=large, ?kiosk=1; the kiosk: {base}/kiosk)",
        demo.salmon_gtin,
        demo::SALMON_LOT
    );
    println!("  its QR code:    {base}/qr/01/{}   (PNG: ?format=png)", demo.salmon_gtin);
    println!();
    if let Some((_, _, key)) = demo.tenant_keys.first() {
        println!("  try: curl -H 'Authorization: Bearer {key}' {base}/v1/products");
        println!(
            "       curl -H 'Authorization: Bearer {key}' '{base}/v1/trace?gtin={}&lot={}'   (the lot's journey)",
            demo.salmon_gtin,
            demo::SALMON_LOT
        );
        println!(
            "       curl -H 'Authorization: Bearer {key}' '{base}/events?EQ_bizStep=shipping'   (EPCIS 2.0 query)"
        );
        println!(
            "       curl -H 'Authorization: Bearer {key}' {base}/v1/orders/{}   (an order: allocation, promise, steps)",
            demo_orders::DELIVERED_ORDER
        );
        println!(
            "       curl -H 'Authorization: Bearer {key}' '{base}/v1/stock?gtin={}'   (stock by lot)",
            demo.salmon_gtin
        );
    }
    if let Some((_, _, key)) = demo.tenant_keys.iter().find(|(tenant, _, _)| *tenant == demo::pharma_tenant()) {
        println!(
            "       curl -H 'Authorization: Bearer {key}' {base}/v1/alarms   (the vaccine pallet's reefer excursion)"
        );
        println!(
            "       curl -H 'Authorization: Bearer {key}' '{base}/v1/reports/temperature?gtin={}&lot={}&format=pdf' -o vaccine.pdf",
            demo::vaccine_gtin(),
            demo_coldchain::VACCINE_LOT
        );
    }
    println!(
        "       curl -X POST -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"depot\":\"{}\",\"allow_late\":true}}' {base}/v1/operator/dispatch   (plan the courier routes)",
        demo.operator_key,
        demo::amsterdam_dc()
    );
    println!("  keys are shown once and stored hashed; run `keten demo` again for fresh ones.");
}

async fn serve(options: ServeOptions, store: Store) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    let public_url = options.public_url();
    anyhow::ensure!(
        public_url.starts_with("http://") || public_url.starts_with("https://"),
        "--public-url must start with http:// or https://, found {public_url:?}"
    );
    let signer = log::load_log_signer(&options.log_key.log_key, &options.log_origin)?;
    let mut config = server::ServerConfig::new(options.log_origin, public_url);
    config.log.signer = std::sync::Arc::new(signer);
    config.log.checkpoint_interval = std::time::Duration::from_millis(options.checkpoint_interval_ms);
    for key in &options.witness_keys {
        config.log.witnesses.push(
            tlog::VerifierKey::parse(key.trim())
                .with_context(|| format!("--witness-key {key:?} is not a verifier key"))?,
        );
    }
    config.webhooks_to_private_addresses = options.webhooks_to_private_addresses;
    config.webhooks_https_only = options.webhooks_https_only;
    if let Some(path) = &options.webhook_ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading --webhook-ca-file {}", path.display()))?;
        config.webhook_roots = server::subscriptions::roots_from_pem(&pem)
            .map_err(|error| anyhow::anyhow!("--webhook-ca-file {}: {error}", path.display()))?;
    }
    if let Some(url) = &options.mqtt {
        config.mqtt = Some(
            server::mqtt::MqttConfig::parse(url, &options.mqtt_client_id)
                .map_err(|error| anyhow::anyhow!("--mqtt: {error}"))?,
        );
    }
    if let Some(path) = &options.epcis_schema {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let schema = epcis::schema::SchemaValidator::from_json_text(&text)
            .with_context(|| format!("compiling the EPCIS schema {}", path.display()))?;
        config.epcis_schema = Some(std::sync::Arc::new(schema));
    }
    server::serve(listener, store, config, shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing requests and write batches");
}

async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Tenant { command: TenantCommand::Create { tenant_id, name, database } } => {
            let tenant_id =
                TenantId::parse(&tenant_id).map_err(|error| anyhow::anyhow!("tenant id {tenant_id:?}: {error}"))?;
            let store = open(&database).await?;
            let result = store
                .write(Write {
                    tenant_id: tenant_id.clone(),
                    mutation: Mutation::PutTenant { name, mode: PutMode::Create },
                    idempotency: None,
                })
                .await;
            store.close().await;
            result.with_context(|| format!("creating tenant {tenant_id}"))?;
            println!("created tenant {tenant_id}");
            Ok(())
        }
        AdminCommand::Tenant { command: TenantCommand::List { database } } => {
            let store = open(&database).await?;
            let mut after = None;
            loop {
                let page =
                    store.tenants(&PageRequest { after: after.clone(), limit: Some(store::PAGE_LIMIT_MAX) }).await?;
                for tenant in &page.items {
                    println!("{}\t{}", tenant.tenant_id, tenant.name);
                }
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            store.close().await;
            Ok(())
        }
        AdminCommand::Key { command: KeyCommand::Create { tenant, scopes, name, database } } => {
            let tenant_id =
                TenantId::parse_any(&tenant).map_err(|error| anyhow::anyhow!("tenant {tenant:?}: {error}"))?;
            let scopes = Scope::parse_list(&tenant_id, scopes.iter().map(String::as_str))?;
            let store = open(&database).await?;
            if tenant_id.is_network() && store.tenant_record(&tenant_id).await?.is_none() {
                store
                    .write(Write {
                        tenant_id: tenant_id.clone(),
                        mutation: Mutation::PutTenant { name: "Keten network".into(), mode: PutMode::Upsert },
                        idempotency: None,
                    })
                    .await?;
            }
            let secret = ApiKeySecret::generate(&tenant_id);
            let mutation = Mutation::CreateKey {
                key_id: secret.key_id.clone(),
                name,
                scopes,
                secret_sha256: secret.secret_sha256,
            };
            let result = store.write(Write { tenant_id: tenant_id.clone(), mutation, idempotency: None }).await;
            store.close().await;
            if let Err(store::WriteError::NotFound) = result {
                bail!("no tenant {tenant_id}: create it first with `keten admin tenant create`");
            }
            result?;
            eprintln!("key {} for {tenant_id} (shown once, store it now):", secret.key_id);
            println!("{}", secret.reveal());
            Ok(())
        }
        AdminCommand::Key { command: KeyCommand::Revoke { tenant, key_id, database } } => {
            let tenant_id =
                TenantId::parse_any(&tenant).map_err(|error| anyhow::anyhow!("tenant {tenant:?}: {error}"))?;
            let store = open(&database).await?;
            let result = store
                .write(Write {
                    tenant_id: tenant_id.clone(),
                    mutation: Mutation::RevokeKey { key_id: key_id.clone() },
                    idempotency: None,
                })
                .await;
            store.close().await;
            if let Err(store::WriteError::NotFound) = result {
                bail!("no key {key_id} for tenant {tenant_id}");
            }
            result?;
            println!("revoked key {key_id} of {tenant_id}");
            Ok(())
        }
    }
}
