//! A stream as players and the packager see it.

use serde::{Deserialize, Serialize};

/// How the video frame maps onto the viewing sphere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Projection {
    /// Ordinary rectangular video.
    Flat,
    /// Mono 360° equirectangular (2:1).
    #[default]
    Equirect,
    /// Stereo 360°, left eye on top (1:1).
    EquirectStereoTb,
    /// Stereo 360°, left eye on the left (4:1).
    EquirectStereoSbs,
}

impl Projection {
    pub fn is_spherical(self) -> bool {
        !matches!(self, Projection::Flat)
    }

    pub fn is_stereo(self) -> bool {
        matches!(
            self,
            Projection::EquirectStereoTb | Projection::EquirectStereoSbs
        )
    }

    /// The HLS `REQ-VIDEO-LAYOUT` value, `None` for flat video (draft-pantos-hls-rfc8216bis
    /// 4.4.6.2: mono/rectilinear is the default and is not written).
    pub fn req_video_layout(self) -> Option<&'static str> {
        match self {
            Projection::Flat => None,
            Projection::Equirect => Some("PROJ-EQUI"),
            Projection::EquirectStereoTb | Projection::EquirectStereoSbs => {
                Some("CH-STEREO/PROJ-EQUI")
            }
        }
    }
}

/// Initial view direction in degrees, written into the `prhd` box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Orientation {
    #[serde(default)]
    pub yaw: f64,
    #[serde(default)]
    pub pitch: f64,
    #[serde(default)]
    pub roll: f64,
}

/// What the server knows of one stream, without its secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamDef {
    /// Public name used in playback URLs: `[a-z0-9-]`, 1–64 characters.
    pub slug: String,
    pub projection: Projection,
    pub orientation: Orientation,
    /// Transcoding ladder profile name (`default`: the source alone).
    pub ladder: String,
}

/// Whether `slug` is a valid public stream name.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
