//! `keten bench readings`: temperature readings ingested per second — SenML packs through the same
//! `server::readings::ingest` the API uses (in-process, and over HTTP `POST /v1/readings`), side
//! by side with a plain multi-row insert of the same readings into the same database.
//!
//! Every device is assigned (to a reefer) under the chilled class's alarm rules, so each ingest
//! also evaluates the alarms of the devices it touched, resuming from their kept progress: the
//! figures are parsing, the device check, duplicate dropping, alarm evaluation and durable group
//! commits. The generated temperatures run 2.0–5.9 °C in 40-minute cycles, so each device
//! spends its chilled budget (2 h above 4 °C) and opens one alarm per measurement stretch.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use network::{Device, DeviceId, DeviceKind, TenantId};
use store::readings::StoredReading;
use store::{Mutation, PutMode, Scope, Write};

#[derive(Debug, Args)]
pub struct ReadingsOptions {
    /// Readings per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub readings: usize,
    /// Readings per SenML pack (one request).
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
    /// Registered devices the readings come from (50 per pack).
    #[arg(long, default_value_t = 200)]
    pub devices: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// The database (default: a fresh SQLite file that is removed afterwards).
    #[arg(long, conflicts_with = "postgres")]
    pub db: Option<String>,
    /// Measure on a throwaway PostgreSQL server (fsync on) started for the run.
    #[arg(long)]
    pub postgres: bool,
}

const DEVICES_PER_PACK: usize = 50;

/// Where round `round`'s device times begin (see [`packs`]).
fn round_start_unix_ms(options: &ReadingsOptions, round: i64, started_unix_ms: i64) -> i64 {
    let (_, span_seconds, first_second) = layout(options, started_unix_ms);
    (first_second + round * span_seconds - 120) * 1000
}

/// (packs, seconds of device time per round, the first round's first second).
fn layout(options: &ReadingsOptions, received_unix_ms: i64) -> (usize, i64, i64) {
    let per_device = (options.batch / DEVICES_PER_PACK).max(1);
    let count = options.readings.div_ceil(per_device * DEVICES_PER_PACK);
    let cycles = (count * DEVICES_PER_PACK).div_ceil(options.devices) as i64;
    let span_seconds = cycles * per_device as i64 * 60;
    // Whole minutes, so that every round computes the same start.
    let first_second = (received_unix_ms / 1000 - 3600 - ROUNDS * span_seconds) / 60 * 60;
    (count, span_seconds, first_second)
}
/// The measurements (in-process, HTTP, plain insert), each with its own stretch of device time.
const ROUNDS: i64 = 3;

/// The packs of one measurement: pack `n` holds readings of 50 devices, each a run of one-minute
/// readings; `round` shifts the times so that measurements never repeat a reading.
fn packs(options: &ReadingsOptions, round: i64, started_unix_ms: i64) -> Vec<(String, Vec<StoredReading>)> {
    let per_device = (options.batch / DEVICES_PER_PACK).max(1);
    let received = started_unix_ms;
    // Device times run up to an hour before now (a clock ahead would be corrected or refused),
    // one stretch of one-minute steps per round.
    let (count, span_seconds, first_second) = layout(options, received);
    (0..count)
        .map(|pack| {
            let mut records = Vec::with_capacity(per_device * DEVICES_PER_PACK);
            let mut rows = Vec::with_capacity(per_device * DEVICES_PER_PACK);
            for slot in 0..DEVICES_PER_PACK {
                let device = (pack * DEVICES_PER_PACK + slot) % options.devices;
                let cycle = (pack * DEVICES_PER_PACK + slot) / options.devices;
                let base = first_second + round * span_seconds + (cycle * per_device) as i64 * 60;
                for step in 0..per_device {
                    let celsius = 2.0 + ((pack + step) % 40) as f64 / 10.0;
                    let record = if step == 0 {
                        format!(r#"{{"bn":"dev-{device}","bt":{base},"bu":"Cel","t":0,"v":{celsius}}}"#)
                    } else {
                        format!(r#"{{"t":{},"v":{celsius}}}"#, step * 60)
                    };
                    records.push(record);
                    let time_ms = (base + step as i64 * 60) * 1000;
                    rows.push(StoredReading {
                        device_id: format!("dev-{device}"),
                        device_unix_ms: time_ms,
                        corrected_unix_ms: time_ms,
                        received_unix_ms: received,
                        celsius,
                    });
                }
            }
            (format!("[{}]", records.join(",")), rows)
        })
        .collect()
}

/// Runs `work` over the packs with `clients` concurrent tasks; answers (readings, seconds).
async fn run<F, Fut>(packs: Vec<String>, clients: usize, work: F) -> anyhow::Result<(u64, f64)>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u64>> + Send,
{
    // Oldest first, as devices send: each evaluation resumes from the device's progress.
    let mut packs = packs;
    packs.reverse();
    let queue = Arc::new(std::sync::Mutex::new(packs));
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let queue = queue.clone();
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let mut readings = 0;
            loop {
                let Some(pack) = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop() else { break };
                readings += work(pack).await?;
            }
            anyhow::Ok(readings)
        }));
    }
    let mut readings = 0;
    for task in tasks {
        readings += task.await??;
    }
    Ok((readings, started.elapsed().as_secs_f64()))
}

