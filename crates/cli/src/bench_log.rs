//! `keten bench log`: the transparency log's costs, measured on a live server with durable
//! commits: entries appended per second (each captured event is one entry, sequenced in its
//! capture transaction), the time from a capture's answer to a signed checkpoint covering it,
//! inclusion and consistency proof latency on a log filled to `--entries`, and the speed of
//! `keten verify log` re-hashing the whole log from its entry bundles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::bench_epcis::{Generator, SEED, capture_in_process, latencies, open_bench_store};

#[derive(Debug, Args)]
pub struct LogOptions {
    /// Entries in the log before proof latencies and `verify log` are measured.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: u64,
    /// Events captured for the append-rate measurement.
    #[arg(long, default_value_t = 50_000)]
    pub append_events: u64,
    /// Concurrent capturing clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Captures timed until their checkpoint.
    #[arg(long, default_value_t = 20)]
    pub checkpoints: usize,
    /// Proofs per latency measurement.
    #[arg(long, default_value_t = 300)]
    pub proofs: usize,
    /// The database (default: a fresh SQLite file that is removed afterwards).
    #[arg(long)]
    pub db: Option<String>,
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

pub async fn log(options: LogOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.clients >= 1 && options.clients <= 64, "--clients must be 1..=64");
    anyhow::ensure!(options.entries <= 100_000_000, "--entries must be at most 100,000,000");
    anyhow::ensure!(options.proofs >= 1 && options.proofs <= 100_000, "--proofs must be 1..=100,000");
    anyhow::ensure!(options.checkpoints >= 1 && options.checkpoints <= 1_000, "--checkpoints must be 1..=1,000");
    let (store, tenant, file) = open_bench_store(options.db.clone()).await?;
    let listening = crate::bench::Listening::bind().await?;
    let server_config = listening.config();
    let signer = server_config.log.signer.clone();
    let interval = server_config.log.checkpoint_interval;
    let served = listening.serve(store.clone(), server_config);
    let base = served.base.clone();
    let client = reqwest::Client::new();
    println!(
        "bench log: {} backend, {} capturing clients, checkpoints every {} ms, durable commits",
        store.backend().name(),
        options.clients,
        interval.as_millis()
    );
    let mut summary = Vec::new();
    let mut generator = Generator::new(SEED ^ 0x6c6f67, 0);

    // 1. Entries appended per second: every captured event is appended in its capture transaction.
    println!("{:<40} {:>10} {:>10} {:>12}", "append (capture in-process)", "entries", "seconds", "entries/s");
    for per_document in [100u64, 1000] {
        let before = store.log_state().await?.size;
        let documents: Vec<String> = (0..options.append_events.div_ceil(per_document))
            .map(|_| generator.document(per_document as usize))
            .collect();
        let (_, seconds) = capture_in_process(&store, &tenant, documents, options.clients).await?;
        let appended = store.log_state().await?.size - before;
        let rate = appended as f64 / seconds;
        println!("{:<40} {appended:>10} {seconds:>10.1} {rate:>12.0}", format!("{per_document}-event documents"));
        summary.push(format!("append {per_document}/doc {rate:.0}/s"));
    }

