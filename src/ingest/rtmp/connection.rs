//! One RTMP connection after the handshake, as a state machine fed bytes.
//!
//! [`ChunkDecoder`] turns the chunk stream into messages (RTMP 1.0 spec, section 5.3,
//! protocol control in 5.4); this layer answers the NetConnection/NetStream commands
//! (7.2) with [`amf0`] and decides what panocast allows — publish on one configured
//! app, no playback — and turns the media messages into [`MediaEvent`]s through
//! [`FlvDemuxer`]. No I/O, no clock: the caller passes the instant the bytes arrived,
//! and sends whatever [`RtmpConnection::take_outbound`] returns after every call, in
//! order (the peer's chunk parser depends on it).
//!
//! This replaced `rml_rtmp`'s `ServerSession`, which panicked on network input (a
//! slice index in its chunk deserializer, an `@setDataFrame` without arguments, a
//! message length that shrinks mid-message) and so had to run under `catch_unwind`.
//! Nothing here can panic on input; every refusal is a [`ConnectionError`].
//!
//! # Bounds
//!
//! An RTMP message is at most 16 MiB − 1 long (the 24-bit length of a chunk message
//! header, 5.3.1.2.1) and the decoder holds at most [`Limits`] worth of partial
//! messages. Before a publish is accepted a peer is unauthenticated, so it may send at
//! most [`PRE_PUBLISH_BYTE_LIMIT`] bytes (the connect/createStream/publish exchange
//! takes well under 2 KiB); after that the publisher holds a valid key and the 16 MiB
//! ceiling applies. Outbound bytes are only replies to what was fed, so they are
//! bounded by the input too.

use std::time::Instant;

use super::amf0::{self, Amf0Error, Value};
use super::chunk::{
    encode_message, types, ChunkDecoder, ChunkError, Limits, Message, DEFAULT_CHUNK_SIZE,
};
use crate::ingest::demux::{DemuxError, DemuxStats, FlvDemuxer};
use crate::media::MediaEvent;

/// Bytes a peer may send before its publish request is accepted.
pub const PRE_PUBLISH_BYTE_LIMIT: u64 = 1 << 20;

/// `onStatus` code for a refused stream key (as nginx-rtmp and SRS answer it; OBS shows
/// it as "invalid stream key").
const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";

