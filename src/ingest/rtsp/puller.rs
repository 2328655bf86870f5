//! One attempt to pull a camera: `DESCRIBE` → `SETUP` → `PLAY` → frames into the hub.
//!
//! The only module of the RTSP ingest that does I/O, through retina's tokio client.
//! Every RTSP step has a time limit; once playing, a camera that delivers no media for
//! the stall timeout has failed. Whatever goes wrong ends this attempt with a
//! [`PullError`] and leaves the rest of the server alone; [`super::supervisor`]
//! decides when to try again.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use retina::client::{
    Credentials, InitialTimestampPolicy, PlayOptions, Session, SessionOptions, SetupOptions,
    Transport,
};
use retina::codec::{CodecItem, ParametersRef};
use tokio_util::sync::CancellationToken;

use super::demux::{RtspDemuxer, RtspMediaError};
use super::source::{RtspSource, RtspTransport};
use super::tracks::{choose_tracks, TrackError};
use crate::media::MediaEvent;
use crate::streams::owner::{Protocol, PublishSession, StreamHandle};
use crate::streams::StreamDef;

/// Time limits of one attempt.
#[derive(Clone, Copy, Debug)]
pub struct PullSettings {
    /// Each of DESCRIBE, SETUP and PLAY must be answered within this.
    pub step_timeout: Duration,
    /// Playing, but no media unit for this long: the camera stalled.
    pub stall_timeout: Duration,
}

