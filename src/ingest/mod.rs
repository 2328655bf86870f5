//! Ingest: encoders' wire formats → [`crate::media::MediaEvent`]s.
//!
//! [`flv`] parses tag bodies (legacy and Enhanced RTMP), [`avc`], [`hevc`], [`av1`] and [`aac`]
//! the codec configurations ([`bits`] reads their bit fields), [`clock`]
//! unwraps RTMP timestamps, [`demux`] ties them into one publish session's events, and
//! [`rtmp`] speaks the protocol and owns the sockets. [`rtsp`] pulls cameras instead
//! of waiting for a publisher, and reuses [`avc`] and [`aac`].

pub mod aac;
pub mod av1;
pub mod avc;
pub mod bits;
pub mod clock;
pub mod demux;
pub mod flv;
pub mod hevc;
pub mod rtmp;
pub mod rtsp;
