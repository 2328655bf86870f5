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

use std::sync::Arc;

pub use output::{Outputs, StreamOutput};
pub use stream::{PackagerConfig, StreamPackager};

use crate::streams::hub::{MediaSink, SinkFactory};
use crate::streams::StreamDef;
use latency::LatencyStats;

/// Makes a packager for each stream when it is first published.
pub struct PackagerFactory {
    pub config: PackagerConfig,
    pub outputs: Arc<Outputs>,
    pub latency: Arc<LatencyStats>,
}

impl SinkFactory for PackagerFactory {
    fn create(&self, stream: &StreamDef) -> Box<dyn MediaSink> {
        let output = self.outputs.get_or_create(stream);
        Box::new(StreamPackager::new(
            self.config,
            output,
            Arc::clone(&self.latency),
        ))
    }
}
