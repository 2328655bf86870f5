//! On-demand assets: an uploaded file (later a recorded live session) with its
//! renditions, kept in the catalog database with their files under
//! `<data_dir>/assets/<id>/`.
//!
//! - [`store`]: the rows (assets, renditions) and their one writer.
//! - [`files`]: where an asset's files live.
//! - [`extract`]: the GStreamer audio extraction (probe, M4A, MP3), blocking.
//! - [`job`]: the `extract_audio` job that runs it and records the outcome.
//! - [`transcode`]: the `transcode_hls` job: an upload becomes on-demand HLS.
//! - [`settle`]: what an asset becomes once its jobs have run (one rule).
//! - [`events`]: the asset lifecycle events.
//! - [`service`]: what the API does with assets (create from a file, delete).
//! - [`spherical`]: the projection a file's own metadata declares (`sv3d`/`st3d`).

pub mod events;
pub mod extract;
pub mod files;
pub mod job;
pub mod service;
pub mod settle;
pub mod spherical;
pub mod store;
pub mod transcode;

use serde::Serialize;
use utoipa::ToSchema;

use crate::streams::{Orientation, Projection, Visibility};

/// Where an asset came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetSource {
    Upload,
    /// A recorded live session (recordings arrive later).
    LiveSession,
}

impl AssetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetSource::Upload => "upload",
            AssetSource::LiveSession => "live_session",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "upload" => Some(AssetSource::Upload),
            "live_session" => Some(AssetSource::LiveSession),
            _ => None,
        }
    }
}

/// Whether an asset can be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetState {
    /// Its jobs are not done yet.
    Preparing,
    Ready,
    /// `message` says why and what to do.
    Errored,
}

impl AssetState {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetState::Preparing => "preparing",
            AssetState::Ready => "ready",
            AssetState::Errored => "errored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "preparing" => Some(AssetState::Preparing),
            "ready" => Some(AssetState::Ready),
            "errored" => Some(AssetState::Errored),
            _ => None,
        }
    }
}

/// What a rendition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenditionKind {
    /// The on-demand HLS presentation, played at `/vod/<asset>/index.m3u8`.
    Hls,
    /// The audio in an MP4 (`.m4a`): AAC, copied when the source's is AAC.
    AudioM4a,
    /// The audio as MP3 (LAME, 192 kb/s CBR).
    AudioMp3,
}

impl RenditionKind {
    pub const ALL: [RenditionKind; 3] = [
        RenditionKind::Hls,
        RenditionKind::AudioM4a,
        RenditionKind::AudioMp3,
    ];
    /// The renditions made by audio extraction.
    pub const AUDIO: [RenditionKind; 2] = [RenditionKind::AudioM4a, RenditionKind::AudioMp3];

    pub fn as_str(self) -> &'static str {
        match self {
            RenditionKind::Hls => "hls",
            RenditionKind::AudioM4a => "audio_m4a",
            RenditionKind::AudioMp3 => "audio_mp3",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Where a ready rendition of asset `id` is fetched.
    pub fn url(self, id: &str) -> String {
        match self {
            RenditionKind::Hls => format!("/vod/{id}/index.m3u8"),
            _ => format!("/api/v1/assets/{id}/{}", self.file_name()),
        }
    }

    /// The file name under the asset's folder, and the download URL's last segment.
    pub fn file_name(self) -> &'static str {
        match self {
            RenditionKind::Hls => "hls/index.m3u8",
            RenditionKind::AudioM4a => "audio.m4a",
            RenditionKind::AudioMp3 => "audio.mp3",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            RenditionKind::Hls => "application/vnd.apple.mpegurl",
            RenditionKind::AudioM4a => "audio/mp4",
            RenditionKind::AudioMp3 => "audio/mpeg",
        }
    }
}

/// Whether a rendition can be downloaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenditionState {
    Pending,
    Ready,
    Errored,
}

impl RenditionState {
    pub fn as_str(self) -> &'static str {
        match self {
            RenditionState::Pending => "pending",
            RenditionState::Ready => "ready",
            RenditionState::Errored => "errored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(RenditionState::Pending),
            "ready" => Some(RenditionState::Ready),
            "errored" => Some(RenditionState::Errored),
            _ => None,
        }
    }
}

/// One rendition of an asset.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Rendition {
    pub kind: RenditionKind,
    pub state: RenditionState,
    /// Bytes, once ready.
    pub size_bytes: Option<u64>,
    /// Where to download it, once ready.
    pub url: Option<String>,
    /// Why it failed.
    pub message: Option<String>,
}

/// An on-demand asset.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Asset {
    /// `as_…`, opaque.
    pub id: String,
    pub source: AssetSource,
    pub title: String,
    pub owner_id: Option<String>,
    pub visibility: Visibility,
    pub projection: Projection,
    pub orientation: Orientation,
    /// Seconds, once probed.
    pub duration_s: Option<f64>,
    pub state: AssetState,
    /// Why an errored asset failed, for a person (or, for a recording cut short by a
    /// crash, that it was).
    pub message: Option<String>,
    pub renditions: Vec<Rendition>,
    /// The stream a recording was made of (`st_…`); absent for uploads.
    pub stream_id: Option<String>,
    /// The live session a recording holds (`ls_…`); absent for uploads.
    pub live_session_id: Option<String>,
    /// The live session is still being recorded.
    pub recording: bool,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new asset is made from.
#[derive(Clone, Debug)]
pub struct NewAsset {
    pub title: String,
    pub owner_id: String,
    pub visibility: Visibility,
    /// As the client said; `None`: what the file's spherical metadata says, else
    /// `equirect`.
    pub projection: Option<Projection>,
    pub orientation: Orientation,
    /// The client's file name (display only; never used as a path).
    pub filename: String,
}

/// What a new recording is made from: the stream's record when its live session starts.
#[derive(Clone, Debug)]
pub struct NewRecording {
    pub title: String,
    pub owner_id: Option<String>,
    pub visibility: Visibility,
    pub projection: Projection,
    pub orientation: Orientation,
    pub stream_id: String,
    pub live_session_id: String,
}

/// The job kind that makes the audio renditions.
pub const EXTRACT_AUDIO: &str = "extract_audio";
/// Attempts of an extraction before it fails (bad input fails at once).
pub const EXTRACT_ATTEMPTS: u32 = 3;
/// The job kind that makes an upload's `hls` rendition.
pub const TRANSCODE_HLS: &str = "transcode_hls";
/// Attempts of a transcode before it fails (bad input fails at once).
pub const TRANSCODE_ATTEMPTS: u32 = 3;

/// A file name for `Content-Disposition` from a title: ASCII letters, digits, `-`,
/// `_`, `.` and spaces kept, anything else `_`, at most 80 characters, never empty
/// or a dot file.
pub fn safe_file_name(title: &str, ext: &str) -> String {
    let mut stem: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    stem = stem.trim().trim_matches('_').to_string();
    if stem.is_empty() {
        stem = "audio".into();
    }
    format!("{stem}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(safe_file_name("My talk", "mp3"), "My talk.mp3");
        assert_eq!(safe_file_name("../../etc/passwd", "mp3"), "etc_passwd.mp3");
        assert_eq!(safe_file_name("\"x\";\r\n", "m4a"), "x.m4a");
        assert_eq!(safe_file_name("", "mp3"), "audio.mp3");
        assert_eq!(safe_file_name("été 360°", "mp3"), "t_ 360.mp3");
    }
}
