//! Instance parsers. They take the instance text, never a path: the caller reads files.
//!
//! - Solomon text (also Gehring & Homberger): a `VEHICLE` section with `NUMBER CAPACITY`, then a
//!   `CUSTOMER` table `CUST NO. XCOORD. YCOORD. DEMAND READY-TIME DUE-DATE SERVICE-TIME`, the
//!   first row being the depot.
//! - Li & Lim text: a first line `VEHICLES CAPACITY SPEED`, then one row per task
//!   `ID X Y DEMAND EARLIEST LATEST SERVICE PICKUP DELIVERY`, task 0 being the depot; a pickup
//!   names its delivery, a delivery names its pickup.
//!
//! In both, the ready and due times bound the start of service; the depot's due time ends the
//! shift; travel is Euclidean with time equal to distance.

use crate::error::ParseError;
use crate::model::{Job, JobKind, Problem, Stop, TimeWindow, Travel, VehicleType};

fn numbers(line: &str, line_number: usize) -> Result<Vec<f64>, ParseError> {
    line.split_whitespace()
        .map(|field| {
            field
                .parse::<f64>()
                .map_err(|_| ParseError::Syntax { line: line_number, message: format!("not a number: {field:?}") })
        })
        .collect()
}

fn is_numeric_line(line: &str) -> bool {
    let mut fields = line.split_whitespace().peekable();
    fields.peek().is_some() && fields.all(|field| field.parse::<f64>().is_ok())
}

fn as_quantity(value: f64, line: usize) -> Result<i64, ParseError> {
    if value.fract() != 0.0 || !value.is_finite() || value.abs() > 1e15 {
        return Err(ParseError::Syntax { line, message: format!("not an integer quantity: {value}") });
    }
    Ok(value as i64)
}

fn as_count(value: f64, line: usize) -> Result<usize, ParseError> {
    let quantity = as_quantity(value, line)?;
    usize::try_from(quantity).map_err(|_| ParseError::Syntax { line, message: format!("negative count: {value}") })
}

fn benchmark_vehicle_type(count: usize, capacity: i64, depot: &[f64]) -> VehicleType {
    VehicleType {
        name: "vehicle".to_owned(),
        count,
        capacity: vec![capacity],
        start_location: 0,
        end_location: 0,
        shift_start: depot[4],
        shift_end: depot[5],
        fixed_cost: 0.0,
        cost_per_distance: 1.0,
        cost_per_time: 0.0,
        skills: Vec::new(),
    }
}

fn benchmark_stop(row: &[f64], location: usize, line: usize) -> Result<Stop, ParseError> {
    Ok(Stop {
        location,
        service_time: row[6],
        time_windows: vec![TimeWindow { start: row[4], end: row[5] }],
        external_id: as_count(row[0], line)?,
    })
}

