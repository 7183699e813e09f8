//! `keten bench dispatch`: plans a generated dispatch wave (home deliveries around a city depot,
//! chilled, frozen and ambient goods, promise windows, a mixed fleet) at several time limits, and
//! compares the planned distance with one trip per shipment.

use clap::Args;
use dispatch::{Haversine, PlanRequest, Shipment, TravelMatrix, WaveVehicle};
use network::{Coordinates, LocalTime, Skill, Vehicle, VehicleId};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct DispatchOptions {
    /// Shipments in the wave.
    #[arg(long, default_value_t = 300)]
    pub shipments: usize,
    /// The longest time limit tried (seconds); 0.2 s and 1 s are tried too.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Seeds per time limit; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
}

const WAVE_UNIX_MS: i64 = 1_796_104_800_000; // 2026-12-02T07:00:00Z
const HOUR_MS: i64 = 3_600_000;

/// A small deterministic generator (SplitMix64), so every run plans the same wave.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn fleet() -> anyhow::Result<Vec<Vehicle>> {
    let depot = gs1::Gln::parse("8712345000011")?;
    let mut vehicles = Vec::new();
    let kinds: [(&str, usize, u32, &[Skill], f64); 3] = [
        ("van-freezer", 6, 60, &[Skill::Freezer, Skill::Reefer], 30.0),
        ("van-reefer", 8, 60, &[Skill::Reefer], 30.0),
        ("bike", 12, 24, &[], 18.0),
    ];
    for (kind, count, capacity_units, skills, speed_km_per_h) in kinds {
        for index in 0..count {
            let vehicle = Vehicle {
                vehicle_id: VehicleId::parse(&format!("{kind}-{index}"))?,
                depot: depot.clone(),
                name: format!("{kind} {index}"),
                courier_name: None,
                courier_key_id: None,
                capacity_units,
                skills: skills.to_vec(),
                shift_start: LocalTime::parse("07:00")?,
                shift_end: LocalTime::parse("17:00")?,
                speed_km_per_h,
                fixed_cost_cents: 2_500,
                cost_per_km_cents: if kind == "bike" { 5 } else { 35 },
                cost_per_hour_cents: 2_800,
            };
            vehicle.check()?;
            vehicles.push(vehicle);
        }
    }
    Ok(vehicles)
}

fn wave(count: usize, depot: Coordinates) -> anyhow::Result<Vec<Shipment>> {
    let mut generator = Generator(0x006B_6574_656E);
    let mut shipments = Vec::with_capacity(count);
    for index in 0..count {
        // Within 12 km of the depot, denser towards the centre.
        let radius_km = 12.0 * generator.unit().sqrt();
        let angle = generator.unit() * std::f64::consts::TAU;
        let latitude = depot.latitude_degrees() + radius_km / 111.2 * angle.sin();
        let longitude =
            depot.longitude_degrees() + radius_km / (111.2 * depot.latitude_degrees().to_radians().cos()) * angle.cos();
        let class = generator.unit();
        let skills = if class < 0.1 {
            vec![Skill::Freezer]
        } else if class < 0.5 {
            vec![Skill::Reefer]
        } else {
            Vec::new()
        };
        let promise_hours = [3, 5, 8][(generator.next() % 3) as usize];
        shipments.push(Shipment {
            coordinates: Coordinates::new(latitude, longitude)?,
            demand_units: 1 + (generator.next() % 6) as u32,
            skills,
            due_by_unix_ms: WAVE_UNIX_MS + promise_hours * HOUR_MS,
            service_seconds: 180,
            group: index as u64,
        });
    }
    Ok(shipments)
}