/// Why an attempt ended badly. `Display` is redacted: no credentials.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("authentication failed: the camera answered 401 Unauthorized to {step} (check the username and password)")]
    Unauthorized { step: &'static str },
    #[error("{step} not answered within {after:?}")]
    Timeout { step: &'static str, after: Duration },
    /// `message` is retina's, redacted; its first line says what happened, the rest
    /// names the connection and packet.
    #[error("{step}: {message}")]
    Rtsp { step: &'static str, message: String },
    #[error(transparent)]
    Tracks(#[from] TrackError),
    #[error(transparent)]
    Media(#[from] RtspMediaError),
    #[error("no media for {0:?}: the camera stalled")]
    Stalled(Duration),
    #[error("the camera ended the session")]
    Ended,
    #[error("another publisher took the stream over")]
    Superseded,
}

impl PullError {
    /// The first line of the message: what the API shows as `last_error`, and what
    /// tells one failure from another for logging.
    pub fn summary(&self) -> String {
        let text = self.to_string();
        text.lines().next().unwrap_or_default().trim().to_owned()
    }

    fn rtsp(step: &'static str, e: &retina::Error, source: &RtspSource) -> Self {
        if e.status_code() == Some(401) {
            return PullError::Unauthorized { step };
        }
        PullError::Rtsp {
            step,
            message: source.redact(&e.to_string()),
        }
    }
}

/// How an attempt ended without error.
#[derive(Debug, PartialEq, Eq)]
pub enum PullEnd {
    Shutdown,
}

/// Pulls `source` into `stream` until it fails or `shutdown` is cancelled. `on_live`
/// is called once, when the first media unit goes to the stream (the publish session
/// starts there, so a camera that never delivers never shows as live).
pub async fn pull(
    stream: &StreamDef,
    source: &RtspSource,
    hub: &StreamHandle,
    settings: PullSettings,
    shutdown: &CancellationToken,
    on_live: &mut (dyn FnMut() + Send),
) -> Result<PullEnd, PullError> {
    tokio::select! {
        _ = shutdown.cancelled() => Ok(PullEnd::Shutdown),
        r = run(stream, source, hub, settings, on_live) => r.map(|never| match never {}),
    }
}

async fn step<T>(
    name: &'static str,
    limit: Duration,
    source: &RtspSource,
    fut: impl std::future::Future<Output = Result<T, retina::Error>>,
) -> Result<T, PullError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(PullError::rtsp(name, &e, source)),
        Err(_) => Err(PullError::Timeout {
            step: name,
            after: limit,
        }),
    }
}

enum Never {}

async fn run(
    stream: &StreamDef,
    source: &RtspSource,
    hub: &StreamHandle,
    settings: PullSettings,
    on_live: &mut (dyn FnMut() + Send),
) -> Result<Never, PullError> {
    let mut options =
        SessionOptions::default().user_agent(format!("panocast/{}", env!("CARGO_PKG_VERSION")));
    if let Some(c) = source.credentials() {
        options = options.creds(Some(Credentials {
            username: c.username.clone(),
            password: c.password.clone(),
        }));
    }
    let limit = settings.step_timeout;
    let mut session = step(
        "DESCRIBE",
        limit,
        source,
        Session::describe(source.url().clone(), options),
    )
    .await?;
    let tracks = choose_tracks(
        session
            .streams()
            .iter()
            .map(|s| (s.media(), s.encoding_name())),
    )?;
    if let Some(i) = tracks.audio_skipped {
        let encoding = session
            .streams()
            .get(i)
            .map(|s| s.encoding_name().to_owned());
        tracing::info!(stream = %stream.slug, ?encoding, "RTSP audio is not AAC; pulling video only");
    }
    let transport = match source.transport() {
        RtspTransport::Tcp => Transport::Tcp(Default::default()),
        RtspTransport::Udp => Transport::Udp(Default::default()),
    };
    for i in std::iter::once(tracks.video).chain(tracks.audio) {
        let setup = SetupOptions::default().transport(transport.clone());
        step("SETUP", limit, source, session.setup(i, setup)).await?;
    }
    // Cameras that get RTP-Info wrong are common; fall back to "first packet is NPT 0".
    let play = PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive);
    let playing = step("PLAY", limit, source, session.play(play)).await?;
    let mut demuxed = playing
        .demuxed()
        .map_err(|e| PullError::rtsp("PLAY", &e, source))?;

    let mut demux = RtspDemuxer::new();
    let mut out = Output {
        source,
        hub,
        publish: None,
        pending: Vec::new(),
        on_live,
    };
    let mut audio = tracks.audio;
    // Parameters the SDP already carried (sprop-parameter-sets, AAC config=).
    let video_clock = demuxed
        .streams()
        .get(tracks.video)
        .map_or(90_000, |s| s.clock_rate_hz());
    if let Some(ParametersRef::Video(p)) = demuxed
        .streams()
        .get(tracks.video)
        .and_then(|s| s.parameters())
    {
        if let Some(ev) = demux.video_parameters(tracks.video_codec, p.extra_data(), video_clock)? {
            out.emit(ev).await?;
        }
    }
    if let Some(i) = audio {
        let asc = match demuxed.streams().get(i).and_then(|s| s.parameters()) {
            Some(ParametersRef::Audio(p)) => Some(p.extra_data().to_vec()),
            _ => None,
        };
        match asc.map(|asc| demux.audio_parameters(&asc)) {
            Some(Ok(ev)) => {
                if let Some(ev) = ev {
                    out.emit(ev).await?;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(stream = %stream.slug, error = %e, "RTSP audio dropped");
                audio = None;
            }
            None => {
                tracing::warn!(stream = %stream.slug, "RTSP audio has no AAC config; pulling video only");
                audio = None;
            }
        }
    }

    let stall = settings.stall_timeout;
    let mut last_media = Instant::now();
    let result = loop {
        let superseded = async {
            match &out.publish {
                Some(p) => p.superseded().await,
                None => std::future::pending().await,
            }
        };
        let item = tokio::select! {
            _ = tokio::time::sleep_until((last_media + stall).into()) => {
                break PullError::Stalled(stall);
            }
            _ = superseded => break PullError::Superseded,
            item = demuxed.next() => item,
        };
        let event = match item {
            None => break PullError::Ended,
            Some(Err(e)) => break PullError::rtsp("PLAY", &e, source),
            Some(Ok(CodecItem::VideoFrame(frame))) if frame.stream_id() == tracks.video => {
                if frame.has_new_parameters() {
                    if let Some(ParametersRef::Video(p)) = demuxed
                        .streams()
                        .get(tracks.video)
                        .and_then(|s| s.parameters())
                    {
                        match demux.video_parameters(
                            tracks.video_codec,
                            p.extra_data(),
                            video_clock,
                        ) {
                            Ok(Some(ev)) => {
                                if let Err(e) = out.emit(ev).await {
                                    break e;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => break e.into(),
                        }
                    }
                }
                let pts = frame.timestamp().elapsed();
                let loss = frame.loss();
                match demux.video_frame(pts, video_clock, frame.into_data(), loss, Instant::now()) {
                    Ok(ev) => ev,
                    Err(e) => break e.into(),
                }
            }
            Some(Ok(CodecItem::AudioFrame(frame))) if Some(frame.stream_id()) == audio => {
                let ts = frame.timestamp();
                demux.audio_frame(
                    ts.elapsed(),
                    ts.clock_rate().get(),
                    bytes::Bytes::copy_from_slice(frame.data()),
                    frame.loss(),
                    Instant::now(),
                )
            }
            // RTCP, ONVIF metadata, streams not set up.
            Some(Ok(_)) => None,
        };
        if let Some(ev) = event {
            if let Err(e) = out.emit(ev).await {
                break e;
            }
            if out.publish.is_some() {
                last_media = Instant::now();
            }
        }
    };
    if out.publish.is_some() {
        let s = demux.stats();
        tracing::info!(
            stream = %stream.slug,
            video_units = s.video_units,
            audio_units = s.audio_units,
            lost_packets = s.lost_packets,
            parameter_changes = s.parameter_changes,
            error = %result.summary(),
            "RTSP session ended"
        );
    }
    Err(result)
}

/// Where events go: held until the first unit, then into the stream.
struct Output<'a> {
    source: &'a RtspSource,
    hub: &'a StreamHandle,
    publish: Option<PublishSession>,
    /// Configs that came before the first unit; at most one per track.
    pending: Vec<MediaEvent>,
    on_live: &'a mut (dyn FnMut() + Send),
}

impl Output<'_> {
    async fn emit(&mut self, event: MediaEvent) -> Result<(), PullError> {
        if let Some(publish) = &self.publish {
            return publish.push(event).await.map_err(|_| PullError::Superseded);
        }
        match event {
            MediaEvent::Unit(_) => {
                let publish = self
                    .hub
                    .attach(self.source.peer(), Protocol::Rtsp)
                    .await
                    .map_err(|_| PullError::Superseded)?;
                for config in self.pending.drain(..) {
                    publish
                        .push(config)
                        .await
                        .map_err(|_| PullError::Superseded)?;
                }
                publish
                    .push(event)
                    .await
                    .map_err(|_| PullError::Superseded)?;
                self.publish = Some(publish);
                (self.on_live)();
                Ok(())
            }
            config => {
                let same_kind =
                    |e: &MediaEvent| std::mem::discriminant(e) == std::mem::discriminant(&config);
                self.pending.retain(|e| !same_kind(e));
                self.pending.push(config);
                Ok(())
            }
        }
    }
}
