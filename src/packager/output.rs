//! What HTTP delivery reads of a stream: the renditions' windows and their playlists,
//! rendered once per change, plus a change signal for blocking requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use tokio::sync::watch;

use super::window::RenditionWindow;
use crate::media::TrackKind;

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
    /// Bumped after every published change of this rendition: the requests held for
    /// it wait here, so a part of another rendition (the audio beside the video, a
    /// rung of the ladder) does not wake them all for nothing.
    pub changed: watch::Sender<u64>,
}

impl Rendition {
    pub fn new(name: &str, kind: TrackKind, window: RenditionWindow) -> Self {
        Self {
            name: name.to_string(),
            kind,
            window,
            playlist: None,
            changed: watch::Sender::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A receiver that sees every later change of this rendition.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn wake(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
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
    /// The stream is gone (deleted): nothing here is to be served any more. Set by
    /// [`StreamOutput::close`]; never cleared.
    pub closed: bool,
    /// What the transcoding ladder is doing; `None` for passthrough streams.
    pub transcode: Option<TranscodeReport>,
    /// Server-added latency of this stream's source parts since the server started.
    pub latency: super::latency::StreamLatency,
    /// Source frames the packager discarded since the server started (audio frames
    /// overlapping audio already packaged, after a publisher's clock stepped back).
    pub discarded_frames: u64,
}

impl OutputState {
    /// Bytes every rendition's window holds.
    pub fn held_bytes(&self) -> u64 {
        self.renditions.iter().map(|r| r.window.held_bytes()).sum()
    }
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
    pub codec: crate::pipeline::profile::RungCodec,
    /// Frames dropped because the machine could not keep up, in this publish session.
    pub dropped_frames: u64,
}

/// One transcoded audio rendition.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AudioRungReport {
    pub name: String,
    pub bitrate_kbps: u32,
    pub channels: u32,
    /// Frames dropped because the machine could not keep up, in this publish session.
    pub dropped_frames: u64,
}

impl OutputState {
    pub fn rendition(&self, name: &str) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.name() == name)
    }

    pub fn rendition_mut(&mut self, name: &str) -> Option<&mut Rendition> {
        self.renditions.iter_mut().find(|r| r.name == name)
    }

    /// Wakes the requests held for rendition `changed`, or for every rendition
    /// (`None`). The stream-wide signal is [`StreamOutput::notify`]'s.
    pub fn wake(&self, changed: Option<&str>) {
        for r in &self.renditions {
            if changed.is_none_or(|name| name == r.name) {
                r.wake();
            }
        }
    }
}

/// A stream's output, shared by its packager (writer) and HTTP delivery (readers).
pub struct StreamOutput {
    slug: String,
    state: Mutex<OutputState>,
    /// Bumped after every published change of any rendition (recordings follow it);
    /// held HLS requests wait on their own rendition's [`Rendition::changed`].
    changed: watch::Sender<u64>,
}

impl StreamOutput {
    pub fn new(slug: &str) -> Self {
        Self {
            slug: slug.to_string(),
            state: Mutex::new(OutputState::default()),
            changed: watch::Sender::new(0),
        }
    }

    /// The stream's public name (for logs; the packager owns everything else).
    pub fn slug(&self) -> &str {
        &self.slug
    }

    pub fn lock(&self) -> MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that sees every later change, of any rendition.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Marks the output gone (`OutputState::closed`) and wakes every held request,
    /// which then sees it closed. Idempotent.
    pub fn close(&self) {
        {
            let mut state = self.lock();
            state.closed = true;
            state.wake(None);
        }
        self.notify();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
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

    /// The output of `slug`, created on first use.
    pub fn get_or_create(&self, slug: &str) -> Arc<StreamOutput> {
        let mut map = self.by_slug.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(slug.to_string())
                .or_insert_with(|| Arc::new(StreamOutput::new(slug))),
        )
    }

    /// Removes the output of `slug` and closes it ([`StreamOutput::close`]), so held
    /// requests wake up; a later [`Outputs::get_or_create`] makes a new one. Returns
    /// the removed output, `None` when there was none.
    pub fn remove(&self, slug: &str) -> Option<Arc<StreamOutput>> {
        let removed = self
            .by_slug
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(slug);
        if let Some(output) = &removed {
            output.close();
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packager::window::WindowConfig;

    #[test]
    fn a_change_wakes_the_requests_of_its_own_rendition_only() {
        let output = StreamOutput::new("cam");
        let window = || {
            RenditionWindow::new(WindowConfig {
                part_target: 0.2,
                segment_target: 2.0,
                window_segments: 10,
                part_hold_back_parts: 3.0,
            })
        };
        let (video, audio, stream) = {
            let mut st = output.lock();
            st.renditions
                .push(Rendition::new("video", TrackKind::Video, window()));
            st.renditions
                .push(Rendition::new("audio", TrackKind::Audio, window()));
            let video = st.rendition("video").expect("video").subscribe();
            let audio = st.rendition("audio").expect("audio").subscribe();
            (video, audio, output.subscribe())
        };
        output.lock().wake(Some("audio"));
        output.notify();
        assert!(!video.has_changed().expect("alive"), "video woken by audio");
        assert!(audio.has_changed().expect("alive"));
        assert!(stream.has_changed().expect("alive"));
        // Closing wakes everyone, whichever rendition they wait for.
        output.close();
        assert!(video.has_changed().expect("alive"));
    }

    #[test]
    fn a_removed_output_is_closed_and_wakes_its_waiters() {
        let outputs = Outputs::default();
        let output = outputs.get_or_create("cam");
        let changes = output.subscribe();
        let removed = outputs.remove("cam").expect("removed");
        assert!(Arc::ptr_eq(&removed, &output));
        assert!(output.is_closed());
        assert!(changes.has_changed().expect("sender alive"));
        assert!(outputs.get("cam").is_none());
        assert!(outputs.remove("cam").is_none());
        // A stream of the same name later is a new, open output.
        assert!(!outputs.get_or_create("cam").is_closed());
    }
}