/// Parses a Solomon (or Gehring & Homberger) VRPTW instance.
pub fn parse_solomon(text: &str) -> Result<Problem, ParseError> {
    let mut name = String::new();
    let mut fleet: Option<(usize, i64)> = None;
    let mut rows: Vec<(usize, Vec<f64>)> = Vec::new();
    let mut section = "";
    for (index, raw_line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = raw_line.trim();
        if line.is_empty() {
            continue;
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("VEHICLE") {
            section = "vehicle";
            continue;
        }
        if upper.starts_with("CUSTOMER") {
            section = "customer";
            continue;
        }
        if !is_numeric_line(line) {
            if name.is_empty() && section.is_empty() {
                name = line.to_owned();
            }
            continue;
        }
        let values = numbers(line, line_number)?;
        match section {
            "vehicle" if fleet.is_none() => {
                if values.len() != 2 {
                    return Err(ParseError::Syntax {
                        line: line_number,
                        message: "expected NUMBER CAPACITY".to_owned(),
                    });
                }
                fleet = Some((as_count(values[0], line_number)?, as_quantity(values[1], line_number)?));
            }
            "customer" => {
                if values.len() != 7 {
                    return Err(ParseError::Syntax {
                        line: line_number,
                        message: format!("expected 7 fields, found {}", values.len()),
                    });
                }
                rows.push((line_number, values));
            }
            _ => {
                return Err(ParseError::Syntax { line: line_number, message: "numbers outside a section".to_owned() });
            }
        }
    }
    let (count, capacity) = fleet.ok_or(ParseError::Missing { what: "VEHICLE section" })?;
    let Some((_, depot)) = rows.first() else {
        return Err(ParseError::Missing { what: "depot row" });
    };
    let vehicle_type = benchmark_vehicle_type(count, capacity, depot);
    let coordinates = rows.iter().map(|(_, row)| (row[1], row[2])).collect();
    let mut jobs = Vec::with_capacity(rows.len().saturating_sub(1));
    for (location, (line_number, row)) in rows.iter().enumerate().skip(1) {
        jobs.push(Job {
            name: format!("{}", row[0]),
            demand: vec![as_quantity(row[3], *line_number)?],
            skills: Vec::new(),
            kind: JobKind::Delivery { stop: benchmark_stop(row, location, *line_number)? },
        });
    }
    Ok(Problem::new(name, vec![vehicle_type], jobs, Travel::Euclidean { coordinates })?)
}

/// Parses a Li & Lim PDPTW instance. `name` names the problem (the file carries none).
pub fn parse_li_lim(name: &str, text: &str) -> Result<Problem, ParseError> {
    let mut lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    let Some((header_index, header_line)) = lines.next() else {
        return Err(ParseError::Missing { what: "header line" });
    };
    let header = numbers(header_line, header_index + 1)?;
    if header.len() < 2 {
        return Err(ParseError::Syntax {
            line: header_index + 1,
            message: "expected VEHICLES CAPACITY SPEED".to_owned(),
        });
    }
    let count = as_count(header[0], header_index + 1)?;
    let capacity = as_quantity(header[1], header_index + 1)?;
    let mut rows: Vec<(usize, Vec<f64>)> = Vec::new();
    for (index, line) in lines {
        let values = numbers(line, index + 1)?;
        if values.len() != 9 {
            return Err(ParseError::Syntax {
                line: index + 1,
                message: format!("expected 9 fields, found {}", values.len()),
            });
        }
        rows.push((index + 1, values));
    }
    let Some((_, depot)) = rows.first() else {
        return Err(ParseError::Missing { what: "depot row" });
    };
    let vehicle_type = benchmark_vehicle_type(count, capacity, depot);
    let location_of_id: std::collections::HashMap<usize, usize> = rows
        .iter()
        .enumerate()
        .map(|(location, (line, row))| Ok((as_count(row[0], *line)?, location)))
        .collect::<Result<_, ParseError>>()?;
    let mut jobs = Vec::new();
    for (location, (line_number, row)) in rows.iter().enumerate().skip(1) {
        let delivery_id = as_count(row[8], *line_number)?;
        let pickup_id = as_count(row[7], *line_number)?;
        if delivery_id == 0 {
            if pickup_id == 0 {
                return Err(ParseError::Syntax {
                    line: *line_number,
                    message: "task is neither pickup nor delivery".to_owned(),
                });
            }
            continue; // a delivery: built with its pickup
        }
        let Some(&delivery_location) = location_of_id.get(&delivery_id) else {
            return Err(ParseError::Syntax {
                line: *line_number,
                message: format!("unknown delivery task {delivery_id}"),
            });
        };
        let (delivery_line, delivery_row) = &rows[delivery_location];
        if as_count(delivery_row[7], *delivery_line)? != as_count(row[0], *line_number)? {
            return Err(ParseError::Syntax {
                line: *delivery_line,
                message: "delivery does not name its pickup".to_owned(),
            });
        }
        jobs.push(Job {
            name: format!("{}-{}", row[0], delivery_row[0]),
            demand: vec![as_quantity(row[3], *line_number)?],
            skills: Vec::new(),
            kind: JobKind::PickupAndDelivery {
                pickup: benchmark_stop(row, location, *line_number)?,
                delivery: benchmark_stop(delivery_row, delivery_location, *delivery_line)?,
            },
        });
    }
    let coordinates = rows.iter().map(|(_, row)| (row[1], row[2])).collect();
    Ok(Problem::new(name, vec![vehicle_type], jobs, Travel::Euclidean { coordinates })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobKind, StopRole};

    const SOLOMON: &str = "TINY\n\nVEHICLE\nNUMBER     CAPACITY\n  2         10\n\nCUSTOMER\nCUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME\n \n    0      0         0          0          0       100          0\n    1      3         4          5          0        50         10\n    2      6         8          4         20        60          5\n";

    const LI_LIM: &str =
        "2\t10\t1\n0\t0\t0\t0\t0\t100\t0\t0\t0\n1\t3\t4\t5\t0\t50\t10\t0\t2\n2\t6\t8\t-5\t20\t60\t5\t1\t0\n";

    #[test]
    fn solomon_text_gives_fleet_jobs_and_travel() {
        let problem = parse_solomon(SOLOMON).expect("parses");
        assert_eq!(problem.name(), "TINY");
        assert_eq!(problem.vehicle_types()[0].count, 2);
        assert_eq!(problem.vehicle_types()[0].capacity, vec![10]);
        assert_eq!(problem.vehicle_types()[0].shift_end, 100.0);
        assert_eq!(problem.jobs().len(), 2);
        let JobKind::Delivery { stop } = &problem.jobs()[1].kind else { panic!("a delivery") };
        assert_eq!(
            (stop.external_id, stop.service_time, stop.time_windows[0].start, stop.time_windows[0].end),
            (2, 5.0, 20.0, 60.0)
        );
        assert_eq!(problem.travel().distance(0, 1), 5.0);
        assert_eq!(problem.travel().time(1, 2), 5.0);
    }

    #[test]
    fn li_lim_text_gives_pairs() {
        let problem = parse_li_lim("tiny", LI_LIM).expect("parses");
        assert_eq!(problem.jobs().len(), 1);
        let job = &problem.jobs()[0];
        assert_eq!(job.demand, vec![5]);
        assert_eq!(job.stop(StopRole::Pickup).map(|stop| stop.external_id), Some(1));
        assert_eq!(job.stop(StopRole::Delivery).map(|stop| stop.external_id), Some(2));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(
            header in proptest::sample::select(vec!["", "VEHICLE\n2 10\nCUSTOMER\n", "2 10 1\n"]),
            lines in proptest::collection::vec("[0-9 .eEinfa\\-]{0,40}", 0..12),
        ) {
            let text = format!("{header}{}", lines.join("\n"));
            let _ = parse_solomon(&text);
            let _ = parse_li_lim("random", &text);
        }
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        for text in [
            "",
            "VEHICLE\n2 x\n",
            "VEHICLE\n2 10\nCUSTOMER\n0 0 0 0 0 100\n",
            "VEHICLE\n2 10\nCUSTOMER\n",
            "VEHICLE\n2 10.5\nCUSTOMER\n0 0 0 0 0 100 0\n",
        ] {
            assert!(parse_solomon(text).is_err(), "{text:?}");
        }
        for text in [
            "",
            "2 10 1\n0 0 0 0 0 100 0 0 0\n1 3 4 5 0 50 10 0 9\n",
            "2 10 1\n0 0 0 0 0 100 0 0 0\n1 3 4 5 0 50 10 0 0\n",
        ] {
            assert!(parse_li_lim("bad", text).is_err(), "{text:?}");
        }
        assert!(parse_solomon("VEHICLE\n2 10\nCUSTOMER\n0 nan 0 0 0 100 0\n").is_err());
        // A window that closes before it opens.
        let text = SOLOMON.replace("20        60", "70        60");
        assert!(parse_solomon(&text).is_err());
    }
}
