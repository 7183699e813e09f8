//! Benchmark runs: one instance against its best known solution, and gaps aggregated per class
//! (C1, C2, R1, R2, RC1, RC2). The caller reads files and prints; this module only computes.

use crate::error::ParseError;
use crate::parse::{parse_li_lim, parse_solomon};
use crate::solver::{Objective, SolverConfig, solve};

/// The text format of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceFormat {
    /// Solomon, and Gehring & Homberger.
    Solomon,
    /// Li & Lim pickup-and-delivery.
    LiLim,
}

/// A best known solution: its cost and, for the hierarchical convention, its vehicle count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestKnown {
    pub cost: f64,
    pub vehicles: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceResult {
    pub name: String,
    pub class: String,
    pub objective: Objective,
    /// Total cost by the evaluator (for benchmark instances: total distance, double precision).
    pub cost: f64,
    pub vehicles: usize,
    pub best_known: Option<BestKnown>,
    /// `100 * (cost - best known) / best known`.
    pub gap_percent: Option<f64>,
    pub seconds: f64,
    /// The evaluator found no violation and no job is unassigned.
    pub feasible: bool,
    pub unassigned: usize,
    pub iterations: u64,
    /// The solution as VRPLIB `.sol` text.
    pub solution_text: String,
}

impl InstanceResult {
    /// Header of [`InstanceResult::csv_row`].
    pub const CSV_HEADER: &'static str = "instance,objective,cost,vehicles,seconds,feasible";

    /// One CSV row: instance, objective, cost (two decimals), vehicles, seconds, feasible.
    pub fn csv_row(&self) -> String {
        let objective = match self.objective {
            Objective::Cost => "cost",
            Objective::VehiclesThenCost => "vehicles-then-cost",
        };
        format!("{},{objective},{:.2},{},{:.2},{}", self.name, self.cost, self.vehicles, self.seconds, self.feasible)
    }
}

/// The class of a benchmark instance from its name: `C101`, `c1_2_1`, `lc101` → `C1`;
/// `RC208`, `rc2_2_4`, `lrc201` → `RC2`. Unknown names give `other`.
pub fn instance_class(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let trimmed =
        upper.strip_prefix('L').filter(|rest| rest.starts_with('C') || rest.starts_with('R')).unwrap_or(&upper);
    let letters: String = trimmed.chars().take_while(|character| character.is_ascii_alphabetic()).collect();
    let digit = trimmed[letters.len()..].chars().next();
    match (letters.as_str(), digit) {
        ("C" | "R" | "RC", Some(digit @ ('1' | '2'))) => format!("{letters}{digit}"),
        _ => "other".to_owned(),
    }
}

/// Reads a best known solution from a `BKS.json` text (the vroom-scripts layout:
/// `"NAME": { …, "best_known_cost": X, …, "solved_with_vehicles": N, … }`). For
/// [`Objective::Cost`], `NAME_distance` is preferred when present.
pub fn best_known_from_json(json: &str, name: &str, objective: Objective) -> Option<BestKnown> {
    let find = |key: &str| -> Option<BestKnown> {
        let marker = format!("\"{key}\"");
        let start = json.find(&marker)? + marker.len();
        let rest = &json[start..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start().strip_prefix('{')?;
        let body = &rest[..rest.find('}')?];
        let field = |field: &str| -> Option<f64> {
            let marker = format!("\"{field}\"");
            let position = body.find(&marker)? + marker.len();
            let value = body[position..].trim_start().strip_prefix(':')?.trim_start();
            let end =
                value.find(|character: char| character == ',' || character.is_whitespace()).unwrap_or(value.len());
            value[..end].parse().ok()
        };
        Some(BestKnown {
            cost: field("best_known_cost")?,
            vehicles: field("solved_with_vehicles").map(|value| value as usize),
        })
    };
    match objective {
        Objective::Cost => find(&format!("{name}_distance")).or_else(|| find(name)),
        Objective::VehiclesThenCost => find(name),
    }
}

/// Parses and solves one instance and compares it with its best known solution.
pub fn run_instance(
    name: &str,
    instance_text: &str,
    format: InstanceFormat,
    best_known: Option<BestKnown>,
    config: &SolverConfig,
) -> Result<InstanceResult, ParseError> {
    let problem = match format {
        InstanceFormat::Solomon => parse_solomon(instance_text)?,
        InstanceFormat::LiLim => parse_li_lim(name, instance_text)?,
    };
    let result = solve(&problem, config);
    let evaluation = &result.evaluation;
    let feasible = evaluation.is_feasible() && result.solution.unassigned.is_empty();
    let gap_percent =
        best_known.filter(|known| known.cost > 0.0).map(|known| 100.0 * (evaluation.cost - known.cost) / known.cost);
    Ok(InstanceResult {
        name: name.to_owned(),
        class: instance_class(name),
        objective: config.objective,
        cost: evaluation.cost,
        vehicles: evaluation.vehicles,
        best_known,
        gap_percent,
        seconds: result.elapsed.as_secs_f64(),
        feasible,
        unassigned: result.solution.unassigned.len(),
        iterations: result.iterations,
        solution_text: result.solution.to_vrplib(&problem, evaluation.cost),
    })
}

/// Gaps of one class (or of all instances, class `all`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSummary {
    pub class: String,
    pub instances: usize,
    pub infeasible: usize,
    pub gap_mean_percent: f64,
    pub gap_median_percent: f64,
    pub gap_max_percent: f64,
    pub vehicles_total: usize,
    pub best_known_vehicles_total: usize,
}

