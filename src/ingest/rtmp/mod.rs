//! RTMP ingest: `rtmp://HOST:PORT/<app>/<stream key>` publishers in, [`MediaEvent`]s out.
//!
//! [`handshake`] (over `rml_rtmp`'s, which cannot panic) and [`connection`] (over our
//! own [`chunk`] decoder and [`amf0`]) are byte-fed state machines without I/O;
//! [`server`] owns the sockets. Nothing on this path runs under `catch_unwind`:
//! malformed input is an error value that closes the connection.
//!
//! [`MediaEvent`]: crate::media::MediaEvent

pub mod amf0;
pub mod chunk;
pub mod connection;
#[cfg(test)]
mod golden;
pub mod handshake;
pub mod server;

pub use server::{serve, RtmpConfig};
