//! Media timestamps ↔ GStreamer clock times.
//!
//! A pipeline's running time starts at the first unit it is fed (its `base`), so
//! buffer times are never negative; encoded output maps back to the source's ticks
//! exactly (rounding undoes the truncation of the way in), which is what lets the
//! packager line a rung's frames up with the source's.

const NANOS: i128 = 1_000_000_000;

/// Pipeline time of the first unit: 1000 hours. GStreamer's video encoders shift
/// every earlier timestamp up to this (`min-pts`, so decode times are never negative)
/// and then drop force-key-unit requests, whose running times they do not shift;
/// starting here leaves nothing to shift.
const ORIGIN_NS: i128 = 1000 * 3600 * NANOS;

/// Converts between one source timebase and pipeline nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineClock {
    /// Source ticks at pipeline time zero.
    pub base: i64,
    /// Source ticks per second.
    pub timebase: u32,
}

impl PipelineClock {
    pub fn new(base: i64, timebase: u32) -> Self {
        Self {
            base,
            timebase: timebase.max(1),
        }
    }

    /// Pipeline nanoseconds of source time `t`; `None` before the base.
    pub fn to_nanos(&self, t: i64) -> Option<u64> {
        let since = i128::from(t) - i128::from(self.base);
        if since < 0 {
            return None;
        }
        u64::try_from(ORIGIN_NS + since * NANOS / i128::from(self.timebase)).ok()
    }

    /// Source ticks of pipeline time `ns`, rounded to the nearest tick.
    pub fn to_ticks(&self, ns: u64) -> i64 {
        let tb = i128::from(self.timebase);
        let ticks = ((i128::from(ns) - ORIGIN_NS) * tb).div_euclid(NANOS)
            + i128::from(((i128::from(ns) - ORIGIN_NS) * tb).rem_euclid(NANOS) >= NANOS / 2);
        i64::try_from(ticks + i128::from(self.base)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_are_exact_for_rtmp_and_rtsp_timebases() {
        for timebase in [1000, 90_000, 48_000, 44_100] {
            let clock = PipelineClock::new(123_456, timebase);
            for t in (123_456..123_456 + 5 * i64::from(timebase)).step_by(997) {
                let ns = clock.to_nanos(t).expect("after base");
                assert_eq!(clock.to_ticks(ns), t, "timebase {timebase}");
            }
        }
    }

    #[test]
    fn times_before_the_base_have_no_pipeline_time() {
        let clock = PipelineClock::new(1000, 1000);
        assert_eq!(clock.to_nanos(999), None);
        let origin = clock.to_nanos(1000).expect("at base");
        assert_eq!(clock.to_nanos(1033), Some(origin + 33_000_000));
        assert_eq!(clock.to_ticks(origin), 1000);
    }
}
