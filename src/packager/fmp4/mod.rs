//! Pure fMP4/CMAF writer: init segments (with 360° signaling) and movie fragments.
//!
//! Everything here turns config structs and samples into bytes; no I/O, no async.
//! References: ISO/IEC 14496-12 (ISO BMFF), 14496-14 (MP4, `esds`), 14496-15 (`avcC`),
//! Google Spherical Video V2 and Apple Video Extended Usage (see
//! `docs/360-signaling.md`).

mod boxes;
mod fragment;
mod init;
mod spherical;

#[cfg(test)]
pub(crate) use boxes::reader;
pub use boxes::Fmp4Error;
pub use fragment::{fragment, try_fragment, Sample, SAMPLE_FLAGS_NON_SYNC, SAMPLE_FLAGS_SYNC};
pub use init::{
    audio_init_segment, try_audio_init_segment, try_video_init_segment, video_init_segment,
    AudioInit, VideoInit,
};
