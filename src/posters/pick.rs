//! Which keyframe a poster is made of.
//!
//! - live: the newest independent part of the source video rendition (a part the
//!   packager already published, so nothing on the live path is touched);
//! - on demand: the segment starting at about a tenth of the presentation (past a
//!   black or title first frame), of the smallest video rendition at least
//!   [`super::encode::WIDTH`] wide. Every segment starts with a keyframe.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::media::TrackKind;
use crate::packager::output::{source_rendition_name, OutputState};

/// A keyframe's part, found in a live output.
#[derive(Clone, Debug)]
pub struct LiveKeyframe {
    pub init: Bytes,
    pub part: Bytes,
    /// Where it is (segment, part index): the same keyframe is not encoded twice.
    pub at: (u64, usize),
}

/// The newest independent part of the source video, if the stream is live.
pub fn live(state: &OutputState) -> Option<LiveKeyframe> {
    if !state.live || state.closed {
        return None;
    }
    let r = state.rendition(source_rendition_name(TrackKind::Video))?;
    if r.window.is_ended() {
        return None;
    }
    let segments: Vec<_> = r.window.segments().chain(r.window.open_segment()).collect();
    segments.iter().rev().find_map(|seg| {
        let (index, part) = seg
            .parts
            .iter()
            .enumerate()
            .rev()
            .find(|(_, p)| p.independent)?;
        Some(LiveKeyframe {
            init: r.window.init(seg.init_id)?.clone(),
            part: part.data.clone(),
            at: (seg.msn, index),
        })
    })
}

/// Files of an on-demand segment, relative to the asset's HLS folder.
#[derive(Debug, PartialEq, Eq)]
pub struct VodSegment {
    pub init: PathBuf,
    pub segment: PathBuf,
}

/// The media playlist (relative to the HLS folder) of the video rendition to take the
/// poster from, out of the multivariant playlist `index`.
pub fn vod_rendition(index: &str) -> Option<PathBuf> {
    let mut variants: Vec<(u32, &str)> = Vec::new();
    let mut width = None;
    for line in index.lines().map(str::trim) {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            width = Some(resolution_width(attrs).unwrap_or(0));
        } else if !line.is_empty() && !line.starts_with('#') {
            if let Some(w) = width.take() {
                variants.push((w, line));
            }
        }
    }
    let large_enough = variants
        .iter()
        .filter(|(w, _)| *w >= super::encode::WIDTH)
        .min_by_key(|(w, _)| *w);
    let chosen = large_enough.or_else(|| variants.iter().max_by_key(|(w, _)| *w))?;
    safe_relative(chosen.1)
}

fn resolution_width(attrs: &str) -> Option<u32> {
    let at = attrs.find("RESOLUTION=")?;
    let value = &attrs[at + "RESOLUTION=".len()..];
    value.split(['x', ',']).next()?.parse().ok()
}

/// The segment at about a tenth of the media playlist `playlist`, with its init
/// segment; URIs relative to the HLS folder.
pub fn vod_segment(playlist: &str) -> Option<VodSegment> {
    let mut entries: Vec<(f64, &str, &str)> = Vec::new();
    let mut map = None;
    let mut duration = None;
    for line in playlist.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
            map = uri_attr(rest);
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = rest.split(',').next().and_then(|d| d.parse::<f64>().ok());
        } else if !line.is_empty() && !line.starts_with('#') {
            if let (Some(d), Some(m)) = (duration.take(), map) {
                entries.push((d, m, line));
            }
        }
    }
    let total: f64 = entries.iter().map(|e| e.0).sum();
    let mut start = 0.0;
    let mut chosen = entries.first()?;
    for e in &entries {
        chosen = e;
        if start >= total / 10.0 {
            break;
        }
        start += e.0;
    }
    Some(VodSegment {
        init: safe_relative(chosen.1)?,
        segment: safe_relative(chosen.2)?,
    })
}

fn uri_attr(attrs: &str) -> Option<&str> {
    let at = attrs.find("URI=\"")?;
    let rest = &attrs[at + 5..];
    rest.split('"').next()
}

/// `uri` as a path inside the folder (no query, no `..`, not absolute).
fn safe_relative(uri: &str) -> Option<PathBuf> {
    let uri = uri.split('?').next()?;
    let path = Path::new(uri);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_video_rendition_wide_enough_is_chosen() {
        let index = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"audio\",URI=\"audio.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=3840x1920\nr2160.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=426x213\nr240.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x640\nr720.m3u8\n";
        assert_eq!(vod_rendition(index), Some(PathBuf::from("r720.m3u8")));
        let small = "#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=320x160\nvideo.m3u8\n";
        assert_eq!(vod_rendition(small), Some(PathBuf::from("video.m3u8")));
        assert_eq!(vod_rendition("#EXTM3U\n"), None);
        let escape = "#EXT-X-STREAM-INF:BANDWIDTH=1\n../../etc/passwd\n";
        assert_eq!(vod_rendition(escape), None);
    }

    #[test]
    fn the_segment_at_a_tenth_of_the_presentation_is_chosen() {
        let mut playlist = String::from(
            "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"video/init-0.mp4\"\n",
        );
        for msn in 0..20 {
            playlist.push_str(&format!("#EXTINF:2.00000,\nvideo/seg-{msn}.m4s\n"));
            if msn == 1 {
                playlist.push_str("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video/init-1.mp4\"\n");
            }
        }
        playlist.push_str("#EXT-X-ENDLIST\n");
        // 40 s: the segment starting at 4 s, after the second init.
        assert_eq!(
            vod_segment(&playlist),
            Some(VodSegment {
                init: PathBuf::from("video/init-1.mp4"),
                segment: PathBuf::from("video/seg-2.m4s"),
            })
        );
        let one = "#EXT-X-MAP:URI=\"v/init-0.mp4\"\n#EXTINF:1.0,\nv/seg-0.m4s\n";
        assert_eq!(
            vod_segment(one).map(|s| s.segment),
            Some(PathBuf::from("v/seg-0.m4s"))
        );
        assert_eq!(vod_segment("#EXTM3U\n"), None);
    }
}
