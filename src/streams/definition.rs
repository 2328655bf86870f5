//! The stream record: the one type that holds a stream's definition.
//!
//! The catalog stores it, the config file seeds it, the API edits it, and the stream's
//! task hands it (as `Arc<StreamDef>`) to ingest, the ladder and the packager. Nothing
//! else copies its fields into a look-alike struct.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ingest::rtsp::{RtspSource, RtspTransport};

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
    /// Two fisheye lenses back to back, both circles in one frame (raw 360 cameras).
    /// panocast stitches it into mono equirect (see [`DualFisheyeLenses`]): players
    /// receive `equirect`.
    DualFisheye,
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

    /// The name used in config files, the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Projection::Flat => "flat",
            Projection::Equirect => "equirect",
            Projection::EquirectStereoTb => "equirect-stereo-tb",
            Projection::EquirectStereoSbs => "equirect-stereo-sbs",
            Projection::DualFisheye => "dual-fisheye",
        }
    }

    /// The projection of what players receive: a dual-fisheye source is stitched
    /// into equirect before it is packaged.
    pub fn delivered(self) -> Projection {
        match self {
            Projection::DualFisheye => Projection::Equirect,
            p => p,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Projection::Flat,
            Projection::Equirect,
            Projection::EquirectStereoTb,
            Projection::EquirectStereoSbs,
            Projection::DualFisheye,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }

    /// The HLS `REQ-VIDEO-LAYOUT` value, `None` for flat video (draft-pantos-hls-rfc8216bis
    /// 4.4.6.2: mono/rectilinear is the default and is not written).
    pub fn req_video_layout(self) -> Option<&'static str> {
        match self {
            Projection::Flat => None,
            Projection::Equirect | Projection::DualFisheye => Some("PROJ-EQUI"),
            Projection::EquirectStereoTb | Projection::EquirectStereoSbs => {
                Some("CH-STEREO/PROJ-EQUI")
            }
        }
    }
}

/// The picture layout players receive, as the stream info announces it: the delivered
/// projection, or panocast's equi-angular cubemap, which no HLS signaling names
/// (`REQ-VIDEO-LAYOUT` knows only `PROJ-EQUI`), so only the built-in player learns
/// it, from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum VideoLayout {
    #[serde(rename = "flat")]
    Flat,
    #[serde(rename = "equirect")]
    Equirect,
    #[serde(rename = "equirect-stereo-tb")]
    EquirectStereoTb,
    #[serde(rename = "equirect-stereo-sbs")]
    EquirectStereoSbs,
    /// Equi-angular cubemap, 3x2: left, front, right on top; down, back, up below,
    /// turned a quarter (the layout of YouTube's EAC and of ffmpeg `v360`'s `eac`),
    /// with 2 pixels of padding at the frame's left and right edges and above and
    /// below each row.
    #[serde(rename = "eac-3x2")]
    Eac3x2,
}

/// Initial view direction in degrees, written into the `prhd` box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Orientation {
    #[serde(default)]
    pub yaw: f64,
    #[serde(default)]
    pub pitch: f64,
    #[serde(default)]
    pub roll: f64,
}

impl<'de> Deserialize<'de> for Orientation {
    /// An object (or TOML table) only: serde's derive would also take a sequence
    /// (`[]` for all defaults), which the API's schema does not allow.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            #[serde(default)]
            yaw: f64,
            #[serde(default)]
            pitch: f64,
            #[serde(default)]
            roll: f64,
        }
        struct MapOnly;
        impl<'de> serde::de::Visitor<'de> for MapOnly {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with yaw, pitch and roll")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Fields, A::Error> {
                Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        let Fields { yaw, pitch, roll } = d.deserialize_map(MapOnly)?;
        Ok(Self { yaw, pitch, roll })
    }
}

impl Orientation {
    /// Looking straight ahead: nothing to signal or to bake.
    pub fn is_neutral(&self) -> bool {
        self.yaw == 0.0 && self.pitch == 0.0 && self.roll == 0.0
    }
}