    // 2. From a capture's answer to a signed checkpoint that covers it: after a quiet spell, and
    // while other clients keep capturing.
    for loaded in [false, true] {
        let stop_load = Arc::new(AtomicBool::new(false));
        let load = loaded.then(|| {
            let (store, tenant, stop_load) = (store.clone(), tenant.clone(), stop_load.clone());
            let mut load_generator = Generator::new(SEED ^ 0x6c6f6164, 500_000_000);
            tokio::spawn(async move {
                while !stop_load.load(Ordering::Relaxed) {
                    let documents = (0..4).map(|_| load_generator.document(100)).collect();
                    capture_in_process(&store, &tenant, documents, 2).await?;
                }
                anyhow::Ok(())
            })
        });
        let mut waits_ms = Vec::with_capacity(options.checkpoints);
        // Start after two intervals without entries (the append measurement just ended, and its
        // last checkpoint may have been signed up to an interval after it).
        tokio::time::sleep(interval * 2 + Duration::from_millis(50)).await;
        for round in 0..options.checkpoints {
            let documents = vec![generator.document(10)];
            capture_in_process(&store, &tenant, documents, 1).await?;
            let answered = Instant::now();
            let size = store.log_state().await?.size;
            loop {
                if store.log_latest_checkpoint().await?.is_some_and(|checkpoint| checkpoint.size >= size) {
                    break;
                }
                anyhow::ensure!(answered.elapsed() < Duration::from_secs(30), "no checkpoint within 30 s");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            waits_ms.push(answered.elapsed().as_secs_f64() * 1000.0);
            let pause = match loaded {
                // Quiet: longer than the interval, so the log is idle when the next capture comes.
                false => interval + Duration::from_millis(50),
                // Spread over the interval.
                true => interval.mul_f64(((round * 7) % 10) as f64 / 10.0),
            };
            tokio::time::sleep(pause).await;
        }
        stop_load.store(true, Ordering::Relaxed);
        if let Some(load) = load {
            load.await??;
        }
        waits_ms.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&waits_ms, 0.5), percentile(&waits_ms, 0.99));
        let label = if loaded { "under capture load" } else { "after a quiet spell" };
        println!("{:<40} {p50:>10.1} {p99:>10.1}   (ms, p50 / p99)", format!("capture → checkpoint, {label}"));
        summary.push(format!("checkpoint after capture ({label}) p50 {p50:.0} ms p99 {p99:.0} ms"));
    }

    // 3. Fill the log, then time proofs.
    let mut size = store.log_state().await?.size;
    if size < options.entries {
        let started = Instant::now();
        let mut last_report = Instant::now();
        while size < options.entries {
            let chunk = (options.entries - size).min(20_000);
            let documents: Vec<String> = (0..chunk.div_ceil(1000)).map(|_| generator.document(1000)).collect();
            capture_in_process(&store, &tenant, documents, options.clients).await?;
            size = store.log_state().await?.size;
            if last_report.elapsed() > Duration::from_secs(15) {
                last_report = Instant::now();
                println!("  filling: {size} entries, {:.0} entries/s", size as f64 / started.elapsed().as_secs_f64());
            }
        }
        println!("filled to {size} entries in {:.0} s", started.elapsed().as_secs_f64());
    }
    let checkpoint = server::log::checkpoint_now(&store, &signer)
        .await
        .map_err(|problem| anyhow::anyhow!("checkpoint: {}", problem.detail))?;
    let size = checkpoint.size;
    let mut state = SEED;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let inclusion_urls: Vec<String> =
        (0..options.proofs).map(|_| format!("{base}/log/proof/inclusion?index={}&size={size}", random(size))).collect();
    let consistency_urls: Vec<String> = (0..options.proofs)
        .map(|_| format!("{base}/log/proof/consistency?old={}&new={size}", 1 + random(size - 1)))
        .collect();
    println!("{:<40} {:>10} {:>10} {:>12}", format!("proofs at {size} entries"), "p50 ms", "p99 ms", "hashes");
    let (p50, p99, hashes) = latencies(&client, "", &inclusion_urls, &["inclusionPath"]).await?;
    println!("{:<40} {p50:>10.2} {p99:>10.2} {hashes:>12.1}", "GET /log/proof/inclusion");
    summary.push(format!("inclusion at {size} p50 {p50:.2} ms p99 {p99:.2} ms"));
    let (p50, p99, hashes) = latencies(&client, "", &consistency_urls, &["consistencyPath"]).await?;
    println!("{:<40} {p50:>10.2} {p99:>10.2} {hashes:>12.1}", "GET /log/proof/consistency");
    summary.push(format!("consistency p50 {p50:.2} ms p99 {p99:.2} ms"));

    // 4. A monitor re-hashing the whole log from its entry bundles and tiles.
    let key = tlog::VerifierKey::parse(&signer.verifier_key().to_string())?;
    let origin = key.name().to_owned();
    let policy = tlog::CheckpointPolicy::log_only(&origin, key);
    let started = Instant::now();
    let report = crate::log::verify_log(&base, &policy, None, None).await?;
    let seconds = started.elapsed().as_secs_f64();
    let verified = store.log_latest_checkpoint().await?.map_or(size, |checkpoint| checkpoint.size);
    print!("{report}");
    summary.push(format!("verify log {:.0} entries/s", verified as f64 / seconds));

    served.stop().await?;
    println!("summary: log on {} with {size} entries: {}", store.backend().name(), summary.join("; "));
    drop(file);
    Ok(())
}
