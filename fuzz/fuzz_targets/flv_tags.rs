//! FLV video (legacy and Enhanced RTMP) and audio tag bodies, as RTMP delivers them.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use panocast::ingest::flv;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let _ = flv::parse_video(&body);
    let _ = flv::parse_audio(&body);
});
