//! LL-HLS media playlist text (draft-pantos-hls-rfc8216bis).
//!
//! Rendered here rather than with m3u8-rs: its `MediaPlaylist` has no model for
//! EXT-X-PART, PART-INF, SERVER-CONTROL, PRELOAD-HINT, SKIP or RENDITION-REPORT and
//! drops playlist-level unknown tags on write, and LL-HLS is the product. The model
//! is the typed [`RenditionWindow`]; this module only formats it, once per change.
//! A window whose live session ended renders with EXT-X-ENDLIST and no preload hint,
//! in full and delta renderings alike.

use std::fmt::Write as _;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};

use super::window::{Position, RenditionWindow, SegmentEntry};

/// How many target durations at the live edge list their parts (4.4.4.9: parts
/// older than about three target durations should be removed).
const PART_LIST_TARGET_DURATIONS: f64 = 3.0;

/// CAN-SKIP-UNTIL in target durations (4.4.3.8: at least 6).
const SKIP_UNTIL_TARGET_DURATIONS: f64 = 6.0;

/// Another rendition of the same multivariant playlist, for EXT-X-RENDITION-REPORT.
pub struct RenditionReport<'a> {
    pub uri: &'a str,
    pub position: Option<Position>,
}

/// File names of one rendition's resources, relative to the multivariant playlist.
pub struct RenditionUris<'a> {
    /// Directory of the rendition's media, e.g. `video`.
    pub dir: &'a str,
}

impl RenditionUris<'_> {
    pub fn init(&self, id: u32) -> String {
        format!("{}/init-{id}.mp4", self.dir)
    }
    pub fn segment(&self, msn: u64) -> String {
        format!("{}/seg-{msn}.m4s", self.dir)
    }
    pub fn part(&self, msn: u64, part: usize) -> String {
        format!("{}/part-{msn}-{part}.m4s", self.dir)
    }
}

/// CAN-SKIP-UNTIL for a window, in seconds.
pub fn skip_until(window: &RenditionWindow) -> f64 {
    SKIP_UNTIL_TARGET_DURATIONS * window.target_duration() as f64
}

/// Renders the playlist; `delta` asks for an `_HLS_skip=YES` delta update.
pub fn render(
    window: &RenditionWindow,
    uris: &RenditionUris<'_>,
    reports: &[RenditionReport<'_>],
    delta: bool,
) -> String {
    let mut out = String::with_capacity(4096);
    let target = window.target_duration();
    let part_target = window.config.part_target;
    let skip_until = skip_until(window);
    let segments: Vec<&SegmentEntry> = window.segments().collect();
    let first_msn = segments
        .first()
        .map(|s| s.msn)
        .or(window.open_segment().map(|s| s.msn))
        .unwrap_or(window.next_msn());

    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "#EXTM3U");
    // Version 9 for EXT-X-SKIP (4.4.5.2); everything else here needs less.
    let _ = writeln!(out, "#EXT-X-VERSION:9");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={:.3}",
        skip_until,
        window.config.part_hold_back_parts * part_target
    );
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part_target:.3}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
    let _ = writeln!(
        out,
        "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
        window.discontinuity_sequence()
    );

    // Segments whose end lies more than CAN-SKIP-UNTIL before the live edge may be
    // skipped in a delta update.
    let total: f64 = segments.iter().map(|s| s.duration).sum::<f64>()
        + window.open_segment().map_or(0.0, |s| s.duration);
    let mut skipped = 0;
    if delta {
        let mut end = 0.0;
        for seg in &segments {
            end += seg.duration;
            if total - end > skip_until {
                skipped += 1;
            } else {
                break;
            }
        }
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
    }

    let parts_from = total - PART_LIST_TARGET_DURATIONS * target as f64;
    let mut start = 0.0;
    let mut current_init = None;
    for (i, seg) in segments.iter().enumerate() {
        let seg_start = start;
        start += seg.duration;
        if i < skipped {
            // The first segment shown still names its init segment.
            continue;
        }
        write_segment_head(&mut out, seg, uris, &mut current_init);
        if seg_start + seg.duration > parts_from {
            write_parts(&mut out, seg, uris);
        }
        let _ = writeln!(out, "#EXTINF:{:.5},", seg.duration);
        let _ = writeln!(out, "{}", uris.segment(seg.msn));
    }
    if let Some(open) = window.open_segment() {
        write_segment_head(&mut out, open, uris, &mut current_init);
        write_parts(&mut out, open, uris);
    }

    // An ended playlist hints at nothing: no part will come (4.4.5.3).
    if !window.is_ended() {
        let (hint_msn, hint_part) = match window.open_segment() {
            Some(open) => (open.msn, open.parts.len()),
            None => (window.next_msn(), 0),
        };
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            uris.part(hint_msn, hint_part)
        );
    }
    for report in reports {
        let _ = write!(out, "#EXT-X-RENDITION-REPORT:URI=\"{}\"", report.uri);
        if let Some(pos) = report.position {
            let _ = write!(out, ",LAST-MSN={},LAST-PART={}", pos.msn, pos.part);
        }
        out.push('\n');
    }
    // The live session is over (4.4.3.4): players stop here instead of reloading.
    if window.is_ended() {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    out
}

