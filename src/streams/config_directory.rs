//! Streams declared in the config file, until the catalog replaces them.

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use super::{StreamDef, StreamDirectory};

/// A stream and the key that publishes it; `None` for a stream that is pulled
/// (RTSP) and so cannot be published.
#[derive(Clone)]
pub struct KeyedStream {
    pub stream: StreamDef,
    pub key: Option<String>,
}

impl std::fmt::Debug for KeyedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStream")
            .field("stream", &self.stream)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A fixed list of streams.
pub struct ConfigDirectory {
    streams: Vec<KeyedStream>,
}

impl ConfigDirectory {
    pub fn new(streams: Vec<KeyedStream>) -> Self {
        Self { streams }
    }
}

#[async_trait]
impl StreamDirectory for ConfigDirectory {
    async fn by_publish_key(&self, stream_key: &str) -> Option<StreamDef> {
        // Every key is compared, in constant time, so timing does not tell how many
        // streams exist or which prefix matched.
        let mut found = None;
        for entry in &self.streams {
            let Some(key) = &entry.key else { continue };
            if bool::from(key.as_bytes().ct_eq(stream_key.as_bytes())) {
                found = Some(entry.stream.clone());
            }
        }
        found
    }

    async fn by_slug(&self, slug: &str) -> Option<StreamDef> {
        self.streams
            .iter()
            .find(|e| e.stream.slug == slug)
            .map(|e| e.stream.clone())
    }
}
