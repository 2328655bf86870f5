//! AVC, HEVC and AV1 decoder configuration records, NAL length conversion, AV1 OBU
//! framing, and the AAC AudioSpecificConfig: the first byte picks the parser, the rest
//! is its input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use panocast::ingest::{aac, av1, avc, hevc};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let input = Bytes::copy_from_slice(rest);
    match selector % 8 {
        0 => {
            let _ = avc::parse_decoder_config(input);
        }
        1 => {
            let _ = hevc::parse_decoder_config(input);
        }
        2 => {
            let _ = aac::parse_audio_specific_config(input);
        }
        3 => {
            let _ = avc::max_reorder_frames(rest);
        }
        4 => {
            let _ = avc::to_four_byte_lengths(input, 1 + (selector / 8) % 4);
        }
        5 => {
            let _ = hevc::to_four_byte_lengths(input, 1 + (selector / 8) % 4);
        }
        6 => {
            let _ = av1::parse_decoder_config(input);
        }
        _ => {
            let _ = av1::to_sample(input);
        }
    }
});
