//! `keten bench orders`: orders captured, allocated and reserved (3 lines each, durable) against a
//! generated network, on SQLite and PostgreSQL; beside it, on the same PostgreSQL server with the
//! same clients and the same demand, the conventional way (one transaction per order with
//! `SELECT … FOR UPDATE` on the stock rows).
//!
//! The network: `--warehouses` warehouses and as many pickup points around Amsterdam and Utrecht
//! (every warehouse reaches every pickup point), `--skus` chilled products of one merchant, each
//! stocked at `--stocked-at` warehouses (one lot each, expiry 30–60 days out, plenty of units).
//! Demand: 3 distinct SKUs per order, 1–3 units each; half of the lines go to the 10 hot SKUs.
//! After the SQLite run, allocation alone is timed in memory on one core against the same stock
//! (`allocation_alone`): the share of an order's time that is deciding, not storing. Each Keten
//! run ends with two recalls of hot stock through the API (`recalls`): how long one write that
//! takes back thousands of orders holds the writer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use gs1::{Gln, Gtin, Sscc};
use network::{
    Address, Coordinates, Country, Location, LocationKind, Product, Service, TemperatureClass, TemperatureRange,
    TenantId, TimeZoneName, Zone, ZoneName,
};
use orders::{Line, ProductRule, StockLot};
use stock::LotStatus;
use store::fulfilment::{AsnPallet, FulfilmentMutation, OrderDestination, PlaceOrder};
use store::{IdempotencyRecord, Mutation, PutMode, Store, StoreConfig, StoredResponse, Write};

use crate::bench::BackendChoice;

#[derive(Debug, Args)]
pub struct OrdersOptions {
    /// Seconds each configuration runs.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Concurrent clients (each places orders one after the other).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    #[arg(long, default_value_t = 50)]
    pub warehouses: u64,
    #[arg(long, default_value_t = 5_000)]
    pub skus: u64,
    /// Warehouses holding each SKU.
    #[arg(long, default_value_t = 20)]
    pub stocked_at: u64,
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    pub backend: BackendChoice,
    /// Orders of each round of allocation alone (in memory, after the SQLite run).
    #[arg(long, default_value_t = 20_000)]
    pub allocation_orders: usize,
    /// How clients choose their orders' Idempotency-Keys.
    #[arg(long, value_enum, default_value_t = KeyChoice::Sequential)]
    pub keys: KeyChoice,
}

/// How the bench's clients choose their Idempotency-Keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyChoice {
    /// Each client counts its own (as a merchant numbering its orders, or time-first ids).
    Sequential,
    /// Drawn at random (as random UUIDs): each lands at its own place in the keys' index.
    Random,
}

const HOT_SKUS: u64 = 10;
const UNITS_PER_LOT: i64 = 10_000_000;
const TENANT: &str = "bench-shop";

fn with_check_digit(body: String) -> String {
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    format!("{body}{}", gs1::check_digit(&digits))
}

fn gtin(sku: u64) -> Gtin {
    Gtin::parse(&with_check_digit(format!("{:013}", 8_712_345_000_000 + sku))).expect("generated GTIN")
}

fn site_gln(number: u64) -> Gln {
    Gln::parse(&with_check_digit(format!("{:012}", 871_234_500_000 + number))).expect("generated GLN")
}

fn sscc(number: u64) -> Sscc {
    Sscc::parse(&with_check_digit(format!("3{:016}", 8_712_345_000_000_000 + number))).expect("generated SSCC")
}

struct Random(u64);

/// A bijection of u64 (the SplitMix64 finaliser): distinct numbers give distinct, scattered keys.
fn mix(number: u64) -> u64 {
    let mut value = number.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % bound
    }
}

