//! panocast: a live-streaming media server for 360° video.
//!
//! Data path: [`ingest`] (RTMP) → [`pipeline`] → [`packager`] (CMAF, LL-HLS) →
//! [`api`] (HTTP delivery). [`streams`] says which streams exist and who publishes them.

pub mod analytics;
pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod data_dir;
pub mod db;
pub mod html;
pub mod ingest;
pub mod jobs;
pub mod limits;
pub mod logging;
pub mod media;
pub mod notify;
pub mod packager;
pub mod pipeline;
pub mod posters;
pub mod public_url;
pub mod recordings;
pub mod schedule;
pub mod search;
pub mod server;
pub mod streams;
pub mod subscriptions;
pub mod tls;
pub mod uploads;
