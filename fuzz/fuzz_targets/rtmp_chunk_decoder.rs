//! The RTMP chunk decoder alone, with small limits so its bounds are hit, fed in the
//! pieces a socket might deliver; then a round trip of the encoder through it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use panocast::ingest::rtmp::chunk::{encode_message, ChunkDecoder, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_message_len: 4096,
        max_chunk_streams: 4,
        max_buffered: 8192,
    };
    let mut decoder = ChunkDecoder::new(limits);
    'feed: for piece in rest.chunks(usize::from(size).max(1)) {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
        let _ = decoder.take_acknowledgement();
    }

    // Whatever the encoder writes, the decoder reads back as it was.
    let timestamp = u32::from_le_bytes([size, size, 0, size]);
    let chunk = u32::from(size) + 1;
    let csid = 2 + u32::from(size) * 200;
    let payload = &rest[..rest.len().min(4096)];
    let mut wire = Vec::new();
    if chunk != 128 {
        encode_message(&mut wire, 2, 0, 1, 0, &chunk.to_be_bytes(), 128);
    }
    encode_message(&mut wire, csid, timestamp, 9, 1, payload, chunk);
    let mut decoder = ChunkDecoder::new(limits);
    decoder.push(&wire);
    let message = decoder.next_message().ok().flatten();
    let message = message.expect("an encoded message decodes");
    assert_eq!(message.timestamp, timestamp);
    assert_eq!(&message.payload[..], payload);
});