fn write_segment_head(
    out: &mut String,
    seg: &SegmentEntry,
    uris: &RenditionUris<'_>,
    current_init: &mut Option<u32>,
) {
    if seg.discontinuity {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
    }
    if *current_init != Some(seg.init_id) {
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", uris.init(seg.init_id));
        *current_init = Some(seg.init_id);
    }
    let _ = writeln!(
        out,
        "#EXT-X-PROGRAM-DATE-TIME:{}",
        format_date_time(seg.program_date_time)
    );
}

fn write_parts(out: &mut String, seg: &SegmentEntry, uris: &RenditionUris<'_>) {
    for (i, part) in seg.parts.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
            part.duration,
            uris.part(seg.msn, i)
        );
        if part.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        out.push('\n');
    }
}

fn format_date_time(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packager::window::test_window;

    const VIDEO: RenditionUris<'static> = RenditionUris { dir: "video" };

    #[test]
    fn the_live_edge_has_parts_a_hint_and_a_report() {
        let w = test_window(2, 3);
        let reports = [RenditionReport {
            uri: "audio.m3u8",
            position: Some(Position { msn: 2, part: 2 }),
        }];
        let text = render(&w, &VIDEO, &reports, false);
        let expected = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.600
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI=\"video/init-0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains(
            "#EXT-X-PART:DURATION=0.20000,URI=\"video/part-2-2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video/part-2-3.m4s\"\n#EXT-X-RENDITION-REPORT:URI=\"audio.m3u8\",LAST-MSN=2,LAST-PART=2\n"
        ), "{text}");
        assert!(text.contains("#EXTINF:2.00000,\nvideo/seg-1.m4s\n"));
        assert!(text
            .contains("#EXT-X-PART:DURATION=0.20000,URI=\"video/part-2-0.m4s\",INDEPENDENT=YES\n"));
    }

    #[test]
    fn part_hold_back_follows_the_configured_parts() {
        let mut w = test_window(2, 3);
        w.config.part_hold_back_parts = 2.0;
        let text = render(&w, &VIDEO, &[], false);
        assert!(text.contains(",PART-HOLD-BACK=0.400\n"), "{text}");
    }

    #[test]
    fn parts_are_listed_only_near_the_live_edge() {
        let w = test_window(8, 1);
        let text = render(&w, &VIDEO, &[], false);
        assert!(!text.contains("part-0-"), "{text}");
        assert!(!text.contains("part-4-"), "{text}");
        assert!(text.contains("part-6-9.m4s"), "{text}");
        assert!(text.contains("part-7-0.m4s"), "{text}");
    }

    #[test]
    fn a_delta_update_skips_what_is_older_than_can_skip_until() {
        let w = test_window(10, 0);
        let text = render(&w, &VIDEO, &[], true);
        // 20 s of media; segments ending more than 12 s before the end are skipped.
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"), "{text}");
        assert!(!text.contains("seg-2.m4s"));
        assert!(
            text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-MAP:URI=\"video/init-0.mp4\"\n")
        );
        assert!(text.contains("seg-3.m4s"));
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
    }
}
