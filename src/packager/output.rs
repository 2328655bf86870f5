//! What HTTP delivery reads of a stream: the renditions' windows and their playlists,
//! rendered once per change, plus a change signal for blocking requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use tokio::sync::watch;

use super::window::RenditionWindow;
use crate::media::TrackKind;
use crate::streams::StreamDef;

/// A rendered media playlist: the full text and the `_HLS_skip=YES` delta update.
#[derive(Clone, Debug)]
pub struct RenderedPlaylist {
    pub full: Bytes,
    pub delta: Bytes,
}

/// One rendition's window and its current playlists.
pub struct Rendition {
    /// Name of the playlist (`<name>.m3u8`) and of the media directory: `video` and
    /// `audio` for the source, the rung's name for transcoded renditions.
    pub name: String,
    pub kind: TrackKind,
    pub window: RenditionWindow,
    pub playlist: Option<RenderedPlaylist>,
}

impl Rendition {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Name of the source rendition of `kind`.
pub fn source_rendition_name(kind: TrackKind) -> &'static str {
    match kind {
        TrackKind::Video => "video",
        TrackKind::Audio => "audio",
    }
}

/// The published state of a stream.
#[derive(Default)]
pub struct OutputState {
    pub renditions: Vec<Rendition>,
    pub multivariant: Option<Bytes>,
    /// A publisher is connected.
    pub live: bool,
    /// What the transcoding ladder is doing; `None` for passthrough streams.
    pub transcode: Option<TranscodeReport>,
}

/// The transcoding ladder of a stream as admins see it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TranscodeReport {
    /// Profile name.
    pub ladder: String,
    pub state: TranscodeState,
    /// Why the ladder failed or what it skipped.
    pub message: Option<String>,
    pub rungs: Vec<RungReport>,
    pub audio: Vec<AudioRungReport>,
}

/// `running` while the pipeline runs, `failed` after a GStreamer error (the source
/// rendition and audio stay live), `off` between publishers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TranscodeState {
    #[default]
    Off,
    Running,
    Failed,
}

/// One transcoded video rendition.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RungReport {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
    /// Frames dropped because the machine could not keep up, in this publish session.
    pub dropped_frames: u64,
}

/// One transcoded audio rendition.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AudioRungReport {
    pub name: String,
    pub bitrate_kbps: u32,
    pub channels: u32,
}

impl OutputState {
    pub fn rendition(&self, name: &str) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.name() == name)
    }

    pub fn rendition_mut(&mut self, name: &str) -> Option<&mut Rendition> {
        self.renditions.iter_mut().find(|r| r.name == name)
    }
}

/// A stream's output, shared by its packager (writer) and HTTP delivery (readers).
pub struct StreamOutput {
    pub stream: StreamDef,
    state: Mutex<OutputState>,
    /// Bumped after every published change; blocking requests wait on it.
    changed: watch::Sender<u64>,
}

impl StreamOutput {
    pub fn new(stream: StreamDef) -> Self {
        Self {
            stream,
            state: Mutex::new(OutputState::default()),
            changed: watch::Sender::new(0),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Every stream output by slug, shared by the packagers and HTTP delivery.
#[derive(Default)]
pub struct Outputs {
    by_slug: RwLock<HashMap<String, Arc<StreamOutput>>>,
}

impl Outputs {
    pub fn get(&self, slug: &str) -> Option<Arc<StreamOutput>> {
        self.by_slug
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(slug)
            .cloned()
    }

    /// Every stream output, by slug.
    pub fn all(&self) -> Vec<(String, Arc<StreamOutput>)> {
        let map = self.by_slug.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = map
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The output of `stream`, created on first use.
    pub fn get_or_create(&self, stream: &StreamDef) -> Arc<StreamOutput> {
        let mut map = self.by_slug.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(stream.slug.clone())
                .or_insert_with(|| Arc::new(StreamOutput::new(stream.clone()))),
        )
    }
}
