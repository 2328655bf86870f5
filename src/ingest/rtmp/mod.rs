//! RTMP ingest: `rtmp://HOST:PORT/<app>/<stream key>` publishers in, [`MediaEvent`]s out.
//!
//! [`handshake`] and [`connection`] are byte-fed state machines over `rml_rtmp`;
//! [`server`] owns the sockets.
//!
//! [`MediaEvent`]: crate::media::MediaEvent

pub mod amf0;
pub mod chunk;
pub mod connection;
pub mod handshake;
pub mod server;

pub use server::{serve, RtmpConfig};