pub async fn readings(options: ReadingsOptions) -> anyhow::Result<()> {
    anyhow::ensure!((1..=64).contains(&options.clients), "--clients must be 1..=64");
    anyhow::ensure!((1..=100_000_000).contains(&options.readings), "--readings must be 1..=100,000,000");
    anyhow::ensure!((DEVICES_PER_PACK..=100_000).contains(&options.batch), "--batch must be 50..=100,000");
    anyhow::ensure!((DEVICES_PER_PACK..=100_000).contains(&options.devices), "--devices must be 50..=100,000");
    let postgres = match options.postgres {
        true => Some(
            scratchdb::PostgresServer::start(scratchdb::PostgresOptions::BENCH)
                .map_err(|error| anyhow::anyhow!("starting a scratch PostgreSQL: {error}"))?,
        ),
        false => None,
    };
    let db = match &postgres {
        Some(server) => Some(server.create_database().map_err(|error| anyhow::anyhow!("{error}"))?),
        None => options.db.clone(),
    };
    let (store, tenant, file) = crate::bench_epcis::open_bench_store(db.clone()).await?;
    let url = db.unwrap_or_else(|| file.url());
    // One origin for the device times of every round and their assignments.
    let started_unix_ms = jiff::Timestamp::now().as_millisecond();
    for number in 0..options.devices {
        let device = Device {
            device_id: DeviceId::parse(&format!("dev-{number}"))?,
            kind: DeviceKind::DataLogger,
            name: format!("logger {number}"),
            location_gln: None,
            zone: None,
            reading_interval_seconds: 60,
            calibrated_on: None,
        };
        let mutation = Mutation::PutDevice { device, mode: PutMode::Upsert };
        store.write(Write { tenant_id: tenant.clone(), mutation, idempotency: None }).await?;
        // Each round's stretch of device time is a trip of its own: one assignment per round,
        // so the cumulative budget starts afresh.
        for round in 0..2 {
            let mutation = Mutation::AssignDevice {
                device_id: DeviceId::parse(&format!("dev-{number}"))?,
                from_unix_ms: round_start_unix_ms(&options, round, started_unix_ms),
                target: store::readings::AssignmentTarget::Vehicle(format!("reefer-{}", number % 20)),
                class: Some("chilled".to_owned()),
                events: None,
            };
            store.write(Write { tenant_id: tenant.clone(), mutation, idempotency: None }).await?;
        }
    }
    let key = demo::mint(&store, &tenant, Scope::Device, "bench readings").await?;
    let served = crate::bench::Served::start(store.clone()).await?;
    let base = served.base.clone();
    let client = reqwest::Client::builder().pool_max_idle_per_host(options.clients).build()?;
    println!(
        "bench readings: {} backend, {} readings per measurement in SenML packs of {}, {} devices, {} senders, \
         durable commits, alarms evaluated on ingest (chilled rules)",
        store.backend().name(),
        options.readings,
        options.batch,
        options.devices,
        options.clients
    );
    println!("{:<44} {:>10} {:>8} {:>12}", "path", "readings", "seconds", "readings/s");
    let mut rates = Vec::new();
    for (round, path) in
        ["in-process ingest", "HTTP POST /v1/readings", "plain INSERT (baseline)"].into_iter().enumerate()
    {
        let (texts, rows): (Vec<String>, Vec<Vec<StoredReading>>) =
            packs(&options, round as i64, started_unix_ms).into_iter().unzip();
        let (readings, seconds) = match round {
            0 => {
                let store = store.clone();
                let tenant = tenant.clone();
                run(texts, options.clients, move |pack| {
                    let store = store.clone();
                    let tenant = tenant.clone();
                    async move {
                        let ingested = server::readings::ingest(
                            &store,
                            &tenant,
                            "application/senml+json",
                            pack.as_bytes(),
                            jiff::Timestamp::now(),
                            None,
                        )
                        .await
                        .map_err(|problem| anyhow::anyhow!("ingest failed: {}", problem.detail))?;
                        anyhow::ensure!(ingested.rejected.is_empty(), "generated readings rejected");
                        Ok(ingested.accepted)
                    }
                })
                .await?
            }
            1 => {
                let client = client.clone();
                let url = format!("{base}/v1/readings");
                let key = key.clone();
                run(texts, options.clients, move |pack| {
                    let request = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/senml+json")
                        .body(pack)
                        .send();
                    async move {
                        let response = request.await?;
                        anyhow::ensure!(
                            response.status().as_u16() == 201,
                            "POST /v1/readings answered {}",
                            response.status()
                        );
                        let counts: serde_json::Value = response.json().await?;
                        Ok(counts["accepted"].as_u64().unwrap_or(0))
                    }
                })
                .await?
            }
            _ => {
                let plain =
                    Arc::new(store::baseline::PlainReadings::connect(&url, &TenantId::parse("bench-plain")?).await?);
                let started = Instant::now();
                let mut readings = 0;
                // One connection, one transaction per pack (SQLite has one writer anyway).
                for pack in &rows {
                    plain.insert(pack).await?;
                    readings += pack.len() as u64;
                }
                (readings, started.elapsed().as_secs_f64())
            }
        };
        anyhow::ensure!(readings as usize >= options.readings, "{path}: only {readings} readings stored");
        let rate = readings as f64 / seconds;
        println!("{path:<44} {readings:>10} {seconds:>8.1} {rate:>12.0}");
        rates.push(rate);
    }
    let alarms = store.tenant(&tenant).alarms(&[], None, store::alarms::ALARMS_LISTED_MAX).await?.len();
    served.stop().await?;
    let shown = if alarms >= store::alarms::ALARMS_LISTED_MAX as usize {
        format!("{alarms} or more")
    } else {
        alarms.to_string()
    };
    println!("alarms stored: {shown}");
    println!(
        "summary: readings ingested with alarm evaluation on {}: in-process {:.0}/s, HTTP {:.0}/s, plain insert {:.0}/s (in-process / plain {:.2})",
        store.backend().name(),
        rates[0],
        rates[1],
        rates[2],
        rates[0] / rates[2]
    );
    drop(file);
    drop(postgres);
    Ok(())
}
