//! Keyword search over streams, scheduled events and assets (issue 13 item 5).
//!
//! - [`query`]: what a person typed → quoted FTS5 terms; the one-typo check. No I/O.
//! - [`index`]: the FTS5 index (migration 0007 keeps it in step by triggers, in the
//!   same transaction as every write), its vocabulary for typo alternatives, a rebuild.
//!
//! Who may see which result, live state and ordering are the API's
//! ([`crate::api::search`]): they need the caller and the streams' live status.

pub mod index;
pub mod query;

pub use index::SearchIndex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a search result is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    Stream,
    Event,
    Asset,
}

impl SearchKind {
    /// As the `kind` column of `search_items` has it.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchKind::Stream => "stream",
            SearchKind::Event => "event",
            SearchKind::Asset => "asset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stream" => Some(SearchKind::Stream),
            "event" => Some(SearchKind::Event),
            "asset" => Some(SearchKind::Asset),
            _ => None,
        }
    }
}
