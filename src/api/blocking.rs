//! LL-HLS delivery directives (draft-pantos-hls-rfc8216bis 6.2.5): when a playlist or
//! a hinted part may be answered. Pure: the caller owns the clock and the waiting.

use crate::packager::window::{Position, RenditionWindow};

/// `_HLS_msn` / `_HLS_part` / `_HLS_skip` of a playlist request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    pub msn: Option<u64>,
    pub part: Option<u32>,
    pub skip: bool,
}

/// A directive that the spec says to refuse with 400.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    #[error("_HLS_part requires _HLS_msn")]
    PartWithoutMsn,
    #[error("{0} is not a valid value")]
    BadValue(&'static str),
}

impl Directives {
    /// Reads the directives from a raw query string; unknown parameters (a playback
    /// token, say) are ignored.
    pub fn parse(query: Option<&str>) -> Result<Self, DirectiveError> {
        let mut d = Directives::default();
        for pair in query.unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "_HLS_msn" => {
                    d.msn = Some(
                        value
                            .parse()
                            .map_err(|_| DirectiveError::BadValue("_HLS_msn"))?,
                    )
                }
                "_HLS_part" => {
                    d.part = Some(
                        value
                            .parse()
                            .map_err(|_| DirectiveError::BadValue("_HLS_part"))?,
                    )
                }
                "_HLS_skip" => match value {
                    "YES" | "v2" => d.skip = true,
                    "NO" => d.skip = false,
                    _ => return Err(DirectiveError::BadValue("_HLS_skip")),
                },
                _ => {}
            }
        }
        if d.part.is_some() && d.msn.is_none() {
            return Err(DirectiveError::PartWithoutMsn);
        }
        Ok(d)
    }
}

/// What to do with a playlist request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Answer with the current playlist.
    Ready,
    /// Hold the request until the window changes.
    Wait,
    /// 400: the request asks for a segment more than two beyond the last one.
    TooFarAhead,
}

/// Whether the playlist already holds what `_HLS_msn`/`_HLS_part` ask for.
pub fn playlist_readiness(d: &Directives, window: &RenditionWindow) -> Readiness {
    let Some(msn) = d.msn else {
        return Readiness::Ready;
    };
    let position = window.position();
    // The last segment of the playlist is the one in progress, or the next to come.
    let last_msn = window.open_segment().map_or(window.next_msn(), |s| s.msn);
    if msn > last_msn.saturating_add(2) {
        return Readiness::TooFarAhead;
    }
    let ready = match d.part {
        // A whole segment M is in the playlist once it is complete.
        None => window.segment_complete(msn),
        Some(part) => {
            window.segment_complete(msn) || position.is_some_and(|p| p >= Position { msn, part })
        }
    };
    if ready {
        Readiness::Ready
    } else {
        Readiness::Wait
    }
}

/// What to do with a request for a part that is not published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartWait {
    /// It may still come (the preload hint, or the part after it): hold.
    Hold,
    /// It never will, or is too far ahead to hold for: 404.
    Never,
}

/// Whether a missing part `(msn, part)` can still appear soon.
pub fn missing_part(window: &RenditionWindow, msn: u64, part: u32) -> PartWait {
    if window.segment_complete(msn) {
        return PartWait::Never;
    }
    let (open_msn, published) = match window.open_segment() {
        Some(open) => (open.msn, open.parts.len() as u64),
        None => (window.next_msn(), 0),
    };
    // The hinted part and one beyond it; a whole new segment's first part too.
    let soon =
        (msn == open_msn && u64::from(part) <= published + 1) || (msn == open_msn + 1 && part == 0);
    if soon {
        PartWait::Hold
    } else {
        PartWait::Never
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packager::window::test_window;

    fn ask(msn: u64, part: Option<u32>) -> Directives {
        Directives {
            msn: Some(msn),
            part,
            skip: false,
        }
    }

    #[test]
    fn directives_parse_and_ignore_other_parameters() {
        let d = Directives::parse(Some("token=abc&_HLS_msn=5&_HLS_part=2&_HLS_skip=YES"))
            .expect("valid");
        assert_eq!(
            d,
            Directives {
                msn: Some(5),
                part: Some(2),
                skip: true
            }
        );
        assert_eq!(
            Directives::parse(Some("_HLS_part=1")),
            Err(DirectiveError::PartWithoutMsn)
        );
        assert!(Directives::parse(Some("_HLS_msn=-1")).is_err());
        assert_eq!(Directives::parse(None), Ok(Directives::default()));
    }

    #[test]
    fn a_published_part_is_ready_the_next_one_waits() {
        let w = test_window(2, 3); // segment 2 has parts 0..=2
        assert_eq!(playlist_readiness(&ask(2, Some(2)), &w), Readiness::Ready);
        assert_eq!(playlist_readiness(&ask(2, Some(3)), &w), Readiness::Wait);
        assert_eq!(playlist_readiness(&ask(1, None), &w), Readiness::Ready);
        assert_eq!(playlist_readiness(&ask(2, None), &w), Readiness::Wait);
        // A part number beyond the end of a complete segment is ready (6.2.5.2).
        assert_eq!(playlist_readiness(&ask(1, Some(40)), &w), Readiness::Ready);
    }

    #[test]
    fn far_future_msn_is_refused() {
        let w = test_window(2, 3);
        assert_eq!(playlist_readiness(&ask(4, Some(0)), &w), Readiness::Wait);
        assert_eq!(
            playlist_readiness(&ask(5, Some(0)), &w),
            Readiness::TooFarAhead
        );
        assert_eq!(
            playlist_readiness(&ask(500, None), &w),
            Readiness::TooFarAhead
        );
    }

    #[test]
    fn only_the_hinted_parts_are_held() {
        let w = test_window(2, 3);
        assert_eq!(missing_part(&w, 2, 3), PartWait::Hold);
        assert_eq!(missing_part(&w, 3, 0), PartWait::Hold);
        assert_eq!(missing_part(&w, 2, 9), PartWait::Never);
        assert_eq!(missing_part(&w, 1, 11), PartWait::Never);
        assert_eq!(missing_part(&w, 9, 0), PartWait::Never);
    }
}
