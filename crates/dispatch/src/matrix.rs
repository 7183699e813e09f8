//! Travel between points: distance in metres and time in seconds, for one speed.

use network::Coordinates;

/// Square matrices over `size` points, row-major: `distance_m[from * size + to]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    size: usize,
    distance_m: Vec<f64>,
    time_s: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatrixError {
    #[error("a matrix over {size} points needs {expected} entries per table, found {found}")]
    Size { size: usize, expected: usize, found: usize },
    #[error("matrix entries must be finite and not negative")]
    Value,
    #[error("the matrix provider failed: {0}")]
    Provider(String),
}

impl Matrix {
    pub fn new(size: usize, distance_m: Vec<f64>, time_s: Vec<f64>) -> Result<Matrix, MatrixError> {
        let expected = size * size;
        for table in [&distance_m, &time_s] {
            if table.len() != expected {
                return Err(MatrixError::Size { size, expected, found: table.len() });
            }
            if table.iter().any(|value| !value.is_finite() || *value < 0.0) {
                return Err(MatrixError::Value);
            }
        }
        Ok(Matrix { size, distance_m, time_s })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn distance_m(&self, from: usize, to: usize) -> f64 {
        self.distance_m[from * self.size + to]
    }

    pub fn time_s(&self, from: usize, to: usize) -> f64 {
        self.time_s[from * self.size + to]
    }

    pub(crate) fn into_travel(self) -> routing::Travel {
        routing::Travel::Matrix { size: self.size, distance: self.distance_m, time: self.time_s }
    }
}

/// A source of travel distances and times. Implementations must answer a `points.len()`-square
/// matrix; the planner checks it.
pub trait TravelMatrix: Send + Sync {
    fn matrix(&self, points: &[Coordinates], speed_km_per_h: f64) -> Result<Matrix, MatrixError>;
}

/// The default: great-circle distance × `road_factor`, driven at the given speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Haversine {
    pub road_factor: f64,
}

impl Default for Haversine {
    /// The road factor the delivery promise assumes, so plans and promises agree.
    fn default() -> Haversine {
        Haversine { road_factor: orders::promise::ROAD_FACTOR }
    }
}

impl TravelMatrix for Haversine {
    fn matrix(&self, points: &[Coordinates], speed_km_per_h: f64) -> Result<Matrix, MatrixError> {
        if !(speed_km_per_h.is_finite() && speed_km_per_h > 0.0) {
            return Err(MatrixError::Value);
        }
        let metres_per_second = speed_km_per_h * 1000.0 / 3600.0;
        let size = points.len();
        let mut distance_m = Vec::with_capacity(size * size);
        for from in points {
            for to in points {
                distance_m.push(from.great_circle_km(to) * 1000.0 * self.road_factor);
            }
        }
        let time_s = distance_m.iter().map(|metres| metres / metres_per_second).collect();
        Matrix::new(size, distance_m, time_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_applies_the_road_factor_and_the_speed() {
        let dam = Coordinates::new(52.3731, 4.8922).unwrap();
        let zuid = Coordinates::new(52.3389, 4.8725).unwrap();
        let matrix = Haversine { road_factor: 1.5 }.matrix(&[dam, zuid], 36.0).unwrap();
        let straight_m = dam.great_circle_km(&zuid) * 1000.0;
        assert!((3900.0..4100.0).contains(&straight_m), "{straight_m}");
        assert_eq!(matrix.distance_m(0, 0), 0.0);
        assert!((matrix.distance_m(0, 1) - 1.5 * straight_m).abs() < 1e-6);
        assert_eq!(matrix.distance_m(0, 1), matrix.distance_m(1, 0));
        // 36 km/h is 10 m/s.
        assert!((matrix.time_s(0, 1) - matrix.distance_m(0, 1) / 10.0).abs() < 1e-9);
    }

    #[test]
    fn malformed_matrices_are_refused() {
        assert_eq!(
            Matrix::new(2, vec![0.0; 3], vec![0.0; 4]),
            Err(MatrixError::Size { size: 2, expected: 4, found: 3 })
        );
        assert_eq!(Matrix::new(1, vec![f64::NAN], vec![0.0]), Err(MatrixError::Value));
        assert_eq!(Matrix::new(1, vec![0.0], vec![-1.0]), Err(MatrixError::Value));
        assert!(Haversine::default().matrix(&[], 0.0).is_err());
    }
}