fn site(number: u64, kind: LocationKind, random: &mut Random) -> Location {
    // Around Amsterdam and Utrecht: every pair is within the last mile's reach.
    let latitude = 52.05 + random.below(3_500) as f64 / 10_000.0;
    let longitude = 4.75 + random.below(4_000) as f64 / 10_000.0;
    let all_day = network::LocalTime::parse("23:59").expect("time");
    let warehouse = kind == LocationKind::Warehouse;
    Location {
        gln: site_gln(number),
        kind,
        name: format!("{} {number}", kind.name()),
        address: Address { street: None, postal_code: None, city: Some(format!("City {}", number % 7)) },
        country: Country::parse("NL").expect("country"),
        coordinates: Coordinates::new(latitude, longitude).expect("coordinates"),
        time_zone: TimeZoneName::parse("Europe/Amsterdam").expect("zone"),
        zones: if warehouse {
            vec![Zone {
                name: ZoneName::parse("chill").expect("zone"),
                range: TemperatureRange { min_celsius: Some(0.0), max_celsius: Some(4.0) },
                capacity_pallets: 10_000,
            }]
        } else {
            Vec::new()
        },
        cutoffs: if warehouse {
            Service::VALUES.iter().map(|(_, service)| (*service, all_day)).collect()
        } else {
            Vec::new()
        },
        pick_pack_lead_minutes: if warehouse { 60 } else { 0 },
        party_id: None,
    }
}

