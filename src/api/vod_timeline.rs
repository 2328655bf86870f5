//! How long each segment of a ready on-demand rendition plays, read from its media
//! playlist once, so the audience analytics can count the media seconds a `/vod`
//! segment delivers without parsing a playlist per request. A finished presentation
//! never changes; the cache is bounded and starts afresh when full (a deleted asset
//! leaves at most its entries behind until then).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The most renditions remembered at once.
const MAX_TIMELINES: usize = 4096;

/// One rendition's segments: `msn → seconds`, and its target duration.
#[derive(Debug, Default, PartialEq)]
pub struct Timeline {
    pub target_duration_s: u64,
    durations: HashMap<u64, f64>,
}

impl Timeline {
    /// Reads a VOD media playlist as panocast writes it (`#EXTINF:<s>,` then a URI
    /// ending in `seg-<msn>.m4s`). Lines it does not know are skipped.
    pub fn parse(playlist: &str) -> Timeline {
        let mut timeline = Timeline::default();
        let mut pending: Option<f64> = None;
        for line in playlist.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                timeline.target_duration_s = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                pending = v.split(',').next().and_then(|d| d.trim().parse().ok());
            } else if !line.is_empty() && !line.starts_with('#') {
                if let (Some(seconds), Some(msn)) = (pending.take(), segment_msn(line)) {
                    timeline.durations.insert(msn, seconds);
                }
            }
        }
        timeline
    }

    /// How long segment `msn` plays, if the playlist lists it.
    pub fn segment(&self, msn: u64) -> Option<f64> {
        self.durations.get(&msn).copied()
    }
}

/// `…/seg-<msn>.m4s` → msn.
fn segment_msn(uri: &str) -> Option<u64> {
    let name = uri.rsplit('/').next()?;
    name.strip_prefix("seg-")?
        .strip_suffix(".m4s")?
        .parse()
        .ok()
}

/// The timelines read so far, per `(asset, rendition)`.
#[derive(Default)]
pub struct Timelines {
    read: Mutex<HashMap<(String, String), Arc<Timeline>>>,
}

impl Timelines {
    /// The timeline of `rendition` of `asset`, whose playlist is `playlist`; `None`
    /// when the file cannot be read (the caller serves the segment all the same).
    pub async fn get(
        &self,
        asset: &str,
        rendition: &str,
        playlist: &Path,
    ) -> Option<Arc<Timeline>> {
        let key = (asset.to_string(), rendition.to_string());
        if let Some(found) = self.lock().get(&key) {
            return Some(found.clone());
        }
        let text = tokio::fs::read_to_string(playlist).await.ok()?;
        let timeline = Arc::new(Timeline::parse(&text));
        let mut read = self.lock();
        if read.len() >= MAX_TIMELINES {
            read.clear();
        }
        read.insert(key, timeline.clone());
        Some(timeline)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Timeline>>> {
        self.read.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_durations_by_msn_across_discontinuities() {
        let t = Timeline::parse(
            "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXT-X-MAP:URI=\"video/init-0.mp4\"\n#EXTINF:2.00000,\nvideo/seg-3.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video/init-1.mp4\"\n\
             #EXTINF:2.40000,\nvideo/seg-5.m4s\n#EXT-X-ENDLIST\n",
        );
        assert_eq!(t.target_duration_s, 3);
        assert_eq!(t.segment(3), Some(2.0));
        assert_eq!(t.segment(5), Some(2.4));
        assert_eq!(t.segment(4), None);
    }

    #[test]
    fn ignores_what_it_does_not_know() {
        let t =
            Timeline::parse("#EXTINF:abc,\nvideo/seg-1.m4s\n#EXTINF:1.0,\nother.ts\nseg-x.m4s\n");
        assert_eq!(t, Timeline::default());
    }
}
