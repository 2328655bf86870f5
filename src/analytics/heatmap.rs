//! The 360 viewing heatmap: where viewers looked, as seconds per 10° × 10° cell.
//!
//! Layout (the beacon body and every API answer): `bins[pitch][yaw]`, 18 rows of 36.
//! Row `p` covers pitch `[-90 + 10p, -80 + 10p)` degrees (row 0 looks straight down);
//! column `y` covers yaw `[10y, 10y + 10)` degrees, yaw measured clockwise from the
//! centre of the equirectangular frame (the player's initial view) and wrapped into
//! `[0, 360)`. Values are seconds spent looking into the cell.

use serde::{Deserialize, Serialize};

pub const YAW_BINS: usize = 36;
pub const PITCH_BINS: usize = 18;
pub const CELLS: usize = YAW_BINS * PITCH_BINS;

/// Largest beacon body: 648 numbers of a dozen characters fit in 9 KiB.
pub const MAX_BEACON_BYTES: usize = 16 * 1024;
/// The most seconds one beacon counts for: the player sends every 10 s; a late one may
/// carry a little more, never a minute. A beacon claiming more keeps its shape (where
/// the viewer looked) and is scaled down to this weight, so no client can outweigh
/// the others by claiming time it cannot have watched.
pub const MAX_BEACON_SECONDS: f64 = 60.0;

/// A beacon as the player sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Beacon {
    /// 18 rows (pitch) of 36 cells (yaw), seconds each.
    #[schema(schema_with = bins_schema)]
    pub bins: Vec<Vec<f64>>,
}

/// `bins` as the document states it: 18 arrays of 36 numbers `>= 0`.
fn bins_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let cell = ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0.0));
    let row = ArrayBuilder::new()
        .items(cell)
        .min_items(Some(YAW_BINS))
        .max_items(Some(YAW_BINS));
    ArrayBuilder::new()
        .items(row)
        .min_items(Some(PITCH_BINS))
        .max_items(Some(PITCH_BINS))
        .build()
}

/// Why a beacon is refused (400).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum BeaconError {
    #[error("the body is not a heatmap beacon: {0}")]
    Malformed(String),
    #[error("bins must be {PITCH_BINS} rows of {YAW_BINS} numbers")]
    Shape,
    #[error("every bin must be a finite number of seconds, at least 0")]
    Value,
}

/// Seconds per cell, row-major (`pitch * YAW_BINS + yaw`).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram(pub Box<[f64; CELLS]>);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(Box::new([0.0; CELLS]))
    }
}

impl Histogram {
    /// Reads and checks a beacon body: the shape, every value finite and `>= 0`; a
    /// total above [`MAX_BEACON_SECONDS`] is scaled down to it.
    pub fn from_beacon(body: &[u8]) -> Result<Histogram, BeaconError> {
        let beacon: Beacon =
            serde_json::from_slice(body).map_err(|e| BeaconError::Malformed(e.to_string()))?;
        if beacon.bins.len() != PITCH_BINS || beacon.bins.iter().any(|r| r.len() != YAW_BINS) {
            return Err(BeaconError::Shape);
        }
        let mut h = Histogram::default();
        let mut total = 0.0;
        for (p, row) in beacon.bins.iter().enumerate() {
            for (y, &v) in row.iter().enumerate() {
                if !v.is_finite() || v < 0.0 {
                    return Err(BeaconError::Value);
                }
                h.0[p * YAW_BINS + y] = v;
                total += v;
            }
        }
        if total > MAX_BEACON_SECONDS {
            let scale = MAX_BEACON_SECONDS / total;
            h.0.iter_mut().for_each(|v| *v *= scale);
        }
        Ok(h)
    }

    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    pub fn total(&self) -> f64 {
        self.0.iter().sum()
    }

    /// The cell with the most seconds: `(pitch row, yaw column)`; `None` when empty.
    pub fn hottest(&self) -> Option<(usize, usize)> {
        let (i, v) = self
            .0
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        (*v > 0.0).then_some((i / YAW_BINS, i % YAW_BINS))
    }

    /// Little-endian f64s, for the database.
    pub fn to_blob(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The inverse of [`Self::to_blob`]; `None` for a blob of another size.
    pub fn from_blob(blob: &[u8]) -> Option<Histogram> {
        if blob.len() != CELLS * 8 {
            return None;
        }
        let mut h = Histogram::default();
        for (cell, chunk) in h.0.iter_mut().zip(blob.chunks_exact(8)) {
            *cell = f64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(h)
    }

    /// The API's shape: 18 rows of 36.
    pub fn rows(&self) -> Vec<Vec<f64>> {
        self.0.chunks(YAW_BINS).map(<[f64]>::to_vec).collect()
    }
}

/// A heatmap as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeatmapView {
    /// Start of the minute (RFC 3339); absent for the whole scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minute: Option<String>,
    /// Seconds looked, all cells.
    pub total_seconds: f64,
    /// The cell with the most seconds, `[pitch row, yaw column]`; absent when empty.
    pub hottest: Option<[usize; 2]>,
    /// 18 rows (pitch, from straight down) of 36 cells (yaw, from the frame centre).
    pub bins: Vec<Vec<f64>>,
}

impl HeatmapView {
    pub fn new(minute: Option<String>, h: &Histogram) -> Self {
        Self {
            minute,
            total_seconds: h.total(),
            hottest: h.hottest().map(|(p, y)| [p, y]),
            bins: h.rows(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(fill: impl Fn(usize, usize) -> f64) -> String {
        let rows: Vec<Vec<f64>> = (0..PITCH_BINS)
            .map(|p| (0..YAW_BINS).map(|y| fill(p, y)).collect())
            .collect();
        serde_json::json!({ "bins": rows }).to_string()
    }

    #[test]
    fn a_valid_beacon() {
        let h = Histogram::from_beacon(
            body(|p, y| if (p, y) == (9, 4) { 8.0 } else { 0.01 }).as_bytes(),
        )
        .unwrap();
        assert_eq!(h.hottest(), Some((9, 4)));
        assert!((h.total() - (8.0 + 0.01 * 647.0)).abs() < 1e-9);
        assert_eq!(Histogram::from_blob(&h.to_blob()), Some(h));
    }

    #[test]
    fn malformed_beacons() {
        let bad = |b: &str| Histogram::from_beacon(b.as_bytes()).unwrap_err();
        assert!(matches!(bad("{"), BeaconError::Malformed(_)));
        assert!(matches!(bad("[]"), BeaconError::Malformed(_)));
        assert!(matches!(
            bad(r#"{"bins":[],"x":1}"#),
            BeaconError::Malformed(_)
        ));
        assert_eq!(bad(r#"{"bins":[]}"#), BeaconError::Shape);
        let short = serde_json::json!({"bins": vec![vec![0.0; 35]; 18]}).to_string();
        assert_eq!(bad(&short), BeaconError::Shape);
        assert_eq!(bad(&body(|_, _| -1.0)), BeaconError::Value);
        assert!(matches!(bad(r#"{"bins":"x"}"#), BeaconError::Malformed(_)));
    }

    #[test]
    fn a_beacon_weighs_at_most_a_minute() {
        let h = Histogram::from_beacon(body(|p, _| if p == 3 { 10.0 } else { 0.0 }).as_bytes())
            .unwrap();
        assert!((h.total() - MAX_BEACON_SECONDS).abs() < 1e-9);
        assert_eq!(h.hottest().map(|c| c.0), Some(3));
    }

    #[test]
    fn empty_has_no_hottest() {
        assert_eq!(Histogram::default().hottest(), None);
    }
}