/// One lens of a dual-fisheye camera: where its image circle lies in the frame.
/// The defaults are those of ffmpeg v360's `dfisheye` (and of `panoproject`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, utoipa::ToSchema)]
// Read through `PartialLens`, which refuses unknown fields; said here so the schema
// says `additionalProperties: false` too.
#[serde(deny_unknown_fields)]
pub struct FisheyeLens {
    /// Field of view across the image circle, degrees (180 reaches the seam).
    #[schema(required = false, minimum = 1, maximum = 360)]
    pub fov: f64,
    /// Centre of the circle, fraction of the frame width (front 0.75, back 0.25).
    #[schema(required = false, minimum = -1, maximum = 2)]
    pub center_x: f64,
    /// Centre of the circle, fraction of the frame height.
    #[schema(required = false, minimum = -1, maximum = 2)]
    pub center_y: f64,
    /// Radius of the circle (where the angle from the lens axis is fov/2), fraction
    /// of the frame width.
    #[schema(required = false, minimum = 0.001, maximum = 4)]
    pub radius: f64,
    /// How far the image is turned clockwise in the frame, degrees.
    #[schema(required = false, minimum = -360, maximum = 360)]
    pub rotation: f64,
}

fn default_lens_fov() -> f64 {
    190.0
}
fn default_lens_center_y() -> f64 {
    0.5
}
fn default_lens_radius() -> f64 {
    0.25
}

/// Front lens fields that may be left out: the front circle is on the right.
fn default_front() -> FisheyeLens {
    FisheyeLens::centred_at(0.75)
}
/// The back circle is on the left.
fn default_back() -> FisheyeLens {
    FisheyeLens::centred_at(0.25)
}
fn default_overlap() -> f64 {
    10.0
}

impl FisheyeLens {
    fn centred_at(center_x: f64) -> Self {
        Self {
            fov: default_lens_fov(),
            center_x,
            center_y: default_lens_center_y(),
            radius: default_lens_radius(),
            rotation: 0.0,
        }
    }

    fn validate(&self, which: &str) -> Result<(), String> {
        let in_range = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        if !in_range(self.fov, 1.0, 360.0) {
            return Err(format!("fisheye.{which}.fov must be degrees in 1..=360"));
        }
        if !in_range(self.center_x, -1.0, 2.0) || !in_range(self.center_y, -1.0, 2.0) {
            return Err(format!(
                "fisheye.{which}.center_x and center_y must be fractions of the frame in -1..=2"
            ));
        }
        if !in_range(self.radius, 0.001, 4.0) {
            return Err(format!(
                "fisheye.{which}.radius must be a fraction of the frame width in 0.001..=4"
            ));
        }
        if !in_range(self.rotation, -360.0, 360.0) {
            return Err(format!(
                "fisheye.{which}.rotation must be degrees in -360..=360"
            ));
        }
        Ok(())
    }
}

/// The lenses of a `dual-fisheye` stream, back to back, and the band across the seam
/// where their pictures are cross-faded. Every field may be left out (the defaults
/// suit a frame of two circles side by side, front on the right, 190° lenses).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DualFisheyeLenses {
    #[serde(default = "default_front", deserialize_with = "front_lens")]
    #[schema(required = false)]
    pub front: FisheyeLens,
    #[serde(default = "default_back", deserialize_with = "back_lens")]
    #[schema(required = false)]
    pub back: FisheyeLens,
    /// Width in degrees of the cross-faded band across the seam (narrowed to what
    /// both lenses see).
    #[serde(default = "default_overlap")]
    #[schema(minimum = 0, maximum = 90)]
    pub overlap: f64,
}

impl Default for DualFisheyeLenses {
    fn default() -> Self {
        Self {
            front: default_front(),
            back: default_back(),
            overlap: default_overlap(),
        }
    }
}

impl DualFisheyeLenses {
    fn validate(&self) -> Result<(), String> {
        self.front.validate("front")?;
        self.back.validate("back")?;
        if !(self.overlap.is_finite() && (0.0..=90.0).contains(&self.overlap)) {
            return Err("fisheye.overlap must be degrees in 0..=90".into());
        }
        Ok(())
    }
}

/// A lens given in part: what it leaves out is the default of that lens (its
/// centre differs between front and back, so serde's per-field defaults cannot say).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialLens {
    fov: Option<f64>,
    center_x: Option<f64>,
    center_y: Option<f64>,
    radius: Option<f64>,
    rotation: Option<f64>,
}

impl PartialLens {
    fn over(self, d: FisheyeLens) -> FisheyeLens {
        FisheyeLens {
            fov: self.fov.unwrap_or(d.fov),
            center_x: self.center_x.unwrap_or(d.center_x),
            center_y: self.center_y.unwrap_or(d.center_y),
            radius: self.radius.unwrap_or(d.radius),
            rotation: self.rotation.unwrap_or(d.rotation),
        }
    }
}

