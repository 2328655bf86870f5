//! One RTMP connection after the handshake, as a state machine fed bytes.
//!
//! `rml_rtmp`'s `ServerSession` does the chunk stream (RTMP 1.0 spec, section 5.3), the
//! protocol control messages (5.4: chunk size, acknowledgements, window size) and the
//! NetConnection/NetStream commands (7.2). This layer decides what panocast allows —
//! publish on one configured app, no playback — and turns the media messages into
//! [`MediaEvent`]s through [`FlvDemuxer`]. No I/O, no clock: the caller passes the
//! instant the bytes arrived, and sends whatever [`RtmpConnection::take_outbound`]
//! returns after every call, in order (the peer's chunk parser depends on it).
//!
//! # Bounds
//!
//! An RTMP message is at most 16 MiB − 1 long (the 24-bit length of a chunk message
//! header, 5.3.1.2.1); `rml_rtmp` has no lower limit of its own and buffers one
//! message per connection as its chunks arrive. Before a publish is accepted a peer is
//! unauthenticated, so it may send at most [`PRE_PUBLISH_BYTE_LIMIT`] bytes (the
//! connect/createStream/publish exchange takes well under 2 KiB); after that the
//! publisher holds a valid key and the 16 MiB ceiling applies. Outbound bytes are only
//! replies to what was fed, so they are bounded by the input too.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionError, ServerSessionEvent, ServerSessionResult,
};

use crate::ingest::demux::{DemuxError, DemuxStats, FlvDemuxer};
use crate::media::MediaEvent;

/// Bytes a peer may send before its publish request is accepted.
pub const PRE_PUBLISH_BYTE_LIMIT: u64 = 1 << 20;

/// `onStatus` code for a refused stream key (as nginx-rtmp and SRS answer it; OBS shows
/// it as "invalid stream key").
const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("malformed RTMP stream: {0}")]
    Session(#[from] ServerSessionError),
    #[error("malformed RTMP stream: the RTMP library panicked while parsing it")]
    Panicked,
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
    /// The peer ended its publish (FCUnpublish / deleteStream / closeStream).
    PublishFinished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before `connect`, or connected and not yet publishing.
    Idle,
    /// `publish` is waiting for the caller's verdict.
    PublishRequested,
    Publishing,
}

pub struct RtmpConnection {
    session: ServerSession,
    app: String,
    phase: Phase,
    demux: FlvDemuxer,
    outbound: Vec<u8>,
    bytes_in: u64,
}

impl RtmpConnection {
    /// Starts the session for a peer whose handshake completed; the first outbound
    /// bytes (window size, peer bandwidth, chunk size, StreamBegin) are queued.
    pub fn new(app: &str) -> Result<Self, ConnectionError> {
        let (session, results) = ServerSession::new(ServerSessionConfig::new())?;
        let mut conn = Self {
            session,
            app: app.to_owned(),
            phase: Phase::Idle,
            demux: FlvDemuxer::new(),
            outbound: Vec::new(),
            bytes_in: 0,
        };
        let mut events = Vec::new();
        conn.absorb(results, Instant::now(), &mut events)?;
        Ok(conn)
    }

    /// Feeds chunk-stream bytes that arrived at `received`.
    pub fn feed(&mut self, bytes: &[u8], received: Instant) -> Result<Vec<Event>, ConnectionError> {
        self.bytes_in = self.bytes_in.saturating_add(bytes.len() as u64);
        if self.phase != Phase::Publishing && self.bytes_in > PRE_PUBLISH_BYTE_LIMIT {
            return Err(ConnectionError::TooMuchBeforePublish(self.bytes_in));
        }
        let session = &mut self.session;
        // rml_rtmp 0.8 panics on some malformed input (an `@setDataFrame` without
        // arguments indexes an empty Vec; a chunk whose message length shrinks mid-message
        // underflows). Such a panic ends this connection only.
        let results = catch_unwind(AssertUnwindSafe(|| session.handle_input(bytes)))
            .map_err(|_| ConnectionError::Panicked)??;
        let mut events = Vec::new();
        self.absorb(results, received, &mut events)?;
        Ok(events)
    }

    /// Accepts the pending publish: replies `NetStream.Publish.Start`, media flows.
    pub fn accept_publish(&mut self, request_id: u32) -> Result<(), ConnectionError> {
        let session = &mut self.session;
        let results = catch_unwind(AssertUnwindSafe(|| session.accept_request(request_id)))
            .map_err(|_| ConnectionError::Panicked)??;
        self.phase = Phase::Publishing;
        self.demux = FlvDemuxer::new();
        self.absorb(results, Instant::now(), &mut Vec::new())
    }

    /// Refuses the pending publish with `NetStream.Publish.BadName`. The caller closes
    /// the connection after sending the reply.
    pub fn reject_publish(&mut self, request_id: u32) -> Result<(), ConnectionError> {
        self.reject(request_id, PUBLISH_BAD_NAME, "unknown stream key")
    }

