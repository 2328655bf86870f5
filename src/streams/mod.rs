//! Streams: their one record, and the one task per stream that owns its live state.
//!
//! - [`definition`]: [`StreamDef`], the record the catalog stores, the config file
//!   seeds and everything downstream reads.
//! - [`owner`]: a task per stream that owns its publisher, live session and media
//!   thread ([`worker`]: packager and ladder); ingest and the API talk to it through
//!   typed commands.
//! - [`registry`]: every stream's task by slug. [`service`]: catalog writes that reach
//!   the live stream at once.
//! - [`events`]: the lifecycle bus other rooms subscribe to.
//! - [`memory`]: what a stream holds in memory, against its budget.
//!
//! [`StreamDirectory`] answers "which stream does this key publish?" and "which stream
//! is this slug?" (the catalog implements it).

pub mod definition;
pub mod events;
pub mod memory;
pub mod owner;
pub mod registry;
pub mod service;
pub mod session;
pub mod status;
pub mod worker;

use std::sync::Arc;

pub use definition::{Orientation, Projection, StreamDef, StreamSource, Visibility};

use async_trait::async_trait;

/// Looks streams up. Implementations compare secrets in constant time and never log
/// them.
#[async_trait]
pub trait StreamDirectory: Send + Sync + 'static {
    /// The stream that `stream_key` may publish, if any.
    async fn by_publish_key(&self, stream_key: &str) -> Option<Arc<StreamDef>>;
    /// The stream with this public name, if any.
    async fn by_slug(&self, slug: &str) -> Option<Arc<StreamDef>>;
}