fn front_lens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FisheyeLens, D::Error> {
    Ok(PartialLens::deserialize(d)?.over(default_front()))
}
fn back_lens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FisheyeLens, D::Error> {
    Ok(PartialLens::deserialize(d)?.over(default_back()))
}

/// Whether a stream's live sessions are kept as on-demand assets, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSettings {
    /// Record every live session (the source rendition and audio, as packaged).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Recordings older than this many days are deleted; absent: kept.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 3650)]
    pub retention_days: Option<u32>,
    /// The stream's recordings together stay under this many bytes, the oldest
    /// deleted first; absent: no cap.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1)]
    pub max_bytes: Option<u64>,
}

fn yes() -> bool {
    true
}

/// A whole number. JSON Schema's `integer` includes `30.0`, so a client generated
/// from the document may send it; serde alone would refuse it.
fn whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        })
        .and_then(|v| T::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number in range")))
}

impl Default for RecordSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retention_days: None,
            max_bytes: None,
        }
    }
}

impl RecordSettings {
    /// Not recorded (the default of streams from the config file).
    pub const OFF: RecordSettings = RecordSettings {
        enabled: false,
        retention_days: None,
        max_bytes: None,
    };

    fn validate(&self) -> Result<(), String> {
        if self
            .retention_days
            .is_some_and(|d| !(1..=3650).contains(&d))
        {
            return Err("record.retention_days must be 1..=3650".into());
        }
        if self.max_bytes == Some(0) {
            return Err("record.max_bytes must be at least 1".into());
        }
        Ok(())
    }
}

/// Who may watch a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed and playable by anyone.
    #[default]
    Public,
    /// Playable by anyone with the URL, absent from public lists.
    Unlisted,
    /// Playable only with a playback token.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Visibility::Public),
            "unlisted" => Some(Visibility::Unlisted),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

/// A password or other credential. It is deserialized like a string but has no
/// `Serialize` and its `Debug` prints `<redacted>`, so it cannot reach a log line or an
/// API answer by accident; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a stream's media comes from.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StreamSource {
    /// An encoder publishes to `rtmp://HOST/<app>/<key>` (the default).
    #[default]
    RtmpPush,
    /// panocast pulls an RTSP camera for as long as the stream is enabled.
    RtspPull(RtspPull),
}

impl StreamSource {
    pub fn kind(&self) -> &'static str {
        match self {
            StreamSource::RtmpPush => "rtmp-push",
            StreamSource::RtspPull(_) => "rtsp-pull",
        }
    }
}

/// An RTSP camera. Credentials go either in the URL userinfo or in `username` and
/// `password`; they are never logged and never shown.
#[derive(Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RtspPull {
    /// `rtsp://[user[:password]@]host[:port]/path`.
    pub url: String,
    #[serde(default)]
    pub transport: RtspTransport,
    #[serde(default)]
    pub username: Option<String>,
    /// Write-only: never returned or logged.
    #[serde(default)]
    #[schema(value_type = Option<String>, write_only)]
    pub password: Option<Secret>,
}

impl RtspPull {
    /// The parsed source (URL without userinfo, credentials apart).
    pub fn source(&self) -> Result<RtspSource, crate::ingest::rtsp::source::SourceError> {
        RtspSource::new(
            &self.url,
            self.username.as_deref(),
            self.password.as_ref().map(Secret::expose),
            self.transport,
        )
    }

    /// The URL with any userinfo removed, for logs and the API.
    pub fn public_url(&self) -> String {
        crate::ingest::rtsp::source::redact_userinfo(&self.url)
    }

    /// Whether a password is set, in the URL or apart.
    pub fn has_password(&self) -> bool {
        self.password.is_some() || url::Url::parse(&self.url).is_ok_and(|u| u.password().is_some())
    }
}

impl fmt::Debug for RtspPull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspPull")
            .field("url", &self.public_url())
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// A stream's source as the API shows it: no password, and the URL without userinfo.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceView {
    /// `rtmp-push` (an encoder publishes with the stream key) or `rtsp-pull`.
    pub kind: &'static str,
    /// The camera URL without credentials (`rtsp-pull`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<RtspTransport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Whether a password is set (it is write-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_password: Option<bool>,
}

impl SourceView {
    /// Serializes `source` as its view (for `#[serde(serialize_with)]`).
    fn serialize<S: serde::Serializer>(source: &StreamSource, out: S) -> Result<S::Ok, S::Error> {
        SourceView::from(source).serialize(out)
    }
}