    /// Bytes to send to the peer, in order. Empties the queue.
    pub fn take_outbound(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outbound)
    }

    pub fn stats(&self) -> DemuxStats {
        self.demux.stats()
    }

    fn reject(&mut self, request_id: u32, code: &str, why: &str) -> Result<(), ConnectionError> {
        let session = &mut self.session;
        let results = catch_unwind(AssertUnwindSafe(|| {
            session.reject_request(request_id, code, why)
        }))
        .map_err(|_| ConnectionError::Panicked)??;
        self.absorb(results, Instant::now(), &mut Vec::new())
    }

    fn absorb(
        &mut self,
        results: Vec<ServerSessionResult>,
        received: Instant,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.outbound.extend_from_slice(&packet.bytes)
                }
                ServerSessionResult::RaisedEvent(event) => {
                    self.on_event(event, received, events)?
                }
                ServerSessionResult::UnhandleableMessageReceived(payload) => {
                    // AMF3 commands, aggregate messages (type 22): no encoder we take
                    // sends them for a publish; ignoring them keeps odd clients alive.
                    tracing::debug!(type_id = payload.type_id, "ignoring RTMP message");
                }
            }
        }
        Ok(())
    }

    fn on_event(
        &mut self,
        event: ServerSessionEvent,
        received: Instant,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                // rml_rtmp already dropped a trailing '/'; a query (`live?token=…`) is
                // not part of the application name.
                let app = app_name.split('?').next().unwrap_or_default();
                if app == self.app {
                    let session = &mut self.session;
                    let results =
                        catch_unwind(AssertUnwindSafe(|| session.accept_request(request_id)))
                            .map_err(|_| ConnectionError::Panicked)??;
                    self.absorb(results, received, events)?;
                } else {
                    self.reject(
                        request_id,
                        "NetConnection.Connect.Rejected",
                        "unknown application",
                    )?;
                    return Err(ConnectionError::WrongApp);
                }
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => {
                if self.phase != Phase::Idle {
                    self.reject(request_id, PUBLISH_BAD_NAME, "already publishing")?;
                    return Err(ConnectionError::SecondPublish);
                }
                let key = stream_key.split('?').next().unwrap_or_default();
                if key.is_empty() {
                    self.reject(request_id, PUBLISH_BAD_NAME, "empty stream key")?;
                    return Err(ConnectionError::EmptyKey);
                }
                self.phase = Phase::PublishRequested;
                events.push(Event::PublishRequested {
                    request_id,
                    stream_key: key.to_owned(),
                });
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                self.reject(
                    request_id,
                    "NetStream.Play.Failed",
                    "this server delivers over HLS only",
                )?;
                return Err(ConnectionError::PlayRefused);
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                let result = self.demux.video(&data, timestamp.value, received);
                self.on_media(result, events)?;
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                let result = self.demux.audio(&data, timestamp.value, received);
                self.on_media(result, events)?;
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                events.push(Event::Metadata {
                    encoder: metadata.encoder,
                    width: metadata.video_width,
                    height: metadata.video_height,
                    frame_rate: metadata.video_frame_rate,
                });
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                if self.phase == Phase::Publishing {
                    events.push(Event::PublishFinished);
                }
            }
            ServerSessionEvent::UnhandleableAmf0Command { command_name, .. } => {
                // releaseStream, FCPublish, FCUnpublish, getStreamLength …: ffmpeg and OBS
                // send them and go on without an answer. Their arguments hold the stream
                // key, so only the name is logged.
                tracing::debug!(command = %command_name, "ignoring RTMP command");
            }
            ServerSessionEvent::ClientChunkSizeChanged { .. }
            | ServerSessionEvent::ReleaseStreamRequested { .. }
            | ServerSessionEvent::PlayStreamFinished { .. }
            | ServerSessionEvent::AcknowledgementReceived { .. }
            | ServerSessionEvent::PingResponseReceived { .. } => {}
        }
        Ok(())
    }

    fn on_media(
        &mut self,
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

    /// fuzz/rtmp_chunks's first find: rml_rtmp's chunk deserializer indexes past a
    /// slice on these bytes. Until the chunk layer is ours (issue 18 item 2) the panic
    /// is caught and ends the connection with an error; it must never get further.
    #[test]
    fn the_fuzzed_chunk_stream_that_panics_rml_rtmp_ends_the_connection_with_an_error() {
        let input = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/fuzz/rtmp_chunks-rml_rtmp-slice-index.bin"
        ))
        .unwrap();
        let (&size, rest) = input.split_first().unwrap();
        let mut conn = RtmpConnection::new("live").unwrap();
        let mut ended = None;
        for piece in rest.chunks(usize::from(size).max(1) * 16) {
            if let Err(e) = conn.feed(piece, Instant::now()) {
                ended = Some(e);
                break;
            }
        }
        assert!(
            matches!(ended, Some(ConnectionError::Panicked)),
            "{ended:?}"
        );
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
                server: RtmpConnection::new(app).unwrap(),
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