struct Run {
    distance_km: f64,
    routes: usize,
    unplanned: usize,
    reasons: Vec<&'static str>,
    late: usize,
    solve_ms: f64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn dispatch(options: DispatchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=dispatch::plan::SHIPMENTS_PER_WAVE_MAX).contains(&options.shipments),
        "--shipments must be 1..={}",
        dispatch::plan::SHIPMENTS_PER_WAVE_MAX
    );
    anyhow::ensure!(options.seconds > 0.0 && options.seeds > 0, "--seconds and --seeds must be positive");
    let depot = Coordinates::new(52.3874, 4.8379)?;
    let vehicles = fleet()?;
    let shipments = wave(options.shipments, depot)?;
    let on_shift: Vec<WaveVehicle<'_>> = vehicles
        .iter()
        .map(|vehicle| WaveVehicle {
            vehicle,
            available_from_unix_ms: WAVE_UNIX_MS,
            available_until_unix_ms: WAVE_UNIX_MS + 10 * HOUR_MS,
        })
        .collect();
    let mut points = vec![depot];
    points.extend(shipments.iter().map(|shipment| shipment.coordinates));
    let started = Instant::now();
    let matrix = Haversine::default().matrix(&points, 30.0)?;
    let matrix_ms = started.elapsed().as_secs_f64() * 1000.0;
    let one_trip_each_km: f64 =
        (1..points.len()).map(|index| matrix.distance_m(0, index) + matrix.distance_m(index, 0)).sum::<f64>() / 1000.0;
    println!(
        "wave: {} shipments within 12 km of the depot (40 % chilled, 10 % frozen), promises 3/5/8 h; fleet: {} vehicles \
         (6 freezer and 8 reefer vans of 60 units at 30 km/h, 12 bikes of 24 at 18 km/h); matrix {:.1} ms; one trip per shipment: {:.0} km",
        shipments.len(),
        vehicles.len(),
        matrix_ms,
        one_trip_each_km
    );
    println!(
        "{:>8} {:>12} {:>8} {:>10} {:>6} {:>10} {:>14}",
        "limit s", "distance km", "routes", "unplanned", "late", "solve ms", "vs one trip"
    );
    let mut limits = vec![0.2, 1.0];
    if options.seconds > 1.0 {
        limits.push(options.seconds);
    }
    let mut summary = Vec::new();
    for limit in limits {
        let mut runs = Vec::new();
        for seed in 1..=options.seeds {
            let request = PlanRequest {
                depot,
                wave_unix_ms: WAVE_UNIX_MS,
                vehicles: on_shift.clone(),
                shipments: &shipments,
                allow_late: false,
                seed,
                time_limit: Duration::from_secs_f64(limit),
                iteration_limit: None,
            };
            let started = Instant::now();
            let planned = dispatch::plan(&request, &Haversine::default())?;
            let solve_ms = started.elapsed().as_secs_f64() * 1000.0;
            let late = planned.routes.iter().flat_map(|route| &route.stops).filter(|stop| stop.late).count();
            let mut reasons: Vec<&'static str> = planned.unplanned.iter().map(|(_, reason)| reason.code()).collect();
            reasons.dedup();
            runs.push(Run {
                distance_km: planned.distance_m / 1000.0,
                routes: planned.routes.len(),
                unplanned: planned.unplanned.len(),
                reasons,
                late,
                solve_ms,
            });
        }
        let distance = median(&mut runs.iter().map(|run| run.distance_km).collect::<Vec<_>>());
        let routes = median(&mut runs.iter().map(|run| run.routes as f64).collect::<Vec<_>>());
        let unplanned = runs.iter().map(|run| run.unplanned).max().unwrap_or(0);
        let mut reasons: Vec<&str> = runs.iter().flat_map(|run| run.reasons.iter().copied()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        let late = runs.iter().map(|run| run.late).max().unwrap_or(0);
        let solve = median(&mut runs.iter().map(|run| run.solve_ms).collect::<Vec<_>>());
        let ratio = distance / one_trip_each_km;
        println!(
            "{limit:>8.1} {distance:>12.1} {routes:>8.0} {unplanned:>10} {late:>6} {solve:>10.0} {:>13.1}%  {}",
            ratio * 100.0,
            reasons.join(", ")
        );
        summary.push(format!("{limit} s: {distance:.0} km, {routes:.0} routes, {unplanned} unplanned"));
    }
    println!(
        "summary: dispatch wave of {} shipments (median of {} seeds): {}; one trip each {:.0} km",
        shipments.len(),
        options.seeds,
        summary.join("; "),
        one_trip_each_km
    );
    Ok(())
}