fn summary(class: &str, results: &[&InstanceResult]) -> ClassSummary {
    let mut gaps: Vec<f64> = results.iter().filter_map(|result| result.gap_percent).collect();
    gaps.sort_by(f64::total_cmp);
    let mean = if gaps.is_empty() { f64::NAN } else { gaps.iter().sum::<f64>() / gaps.len() as f64 };
    let median = match gaps.len() {
        0 => f64::NAN,
        count if count % 2 == 1 => gaps[count / 2],
        count => (gaps[count / 2 - 1] + gaps[count / 2]) / 2.0,
    };
    ClassSummary {
        class: class.to_owned(),
        instances: results.len(),
        infeasible: results.iter().filter(|result| !result.feasible).count(),
        gap_mean_percent: mean,
        gap_median_percent: median,
        gap_max_percent: gaps.last().copied().unwrap_or(f64::NAN),
        vehicles_total: results.iter().map(|result| result.vehicles).sum(),
        best_known_vehicles_total: results
            .iter()
            .filter_map(|result| result.best_known.and_then(|known| known.vehicles))
            .sum(),
    }
}

/// One summary per class present (in the order C1, C2, R1, R2, RC1, RC2, other), then `all`.
pub fn summarise(results: &[InstanceResult]) -> Vec<ClassSummary> {
    let mut summaries = Vec::new();
    for class in ["C1", "C2", "R1", "R2", "RC1", "RC2", "other"] {
        let members: Vec<&InstanceResult> = results.iter().filter(|result| result.class == class).collect();
        if !members.is_empty() {
            summaries.push(summary(class, &members));
        }
    }
    let all: Vec<&InstanceResult> = results.iter().collect();
    summaries.push(summary("all", &all));
    summaries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_from_names() {
        for (name, class) in [
            ("C101", "C1"),
            ("rc2_2_4", "RC2"),
            ("lrc104", "RC1"),
            ("lr201", "R2"),
            ("R112", "R1"),
            ("X-n101", "other"),
        ] {
            assert_eq!(instance_class(name), class, "{name}");
        }
    }

    #[test]
    fn best_known_prefers_the_distance_entry_for_cost() {
        let json = r#"{ "R101": { "best_known_cost": 1645.79, "solved_with_vehicles": 19 },
                        "R101_distance": { "best_known_cost": 1642.88, "solved_with_vehicles": 20 } }"#;
        let cost = best_known_from_json(json, "R101", Objective::Cost);
        assert_eq!(cost, Some(BestKnown { cost: 1642.88, vehicles: Some(20) }));
        let hierarchical = best_known_from_json(json, "R101", Objective::VehiclesThenCost);
        assert_eq!(hierarchical, Some(BestKnown { cost: 1645.79, vehicles: Some(19) }));
        assert_eq!(best_known_from_json(json, "R102", Objective::Cost), None);
    }

    #[test]
    fn summaries_per_class_and_overall() {
        let result = |name: &str, gap: f64| InstanceResult {
            name: name.to_owned(),
            class: instance_class(name),
            objective: Objective::Cost,
            cost: 100.0 + gap,
            vehicles: 3,
            best_known: Some(BestKnown { cost: 100.0, vehicles: Some(3) }),
            gap_percent: Some(gap),
            seconds: 1.0,
            feasible: true,
            unassigned: 0,
            iterations: 1,
            solution_text: String::new(),
        };
        let summaries =
            summarise(&[result("C101", 1.0), result("C102", 3.0), result("C103", 2.0), result("R101", 0.5)]);
        let classes: Vec<(&str, usize, f64, f64, f64)> = summaries
            .iter()
            .map(|summary| {
                (
                    summary.class.as_str(),
                    summary.instances,
                    summary.gap_mean_percent,
                    summary.gap_median_percent,
                    summary.gap_max_percent,
                )
            })
            .collect();
        assert_eq!(classes, vec![("C1", 3, 2.0, 2.0, 3.0), ("R1", 1, 0.5, 0.5, 0.5), ("all", 4, 1.625, 1.5, 3.0)]);
        assert_eq!(result("C101", 1.0).csv_row(), "C101,cost,101.00,3,1.00,true");
    }

    #[test]
    fn a_tiny_instance_runs_end_to_end() {
        let text = "TINY\nVEHICLE\nNUMBER CAPACITY\n 2 10\nCUSTOMER\n0 0 0 0 0 100 0\n1 3 4 5 0 6 1\n2 6 8 4 0 60 1\n";
        let config = SolverConfig { iteration_limit: Some(5), ..SolverConfig::default() };
        let result = run_instance(
            "TINY",
            text,
            InstanceFormat::Solomon,
            Some(BestKnown { cost: 20.0, vehicles: Some(1) }),
            &config,
        )
        .expect("parses");
        assert!(result.feasible);
        assert!((result.cost - 20.0).abs() < 1e-9);
        assert_eq!(result.gap_percent, Some(0.0));
        assert_eq!(result.solution_text, "Route #1: 1 2\nCost 20.00\n");
    }
}
