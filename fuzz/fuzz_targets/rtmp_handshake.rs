//! The server side of the RTMP handshake, fed in the pieces a socket might deliver.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panocast::ingest::rtmp::handshake::ServerHandshake;

fuzz_target!(|data: &[u8]| {
    let mut handshake = ServerHandshake::new();
    // The first byte sets the read size, so splits fall everywhere.
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    for piece in rest.chunks(usize::from(size).max(1) * 16) {
        if handshake.feed(piece).is_err() {
            return;
        }
    }
});