impl From<&StreamSource> for SourceView {
    fn from(source: &StreamSource) -> Self {
        match source {
            StreamSource::RtmpPush => SourceView {
                kind: source.kind(),
                url: None,
                transport: None,
                username: None,
                has_password: None,
            },
            StreamSource::RtspPull(pull) => SourceView {
                kind: source.kind(),
                url: Some(pull.public_url()),
                transport: Some(pull.transport),
                username: pull.username.clone().or_else(|| {
                    url::Url::parse(&pull.url)
                        .ok()
                        .map(|u| u.username().to_string())
                        .filter(|u| !u.is_empty())
                }),
                has_password: Some(pull.has_password()),
            },
        }
    }
}

/// Default of [`StreamDef::reconnect_window_s`].
pub const DEFAULT_RECONNECT_WINDOW_S: u32 = 60;
/// Longest reconnect window a stream may ask for (one hour).
pub const MAX_RECONNECT_WINDOW_S: u32 = 3600;

/// Everything panocast knows of a stream, except its key (only a hash is stored).
/// Serialized, it is the record as the API shows it: the source without credentials.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = StreamRecord)]
pub struct StreamDef {
    /// `st_…`, generated by the catalog.
    pub id: String,
    /// Public name used in playback URLs: `[a-z0-9-]`, 1–64 characters, fixed for the
    /// life of the stream.
    pub slug: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// User id of the owner; absent for streams imported from the config file.
    #[serde(rename = "owner")]
    pub owner_id: Option<String>,
    pub projection: Projection,
    /// Initial view direction in degrees.
    pub orientation: Orientation,
    /// The lenses of a `dual-fisheye` source (ignored for other projections).
    pub fisheye: DualFisheyeLenses,
    /// Turn the pictures themselves by `orientation` (for players that ignore the
    /// projection header); the signalled orientation is then neutral. Every
    /// rendition is transcoded.
    pub bake_orientation: bool,
    /// Deliver every rendition as an equi-angular cubemap (3x2, see `layout` of the
    /// stream info) instead of equirect: every pixel covers about the same angle, so
    /// the same bitrate looks sharper. Only panocast's player shows it as a sphere;
    /// the variants carry no 360 signaling. Needs a mono 360 projection; every
    /// rendition is transcoded; applies from the next publisher.
    pub cubemap: bool,
    /// Transcoding ladder profile (`default`: the source alone). A change applies
    /// from the next publisher on; while the current one runs another ladder,
    /// `pending_ladder` says so.
    pub ladder: String,
    pub visibility: Visibility,
    /// A disabled stream refuses publishers and is not pulled.
    pub enabled: bool,
    /// A publisher that comes back within this many seconds continues the same live
    /// session (one playlist, a discontinuity); after it the session ends.
    pub reconnect_window_s: u32,
    /// Recording of live sessions (on by default for streams made over the API).
    pub record: RecordSettings,
    /// Where the media comes from (credentials are never shown).
    #[serde(serialize_with = "SourceView::serialize")]
    #[schema(value_type = SourceView)]
    pub source: StreamSource,
    /// RFC 3339.
    pub scheduled_start: Option<String>,
    pub scheduled_end: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

impl StreamDef {
    /// A new stream named `slug` with every default; the catalog fills `id` and the
    /// times when it stores it.
    pub fn new(slug: &str) -> Self {
        Self {
            id: String::new(),
            slug: slug.to_string(),
            title: slug.to_string(),
            description: String::new(),
            tags: Vec::new(),
            owner_id: None,
            projection: Projection::Equirect,
            orientation: Orientation::default(),
            fisheye: DualFisheyeLenses::default(),
            bake_orientation: false,
            cubemap: false,
            ladder: crate::pipeline::profile::PASSTHROUGH.into(),
            visibility: Visibility::Public,
            enabled: true,
            reconnect_window_s: DEFAULT_RECONNECT_WINDOW_S,
            record: RecordSettings::default(),
            source: StreamSource::RtmpPush,
            scheduled_start: None,
            scheduled_end: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// Whether the media a player receives depends on anything that differs between
    /// `self` and `other` (the 360 boxes of the init segment, REQ-VIDEO-LAYOUT).
    pub fn layout_differs(&self, other: &StreamDef) -> bool {
        self.projection != other.projection
            || self.orientation != other.orientation
            || self.bake_orientation != other.bake_orientation
            || self.cubemap != other.cubemap
    }

    /// The picture layout players receive.
    pub fn video_layout(&self) -> VideoLayout {
        if self.cubemap {
            return VideoLayout::Eac3x2;
        }
        match self.projection.delivered() {
            Projection::Flat => VideoLayout::Flat,
            Projection::EquirectStereoTb => VideoLayout::EquirectStereoTb,
            Projection::EquirectStereoSbs => VideoLayout::EquirectStereoSbs,
            Projection::Equirect | Projection::DualFisheye => VideoLayout::Equirect,
        }
    }

    /// Whether the decoded pictures go through `panoproject` before any encoder: a
    /// dual-fisheye source is stitched, a baked orientation turns the sphere, a
    /// cubemap is made. Such a stream has no passthrough rendition.
    pub fn reprojects(&self) -> bool {
        self.projection == Projection::DualFisheye
            || self.cubemap
            || (self.bake_orientation
                && self.projection.delivered() == Projection::Equirect
                && !self.orientation.is_neutral())
    }

    /// Refuses what a client must fix, with the reason.
    pub fn validate(&self) -> Result<(), String> {
        if !is_valid_slug(&self.slug) {
            return Err("slug needs 1-64 characters a-z, 0-9 and -".into());
        }
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            return Err("title needs 1-200 characters".into());
        }
        if self.description.chars().count() > 5000 {
            return Err("description may have at most 5000 characters".into());
        }
        if self.tags.len() > 20
            || self
                .tags
                .iter()
                .any(|t| t.trim().is_empty() || t.chars().count() > 32)
        {
            return Err("at most 20 tags of 1-32 characters".into());
        }
        let o = self.orientation;
        if ![o.yaw, o.pitch, o.roll]
            .iter()
            .all(|v| v.is_finite() && (-360.0..=360.0).contains(v))
        {
            return Err("orientation angles must be degrees in -360..=360".into());
        }
        self.fisheye.validate()?;
        if self.bake_orientation && self.projection.delivered() != Projection::Equirect {
            return Err(
                "bake_orientation needs a mono 360 projection (equirect or dual-fisheye)".into(),
            );
        }
        if self.cubemap && self.projection.delivered() != Projection::Equirect {
            return Err("cubemap needs a mono 360 projection (equirect or dual-fisheye)".into());
        }
        if self.ladder.is_empty()
            || self.ladder.len() > 64
            || !self
                .ladder
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("ladder needs 1-64 characters a-z, A-Z, 0-9, '-' or '_'".into());
        }
        if self.reconnect_window_s > MAX_RECONNECT_WINDOW_S {
            return Err(format!(
                "reconnect_window_s must be 0..={MAX_RECONNECT_WINDOW_S}"
            ));
        }
        self.record.validate()?;
        if let StreamSource::RtspPull(pull) = &self.source {
            // The error text never contains the password.
            pull.source().map_err(|e| format!("source url: {e}"))?;
        }
        let parse = |name: &str, v: &Option<String>| -> Result<Option<i64>, String> {
            v.as_deref()
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(s)
                        .map(|t| t.timestamp())
                        .map_err(|_| format!("{name} must be an RFC 3339 time"))
                })
                .transpose()
        };
        let start = parse("scheduled_start", &self.scheduled_start)?;
        let end = parse("scheduled_end", &self.scheduled_end)?;
        if let (Some(start), Some(end)) = (start, end) {
            if end <= start {
                return Err("scheduled_end must be after scheduled_start".into());
            }
        }
        Ok(())
    }
}

