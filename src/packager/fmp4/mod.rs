//! TEMPORARY stand-in with the agreed API; replaced by the real box writer.
use bytes::Bytes;

use crate::media::{AacConfig, AvcConfig};
use crate::streams::{Orientation, Projection};

#[derive(Clone, Debug)]
pub struct Sample {
    pub duration: u32,
    pub composition_offset: i32,
    pub keyframe: bool,
    pub data: Bytes,
}
pub struct VideoInit<'a> {
    pub track_id: u32,
    pub timescale: u32,
    pub config: &'a AvcConfig,
    pub projection: Projection,
    pub orientation: Orientation,
}
pub struct AudioInit<'a> {
    pub track_id: u32,
    pub config: &'a AacConfig,
}
pub fn video_init_segment(_v: &VideoInit) -> Bytes {
    Bytes::from_static(b"vinit")
}
pub fn audio_init_segment(_a: &AudioInit) -> Bytes {
    Bytes::from_static(b"ainit")
}
pub fn fragment(_seq: u32, _track: u32, _base: u64, samples: &[Sample]) -> Bytes {
    let mut v = Vec::new();
    for s in samples {
        v.extend_from_slice(&s.data);
    }
    Bytes::from(v)
}