/// What the server sends (5.4): its chunk size, the window after which the peer
/// acknowledges, and the peer's output bandwidth (dynamic limit). The values are the
/// ones Flash Media Server and nginx-rtmp use; encoders do not act on them.
const OUT_CHUNK_SIZE: u32 = 4096;
const WINDOW_ACK_SIZE: u32 = 2_500_000;
const PEER_BANDWIDTH: u32 = 2_500_000;
/// Chunk stream ids of what the server sends: protocol control, then commands.
const CSID_CONTROL: u32 = 2;
const CSID_COMMAND: u32 = 3;
/// Streams one connection may create; encoders create one.
const MAX_CREATED_STREAMS: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("malformed RTMP chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    #[error("malformed RTMP command: {0}")]
    Amf(#[from] Amf0Error),
    #[error("RTMP command {0} before connect")]
    NotConnected(&'static str),
    #[error("peer created more than {MAX_CREATED_STREAMS} streams")]
    TooManyStreams,
    #[error("no pending publish request {0}")]
    NoSuchRequest(u32),
    #[error("connect refused: the RTMP application does not match the configured one")]
    WrongApp,
    #[error("play refused: this server delivers over HLS only")]
    PlayRefused,
    #[error("publish refused: a second publish on the same connection")]
    SecondPublish,
    #[error("publish refused: unknown stream key")]
    UnknownKey,
    #[error("publish refused: {0}")]
    Refused(String),
    #[error("publish refused: empty stream key")]
    EmptyKey,
    #[error("peer sent {0} bytes without publishing")]
    TooMuchBeforePublish(u64),
    #[error(transparent)]
    Media(#[from] DemuxError),
}

/// What the caller has to act on.
#[derive(Debug)]
pub enum Event {
    /// The peer asks to publish. Authorize `stream_key` (without logging it), then call
    /// [`RtmpConnection::accept_publish`] or [`RtmpConnection::reject_publish`].
    PublishRequested {
        request_id: u32,
        /// The stream name with any `?query` removed.
        stream_key: String,
    },
    /// Media of the accepted publish, in arrival order.
    Media(MediaEvent),
    /// A track was dropped for its codec; the connection goes on without it.
    TrackDropped(DemuxError),
    /// `@setDataFrame onMetaData`: what the encoder says about itself.
    Metadata {
        encoder: Option<String>,
        width: Option<u32>,
        height: Option<u32>,
        frame_rate: Option<f32>,
    },
    /// The peer ended its publish (deleteStream / closeStream).
    PublishFinished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before `connect`.
    Unconnected,
    /// Connected and not yet publishing.
    Idle,
    /// `publish` is waiting for the caller's verdict.
    PublishRequested(PendingPublish),
    /// Media on message stream `stream_id` flows.
    Publishing { stream_id: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingPublish {
    request_id: u32,
    stream_id: u32,
}

pub struct RtmpConnection {
    chunks: ChunkDecoder,
    app: String,
    phase: Phase,
    demux: FlvDemuxer,
    outbound: Vec<u8>,
    bytes_in: u64,
    streams_created: u32,
    requests: u32,
    outbound_chunk_size: u32,
}

impl RtmpConnection {
    /// Starts the session for a peer whose handshake completed.
    pub fn new(app: &str) -> Self {
        Self {
            chunks: ChunkDecoder::new(Limits::default()),
            app: app.to_owned(),
            phase: Phase::Unconnected,
            demux: FlvDemuxer::new(),
            outbound: Vec::new(),
            bytes_in: 0,
            streams_created: 0,
            requests: 0,
            outbound_chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Feeds chunk-stream bytes that arrived at `received`. Parsing stops at an
    /// [`Event::PublishRequested`]; after the verdict, call `feed(&[], …)` for what
    /// followed it.
    pub fn feed(&mut self, bytes: &[u8], received: Instant) -> Result<Vec<Event>, ConnectionError> {
        self.bytes_in = self.bytes_in.saturating_add(bytes.len() as u64);
        if !matches!(self.phase, Phase::Publishing { .. }) && self.bytes_in > PRE_PUBLISH_BYTE_LIMIT
        {
            return Err(ConnectionError::TooMuchBeforePublish(self.bytes_in));
        }
        self.chunks.push(bytes);
        let mut events = Vec::new();
        // Messages after a publish request wait in the decoder for the verdict: media
        // sent right behind `publish` belongs to the publish if it is accepted.
        while !matches!(self.phase, Phase::PublishRequested(_)) {
            let Some(message) = self.chunks.next_message()? else {
                break;
            };
            self.on_message(message, received, &mut events)?;
        }
        if let Some(sequence) = self.chunks.take_acknowledgement() {
            self.send_control(types::ACKNOWLEDGEMENT, &sequence.to_be_bytes());
        }
        Ok(events)
    }

    /// Accepts the pending publish: replies `NetStream.Publish.Start`, media flows.
    pub fn accept_publish(&mut self, request_id: u32) -> Result<(), ConnectionError> {
        let pending = self.pending(request_id)?;
        // User control StreamBegin (6.2), then the status the encoder waits for.
        let mut begin = vec![0, 0];
        begin.extend_from_slice(&pending.stream_id.to_be_bytes());
        self.send_control(types::USER_CONTROL, &begin);
        self.send_status(
            pending.stream_id,
            "status",
            "NetStream.Publish.Start",
            "publishing",
        );
        self.phase = Phase::Publishing {
            stream_id: pending.stream_id,
        };
        self.demux = FlvDemuxer::new();
        Ok(())
    }

    /// Refuses the pending publish with `NetStream.Publish.BadName`. The caller closes
    /// the connection after sending the reply.
    pub fn reject_publish(&mut self, request_id: u32) -> Result<(), ConnectionError> {
        let pending = self.pending(request_id)?;
        self.send_status(
            pending.stream_id,
            "error",
            PUBLISH_BAD_NAME,
            "unknown stream key",
        );
        self.phase = Phase::Idle;
        Ok(())
    }

    /// Bytes to send to the peer, in order. Empties the queue.
    pub fn take_outbound(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outbound)
    }

    pub fn stats(&self) -> DemuxStats {
        self.demux.stats()
    }

    fn pending(&self, request_id: u32) -> Result<PendingPublish, ConnectionError> {
        match self.phase {
            Phase::PublishRequested(p) if p.request_id == request_id => Ok(p),
            _ => Err(ConnectionError::NoSuchRequest(request_id)),
        }
    }

    fn on_message(
        &mut self,
        message: Message,
        received: Instant,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        match message.type_id {
            types::COMMAND_AMF0 => self.on_command(&message, &message.payload, events),
            // AMF3 commands and data start with a format byte, then AMF0 values (what
            // Flash sent with objectEncoding 3).
            types::COMMAND_AMF3 => {
                let body = message.payload.get(1..).unwrap_or_default();
                self.on_command(&message, body, events)
            }
            types::DATA_AMF0 => {
                self.on_data(&message.payload, events);
                Ok(())
            }
            types::DATA_AMF3 => {
                self.on_data(message.payload.get(1..).unwrap_or_default(), events);
                Ok(())
            }
            types::VIDEO | types::AUDIO => {
                // Media before the publish is accepted, or on another stream, has
                // nowhere to go.
                if self.phase
                    != (Phase::Publishing {
                        stream_id: message.stream_id,
                    })
                {
                    return Ok(());
                }
                let result = if message.type_id == types::VIDEO {
                    self.demux
                        .video(&message.payload, message.timestamp, received)
                } else {
                    self.demux
                        .audio(&message.payload, message.timestamp, received)
                };
                on_media(result, events)
            }
            other => {
                // Acknowledgements, user control (buffer length), window and bandwidth
                // (the decoder keeps the window), aggregate messages (no encoder we take
                // sends them for a publish): nothing to answer.
                tracing::trace!(type_id = other, "ignoring RTMP message");
                Ok(())
            }
        }
    }

    fn on_command(
        &mut self,
        message: &Message,
        body: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        let values = amf0::decode_all(body)?;
        let Some(name) = values.first().and_then(Value::as_str) else {
            tracing::debug!("ignoring an RTMP command without a name");
            return Ok(());
        };
        let transaction = values.get(1).and_then(Value::as_number).unwrap_or(0.0);
        match name {
            "connect" => {
                let app = values
                    .get(2)
                    .and_then(|o| o.get("app"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.on_connect(app, transaction)
            }
            "createStream" => {
                self.connected("createStream")?;
                if self.streams_created >= MAX_CREATED_STREAMS {
                    return Err(ConnectionError::TooManyStreams);
                }
                self.streams_created += 1;
                let id = f64::from(self.streams_created);
                self.send_command(
                    0,
                    &[
                        Value::String("_result".into()),
                        Value::Number(transaction),
                        Value::Null,
                        Value::Number(id),
                    ],
                );
                Ok(())
            }
            "publish" => {
                self.connected("publish")?;
                let name = values.get(3).and_then(Value::as_str).unwrap_or_default();
                self.on_publish(name, message.stream_id, events)
            }
            "play" | "play2" => {
                self.send_status(
                    message.stream_id,
                    "error",
                    "NetStream.Play.Failed",
                    "this server delivers over HLS only",
                );
                Err(ConnectionError::PlayRefused)
            }
            "deleteStream" | "closeStream" => {
                if matches!(self.phase, Phase::Publishing { .. }) {
                    events.push(Event::PublishFinished);
                }
                Ok(())
            }
            other => {
                // releaseStream, FCPublish, FCUnpublish, getStreamLength …: ffmpeg and OBS
                // send them and go on without an answer. Their arguments hold the stream
                // key, so only the name is logged.
                tracing::debug!(command = %other, "ignoring RTMP command");
                Ok(())
            }
        }
    }

    fn connected(&self, command: &'static str) -> Result<(), ConnectionError> {
        match self.phase {
            Phase::Unconnected => Err(ConnectionError::NotConnected(command)),
            _ => Ok(()),
        }
    }

    fn on_connect(&mut self, app: &str, transaction: f64) -> Result<(), ConnectionError> {
        // A query (`live?token=…`) and a trailing '/' are not part of the application.
        let app = app.split('?').next().unwrap_or_default();
        let app = app.strip_suffix('/').unwrap_or(app);
        if app != self.app {
            self.send_command(
                0,
                &[
                    Value::String("_error".into()),
                    Value::Number(transaction),
                    Value::Null,
                    status(
                        "error",
                        "NetConnection.Connect.Rejected",
                        "unknown application",
                    ),
                ],
            );
            return Err(ConnectionError::WrongApp);
        }
        if self.phase != Phase::Unconnected {
            tracing::debug!("ignoring a second RTMP connect");
            return Ok(());
        }
        self.send_control(types::WINDOW_ACK_SIZE, &WINDOW_ACK_SIZE.to_be_bytes());
        let mut bandwidth = PEER_BANDWIDTH.to_be_bytes().to_vec();
        bandwidth.push(2); // dynamic
        self.send_control(types::SET_PEER_BANDWIDTH, &bandwidth);
        // Chunk size last: every message after it is chunked with the new size.
        self.send_control(types::SET_CHUNK_SIZE, &OUT_CHUNK_SIZE.to_be_bytes());
        self.outbound_chunk_size = OUT_CHUNK_SIZE;
        let mut result = match status("status", "NetConnection.Connect.Success", "connected") {
            Value::Object(properties) => properties,
            _ => Vec::new(),
        };
        result.push(("objectEncoding".into(), Value::Number(0.0)));
        self.send_command(
            0,
            &[
                Value::String("_result".into()),
                Value::Number(transaction),
                Value::Object(vec![
                    ("fmsVer".into(), Value::String("FMS/3,0,1,123".into())),
                    ("capabilities".into(), Value::Number(31.0)),
                ]),
                Value::Object(result),
            ],
        );
        self.phase = Phase::Idle;
        Ok(())
    }

    fn on_publish(
        &mut self,
        name: &str,
        stream_id: u32,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        if self.phase != Phase::Idle {
            self.send_status(stream_id, "error", PUBLISH_BAD_NAME, "already publishing");
            return Err(ConnectionError::SecondPublish);
        }
        let key = name.split('?').next().unwrap_or_default();
        if key.is_empty() {
            self.send_status(stream_id, "error", PUBLISH_BAD_NAME, "empty stream key");
            return Err(ConnectionError::EmptyKey);
        }
        self.requests = self.requests.wrapping_add(1);
        self.phase = Phase::PublishRequested(PendingPublish {
            request_id: self.requests,
            stream_id,
        });
        events.push(Event::PublishRequested {
            request_id: self.requests,
            stream_key: key.to_owned(),
        });
        Ok(())
    }

    /// `@setDataFrame onMetaData {…}` (what ffmpeg and OBS send) or a bare
    /// `onMetaData {…}`. Informative only: a malformed one is skipped.
    fn on_data(&mut self, body: &[u8], events: &mut Vec<Event>) {
        let values = match amf0::decode_all(body) {
            Ok(values) => values,
            Err(e) => {
                tracing::debug!("ignoring an RTMP data message: {e}");
                return;
            }
        };
        let mut names = values.iter();
        let mut first = names.next().and_then(Value::as_str);
        if first == Some("@setDataFrame") {
            first = names.next().and_then(Value::as_str);
        }
        if first != Some("onMetaData") {
            return;
        }
        let Some(metadata) = names.next() else {
            return;
        };
        let number = |key: &str| metadata.get(key).and_then(Value::as_number);
        let dimension = |key: &str| {
            number(key)
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(|n| n.min(f64::from(u32::MAX)) as u32)
        };
        events.push(Event::Metadata {
            encoder: metadata
                .get("encoder")
                .and_then(Value::as_str)
                .map(str::to_owned),
            width: dimension("width"),
            height: dimension("height"),
            frame_rate: number("framerate").map(|n| n as f32),
        });
    }

    fn send_control(&mut self, type_id: u8, payload: &[u8]) {
        encode_message(
            &mut self.outbound,
            CSID_CONTROL,
            0,
            type_id,
            0,
            payload,
            self.outbound_chunk_size,
        );
    }

    fn send_command(&mut self, stream_id: u32, values: &[Value]) {
        let mut payload = Vec::new();
        for value in values {
            amf0::encode(&mut payload, value);
        }
        encode_message(
            &mut self.outbound,
            CSID_COMMAND,
            0,
            types::COMMAND_AMF0,
            stream_id,
            &payload,
            self.outbound_chunk_size,
        );
    }

    fn send_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.send_command(
            stream_id,
            &[
                Value::String("onStatus".into()),
                Value::Number(0.0),
                Value::Null,
                status(level, code, description),
            ],
        );
    }
}

/// The info object of `onStatus`, `_result` and `_error` replies.
fn status(level: &str, code: &str, description: &str) -> Value {
    Value::Object(vec![
        ("level".into(), Value::String(level.into())),
        ("code".into(), Value::String(code.into())),
        ("description".into(), Value::String(description.into())),
    ])
}

fn on_media(
    result: Result<Option<MediaEvent>, DemuxError>,
    events: &mut Vec<Event>,
) -> Result<(), ConnectionError> {
    match result {
        Ok(Some(event)) => events.push(Event::Media(event)),
        Ok(None) => {}
        Err(e) if !e.is_fatal() => events.push(Event::TrackDropped(e)),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rml_rtmp::sessions::{
        ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
        PublishRequestType,
    };
    use rml_rtmp::time::RtmpTimestamp;

    use crate::ingest::avc::tests::X264_640X320_RECORD;
    use crate::media::TrackKind;

    /// fuzz/rtmp_chunks's first find, against rml_rtmp's chunk deserializer (a slice
    /// index past its end, caught by `catch_unwind` then). Our decoder reads it as
    /// empty messages of no known type: nothing is published and nothing panics.
    #[test]
    fn the_fuzzed_chunk_stream_that_panicked_rml_rtmp_publishes_nothing() {
        let input = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/fuzz/rtmp_chunks-rml_rtmp-slice-index.bin"
        ))
        .unwrap();
        let (&size, rest) = input.split_first().unwrap();
        let mut conn = RtmpConnection::new("live");
        for piece in rest.chunks(usize::from(size).max(1) * 16) {
            match conn.feed(piece, Instant::now()) {
                Ok(events) => assert!(events.is_empty(), "{events:?}"),
                Err(e) => panic!("{e}"),
            }
        }
        assert!(conn.take_outbound().is_empty());
    }

    /// An rml_rtmp client wired to an [`RtmpConnection`] without sockets.
    struct Pair {
        client: ClientSession,
        server: RtmpConnection,
        events: Vec<Event>,
        client_events: Vec<ClientSessionEvent>,
    }

    impl Pair {
        fn new(app: &str) -> Self {
            let (client, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
            let mut pair = Pair {
                client,
                server: RtmpConnection::new(app),
                events: Vec::new(),
                client_events: Vec::new(),
            };
            let out = pair.server.take_outbound();
            pair.deliver_to_client(&out);
            pair
        }

        fn deliver_to_client(&mut self, bytes: &[u8]) -> Vec<u8> {
            let results = self.client.handle_input(bytes).unwrap();
            self.client_results(results)
        }

        fn client_results(&mut self, results: Vec<ClientSessionResult>) -> Vec<u8> {
            let mut out = Vec::new();
            for r in results {
                match r {
                    ClientSessionResult::OutboundResponse(p) => out.extend(p.bytes),
                    ClientSessionResult::RaisedEvent(e) => self.client_events.push(e),
                    ClientSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
            out
        }

        /// Sends client bytes and lets the two talk until neither has more to say.
        fn send(&mut self, mut bytes: Vec<u8>) -> Result<(), ConnectionError> {
            while !bytes.is_empty() {
                let events = self.server.feed(&bytes, Instant::now())?;
                self.events.extend(events);
                let out = self.server.take_outbound();
                bytes = if out.is_empty() {
                    Vec::new()
                } else {
                    self.deliver_to_client(&out)
                };
            }
            Ok(())
        }

        fn send_result(&mut self, r: ClientSessionResult) -> Result<(), ConnectionError> {
            let bytes = self.client_results(vec![r]);
            self.send(bytes)
        }

        fn connect(&mut self, app: &str) -> Result<(), ConnectionError> {
            let r = self.client.request_connection(app.to_owned()).unwrap();
            self.send_result(r)
        }

        fn request_publish(&mut self, key: &str) -> u32 {
            let r = self
                .client
                .request_publishing(key.to_owned(), PublishRequestType::Live)
                .unwrap();
            self.send_result(r).unwrap();
            match self.events.pop() {
                Some(Event::PublishRequested {
                    request_id,
                    stream_key,
                }) => {
                    assert_eq!(stream_key, "the-key");
                    request_id
                }
                other => panic!("expected a publish request, got {other:?}"),
            }
        }
    }

    #[test]
    fn publish_flow_yields_media() {
        let mut p = Pair::new("live");
        p.connect("live").unwrap();
        assert!(p
            .client_events
            .contains(&ClientSessionEvent::ConnectionRequestAccepted));
        let id = p.request_publish("the-key?token=1");
        p.server.accept_publish(id).unwrap();
        let out = p.server.take_outbound();
        p.deliver_to_client(&out);
        assert!(p
            .client_events
            .contains(&ClientSessionEvent::PublishRequestAccepted));

        let mut header = vec![0x17, 0, 0, 0, 0];
        header.extend_from_slice(X264_640X320_RECORD);
        let idr = vec![0x17, 1, 0, 0, 0x43, 0, 0, 0, 2, 0x65, 0x88];
        for (data, ts) in [(header, 0), (idr, 10)] {
            let r = p
                .client
                .publish_video_data(Bytes::from(data), RtmpTimestamp::new(ts), false)
                .unwrap();
            p.send_result(r).unwrap();
        }
        let r = p
            .client
            .publish_audio_data(
                Bytes::from_static(&[0xaf, 0, 0x11, 0x88]),
                RtmpTimestamp::new(0),
                false,
            )
            .unwrap();
        p.send_result(r).unwrap();
        match &p.events[..] {
            [Event::Media(MediaEvent::VideoConfig(v)), Event::Media(MediaEvent::Unit(u)), Event::Media(MediaEvent::AudioConfig(a))] =>
            {
                assert_eq!((v.width(), v.height()), (640, 320));
                assert_eq!(
                    (u.kind, u.dts, u.pts, u.keyframe),
                    (TrackKind::Video, 10, 77, true)
                );
                assert_eq!(a.sample_rate, 48_000);
            }
            other => panic!("unexpected events {other:?}"),
        }
    }

    #[test]
    fn wrong_app_is_refused_with_a_reply() {
        let mut p = Pair::new("live");
        assert!(matches!(p.connect("other"), Err(ConnectionError::WrongApp)));
        let out = p.server.take_outbound();
        p.deliver_to_client(&out);
        assert!(p
            .client_events
            .iter()
            .any(|e| matches!(e, ClientSessionEvent::ConnectionRequestRejected { .. })));
    }

    #[test]
    fn play_is_refused() {
        let mut p = Pair::new("live");
        p.connect("live").unwrap();
        let r = p.client.request_playback("the-key".to_owned()).unwrap();
        assert!(matches!(
            p.send_result(r),
            Err(ConnectionError::PlayRefused)
        ));
        assert!(!p.server.take_outbound().is_empty());
    }

    #[test]
    fn rejected_publish_gets_an_answer() {
        let mut p = Pair::new("live");
        p.connect("live").unwrap();
        let id = p.request_publish("the-key");
        p.server.reject_publish(id).unwrap();
        assert!(!p.server.take_outbound().is_empty());
    }

    #[test]
    fn unauthenticated_peers_have_a_byte_budget() {
        let mut p = Pair::new("live");
        p.connect("live").unwrap();
        let big = vec![0u8; PRE_PUBLISH_BYTE_LIMIT as usize];
        assert!(matches!(
            p.server.feed(&big, Instant::now()),
            Err(ConnectionError::TooMuchBeforePublish(_))
        ));
    }
}
