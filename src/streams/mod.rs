//! What streams exist and who is publishing them.
//!
//! [`StreamDirectory`] answers "which stream does this key publish?" and "which
//! stream is this slug?"; the config-file directory implements it today and the
//! catalog will replace it without ingest or delivery noticing. [`hub::StreamHub`]
//! tracks the live publisher of each stream and hands its media to the packager.

pub mod config_directory;
pub mod definition;
pub mod hub;

pub use definition::{Orientation, Projection, StreamDef};

use async_trait::async_trait;

/// Looks streams up. Implementations compare secrets in constant time and never log
/// them.
#[async_trait]
pub trait StreamDirectory: Send + Sync + 'static {
    /// The stream that `stream_key` may publish, if any.
    async fn by_publish_key(&self, stream_key: &str) -> Option<StreamDef>;
    /// The stream with this public name, if any.
    async fn by_slug(&self, slug: &str) -> Option<StreamDef>;
}
