//! RTSP camera ingest: panocast pulls `rtsp://` sources with retina.
//!
//! [`source`] parses the URL and credentials and redacts them, [`tracks`] picks the
//! SDP streams (H.264 video, AAC audio), [`demux`] turns retina's frames into
//! [`MediaEvent`]s, [`timing`] gives RTP video its decode times, [`backoff`] spaces
//! the attempts — all without I/O. [`puller`] is one attempt over the network and
//! [`supervisor`] the task per stream that retries it. `golden` (tests) replays a
//! recorded camera exchange through all of it.
//!
//! [`MediaEvent`]: crate::media::MediaEvent

pub mod backoff;
pub mod demux;
#[cfg(test)]
mod golden;
pub mod puller;
pub mod source;
pub mod supervisor;
pub mod timing;
pub mod tracks;

pub use source::{RtspSource, RtspTransport};
pub use supervisor::{supervise, RtspIngestSettings};
