//! A stream as the API shows it: its record (without secrets) and its live state,
//! read from the stream's status snapshot without waiting on the stream.

use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::packager::output::TranscodeReport;
use crate::streams::definition::VideoLayout;
use crate::streams::session::{LifecycleState, LiveSessionInfo};
use crate::streams::status::IngestState;
use crate::streams::StreamDef;

/// A stream as the API shows it: its record and its live state.
#[derive(Serialize, ToSchema)]
pub struct StreamView {
    #[serde(flatten)]
    pub record: StreamDef,
    /// `idle`, `connected` (publisher attached, no segment yet), `active`,
    /// `disconnected` (waiting for the publisher within the reconnect window) or
    /// `disabled`.
    pub state: LifecycleState,
    /// The picture layout players receive: the delivered projection (a dual-fisheye
    /// source arrives as `equirect`), or `eac-3x2` for a `cubemap` stream, which the
    /// playlists cannot signal. Follows the definition: a change of `cubemap`
    /// reaches the pictures with the next publisher.
    pub layout: VideoLayout,
    /// Media is being published now.
    pub live: bool,
    /// What the ingest is doing (`status`: idle, connecting, live with `since`, retrying).
    #[schema(value_type = Object)]
    pub ingest: IngestState,
    /// RFC 3339 start of the current publisher's connection.
    pub live_since: Option<String>,
    /// The current live session, also while waiting for the publisher to return.
    pub session: Option<LiveSessionInfo>,
    /// The ladder chosen since the current publisher started; it applies when the
    /// next publisher starts. Absent when the running ladder is `ladder`.
    pub pending_ladder: Option<String>,
    /// HLS renditions being served (`video`, `audio`, then the ladder's rungs).
    pub renditions: Vec<String>,
    /// What the transcoding ladder does; absent for streams passed through alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcode: Option<TranscodeReport>,
    /// Bits per second arriving now (all renditions, newest complete segment); only
    /// while live.
    pub current_bitrate_bps: Option<u64>,
    /// Multivariant playlist, relative to the server root (private streams: append
    /// `?token=<playback token>`).
    pub playback_url: String,
    /// Player page, relative to the server root.
    pub watch_url: String,
    /// HTML to embed the player.
    pub embed_html: String,
    /// Frames lost on the way to the viewers.
    pub dropped_frames: DroppedFrames,
}

/// Frames a stream lost, by where they were lost.
#[derive(Serialize, ToSchema, Default)]
pub struct DroppedFrames {
    /// Dropped by the transcoding ladder (every video and audio rung) because the
    /// machine could not encode in real time, in this publish session.
    pub transcode: u64,
    /// Source frames discarded before packaging since the server started (audio
    /// overlapping what was already packaged after a publisher's clock stepped back).
    pub ingest: u64,
}

impl DroppedFrames {
    fn of(out: &crate::packager::output::OutputState) -> Self {
        let transcode = out.transcode.as_ref().map_or(0, |t| {
            let video: u64 = t.rungs.iter().map(|r| r.dropped_frames).sum();
            let audio: u64 = t.audio.iter().map(|r| r.dropped_frames).sum();
            video + audio
        });
        DroppedFrames {
            transcode,
            ingest: out.discarded_frames,
        }
    }
}

/// Builds the API view of `record` with its live state.
pub fn view(state: &AppState, record: &StreamDef) -> StreamView {
    let status = state.streams.registry.status(&record.slug);
    let live_since = match &status.ingest {
        IngestState::Live { since } => Some(since.clone()),
        _ => None,
    };
    let live = status.live;
    let (renditions, current_bitrate_bps, transcode, dropped_frames) = state
        .outputs
        .get(&record.slug)
        .map(|o| {
            let out = o.lock();
            let names = out
                .renditions
                .iter()
                .map(|r| r.name().to_string())
                .collect();
            let rates: Vec<u64> = out
                .renditions
                .iter()
                .filter_map(|r| r.window.current_bitrate())
                .collect();
            let current = (live && !rates.is_empty()).then(|| rates.iter().sum());
            (
                names,
                current,
                out.transcode.clone(),
                DroppedFrames::of(&out),
            )
        })
        .unwrap_or_default();
    let pending_ladder = status
        .running_ladder
        .as_ref()
        .filter(|running| **running != record.ladder)
        .map(|_| record.ladder.clone());
    let watch_url = format!("/watch/{}", record.slug);
    StreamView {
        state: if record.enabled {
            status.state
        } else {
            LifecycleState::Disabled
        },
        layout: record.video_layout(),
        live,
        ingest: status.ingest,
        live_since,
        session: status.session,
        pending_ladder,
        renditions,
        current_bitrate_bps,
        transcode,
        playback_url: format!("/hls/{}/index.m3u8", record.slug),
        embed_html: format!(
            "<iframe src=\"{watch_url}\" width=\"960\" height=\"540\" \
             allow=\"fullscreen; autoplay; gyroscope; accelerometer; xr-spatial-tracking\" \
             allowfullscreen></iframe>"
        ),
        watch_url,
        dropped_frames,
        record: record.clone(),
    }
}
