//! The RTMP chunk stream (RTMP 1.0 spec, section 5.3), without I/O: bytes in, whole
//! messages out, and the encoder for the messages the server sends.
//!
//! The decoder keeps one partial message per chunk stream, applies the protocol
//! control messages that change how later bytes are read (Set Chunk Size, Abort) and
//! the peer's acknowledgement window, and says when an Acknowledgement is due.
//! Everything it holds is bounded by [`Limits`]: the input buffer by one header plus
//! what one [`ChunkDecoder::push`] brings (payload is moved out as it arrives, never
//! waiting for a whole chunk), partial messages by `max_buffered`, chunk streams by
//! `max_chunk_streams`. Malformed input is an [`ChunkError`], never a panic.
//!
//! Extended timestamps: a header whose 24-bit timestamp (or delta) is 0xFFFFFF is
//! followed by the real value in 4 bytes. ffmpeg and librtmp (OBS) repeat those 4
//! bytes after every type-3 header of the same message; some other encoders do not.
//! A type-3 header that continues a message therefore consumes the 4 bytes only when
//! they equal the extended timestamp of that message (as SRS and nginx-rtmp decide).

use std::collections::HashMap;

use bytes::{Buf, Bytes, BytesMut};

/// The chunk size both sides start with (5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Set Chunk Size is 31 bits (5.4.1); 0 would never make progress.
pub const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// A 24-bit timestamp field with this value means "see the extended timestamp".
const EXTENDED: u32 = 0x00ff_ffff;

/// Protocol control message type ids (5.4) and user control (6.2).
pub mod types {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// What one peer may make the decoder hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest message accepted; the wire format's own ceiling is 16 MiB − 1.
    pub max_message_len: u32,
    /// Distinct chunk stream ids in use at once (encoders use 3 to 6).
    pub max_chunk_streams: usize,
    /// Bytes of partial messages held across all chunk streams.
    pub max_buffered: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_len: 0x00ff_ffff,
            max_chunk_streams: 64,
            max_buffered: 0x00ff_ffff + 1024 * 1024,
        }
    }
}

/// One whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub chunk_stream: u32,
    /// Milliseconds, absolute (deltas already added).
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("Set Chunk Size {0} is outside 1..=2^31-1")]
    ChunkSize(u32),
    #[error("a {len}-byte message is longer than the {max}-byte limit")]
    MessageTooLong { len: u32, max: u32 },
    #[error("more than {0} chunk streams in use")]
    TooManyChunkStreams(usize),
    #[error("more than {0} bytes of partial messages")]
    TooMuchBuffered(usize),
    #[error("chunk stream {csid} starts with a type-{fmt} header, which needs a previous one")]
    NoPreviousHeader { csid: u32, fmt: u8 },
    #[error("chunk stream {0} got a new message header in the middle of a message")]
    HeaderMidMessage(u32),
    #[error("protocol control message type {0} is too short")]
    ShortControl(u8),
}

/// The last header seen on one chunk stream, and its partial message.
#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    delta: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
    /// The last type-0/1/2 header carried an extended timestamp; this is its value.
    extended: Option<u32>,
    /// Bytes of the message being received; empty between messages.
    partial: BytesMut,
    /// A message is under way (`partial` may still be empty for its first chunk).
    receiving: bool,
}

/// The chunk whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Current {
    csid: u32,
    remaining: u32,
}

