//! panocast: a live-streaming media server for 360° video.
//!
//! Data path: [`ingest`] (RTMP) → [`pipeline`] → [`packager`] (CMAF, LL-HLS) →
//! [`api`] (HTTP delivery). [`streams`] says which streams exist and who publishes them.

pub mod media;
pub mod streams;
pub mod packager;
