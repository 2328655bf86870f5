//! From the segmenter's decisions to what HTTP serves: finished parts written as fMP4
//! into the rendition's window, and the playlists rendered again once per change.

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::fmp4;
use super::latency::LatencyStats;
use super::media_playlist::{self, RenditionReport, RenditionUris};
use super::multivariant::{self, AudioVariant, VideoVariant};
use super::output::{source_rendition_name, OutputState, RenderedPlaylist, Rendition};
use super::segmenter::Cut;
use super::window::{Position, RenditionWindow, WindowConfig};
use crate::media::{AacConfig, TrackKind, VideoConfig};
use crate::streams::Projection;

/// The track a batch of cuts belongs to.
pub struct CutTarget<'a> {
    /// Rendition name (playlist and media directory).
    pub name: &'a str,
    pub kind: TrackKind,
    pub track_id: u32,
    pub timescale: u32,
    /// Record server-added latency: only the source renditions do, since a rung's
    /// parts also carry the transcoding delay, which its own figures report.
    pub measure_latency: bool,
}

/// Writes every finished part as one `moof`+`mdat` into the target's window and ends
/// its segments. `sequence` is the track's `mfhd` counter; `wall_at` gives the
/// wall-clock time of a track time (PROGRAM-DATE-TIME). Returns whether a segment
/// ended.
pub fn write_cuts(
    state: &mut OutputState,
    window: WindowConfig,
    target: &CutTarget<'_>,
    sequence: &mut u32,
    cuts: Vec<Cut>,
    wall_at: impl Fn(i64) -> SystemTime,
    latency: &LatencyStats,
) -> bool {
    let now = Instant::now();
    let mut segment_ended = false;
    for cut in cuts {
        match cut {
            Cut::Part(part) => {
                *sequence = sequence.wrapping_add(1);
                let base = u64::try_from(part.base_dts).unwrap_or(0);
                let data = fmp4::fragment(*sequence, target.track_id, base, &part.samples);
                // PROGRAM-DATE-TIME is the first sample's presentation time, which is
                // what lines up across renditions (a rung has no B-frames, the source
                // may).
                let first_cts = part
                    .samples
                    .first()
                    .map_or(0, |s| i64::from(s.composition_offset));
                let pdt = wall_at(part.base_dts.saturating_add(first_cts));
                let seconds = part.duration as f64 / f64::from(target.timescale.max(1));
                rendition(state, target.name, target.kind, window)
                    .window
                    .add_part(data, seconds, part.independent, pdt);
                if target.measure_latency {
                    let waited = || {
                        part.received
                            .iter()
                            .map(|r| now.saturating_duration_since(*r))
                    };
                    latency.record_all(target.kind, waited());
                    state.latency.record_all(target.kind, waited());
                }
            }
            Cut::SegmentEnd => {
                rendition(state, target.name, target.kind, window)
                    .window
                    .end_segment();
                segment_ended = true;
            }
        }
    }
    segment_ended
}

/// The rendition `name`, created with an empty window on first use.
pub fn rendition<'a>(
    state: &'a mut OutputState,
    name: &str,
    kind: TrackKind,
    window: WindowConfig,
) -> &'a mut Rendition {
    let i = match state.renditions.iter().position(|r| r.name == name) {
        Some(i) => i,
        None => {
            // Video before audio, sources before rungs: the order listings show.
            let is_source = name == source_rendition_name(kind);
            let at = state
                .renditions
                .iter()
                .position(|r| match kind {
                    TrackKind::Video => r.kind == TrackKind::Audio || is_source,
                    TrackKind::Audio => r.kind == TrackKind::Audio && is_source,
                })
                .unwrap_or(state.renditions.len());
            state
                .renditions
                .insert(at, Rendition::new(name, kind, RenditionWindow::new(window)));
            at
        }
    };
    &mut state.renditions[i]
}

/// Renders the media playlists again (full and delta). Only the `changed` rendition is
/// rendered (`None`: all): with a ladder, every part of every rung would otherwise
/// re-render every playlist. The others' rendition reports catch up at their own next
/// part, at most one part later.
pub fn render_media_playlists(state: &mut OutputState, changed: Option<&str>) {
    let positions: Vec<(String, Option<Position>)> = state
        .renditions
        .iter()
        .map(|r| (format!("{}.m3u8", r.name), r.window.position()))
        .collect();
    for r in &mut state.renditions {
        if changed.is_some_and(|name| name != r.name) && r.playlist.is_some() {
            continue;
        }
        let own = format!("{}.m3u8", r.name);
        let reports: Vec<RenditionReport<'_>> = positions
            .iter()
            .filter(|(uri, _)| *uri != own)
            .map(|(uri, position)| RenditionReport {
                uri,
                position: *position,
            })
            .collect();
        let uris = RenditionUris { dir: &r.name };
        r.playlist = Some(RenderedPlaylist {
            full: Bytes::from(media_playlist::render(&r.window, &uris, &reports, false)),
            delta: Bytes::from(media_playlist::render(&r.window, &uris, &reports, true)),
        });
    }
}

/// A video rendition as the multivariant playlist may list it.
pub struct VideoListing<'a> {
    pub name: &'a str,
    pub config: Option<&'a VideoConfig>,
    /// Offered to players in this session.
    pub announced: bool,
    pub measured_frame_rate: Option<f64>,
}

/// An audio rendition as the multivariant playlist may list it.
pub struct AudioListing<'a> {
    pub name: &'a str,
    pub config: Option<&'a AacConfig>,
    pub announced: bool,
}

/// The multivariant playlist of the announced renditions; `None` until every one of
/// them has a complete segment. Players read the multivariant playlist once: listed
/// early, a late rendition would never be learnt of (nor its real bandwidth).
pub fn render_multivariant(
    state: &OutputState,
    videos: &[VideoListing<'_>],
    audios: &[AudioListing<'_>],
    projection: Projection,
) -> Option<Bytes> {
    // BANDWIDTH is the peak segment bitrate: known once a segment is complete.
    let bitrates = |name: &str| {
        state
            .rendition(name)
            .filter(|r| r.window.last_complete_msn().is_some())
            .and_then(|r| r.window.bitrates())
    };
    let uri = |name: &str| format!("{name}.m3u8");
    let video_uris: Vec<String> = videos.iter().map(|v| uri(v.name)).collect();
    let audio_uris: Vec<String> = audios.iter().map(|a| uri(a.name)).collect();
    let mut video_variants = Vec::new();
    for (v, uri) in videos.iter().zip(&video_uris) {
        if !v.announced {
            continue;
        }
        let (Some(config), Some(rates)) = (v.config, bitrates(v.name)) else {
            return None;
        };
        video_variants.push(VideoVariant {
            uri,
            config,
            bitrates: rates,
            measured_frame_rate: v.measured_frame_rate,
            projection,
        });
    }
    let mut audio_variants = Vec::new();
    for (a, uri) in audios.iter().zip(&audio_uris) {
        if !a.announced {
            continue;
        }
        let (Some(config), Some(rates)) = (a.config, bitrates(a.name)) else {
            return None;
        };
        audio_variants.push(AudioVariant {
            uri,
            config,
            bitrates: rates,
        });
    }
    multivariant::render(&video_variants, &audio_variants).map(Bytes::from)
}