/// Whether `slug` is a valid public stream name.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {

    #[test]
    fn record_settings_take_whole_numbers_however_written() {
        let parsed: RecordSettings =
            serde_json::from_str(r#"{"retention_days": 30.0, "max_bytes": 88}"#).expect("json");
        assert_eq!(
            (parsed.retention_days, parsed.max_bytes),
            (Some(30), Some(88))
        );
        for bad in [
            r#"{"retention_days": 1.5}"#,
            r#"{"max_bytes": -1}"#,
            r#"{"retention_days": 5000000000}"#,
        ] {
            assert!(
                serde_json::from_str::<RecordSettings>(bad).is_err(),
                "{bad}"
            );
        }
        let toml: RecordSettings =
            toml::from_str("enabled = false\nretention_days = 7").expect("toml");
        assert_eq!((toml.enabled, toml.retention_days), (false, Some(7)));
        assert_eq!(
            serde_json::from_str::<RecordSettings>("{}").expect("{}"),
            RecordSettings::default()
        );
    }

    use super::*;

    #[test]
    fn a_source_password_is_never_printed() {
        let source: StreamSource = toml::from_str(
            r#"kind = "rtsp-pull"
               url = "rtsp://cam.example/live"
               username = "admin"
               password = "hunter2-secret""#,
        )
        .expect("toml");
        let printed = format!("{source:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let StreamSource::RtspPull(pull) = &source else {
            panic!("not a pull source")
        };
        assert!(pull.has_password());
        let in_url = RtspPull {
            url: "rtsp://admin:hunter2-secret@cam.example/live".into(),
            transport: RtspTransport::Tcp,
            username: None,
            password: None,
        };
        assert!(!format!("{in_url:?}").contains("hunter2"));
        assert!(!in_url.public_url().contains("hunter2"));
        assert!(in_url.has_password());
    }

    #[test]
    fn a_lens_given_in_part_keeps_its_own_defaults() {
        let lenses: DualFisheyeLenses =
            toml::from_str("front = { fov = 200 }\nback = { center_y = 0.4 }").expect("toml");
        assert_eq!(lenses.front.fov, 200.0);
        assert_eq!(lenses.front.center_x, 0.75, "front lens: right half");
        assert_eq!(lenses.back.center_x, 0.25, "back lens: left half");
        assert_eq!(lenses.back.center_y, 0.4);
        assert_eq!(lenses.overlap, 10.0);
        assert_eq!(
            serde_json::from_str::<DualFisheyeLenses>("{}").expect("{}"),
            DualFisheyeLenses::default()
        );
        assert!(serde_json::from_str::<DualFisheyeLenses>(r#"{"front": {"zoom": 1}}"#).is_err());
        // What is stored reads back the same.
        let json = serde_json::to_string(&lenses).expect("json");
        assert_eq!(
            serde_json::from_str::<DualFisheyeLenses>(&json).expect("back"),
            lenses
        );
    }

    #[test]
    fn impossible_lenses_and_baking_are_refused() {
        let mut def = StreamDef::new("rig");
        def.projection = Projection::DualFisheye;
        assert_eq!(def.validate(), Ok(()));
        assert!(def.reprojects(), "a dual-fisheye source is always stitched");
        def.fisheye.back.radius = 0.0;
        assert!(def
            .validate()
            .is_err_and(|e| e.contains("fisheye.back.radius")));
        def.fisheye.back.radius = 0.25;
        def.fisheye.front.fov = f64::NAN;
        assert!(def
            .validate()
            .is_err_and(|e| e.contains("fisheye.front.fov")));
        def.fisheye.front.fov = 190.0;
        def.fisheye.overlap = 91.0;
        assert!(def.validate().is_err_and(|e| e.contains("fisheye.overlap")));

        let mut def = StreamDef::new("stereo");
        def.projection = Projection::EquirectStereoTb;
        def.bake_orientation = true;
        assert!(def
            .validate()
            .is_err_and(|e| e.contains("bake_orientation")));
        def.projection = Projection::Equirect;
        assert_eq!(def.validate(), Ok(()));
        assert!(
            !def.reprojects(),
            "nothing to bake at a neutral orientation"
        );
        def.orientation.roll = 5.0;
        assert!(def.reprojects());
    }

    #[test]
    fn an_orientation_is_an_object_only() {
        let o: Orientation = serde_json::from_str(r#"{"yaw": 30}"#).expect("object");
        assert_eq!(o.yaw, 30.0);
        assert!(serde_json::from_str::<Orientation>("[]").is_err());
        assert!(serde_json::from_str::<Orientation>(r#"{"tilt": 1}"#).is_err());
        let t: Orientation = toml::from_str("pitch = -5.0").expect("toml");
        assert_eq!(t.pitch, -5.0);
    }

    #[test]
    fn a_cubemap_needs_a_mono_sphere() {
        let mut def = StreamDef::new("box");
        def.cubemap = true;
        assert_eq!(def.validate(), Ok(()));
        assert!(def.reprojects(), "every rendition is made by panoproject");
        assert_eq!(def.video_layout(), VideoLayout::Eac3x2);
        def.projection = Projection::EquirectStereoSbs;
        assert!(def.validate().is_err_and(|e| e.contains("cubemap")));
    }

    #[test]
    fn validation_names_the_field() {
        let mut def = StreamDef::new("cam");
        assert_eq!(def.validate(), Ok(()));
        def.reconnect_window_s = MAX_RECONNECT_WINDOW_S + 1;
        assert!(def
            .validate()
            .is_err_and(|e| e.contains("reconnect_window_s")));
        let mut def = StreamDef::new("Cam");
        def.title = "x".into();
        assert!(def.validate().is_err_and(|e| e.contains("slug")));
    }
}
