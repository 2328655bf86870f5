//! CMAF packaging and the LL-HLS live window.
//!
//! The rooms: [`segmenter`] decides cut points (where segments start in every
//! rendition, and the parts within them), [`timeline`] places each rendition's samples
//! on the stream timeline in exact integer ticks, [`fmp4`] writes boxes, [`window`]
//! holds what is published, [`media_playlist`] and [`multivariant`] render playlists
//! and [`publish`] re-renders them once per change. [`stream`] coordinates them for one
//! stream; [`output`] is what HTTP reads.

pub mod fmp4;
pub mod latency;
pub mod layout;
pub mod media_playlist;
pub mod multivariant;
pub mod output;
pub mod publish;
pub mod segmenter;
pub mod stream;
pub mod timeline;
pub mod track;
pub mod window;

pub use layout::Layout;
pub use output::{Outputs, StreamOutput};
pub use stream::{PackagerConfig, StreamPackager, TrackRef};
