//! CMAF packaging and the LL-HLS live window.
//!
//! Five rooms: [`segmenter`] decides cut points, [`fmp4`] writes boxes, [`window`]
//! holds what is published, [`media_playlist`] and [`multivariant`] render playlists,
//! and [`stream`] drives them for one stream. [`output`] is what HTTP reads.

pub mod fmp4;
pub mod latency;
pub mod media_playlist;
pub mod multivariant;
pub mod output;
pub mod segmenter;
pub mod stream;
pub mod window;

pub use output::{Outputs, StreamOutput};
pub use stream::{PackagerConfig, StreamPackager};
