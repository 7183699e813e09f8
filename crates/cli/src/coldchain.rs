//! `keten coldchain analyse FILE.csv`: the exposure of a data-logger export, offline. The same
//! `coldchain` code computes the server's exposures (one implementation, two doors).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use coldchain::{AnalysisOptions, ProductClass, ShelfLifeRequest};

#[derive(Debug, Subcommand)]
pub enum ColdchainCommand {
    /// Analyse a logger's CSV export (`time,celsius` rows, ISO 8601 times, any order).
    Analyse(AnalyseOptions),
}

#[derive(Debug, Args)]
pub struct AnalyseOptions {
    /// The CSV file; `-` reads standard input.
    file: PathBuf,
    /// pharma (2–8 °C), chilled (0–4 °C), frozen (≤ −18 °C) or fish (0–2 °C).
    #[arg(long)]
    class: ProductClass,
    /// Replaces the class's lower limit, °C.
    #[arg(long, allow_hyphen_values = true)]
    min: Option<f64>,
    /// Replaces the class's upper limit, °C.
    #[arg(long, allow_hyphen_values = true)]
    max: Option<f64>,
    /// The product's shelf life in days when kept at --rated-at.
    #[arg(long)]
    shelf_life_days: Option<f64>,
    /// Report the remaining shelf life if stored at this temperature from now on, °C.
    #[arg(long, allow_hyphen_values = true, requires = "shelf_life_days")]
    at: Option<f64>,
    /// The temperature the shelf life is rated at, °C (default: fish 0, chilled 4, frozen −18, pharma 5).
    #[arg(long, allow_hyphen_values = true, requires = "shelf_life_days")]
    rated_at: Option<f64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The temperature a class's shelf life is usually stated at.
fn rated_celsius(class: ProductClass) -> f64 {
    match class {
        ProductClass::Fish => 0.0,
        ProductClass::Chilled => 4.0,
        ProductClass::Frozen => -18.0,
        ProductClass::Pharma => 5.0,
    }
}

/// The most bytes of CSV read (a year of one-minute readings is about 15 MB).
const FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;

pub fn run(command: ColdchainCommand) -> anyhow::Result<()> {
    match command {
        ColdchainCommand::Analyse(options) => analyse(options),
    }
}

fn analyse(options: AnalyseOptions) -> anyhow::Result<()> {
    let text = if options.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin().lock()).context("reading standard input")?
    } else {
        let length =
            std::fs::metadata(&options.file).with_context(|| format!("reading {}", options.file.display()))?.len();
        anyhow::ensure!(length <= FILE_BYTES_MAX, "{} is larger than {FILE_BYTES_MAX} bytes", options.file.display());
        std::fs::read_to_string(&options.file).with_context(|| format!("reading {}", options.file.display()))?
    };
    let mut analysis_options = AnalysisOptions::new(options.class);
    analysis_options.min_celsius = options.min;
    analysis_options.max_celsius = options.max;
    if let Some(days) = options.shelf_life_days {
        let reference_celsius = options.rated_at.unwrap_or_else(|| rated_celsius(options.class));
        let storage_celsius = options.at.unwrap_or(reference_celsius);
        analysis_options.shelf_life = Some(ShelfLifeRequest { days, reference_celsius, storage_celsius });
    }
    let analysis = coldchain::analyse(&text, &analysis_options)
        .map_err(|error| anyhow::anyhow!("{}: {error}", options.file.display()))?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&analysis)?);
    } else {
        print!("{analysis}");
    }
    Ok(())
}