async fn write(store: &Store, tenant: &TenantId, mutation: Mutation) -> anyhow::Result<()> {
    store
        .write(Write { tenant_id: tenant.clone(), mutation, idempotency: None })
        .await
        .map(drop)
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// The network generated, and how long its stock's ASNs held the writer.
struct Generated {
    pickups: Vec<Gln>,
    /// Each ASN's announcement and receipt, one after the other, alone on the writer (µs).
    announce_micros: Vec<u32>,
    receive_micros: Vec<u32>,
}

impl Generated {
    fn print(&self, backend: &str) {
        let (mut announce, mut receive) = (self.announce_micros.clone(), self.receive_micros.clone());
        announce.sort_unstable();
        receive.sort_unstable();
        println!(
            "{:<10} {:<28} {} ASNs of up to {} pallets, each alone: announced in {:.1} ms (p50; max {:.1}), \
             received in {:.1} ms (p50; max {:.1})",
            backend,
            "stock announced, received",
            announce.len(),
            store::fulfilment::ASN_PALLETS_MAX,
            percentile(&announce, 0.5),
            announce.last().map_or(0.0, |micros| f64::from(*micros) / 1000.0),
            percentile(&receive, 0.5),
            receive.last().map_or(0.0, |micros| f64::from(*micros) / 1000.0),
        );
    }
}

/// Fills a fresh database with the network, the products and the stock.
async fn generate(store: &Store, options: &OrdersOptions) -> anyhow::Result<Generated> {
    let network = TenantId::network();
    let tenant = TenantId::parse(TENANT)?;
    write(store, &network, Mutation::PutTenant { name: "network".into(), mode: PutMode::Upsert }).await?;
    write(store, &tenant, Mutation::PutTenant { name: "Bench shop".into(), mode: PutMode::Upsert }).await?;
    let mut random = Random(0x6b65_7465_6e00_0001);
    let mut pickups = Vec::new();
    for number in 0..options.warehouses {
        let warehouse = site(number, LocationKind::Warehouse, &mut random);
        write(store, &network, Mutation::PutLocation { location: warehouse, mode: PutMode::Upsert }).await?;
        let pickup = site(10_000 + number, LocationKind::PickupPoint, &mut random);
        pickups.push(pickup.gln.clone());
        write(store, &network, Mutation::PutLocation { location: pickup, mode: PutMode::Upsert }).await?;
    }
    let mut products = Vec::new();
    for sku in 0..options.skus {
        let product = Product {
            gtin: gtin(sku),
            name: format!("Chilled product {sku}"),
            brand: Some("Bench".into()),
            description: None,
            temperature_class: TemperatureClass::Chilled,
            shelf_life_days: Some(90),
            min_remaining_shelf_life_days: Some(5),
            nutrition: None,
            country_of_origin: None,
            supplier_party_id: None,
        };
        products.push(store.write(Write {
            tenant_id: tenant.clone(),
            mutation: Mutation::PutProduct { product, mode: PutMode::Upsert },
            idempotency: None,
        }));
    }
    for written in futures_util::future::join_all(products).await {
        written.map_err(|error| anyhow::anyhow!("{error}"))?;
    }
    // Stock: each SKU at `stocked_at` warehouses, one lot each; one ASN per warehouse and 1,000 pallets.
    let today = jiff::Zoned::now().date();
    let mut per_warehouse: Vec<Vec<AsnPallet>> = vec![Vec::new(); options.warehouses as usize];
    let mut pallet = 0u64;
    for sku in 0..options.skus {
        let first = random.below(options.warehouses);
        for offset in 0..options.stocked_at.min(options.warehouses) {
            let warehouse = (first + offset * 7) % options.warehouses;
            let expiry = today + jiff::ToSpan::days(30 + random.below(30) as i64);
            pallet += 1;
            per_warehouse[warehouse as usize].push(AsnPallet {
                sscc: sscc(pallet),
                gtin: gtin(sku),
                lot: format!("L{sku}-{warehouse}"),
                expiry: Some(expiry.to_string()),
                quantity: UNITS_PER_LOT,
            });
        }
    }
    let mut asn = 0u64;
    let (mut announce_micros, mut receive_micros) = (Vec::new(), Vec::new());
    let elapsed_micros = |started: Instant| started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    for (warehouse, pallets) in per_warehouse.into_iter().enumerate() {
        for chunk in pallets.chunks(store::fulfilment::ASN_PALLETS_MAX) {
            asn += 1;
            let asn_id = format!("asn-{asn}");
            let create = FulfilmentMutation::CreateAsn {
                asn_id: asn_id.clone(),
                location: site_gln(warehouse as u64),
                expected_unix_ms: None,
                pallets: chunk.to_vec(),
            };
            let started = Instant::now();
            write(store, &tenant, Mutation::Fulfilment(create)).await.context("ASN")?;
            announce_micros.push(elapsed_micros(started));
            let receive = FulfilmentMutation::ReceiveAsn {
                asn_id,
                receipt_id: format!("rcp-{asn}"),
                zone: ZoneName::parse("chill")?,
                ssccs: None,
                status: LotStatus::Available,
                recalled: None,
            };
            let started = Instant::now();
            write(store, &tenant, Mutation::Fulfilment(receive)).await.context("receipt")?;
            receive_micros.push(elapsed_micros(started));
        }
    }
    Ok(Generated { pickups, announce_micros, receive_micros })
}

/// The digest of the request a client would send for `order` (its JSON body), as the API stores
/// with an idempotency key.
fn request_digest(order: &PlaceOrder) -> [u8; 32] {
    use sha2::Digest;
    let lines: Vec<serde_json::Value> = order
        .lines
        .iter()
        .map(|line| serde_json::json!({"gtin": line.gtin.as_str(), "quantity": line.quantity}))
        .collect();
    let body = serde_json::json!({
        "lines": lines,
        "destination": {"pickup_point": order.destination.pickup_point},
        "service": order.service.name(),
    });
    sha2::Sha256::digest(body.to_string().as_bytes()).into()
}

/// One order of the skewed demand.
fn order(random: &mut Random, skus: u64, pickups: &[Gln], number: u64) -> PlaceOrder {
    let mut chosen: Vec<u64> = Vec::with_capacity(3);
    while chosen.len() < 3 {
        let sku = if random.below(2) == 0 { random.below(HOT_SKUS.min(skus)) } else { random.below(skus) };
        if !chosen.contains(&sku) {
            chosen.push(sku);
        }
    }
    PlaceOrder {
        // Shaped like the API's order ids (`server::fulfilment::new_id`): the time in milliseconds,
        // then 16 hex digits (there random, here the scrambled order number, unique per run).
        order_id: format!(
            "ord_{:012x}{:016x}",
            jiff::Timestamp::now().as_millisecond(),
            number.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ),
        lines: chosen.iter().map(|sku| Line { gtin: gtin(*sku), quantity: 1 + random.below(3) as i64 }).collect(),
        destination: OrderDestination {
            pickup_point: Some(pickups[random.below(pickups.len() as u64) as usize].to_string()),
            latitude_degrees: None,
            longitude_degrees: None,
            time_zone: None,
            area: None,
        },
        service: Service::NextDay,
        latest_delivery_unix_ms: None,
        hold_ms: None,
    }
}

/// Rounds of [`allocation_alone`].
const ALLOCATION_ROUNDS: usize = 5;

/// Allocation alone, in memory on one core, as the writer calls it: each order of the same demand
/// against the stock left after the run, the lots of its GTINs borrowed (nothing reserved, so
/// every round sees the same stock). Median microseconds per order of [`ALLOCATION_ROUNDS`] rounds.
/// Answers the median µs an order, and the ms it took to read the stock of every SKU (the read
/// `/v1/promise` makes for one).
/// Reads of a lot's movement journal (a page of up to 500, as `GET /v1/stock/movements?gtin=…&lot=…`
/// reads) right after the run: on SQLite they also walk the reserves written since the writer last
/// built their lot index (`store::fulfilment::RESERVES_INDEX_INTERVAL`). Alternates a hot and a cold
/// SKU's lot; answers the reads' latencies in µs, sorted.
async fn lot_journal_reads(store: &Store, options: &OrdersOptions) -> anyhow::Result<Vec<u32>> {
    const READS: usize = 40;
    let tenant = TenantId::parse(TENANT)?;
    let tenant_store = store.tenant(&tenant);
    let mut lots = Vec::new();
    for sku in [0, options.skus - 1] {
        let gtin = gtin(sku);
        let first = tenant_store.movements(gtin.as_str(), None, None, 1).await?;
        let lot = first.first().context("a generated SKU without movements")?.key.lot.clone();
        lots.push((gtin, lot));
    }
    let mut latencies = Vec::with_capacity(READS);
    for read in 0..READS {
        let (gtin, lot) = &lots[read % lots.len()];
        let started = Instant::now();
        let page = tenant_store.movements(gtin.as_str(), Some(lot), None, 500).await?;
        latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
        anyhow::ensure!(!page.is_empty(), "lot {lot} of {gtin} read no movements");
    }
    latencies.sort_unstable();
    Ok(latencies)
}

async fn allocation_alone(store: &Store, options: &OrdersOptions, pickups: &[Gln]) -> anyhow::Result<(f64, f64)> {
    let tenant = TenantId::parse(TENANT)?;
    let gtins: Vec<Gtin> = (0..options.skus).map(gtin).collect();
    let reading = Instant::now();
    let inputs = store.tenant(&tenant).allocation_inputs(&gtins).await?;
    let read_ms = reading.elapsed().as_secs_f64() * 1e3;
    let mut stock: HashMap<&Gtin, (&ProductRule, Vec<&StockLot<'static>>)> = HashMap::new();
    for product in &inputs.products {
        stock.insert(&product.gtin, (product, Vec::new()));
    }
    for lot in &inputs.lots {
        let (_, lots) = stock.get_mut(lot.gtin.as_ref()).context("a lot of an unknown product")?;
        lots.push(lot);
    }
    let view = orders::NetworkView { sites: &inputs.sites, lanes: &inputs.lanes };
    let destinations: HashMap<&Gln, orders::Destination> = pickups
        .iter()
        .map(|gln| {
            let site = view.site(gln).context("a pickup point outside the network")?;
            Ok((gln, orders::Destination { coordinates: site.coordinates, time_zone: site.time_zone.zone().clone() }))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut random = Random(7);
    let demand: Vec<PlaceOrder> =
        (0..options.allocation_orders as u64).map(|number| order(&mut random, options.skus, pickups, number)).collect();
    let placed_unix_ms = jiff::Timestamp::now().as_millisecond();
    let mut rounds = Vec::with_capacity(ALLOCATION_ROUNDS);
    for _ in 0..ALLOCATION_ROUNDS {
        let started = Instant::now();
        let mut shipments = 0usize;
        for order in &demand {
            let mut products = Vec::with_capacity(order.lines.len());
            let mut lots = Vec::new();
            for line in &order.lines {
                let (product, of_gtin) = &stock[&line.gtin];
                products.push((*product).clone());
                lots.extend(of_gtin.iter().map(|lot| lot.borrowed()));
            }
            let pickup = order.destination.pickup_point.as_deref().context("a pickup point")?;
            let destination = &destinations[&Gln::parse(pickup)?];
            let request = orders::OrderRequest {
                lines: &order.lines,
                products: &products,
                destination,
                service: order.service,
                placed_unix_ms,
                window_from_unix_ms: placed_unix_ms,
                latest_delivery_unix_ms: None,
            };
            let allocation = orders::allocate(view, &lots, &request)?;
            shipments += allocation.shipments.len();
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / demand.len() as f64;
        anyhow::ensure!(shipments >= demand.len(), "every order allocated");
        rounds.push(micros);
    }
    rounds.sort_by(f64::total_cmp);
    Ok((rounds[rounds.len() / 2], read_ms))
}

#[derive(Debug)]
struct Measured {
    placed: u64,
    refused: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Where the writer's committed transactions spent their time during a run, per write: what an
/// order costs the writer, phase by phase (`store::WriterPhases`).
fn print_phases(backend: &str, before: &store::WriterStats, after: &store::WriterStats) {
    let phases = after.phases.since(&before.phases);
    let batches = after.batches - before.batches;
    let writes = phases.writes.max(1) as f64;
    let per_write = |micros: u64| micros as f64 / writes;
    println!(
        "{:<10} {:<28} keys {:.1} · stock read {:.1} · apply {:.1} · flush {:.1} · commit {:.1} µs a write \
         ({batches} batches, {:.1} writes each)",
        backend,
        "writer phases",
        per_write(phases.keys_micros),
        per_write(phases.stock_read_micros),
        per_write(phases.apply_micros),
        per_write(phases.flush_micros),
        per_write(phases.commit_micros),
        (after.writes - before.writes) as f64 / batches.max(1) as f64,
    );
    if phases.applied_ahead > 0 {
        println!(
            "{:<10} {:<28} {:.0} % of the writes, {:.1} µs each, while the batch before was written (in its flush and commit)",
            backend,
            "applied ahead",
            100.0 * phases.applied_ahead as f64 / writes,
            phases.ahead_micros as f64 / phases.applied_ahead as f64,
        );
    }
}

/// Bytes this process has caused to be written to storage (`write_bytes` of `/proc/self/io`;
/// None where that file does not exist).
fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|line| line.strip_prefix("write_bytes:")).and_then(|value| value.trim().parse().ok())
}

fn percentile(sorted_micros: &[u32], fraction: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let index = ((sorted_micros.len() as f64 - 1.0) * fraction).round() as usize;
    f64::from(sorted_micros[index]) / 1000.0
}

enum Path {
    Keten(Arc<Store>),
    RowLock(Arc<store::baseline::RowLockOrders>),
}

async fn drive(path: Path, options: &OrdersOptions, pickups: &[Gln], seed: u64) -> anyhow::Result<Measured> {
    let tenant = TenantId::parse(TENANT)?;
    let path = Arc::new(path);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(options.seconds);
    let mut tasks = Vec::new();
    for client in 0..options.clients as u64 {
        let (path, tenant, pickups, skus) = (path.clone(), tenant.clone(), pickups.to_vec(), options.skus);
        let keys = options.keys;
        tasks.push(tokio::spawn(async move {
            let mut random = Random(seed ^ (client + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (mut latencies, mut refused) = (Vec::new(), 0u64);
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                sequence += 1;
                let number = client << 40 | sequence;
                let order = order(&mut random, skus, &pickups, number);
                let key = match keys {
                    KeyChoice::Sequential => format!("bench-{number:x}"),
                    // A 64-bit mix of the number: distinct, and spread over the whole index.
                    KeyChoice::Random => format!("bench-{:016x}", mix(number)),
                };
                let sent = Instant::now();
                // The request's digest, as the API takes it of the body a client sends.
                let request_sha256 = request_digest(&order);
                let placed = match path.as_ref() {
                    Path::Keten(store) => {
                        // As the API writes (`server::api::write`): the writer checks the key.
                        let idempotency = IdempotencyRecord {
                            tenant_id: tenant.clone(),
                            key,
                            request_sha256,
                            respond: Box::new(|applied| StoredResponse {
                                status: 201,
                                body: match applied.outcome.as_deref() {
                                    // The API's answer, as the API stores it.
                                    Some(store::fulfilment::FulfilmentOutcome::Order(order)) => {
                                        server::fulfilment::placed_answer(order)
                                    }
                                    _ => Vec::new(),
                                },
                            }),
                        };
                        let mutation = Mutation::Fulfilment(FulfilmentMutation::PlaceOrder(Box::new(order)));
                        match store
                            .write(Write { tenant_id: tenant.clone(), mutation, idempotency: Some(idempotency) })
                            .await
                        {
                            Ok(_) => true,
                            Err(store::WriteError::Refused { code: "insufficient-stock", .. }) => false,
                            Err(error) => return Err(anyhow::anyhow!("order failed: {error}")),
                        }
                    }
                    Path::RowLock(baseline) => {
                        baseline.place(&order, &key, request_sha256, &server::fulfilment::placed_answer).await?
                    }
                };
                // Throughput is over the fixed window: an order that completes after it is not
                // counted (both paths alike; the row-lock baseline's tail is the longer).
                if Instant::now() > deadline {
                    break;
                }
                if placed {
                    latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                } else {
                    refused += 1;
                }
            }
            Ok::<_, anyhow::Error>((latencies, refused))
        }));
    }
    let (mut latencies, mut refused) = (Vec::new(), 0);
    for task in tasks {
        let (some, none) = task.await??;
        latencies.extend(some);
        refused += none;
    }
    let seconds = options.seconds;
    latencies.sort_unstable();
    Ok(Measured {
        placed: latencies.len() as u64,
        refused,
        seconds,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    })
}

fn print(backend: &str, path: &str, measured: &Measured) {
    println!(
        "{:<10} {:<28} {:>9} {:>8} {:>11.0} {:>9.2} {:>9.2}",
        backend,
        path,
        measured.placed,
        measured.refused,
        measured.placed as f64 / measured.seconds,
        measured.p50_ms,
        measured.p99_ms
    );
}

pub async fn orders(options: OrdersOptions) -> anyhow::Result<()> {
    anyhow::ensure!((1..=512).contains(&options.clients), "--clients must be 1..=512");
    anyhow::ensure!(options.seconds > 0.0 && options.seconds <= 600.0, "--seconds must be within (0, 600]");
    anyhow::ensure!((1..=1_000).contains(&options.warehouses), "--warehouses must be 1..=1000");
    anyhow::ensure!((3..=1_000_000).contains(&options.skus), "--skus must be 3..=1000000");
    anyhow::ensure!(options.stocked_at >= 1, "--stocked-at must be at least 1");
    anyhow::ensure!((1..=1_000_000).contains(&options.allocation_orders), "--allocation-orders must be 1..=1000000");
    println!(
        "bench orders: {} warehouses, {} SKUs each at {} warehouses, 3 lines per order (half on {HOT_SKUS} hot SKUs), \
         {} clients, {} s per run, durable",
        options.warehouses,
        options.skus,
        options.stocked_at.min(options.warehouses),
        options.clients,
        options.seconds
    );
    println!(
        "{:<10} {:<28} {:>9} {:>8} {:>11} {:>9} {:>9}",
        "backend", "path", "orders", "refused", "orders/s", "p50 ms", "p99 ms"
    );
    let mut summary = Vec::new();
    if matches!(options.backend, BackendChoice::Sqlite | BackendChoice::Both) {
        let file = scratchdb::SqliteFile::new()?;
        let mut config = StoreConfig::new(file.url());
        config.read_connections_max = 8;
        let store = Arc::new(Store::open(config).await?);
        let generated = generate(&store, &options).await?;
        let pickups = generated.pickups.clone();
        let before = store.writer_stats();
        let written_before = bytes_written();
        let measured = drive(Path::Keten(store.clone()), &options, &pickups, 1).await?;
        let written = bytes_written().zip(written_before).map(|(after, before)| after.saturating_sub(before));
        print("sqlite", "keten (group commit)", &measured);
        print_phases("sqlite", &before, &store.writer_stats());
        generated.print("sqlite");
        if let Some(written) = written {
            println!(
                "{:<10} {:<28} {:.1} KiB an order ({:.0} MiB during the run: the WAL and its checkpoints)",
                "sqlite",
                "storage written",
                written as f64 / 1024.0 / measured.placed.max(1) as f64,
                written as f64 / 1024.0 / 1024.0
            );
        }
        let reads = lot_journal_reads(&store, &options).await?;
        println!(
            "{:<10} {:<28} {:>9} {:>8} {:>11} {:>9.2} {:>9.2}   (a hot and a cold lot, a page of up to 500)",
            "sqlite",
            "lot journal reads",
            reads.len(),
            0,
            "-",
            percentile(&reads, 0.5),
            percentile(&reads, 0.99)
        );
        let (allocation_micros, stock_read_ms) = allocation_alone(&store, &options, &pickups).await?;
        // Last: the recalls change the stock that allocation alone reads.
        let recalled = recalls(&store, options.skus).await?;
        println!(
            "{:<10} {:<28} {:>9} {:>8} {:>11.0} {:>9} {:>9}   ({allocation_micros:.1} µs an order, one core; \
             the stock of {} SKUs read in {stock_read_ms:.0} ms)",
            "memory",
            "allocation alone",
            options.allocation_orders,
            0,
            1e6 / allocation_micros,
            "-",
            "-",
            options.skus
        );
        print_recalls("sqlite", &recalled);
        summary.push(format!(
            "sqlite {:.0}/s (p99 {:.1} ms), allocation alone {allocation_micros:.1} µs an order",
            measured.placed as f64 / measured.seconds,
            measured.p99_ms
        ));
        store.close().await;
    }
    if matches!(options.backend, BackendChoice::Postgres | BackendChoice::Both) {
        let server = scratchdb::PostgresServer::start(scratchdb::PostgresOptions::BENCH)
            .context("starting a scratch PostgreSQL (fsync on)")?;
        let mut rates = Vec::new();
        for keten in [true, false] {
            let url = server.create_database()?;
            let mut config = StoreConfig::new(url.clone());
            config.read_connections_max = 8;
            let store = Arc::new(Store::open(config).await?);
            let generated = generate(&store, &options).await?;
            let pickups = generated.pickups.clone();
            let measured = if keten {
                let before = store.writer_stats();
                let measured = drive(Path::Keten(store.clone()), &options, &pickups, 1).await?;
                let after = store.writer_stats();
                let recalled = recalls(&store, options.skus).await?;
                store.close().await;
                // The baseline's run does not share the server with this database's autovacuum.
                server.drop_database(&url)?;
                print("postgres", "keten (group commit)", &measured);
                print_phases("postgres", &before, &after);
                generated.print("postgres");
                print_recalls("postgres", &recalled);
                measured
            } else {
                store.close().await;
                let tenant = TenantId::parse(TENANT)?;
                let baseline =
                    Arc::new(store::baseline::RowLockOrders::connect(&url, options.clients as u32, &tenant).await?);
                let measured = drive(Path::RowLock(baseline.clone()), &options, &pickups, 1).await?;
                baseline.close().await;
                print("postgres", "row locks, one tx per order", &measured);
                measured
            };
            rates.push(measured.placed as f64 / measured.seconds);
        }
        summary.push(format!(
            "postgres {:.0}/s vs row-lock baseline {:.0}/s = {:.1}x",
            rates[0],
            rates[1],
            rates[0] / rates[1].max(f64::MIN_POSITIVE)
        ));
    }
    println!("summary: orders placed (allocated, reserved, durable): {}", summary.join("; "));
    Ok(())
}

/// One recall of [`recalls`].
struct RecallMeasured {
    what: &'static str,
    lots: usize,
    taken_back: usize,
    reallocated: usize,
    flagged: usize,
    /// The request, from sending to the whole answer read: the API's reads before the write,
    /// the write, and the answer (every order taken back, the lots' history).
    answered_millis: f64,
    /// The writer's phases while the request ran (the recall's write; nothing else writes then).
    writer_millis: f64,
}

/// Recalls through the API after the run (`POST /v1/recalls`, the real server on port 0 on the
/// bench's store): first the busiest lot of the busiest hot SKU (its open orders are allocated
/// again from the SKU's other lots), then every lot of the next busiest (up to the 100 lots a
/// recall may name; with none left to allocate from, its orders are flagged). A
/// recall is one write: the writer holds every order behind it while it applies and commits it.
async fn recalls(store: &Store, skus: u64) -> anyhow::Result<Vec<RecallMeasured>> {
    let tenant = TenantId::parse(TENANT)?;
    let key = demo::mint(store, &tenant, store::Scope::TenantAdmin, "bench orders").await?;
    let served = crate::bench::Served::start(store.clone()).await?;
    let base = served.base.clone();
    let client = reqwest::Client::new();
    // The hot SKUs' lots as the API reads them, the busiest lot of each first (a lot held at
    // several zones once), the busiest SKUs first.
    let mut hot: Vec<(i64, u64, Vec<String>)> = Vec::new();
    for sku in 0..HOT_SKUS.min(skus) {
        let page: serde_json::Value = client
            .get(format!("{base}/v1/stock?gtin={}&limit=500", gtin(sku).as_str()))
            .bearer_auth(&key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let mut balances: Vec<(i64, String)> = page["items"]
            .as_array()
            .context("a stock page without items")?
            .iter()
            .filter_map(|item| Some((item["reserved"].as_i64()?, item["lot"].as_str()?.to_owned())))
            .collect();
        balances.sort_unstable_by(|a, b| b.cmp(a));
        let reserved = balances.iter().map(|(units, _)| units).sum();
        let mut lots: Vec<String> = Vec::new();
        for (_, lot) in balances {
            if !lots.contains(&lot) {
                lots.push(lot);
            }
        }
        hot.push((reserved, sku, lots));
    }
    hot.sort_unstable_by(|a, b| b.cmp(a));
    anyhow::ensure!(
        hot.len() >= 2 && hot[1].0 > 0,
        "fewer than two hot SKUs hold reservations after the run: too few orders to recall"
    );
    let mut measured = Vec::new();
    for (first, ((_, sku, mut lots), what)) in
        [true, false].into_iter().zip(hot.into_iter().zip(["recall, one hot lot", "recall, a hot SKU's lots"]))
    {
        let gtin = gtin(sku);
        let every_lot = !first && lots.len() <= store::fulfilment::RECALL_LOTS_MAX;
        lots.truncate(if first { 1 } else { store::fulfilment::RECALL_LOTS_MAX });
        anyhow::ensure!(!lots.is_empty(), "SKU {sku} holds no lots");
        let writer_before = store.writer_stats().phases;
        let started = Instant::now();
        let response = client
            .post(format!("{base}/v1/recalls"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"gtin": gtin.as_str(), "lots": lots, "reason": "bench: a recall of hot stock"}))
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        let answered_millis = started.elapsed().as_secs_f64() * 1e3;
        let writer = store.writer_stats().phases.since(&writer_before);
        let writer_micros = writer.keys_micros
            + writer.stock_read_micros
            + writer.apply_micros
            + writer.flush_micros
            + writer.commit_micros;
        anyhow::ensure!(status.as_u16() == 201, "the recall answered {status}: {body}");
        let affected = body["affected_orders"].as_array().context("a recall without affected_orders")?;
        let outcome = |name: &str| affected.iter().filter(|order| order["outcome"] == name).count();
        let recall = RecallMeasured {
            what,
            lots: lots.len(),
            taken_back: outcome("reallocated") + outcome("flagged"),
            reallocated: outcome("reallocated"),
            flagged: outcome("flagged"),
            answered_millis,
            writer_millis: writer_micros as f64 / 1e3,
        };
        // The SKU's busiest lot holds open orders (its units reserved): a recall that takes none
        // back measures nothing.
        anyhow::ensure!(recall.taken_back > 0, "the recall of SKU {sku}'s lots took back no open order: {body}");
        anyhow::ensure!(
            !every_lot || recall.flagged == recall.taken_back,
            "every lot of SKU {sku} recalled, yet {} orders were allocated again",
            recall.reallocated
        );
        measured.push(recall);
    }
    served.stop().await?;
    Ok(measured)
}

fn print_recalls(backend: &str, measured: &[RecallMeasured]) {
    for recall in measured {
        println!(
            "{:<10} {:<28} {} lot(s): {} open orders taken back ({} allocated again, {} flagged): the writer \
             held {:.0} ms (one write), answered in {:.0} ms",
            backend,
            recall.what,
            recall.lots,
            recall.taken_back,
            recall.reallocated,
            recall.flagged,
            recall.writer_millis,
            recall.answered_millis
        );
    }
}
