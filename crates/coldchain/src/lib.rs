//! The cold chain's pure core: from raw sensor readings to exposure, excursions, mean kinetic
//! temperature, alarms and remaining shelf life.
//!
//! - [`temperature`]: SenML units (`Cel`, `K`, `[degF]`) to °C, plausibility, ranges.
//! - [`reading`]: a reading's device, receive and corrected times; bounded clock-skew
//!   correction; partial-success batches. [`senml`] (RFC 8428) and [`json_batch`] parse them.
//! - [`series`]: one device's readings in order, duplicates dropped, and the timeline under the
//!   hold rule (each reading holds until the next, or one interval where the next is more
//!   than two intervals away; the rest is unknown, never in range).
//! - [`exposure`]: time per location, min / max / mean, MKT, time out of range, excursions,
//!   gaps, over the stays the caller passes.
//! - [`alarm`]: rules per product class (persistence delays, cumulative budgets, inclusive or
//!   strict thresholds, severities) and the open → escalated → acknowledged → cleared machine.
//! - [`shelf_life`]: square-root (fish), Q10 (produce) and Arrhenius (pharma) models.
//! - [`analysis`]: a logger's CSV file analysed with the same exposure code as the server.
//!
//! Architecture invariant: no IO, no clock, no database, no HTTP, no async. Functions take
//! values or `&str`; "now" and the receive time are parameters. Bad input is an error value,
//! never a panic. Temperatures are `f64` degrees Celsius (`_celsius`), times are
//! [`jiff::Timestamp`] (UTC), durations [`jiff::SignedDuration`].

pub mod alarm;
pub mod analysis;
pub mod class;
pub mod exposure;
pub mod json_batch;
#[cfg(test)]
mod properties;
pub mod reading;
pub mod senml;
pub mod series;
pub mod shelf_life;
pub mod temperature;

pub use alarm::{
    Acknowledgement, AcknowledgementRecord, Alarm, AlarmError, AlarmId, AlarmMonitor, AlarmProgress, AlarmRule,
    AlarmRuleError, AlarmRules, AlarmState, Comparison, Persistence, Severity, Threshold, evaluate_alarms,
    evaluate_alarms_from,
};
pub use analysis::{
    Analysis, AnalysisExcursion, AnalysisGap, AnalysisOptions, LineError, LineErrorReason, ShelfLifeRequest, analyse,
    judge, whole_seconds,
};
pub use class::{ProductClass, ProductClassError};
pub use exposure::{
    ACTIVATION_ENERGY_OVER_GAS_CONSTANT_KELVIN, Excursion, Exposure, ExposureOptions, Gap, LocationTime, Statistics,
    Stay, exposure, exposure_of_segments, mean_kinetic_temperature,
};
pub use json_batch::parse_json_batch;
pub use reading::{Batch, BatchError, Reading, ReadingError, RejectedRecord};
pub use senml::parse_senml;
pub use series::{Insertion, Segment, Series, SeriesError};
pub use shelf_life::{RemainingShelfLife, ShelfLife, ShelfLifeError, SpoilageModel};
pub use temperature::{Placement, TemperatureError, TemperatureRange, Unit};
