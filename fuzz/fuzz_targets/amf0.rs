//! AMF0 as RTMP commands and onMetaData carry it: decoding never panics, and what it
//! decodes encodes back to bytes that decode to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panocast::ingest::rtmp::amf0::{decode_all, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(values) = decode_all(data) else {
        return;
    };
    let mut wire = Vec::new();
    for value in &values {
        encode(&mut wire, value);
    }
    let again = decode_all(&wire).expect("our own encoding decodes");
    // NaN != NaN: compare the encodings instead of the values.
    let mut wire_again = Vec::new();
    for value in &again {
        encode(&mut wire_again, value);
    }
    assert_eq!(wire, wire_again);
});
