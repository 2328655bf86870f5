//! What the packager keeps of each rendition: its parameters, its cut policy, its
//! part assembly and its timeline, side by side.

use std::sync::Arc;

use super::layout::Layout;
use super::segmenter::{AudioCuts, SegmentState, Segmenter, VideoCuts};
use super::timeline::{AudioTimeline, VideoTimeline};
use crate::media::{AacConfig, VideoConfig};

/// Which rendition of the stream an event belongs to: index 0 is the source (the
/// `video` and `audio` renditions), higher indexes are transcoded rungs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackRef {
    Video(usize),
    Audio(usize),
}

/// One video rendition.
pub struct VideoTrack {
    pub name: String,
    pub config: Option<Arc<VideoConfig>>,
    /// The layout of the init segment the window uses now (`None`: no init yet).
    pub init_layout: Option<Layout>,
    pub cuts: VideoCuts,
    pub segmenter: Segmenter,
    pub timeline: VideoTimeline,
    /// `mfhd` sequence number of the last part.
    pub sequence: u32,
    /// Listed in the multivariant playlist (the source: whenever it has parameters).
    pub announced: bool,
}

impl VideoTrack {
    /// `part_target` in track ticks; `cuts` says whether it leads or follows.
    pub fn new(name: &str, part_target: u64, cuts: VideoCuts) -> Self {
        Self {
            name: name.to_string(),
            config: None,
            init_layout: None,
            cuts,
            segmenter: Segmenter::new(part_target, true),
            timeline: VideoTimeline::new(),
            sequence: 0,
            announced: false,
        }
    }

    /// A new init segment is due: the stream's layout changed since the current one.
    pub fn init_outdated(&self, layout: Layout) -> bool {
        self.config.is_some() && self.init_layout != Some(layout)
    }
}

/// One audio rendition.
pub struct AudioTrack {
    pub name: String,
    pub config: Option<Arc<AacConfig>>,
    pub cuts: AudioCuts,
    pub segmenter: Segmenter,
    pub timeline: AudioTimeline,
    pub sequence: u32,
    pub announced: bool,
}

impl AudioTrack {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            config: None,
            cuts: AudioCuts::new(),
            // Replaced when the parameters (and so the timescale) are known.
            segmenter: Segmenter::new(0, false),
            timeline: AudioTimeline::new(),
            sequence: 0,
            announced: false,
        }
    }
}

/// The segment in progress of a segmenter, as the cut policy sees it.
pub fn segment_state(segmenter: &Segmenter) -> SegmentState {
    SegmentState {
        open: segmenter.segment_open(),
        duration: segmenter.segment_duration(),
    }
}
