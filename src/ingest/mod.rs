//! Ingest: encoders' wire formats → [`crate::media::MediaEvent`]s.
//!
//! [`flv`] parses tag bodies, [`avc`] and [`aac`] the codec configurations, [`clock`]
//! unwraps RTMP timestamps, [`demux`] ties them into one publish session's events, and
//! [`rtmp`] speaks the protocol and owns the sockets.

pub mod aac;
pub mod avc;
pub mod clock;
pub mod demux;
pub mod flv;
pub mod rtmp;
