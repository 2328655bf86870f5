//! When a failed delivery is tried again: the configured schedule (growing delays),
//! stretched by the receiver's `Retry-After` (RFC 9110 10.2.3) when it asks for longer.
//! Pure: the clock is a parameter.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest `Retry-After` honoured; a receiver asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` as a wait from `now`: delay-seconds or an HTTP date. `None` when it
/// is neither.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The wait before the next attempt after `attempts` failed ones, or `None` when the
/// delivery has used all of them (one plus one per entry of `schedule`).
pub fn next_delay(
    schedule: &[Duration],
    attempts: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let planned = *schedule.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    Some(retry_after.map_or(planned, |asked| asked.max(planned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn schedule_grows_then_ends() {
        let schedule = [ms(100), ms(1000), ms(5000)];
        assert_eq!(next_delay(&schedule, 1, None), Some(ms(100)));
        assert_eq!(next_delay(&schedule, 2, None), Some(ms(1000)));
        assert_eq!(next_delay(&schedule, 3, None), Some(ms(5000)));
        assert_eq!(next_delay(&schedule, 4, None), None);
        assert_eq!(next_delay(&[], 1, None), None);
    }

    #[test]
    fn retry_after_stretches_but_never_shortens() {
        let schedule = [ms(100), ms(10_000)];
        assert_eq!(next_delay(&schedule, 1, Some(ms(3000))), Some(ms(3000)));
        assert_eq!(next_delay(&schedule, 2, Some(ms(3000))), Some(ms(10_000)));
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
