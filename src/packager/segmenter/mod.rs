//! The segmenter: where parts and segments of every rendition begin and end.
//!
//! [`cut`] decides where segments start: the source video leads (a keyframe at the
//! segment target, or at once for a new layout), every other rendition follows the
//! leader's starts, and a rendition that starts late joins at the next one.
//! [`parts`] assembles one track's samples into parts under the part target. Both are
//! pure: no I/O, no clock.

pub mod cut;
pub mod parts;

pub use cut::{AudioCuts, SegmentCut, SegmentStart, SegmentState, VideoCuts};
pub use parts::{Cut, PartDraft, Segmenter, TimedSample};
