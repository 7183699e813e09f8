//! `keten bench routing`: the routing engine on the published VRPTW and PDPTW benchmark sets,
//! against their best known solutions. Every figure comes from the engine's evaluator.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use routing::benchmark::{InstanceFormat, InstanceResult, best_known_from_json, run_instance, summarise};
use routing::{Objective, SolverConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchmarkSet {
    /// The 56 Solomon VRPTW instances (100 customers).
    Solomon,
    /// The 60 Gehring & Homberger instances with 200 customers.
    #[value(name = "homberger_200")]
    Homberger200,
    /// The Li & Lim pickup-and-delivery instances (100 locations).
    #[value(name = "li_lim_100")]
    LiLim100,
}

impl BenchmarkSet {
    fn directory(self, conformance: &Path) -> PathBuf {
        match self {
            BenchmarkSet::Solomon => conformance.join("routing/VRPTW/solomon"),
            BenchmarkSet::Homberger200 => conformance.join("routing/VRPTW/homberger_200"),
            BenchmarkSet::LiLim100 => conformance.join("routing/PDPTW/li_lim_100"),
        }
    }
}

#[derive(Debug, Args)]
pub struct RoutingOptions {
    #[arg(long, value_enum, default_value_t = BenchmarkSet::Solomon)]
    set: BenchmarkSet,
    /// CPU seconds per instance (the solving thread's CPU time, fair on a shared machine).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Fewest vehicles, then distance (against the plain best-known entries); default: distance only
    /// (against the `<NAME>_distance` entries, Solomon only).
    #[arg(long)]
    vehicles: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instances solved at once, one thread each.
    #[arg(long, default_value_t = 2)]
    parallel: usize,
    /// Only instances whose name contains this text.
    #[arg(long, default_value = "")]
    filter: String,
    /// Write one CSV row per instance (instance, objective, cost, vehicles, seconds, feasible, …).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write each solution as a VRPLIB `.sol` file into this directory.
    #[arg(long)]
    solutions: Option<PathBuf>,
    /// The conformance corpora (default: $KETEN_CONFORMANCE_DIR, else ../shared/conformance).
    #[arg(long, env = "KETEN_CONFORMANCE_DIR", default_value = "../shared/conformance")]
    conformance: PathBuf,
}

/// CPU time of the calling thread, from Linux's scheduler statistics.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanoseconds: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanoseconds))
}

pub fn routing(options: RoutingOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.seconds > 0.0 && options.seconds <= 3600.0, "--seconds must be within (0, 3600]");
    anyhow::ensure!((1..=64).contains(&options.parallel), "--parallel must be 1..=64");
    let directory = options.set.directory(&options.conformance);
    let format = if options.set == BenchmarkSet::LiLim100 { InstanceFormat::LiLim } else { InstanceFormat::Solomon };
    let best_known_path = directory.parent().map(|parent| parent.join("BKS.json")).unwrap_or_default();
    let best_known_text =
        std::fs::read_to_string(&best_known_path).with_context(|| format!("reading {}", best_known_path.display()))?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .with_context(|| format!("reading {}", directory.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "txt"))
        .filter(|path| path.file_stem().is_some_and(|stem| stem.to_string_lossy().contains(options.filter.as_str())))
        .collect();
    paths.sort();
    anyhow::ensure!(!paths.is_empty(), "no instances in {} match {:?}", directory.display(), options.filter);
    let objective = if options.vehicles { Objective::VehiclesThenCost } else { Objective::Cost };
    let clock: Option<fn() -> Duration> =
        if thread_cpu_time().is_some() { Some(|| thread_cpu_time().unwrap_or_default()) } else { None };
    let config = SolverConfig {
        seed: options.seed,
        time_limit: Duration::from_secs_f64(options.seconds),
        iteration_limit: None,
        objective,
        clock,
    };
    if let Some(directory) = &options.solutions {
        std::fs::create_dir_all(directory).with_context(|| format!("creating {}", directory.display()))?;
    }
    println!(
        "bench routing: {:?} set, {} instances, {} CPU s each, {} in parallel, objective {objective:?}, seed {}",
        options.set,
        paths.len(),
        options.seconds,
        options.parallel,
        options.seed
    );
    println!(
        "{:<10} {:>10} {:>4} {:>10} {:>4} {:>8} {:>6} feasible",
        "instance", "cost", "veh", "best", "veh", "gap%", "sec"
    );
    let queue = Mutex::new(paths.into_iter());
    let results: Mutex<Vec<InstanceResult>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..options.parallel {
            scope.spawn(|| {
                loop {
                    let Some(path) = queue.lock().ok().and_then(|mut queue| queue.next()) else { return };
                    match solve_one(&path, format, &best_known_text, &config, options.solutions.as_deref()) {
                        Ok(result) => {
                            println!(
                                "{:<10} {:>10.2} {:>4} {:>10.2} {:>4} {:>8.3} {:>6.1} {}",
                                result.name,
                                result.cost,
                                result.vehicles,
                                result.best_known.map_or(f64::NAN, |known| known.cost),
                                result
                                    .best_known
                                    .and_then(|known| known.vehicles)
                                    .map_or("-".to_owned(), |vehicles| vehicles.to_string()),
                                result.gap_percent.unwrap_or(f64::NAN),
                                result.seconds,
                                result.feasible
                            );
                            if let Ok(mut results) = results.lock() {
                                results.push(result);
                            }
                        }
                        Err(error) => {
                            if let Ok(mut failure) = failure.lock() {
                                failure.get_or_insert(error);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().ok().flatten() {
        return Err(error);
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by(|left, right| left.name.cmp(&right.name));
    if let Some(path) = &options.csv {
        let mut csv = String::from("instance,objective,cost,vehicles,seconds,feasible\n");
        for result in &results {
            csv.push_str(&result.csv_row());
            csv.push('\n');
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{:<6} {:>4} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "class", "n", "mean gap%", "median%", "max%", "vehicles", "best veh"
    );
    let summaries = summarise(&results);
    for summary in &summaries {
        println!(
            "{:<6} {:>4} {:>10.3} {:>10.3} {:>10.3} {:>10} {:>10}",
            summary.class,
            summary.instances,
            summary.gap_mean_percent,
            summary.gap_median_percent,
            summary.gap_max_percent,
            summary.vehicles_total,
            summary.best_known_vehicles_total
        );
    }
    if let Some(all) = summaries.last() {
        println!(
            "summary: {} instances, {} infeasible, mean gap {:.3} %, max gap {:.3} %, {} s per instance, objective {objective:?}",
            all.instances, all.infeasible, all.gap_mean_percent, all.gap_max_percent, options.seconds
        );
    }
    Ok(())
}

fn solve_one(
    path: &Path,
    format: InstanceFormat,
    best_known_text: &str,
    config: &SolverConfig,
    solutions: Option<&Path>,
) -> anyhow::Result<InstanceResult> {
    let name = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let best_known = best_known_from_json(best_known_text, &name, config.objective);
    let result =
        run_instance(&name, &text, format, best_known, config).map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
    if let Some(directory) = solutions {
        std::fs::write(directory.join(format!("{name}.sol")), &result.solution_text)?;
    }
    Ok(result)
}
