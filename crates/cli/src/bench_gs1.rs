//! `keten bench gs1` and `keten bench resolver`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::bench::{Gs1Options, ResolverOptions};

fn with_check_digit(body: &str) -> String {
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    format!("{body}{}", gs1::check_digit(&digits))
}

/// Distinct inputs of each form: fresh-fish labels (GTIN, expiry, weight, lot) and their links.
fn inputs(count: usize) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut bracketed = Vec::with_capacity(count);
    let mut scanned = Vec::with_capacity(count);
    let mut links = Vec::with_capacity(count);
    for number in 0..count {
        let gtin = with_check_digit(&format!("{:013}", 709_876_500_000u64 + number as u64));
        let day = 1 + number % 28;
        let grams = 100 + number % 900;
        let lot = format!("L{number:06}");
        bracketed.push(format!("(01){gtin}(17)2612{day:02}(3103){grams:06}(10){lot}"));
        scanned.push(format!("]C101{gtin}172612{day:02}3103{grams:06}10{lot}"));
        links.push(format!("https://id.gs1.org/01/{gtin}/10/{lot}?17=2612{day:02}&3103={grams:06}"));
    }
    (bracketed, scanned, links)
}

/// Runs `parse` over the inputs for `seconds`; answers parses per second.
fn rate(inputs: &[String], seconds: f64, parse: impl Fn(&str) -> bool) -> anyhow::Result<f64> {
    let started = Instant::now();
    let deadline = Duration::from_secs_f64(seconds);
    let mut parsed = 0u64;
    while started.elapsed() < deadline {
        for input in inputs.iter().take(10_000) {
            anyhow::ensure!(parse(black_box(input)), "a generated input failed to parse: {input}");
            parsed += 1;
        }
    }
    Ok(parsed as f64 / started.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn gs1(options: Gs1Options) -> anyhow::Result<()> {
    anyhow::ensure!(options.rounds >= 1 && options.rounds <= 100, "--rounds must be 1..=100");
    anyhow::ensure!(options.seconds > 0.0 && options.seconds <= 60.0, "--seconds must be within (0, 60]");
    let (bracketed, scanned, links) = inputs(10_000);
    println!(
        "bench gs1: parse + validate on one core, 10,000 distinct inputs per form, median of {} rounds of {} s",
        options.rounds, options.seconds
    );
    println!("{:<44} {:>14}", "form", "parses/s");
    type Parser = fn(&str) -> bool;
    let forms: [(&str, &[String], Parser); 4] = [
        ("element string, bracketed (01)(17)(3103)(10)", &bracketed, |text| {
            gs1::ElementString::parse_bracketed(text).is_ok()
        }),
        ("scanner output ]C1 (GS1-128)", &scanned, |text| gs1::ScanData::parse(text).is_ok()),
        ("Digital Link URI with data attributes", &links, |text| gs1::DigitalLink::parse(text).is_ok()),
        ("Digital Link → canonical URI", &links, |text| {
            gs1::DigitalLink::parse(text).map(|link| !link.canonical_uri().is_empty()).unwrap_or(false)
        }),
    ];
    let mut summary = Vec::new();
    for (name, inputs, parse) in forms {
        let mut rounds = Vec::new();
        for _ in 0..options.rounds {
            rounds.push(rate(inputs, options.seconds, parse)?);
        }
        let median = median(rounds);
        println!("{name:<44} {median:>14.0}");
        summary.push(median);
    }
    println!(
        "summary: element strings {:.0}/s, scanner data {:.0}/s, Digital Links {:.0}/s per core",
        summary[0], summary[1], summary[2]
    );
    Ok(())
}

struct Measured {
    requests: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn load(
    client: reqwest::Client,
    url: String,
    accept: &'static str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client.get(&url).header("accept", accept).send().await?;
                anyhow::ensure!(response.status().is_success(), "{url}: {}", response.status());
                let _ = response.bytes().await?;
                latencies.push(sent.elapsed().as_micros() as u32);
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |fraction: f64| f64::from(latencies[((latencies.len() - 1) as f64 * fraction) as usize]) / 1000.0;
    Ok(Measured { requests: latencies.len() as u64, seconds, p50_ms: at(0.5), p99_ms: at(0.99) })
}

pub async fn resolver(options: ResolverOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.connections >= 1 && options.connections <= 512, "--connections must be 1..=512");
    anyhow::ensure!(options.seconds > 0.0 && options.seconds <= 600.0, "--seconds must be within (0, 600]");
    let file = scratchdb::SqliteFile::new()?;
    let store = store::Store::open(store::StoreConfig::new(file.url())).await?;
    let demo = demo::load(&store).await.context("loading the demo network")?;
    // The salmon lot's journey, stock and logger, as `keten demo` records them: the consumer
    // page below is the full provenance page (journey, map, chart, shelf life).
    crate::capture_demo_journey(&store).await?;
    crate::demo_orders::load(&store).await?;
    crate::demo_coldchain::load_salmon(&store, crate::demo_orders::salmon_pallet()?).await?;
    let served = crate::bench::Served::start(store).await?;
    let base = served.base.clone();
    let client = reqwest::Client::builder().pool_max_idle_per_host(options.connections).build()?;
    let url = format!("{base}/01/{}/10/LOT-2026-11?17=261231", demo.salmon_gtin);
    let duration = Duration::from_secs_f64(options.seconds);
    println!(
        "bench resolver: {} keep-alive connections over loopback for {} s each; server and load generator share the machine",
        options.connections, options.seconds
    );
    println!("{:<34} {:>10} {:>12} {:>9} {:>9}", "answer", "requests", "requests/s", "p50 ms", "p99 ms");
    // The first view of a lot builds its page (trace, report, places); later views within the
    // page lifetime are served rendered.
    let cold = Instant::now();
    let first = client.get(&url).header("accept", "text/html").send().await?;
    anyhow::ensure!(first.status().is_success(), "the consumer page answered {}", first.status());
    let page = first.text().await?;
    anyhow::ensure!(
        page.contains("Keten Cold Depot Oslo") && page.contains("class=\"chart\""),
        "the page lacks the journey or the chart"
    );
    println!(
        "first view of the lot's provenance page (built): {:.1} ms, {} bytes",
        cold.elapsed().as_secs_f64() * 1000.0,
        page.len()
    );
    let mut summary = Vec::new();
    for (name, accept) in [
        ("linkset (application/linkset+json)", "application/linkset+json"),
        ("provenance page (text/html)", "text/html"),
    ] {
        // A short warm-up fills connection pools and caches.
        load(client.clone(), url.clone(), accept, options.connections, Duration::from_millis(300)).await?;
        let measured = load(client.clone(), url.clone(), accept, options.connections, duration).await?;
        let rate = measured.requests as f64 / measured.seconds;
        println!("{name:<34} {:>10} {rate:>12.0} {:>9.2} {:>9.2}", measured.requests, measured.p50_ms, measured.p99_ms);
        summary.push(format!("{} {rate:.0}/s p99 {:.2} ms", name.split(' ').next().unwrap_or(name), measured.p99_ms));
    }
    served.stop().await?;
    println!("summary: resolver over loopback: {}", summary.join("; "));
    Ok(())
}