#[derive(Debug)]
pub struct ChunkDecoder {
    limits: Limits,
    input: BytesMut,
    chunk_size: u32,
    streams: HashMap<u32, ChunkStream>,
    current: Option<Current>,
    buffered: usize,
    received: u64,
    window: Option<u32>,
    acked: u64,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ChunkDecoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            input: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            current: None,
            buffered: 0,
            received: 0,
            window: None,
            acked: 0,
        }
    }

    /// Appends bytes from the peer; [`ChunkDecoder::next_message`] parses them.
    pub fn push(&mut self, bytes: &[u8]) {
        self.received = self.received.saturating_add(bytes.len() as u64);
        self.input.extend_from_slice(bytes);
    }

    /// The chunk size the peer set, for the log.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The next whole message, or `None` when more bytes are needed. Set Chunk Size
    /// and Abort are applied here and not returned; every other message is.
    pub fn next_message(&mut self) -> Result<Option<Message>, ChunkError> {
        loop {
            if let Some(current) = self.current {
                if !self.read_payload(current)? {
                    return Ok(None);
                }
                if let Some(message) = self.finish_chunk(current.csid)? {
                    match message.type_id {
                        types::SET_CHUNK_SIZE => self.set_chunk_size(&message)?,
                        types::ABORT => self.abort(&message)?,
                        types::WINDOW_ACK_SIZE => {
                            self.window = Some(be_u32(&message)?.max(1));
                            return Ok(Some(message));
                        }
                        _ => return Ok(Some(message)),
                    }
                }
            } else if !self.read_header()? {
                return Ok(None);
            }
        }
    }

    /// The sequence number to acknowledge when the peer's window has filled since the
    /// last acknowledgement (5.4.3), counting every byte pushed.
    pub fn take_acknowledgement(&mut self) -> Option<u32> {
        let window = u64::from(self.window?);
        if self.received - self.acked < window {
            return None;
        }
        self.acked = self.received;
        // The sequence number wraps at 32 bits, as every implementation lets it.
        Some(self.received as u32)
    }

    /// Parses one chunk header if all of it is in the input; `false` when it is not.
    fn read_header(&mut self) -> Result<bool, ChunkError> {
        let input = &self.input[..];
        let Some(&first) = input.first() else {
            return Ok(false);
        };
        let fmt = first >> 6;
        let (csid, basic_len) = match first & 0x3f {
            0 => match input.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(false),
            },
            1 => match (input.get(1), input.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + u32::from(b1) + 256 * u32::from(b2), 3),
                _ => return Ok(false),
            },
            n => (u32::from(n), 1),
        };
        let header_len = basic_len + [11, 7, 3, 0][usize::from(fmt)];
        if input.len() < header_len {
            return Ok(false);
        }
        let h = &input[basic_len..header_len];
        if !self.streams.contains_key(&csid) {
            if fmt != 0 {
                return Err(ChunkError::NoPreviousHeader { csid, fmt });
            }
            if self.streams.len() >= self.limits.max_chunk_streams {
                return Err(ChunkError::TooManyChunkStreams(
                    self.limits.max_chunk_streams,
                ));
            }
        }
        let stream = self.streams.entry(csid).or_default();
        if fmt < 3 && stream.receiving {
            return Err(ChunkError::HeaderMidMessage(csid));
        }
        let field = if fmt < 3 { be24(&h[0..3]) } else { 0 };
        let has_extended = if fmt < 3 {
            field == EXTENDED
        } else {
            stream.extended.is_some()
        };
        let mut consumed = header_len;
        let mut extended_value = None;
        if has_extended {
            let ext = &input[header_len..];
            if fmt == 3 && stream.receiving {
                // A continuation: the 4 bytes are there only if they repeat the value.
                let expected = stream.extended.unwrap_or_default().to_be_bytes();
                let left = stream.len as usize - stream.partial.len();
                let probe = left.min(4);
                if ext.len() < probe {
                    return Ok(false);
                }
                if ext[..probe] == expected[..probe] {
                    if ext.len() < 4 {
                        return Ok(false);
                    }
                    if ext[..4] == expected {
                        consumed += 4;
                    }
                }
            } else {
                let Some(bytes) = ext.get(..4) else {
                    return Ok(false);
                };
                extended_value = Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
                consumed += 4;
            }
        }
        let value = extended_value.unwrap_or(field);
        match fmt {
            0 => {
                let len = be24(&h[3..6]);
                stream.timestamp = value;
                stream.delta = 0;
                stream.len = len;
                stream.type_id = h[6];
                stream.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
            }
            1 | 2 => {
                if fmt == 1 {
                    stream.len = be24(&h[3..6]);
                    stream.type_id = h[6];
                }
                stream.delta = value;
                stream.timestamp = stream.timestamp.wrapping_add(value);
            }
            _ => {
                if !stream.receiving {
                    // A new message with the previous header: the delta applies again
                    // (an extended field here repeats the old value; it is not new).
                    stream.timestamp = stream.timestamp.wrapping_add(stream.delta);
                }
            }
        }
        if fmt < 3 {
            stream.extended = extended_value;
        }
        if stream.len > self.limits.max_message_len {
            return Err(ChunkError::MessageTooLong {
                len: stream.len,
                max: self.limits.max_message_len,
            });
        }
        stream.receiving = true;
        let left = stream.len - stream.partial.len() as u32;
        let remaining = left.min(self.chunk_size);
        self.input.advance(consumed);
        self.current = Some(Current { csid, remaining });
        Ok(true)
    }

    /// Moves payload of the current chunk from the input into its message; `true`
    /// when the chunk is complete.
    fn read_payload(&mut self, current: Current) -> Result<bool, ChunkError> {
        let take = (current.remaining as usize).min(self.input.len());
        if take > 0 {
            self.buffered += take;
            if self.buffered > self.limits.max_buffered {
                return Err(ChunkError::TooMuchBuffered(self.limits.max_buffered));
            }
            let bytes = self.input.split_to(take);
            if let Some(stream) = self.streams.get_mut(&current.csid) {
                stream.partial.extend_from_slice(&bytes);
            }
        }
        let remaining = current.remaining - take as u32;
        self.current = Some(Current {
            remaining,
            ..current
        });
        Ok(remaining == 0)
    }

    /// Ends the current chunk; returns its message if that was the last chunk.
    fn finish_chunk(&mut self, csid: u32) -> Result<Option<Message>, ChunkError> {
        self.current = None;
        let Some(stream) = self.streams.get_mut(&csid) else {
            return Ok(None);
        };
        if stream.partial.len() < stream.len as usize {
            return Ok(None);
        }
        stream.receiving = false;
        let payload = stream.partial.split().freeze();
        self.buffered -= payload.len();
        Ok(Some(Message {
            chunk_stream: csid,
            timestamp: stream.timestamp,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
            payload,
        }))
    }

    fn set_chunk_size(&mut self, message: &Message) -> Result<(), ChunkError> {
        let size = be_u32(message)?;
        // The top bit is reserved and must be zero (5.4.1).
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::ChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    fn abort(&mut self, message: &Message) -> Result<(), ChunkError> {
        let csid = be_u32(message)?;
        if let Some(stream) = self.streams.get_mut(&csid) {
            self.buffered -= stream.partial.len();
            stream.partial.clear();
            stream.receiving = false;
        }
        Ok(())
    }
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn be_u32(message: &Message) -> Result<u32, ChunkError> {
    match message.payload.get(..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(ChunkError::ShortControl(message.type_id)),
    }
}

/// Appends `payload` as one message in chunks of `chunk_size`: a type-0 header, then
/// type-3 headers, repeating the extended timestamp on each as ffmpeg and librtmp
/// expect. `csid` is 2..=65599.
pub fn encode_message(
    out: &mut Vec<u8>,
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
    chunk_size: u32,
) {
    let extended = timestamp >= EXTENDED;
    let field = if extended { EXTENDED } else { timestamp };
    basic_header(out, 0, csid);
    out.extend_from_slice(&field.to_be_bytes()[1..]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    if extended {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    let mut chunks = payload.chunks(chunk_size.max(1) as usize);
    if let Some(first) = chunks.next() {
        out.extend_from_slice(first);
    }
    for chunk in chunks {
        basic_header(out, 3, csid);
        if extended {
            out.extend_from_slice(&timestamp.to_be_bytes());
        }
        out.extend_from_slice(chunk);
    }
}

fn basic_header(out: &mut Vec<u8>, fmt: u8, csid: u32) {
    let fmt = fmt << 6;
    match csid {
        2..=63 => out.push(fmt | csid as u8),
        64..=319 => out.extend_from_slice(&[fmt, (csid - 64) as u8]),
        _ => {
            let id = csid.saturating_sub(64).min(0xffff);
            out.extend_from_slice(&[fmt | 1, id as u8, (id >> 8) as u8]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut ChunkDecoder) -> Result<Vec<Message>, ChunkError> {
        let mut out = Vec::new();
        while let Some(m) = decoder.next_message()? {
            out.push(m);
        }
        Ok(out)
    }

    fn encoded(csid: u32, ts: u32, type_id: u8, payload: &[u8], chunk: u32) -> Vec<u8> {
        let mut out = Vec::new();
        encode_message(&mut out, csid, ts, type_id, 1, payload, chunk);
        out
    }

    #[test]
    fn round_trips_in_every_split_and_chunk_stream_id_form() {
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        for csid in [3, 63, 64, 319, 320, 65599] {
            let wire = encoded(csid, 1234, types::VIDEO, &payload, 128);
            for step in [1, 7, 128, wire.len()] {
                let mut d = ChunkDecoder::default();
                let mut got = Vec::new();
                for piece in wire.chunks(step) {
                    d.push(piece);
                    got.extend(decode_all(&mut d).unwrap());
                }
                assert_eq!(got.len(), 1, "csid {csid} step {step}");
                assert_eq!(got[0].chunk_stream, csid);
                assert_eq!(got[0].timestamp, 1234);
                assert_eq!(got[0].stream_id, 1);
                assert_eq!(&got[0].payload[..], &payload[..]);
            }
        }
    }

    #[test]
    fn extended_timestamps_repeat_on_continuations_or_not() {
        let payload = vec![0xab; 300];
        let ts = 0x0100_0000;
        // ffmpeg / librtmp: the 4 bytes follow every type-3 header.
        let with = encoded(4, ts, types::AUDIO, &payload, 128);
        // Others: only after the type-0 header.
        let mut without = Vec::new();
        without.extend_from_slice(&with[..16 + 128]);
        without.push(0xc4);
        without.extend_from_slice(&payload[128..256]);
        without.push(0xc4);
        without.extend_from_slice(&payload[256..]);
        for wire in [with, without] {
            let mut d = ChunkDecoder::default();
            d.push(&wire);
            let got = decode_all(&mut d).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].timestamp, ts);
            assert_eq!(&got[0].payload[..], &payload[..]);
        }
    }

    #[test]
    fn deltas_add_up_and_type_3_repeats_the_last_delta() {
        let mut wire = encoded(6, 1000, types::VIDEO, &[1, 2], 128);
        // Type 1: delta 40, length 1, video.
        wire.extend_from_slice(&[0x46, 0, 0, 40, 0, 0, 1, types::VIDEO, 9]);
        // Type 2: delta 33.
        wire.extend_from_slice(&[0x86, 0, 0, 33, 8]);
        // Type 3: a new message, delta 33 again.
        wire.extend_from_slice(&[0xc6, 7]);
        let mut d = ChunkDecoder::default();
        d.push(&wire);
        let got = decode_all(&mut d).unwrap();
        let stamps: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
        assert_eq!(stamps, [1000, 1040, 1073, 1106]);
        assert_eq!(&got[3].payload[..], &[7]);
    }

    #[test]
    fn set_chunk_size_and_abort_apply_and_bad_sizes_are_errors() {
        let mut wire = encoded(2, 0, types::SET_CHUNK_SIZE, &4096u32.to_be_bytes(), 128);
        wire.extend(encoded(4, 0, types::AUDIO, &[5; 4000], 4096));
        let mut d = ChunkDecoder::default();
        d.push(&wire);
        let got = decode_all(&mut d).unwrap();
        assert_eq!(d.chunk_size(), 4096);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload.len(), 4000);

        // Half a message on stream 4, aborted, then a whole one.
        let mut d = ChunkDecoder::default();
        let half = encoded(4, 0, types::AUDIO, &[1; 200], 128);
        d.push(&half[..12 + 128]);
        assert_eq!(decode_all(&mut d).unwrap(), []);
        d.push(&encoded(2, 0, types::ABORT, &4u32.to_be_bytes(), 128));
        d.push(&encoded(4, 0, types::AUDIO, &[2; 3], 128));
        let got = decode_all(&mut d).unwrap();
        assert_eq!(&got[0].payload[..], &[2; 3]);

        for size in [0u32, 0x8000_0000] {
            let mut d = ChunkDecoder::default();
            d.push(&encoded(
                2,
                0,
                types::SET_CHUNK_SIZE,
                &size.to_be_bytes(),
                128,
            ));
            assert_eq!(decode_all(&mut d), Err(ChunkError::ChunkSize(size)));
        }
        let mut d = ChunkDecoder::default();
        d.push(&encoded(2, 0, types::SET_CHUNK_SIZE, &[0, 1], 128));
        assert_eq!(decode_all(&mut d), Err(ChunkError::ShortControl(1)));
    }

    #[test]
    fn bounds_are_errors_not_allocations() {
        let limits = Limits {
            max_message_len: 1000,
            max_chunk_streams: 3,
            max_buffered: 1500,
        };
        // A header announcing 16 MiB − 1 is refused before any payload.
        let mut d = ChunkDecoder::new(limits);
        d.push(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
        assert_eq!(
            decode_all(&mut d),
            Err(ChunkError::MessageTooLong {
                len: 0xff_ffff,
                max: 1000
            })
        );
        let mut d = ChunkDecoder::new(limits);
        for csid in 3..6 {
            d.push(&encoded(csid, 0, 9, &[0; 10], 128));
        }
        d.push(&encoded(9, 0, 9, &[0; 10], 128));
        assert_eq!(decode_all(&mut d), Err(ChunkError::TooManyChunkStreams(3)));
        // Two 900-byte messages short of their last chunk are more than 1500 buffered.
        let mut d = ChunkDecoder::new(limits);
        for csid in [3, 4] {
            let mut wire = encoded(csid, 0, 9, &[0; 900], 128);
            wire.truncate(12 + 128 + 6 * 129);
            d.push(&wire);
        }
        assert_eq!(decode_all(&mut d), Err(ChunkError::TooMuchBuffered(1500)));
    }

    #[test]
    fn headers_that_need_a_previous_one_and_mid_message_headers_are_errors() {
        let mut d = ChunkDecoder::default();
        d.push(&[0xc3, 1, 2]);
        assert_eq!(
            decode_all(&mut d),
            Err(ChunkError::NoPreviousHeader { csid: 3, fmt: 3 })
        );
        let mut d = ChunkDecoder::default();
        let wire = encoded(3, 0, 9, &[0; 200], 128);
        d.push(&wire[..12 + 128]);
        d.push(&wire[..12]);
        assert_eq!(decode_all(&mut d), Err(ChunkError::HeaderMidMessage(3)));
    }

    #[test]
    fn acknowledgements_follow_the_peers_window() {
        let mut d = ChunkDecoder::default();
        let window = encoded(2, 0, types::WINDOW_ACK_SIZE, &100u32.to_be_bytes(), 128);
        d.push(&window);
        assert_eq!(decode_all(&mut d).unwrap().len(), 1);
        assert_eq!(d.take_acknowledgement(), None);
        let media = encoded(4, 0, types::AUDIO, &[0; 100], 128);
        d.push(&media);
        decode_all(&mut d).unwrap();
        assert_eq!(
            d.take_acknowledgement(),
            Some((window.len() + media.len()) as u32)
        );
        assert_eq!(d.take_acknowledgement(), None);
    }

    #[test]
    fn zero_length_messages_complete() {
        let mut d = ChunkDecoder::default();
        d.push(&encoded(5, 7, types::VIDEO, &[], 128));
        let got = decode_all(&mut d).unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].payload.is_empty());
    }
}
