//! The RTMP chunk stream and its messages (AMF0 commands, FLV tags) after the
//! handshake, fed in socket-sized pieces.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use panocast::ingest::rtmp::connection::RtmpConnection;

fuzz_target!(|data: &[u8]| {
    let mut connection = RtmpConnection::new("live");
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    for piece in rest.chunks(usize::from(size).max(1) * 16) {
        if connection.feed(piece, Instant::now()).is_err() {
            return;
        }
        let _ = connection.take_outbound();
    }
});
