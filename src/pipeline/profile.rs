//! Ladder profiles: which lower renditions a stream gets, as the config file names
//! them, and the plan for one publisher's actual source (pure, no GStreamer).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::streams::Projection;

/// Name of the profile every stream has unless it names another: no rungs.
pub const PASSTHROUGH: &str = "default";

/// The codec a rung is encoded in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RungCodec {
    /// x264: every player decodes it.
    #[default]
    H264,
    /// x265: half the bits for the same picture; Apple Vision Pro plays 360 natively only
    /// in HEVC.
    H265,
}

/// x264 speed presets, fastest first; x265 names its presets the same.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Rendition names the source renditions and the multivariant playlist already use.
const RESERVED_NAMES: [&str; 3] = ["video", "audio", "index"];

/// One named ladder: the source is always passed through; these rungs are encoded
/// from it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderProfile {
    /// x264 speed preset of rungs that do not name their own.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Video rungs, largest first. Sizes are per eye for stereo layouts.
    #[serde(default)]
    pub rungs: Vec<RungConfig>,
    /// Extra AAC renditions made from the source audio.
    #[serde(default)]
    pub audio: Vec<AudioRungConfig>,
}

fn default_preset() -> String {
    "veryfast".into()
}

/// One lower video rendition.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungConfig {
    /// Rendition name: its playlist is `<name>.m3u8`.
    pub name: String,
    /// Frame size of one eye; the height only fixes the shape the profile was made
    /// for, the encoded height follows the source's aspect ratio.
    pub width: u32,
    pub height: u32,
    /// Target (and VBV maximum) bitrate.
    pub bitrate_kbps: u32,
    #[serde(default)]
    pub preset: Option<String>,
    /// `h264` (the default) or `h265`.
    #[serde(default)]
    pub codec: RungCodec,
}

/// One extra audio rendition.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioRungConfig {
    pub name: String,
    pub bitrate_kbps: u32,
    #[serde(default = "default_channels")]
    pub channels: u32,
}

fn default_channels() -> u32 {
    1
}

impl LadderProfile {
    /// Refuses what cannot be encoded or would upscale, with the reason.
    pub fn validate(&self, profile: &str) -> Result<(), String> {
        let err = |msg: String| Err(format!("ladder {profile}: {msg}"));
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return err(format!(
                "unknown x264 preset {:?} (one of {})",
                self.preset,
                X264_PRESETS.join(", ")
            ));
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, rung) in self.rungs.iter().enumerate() {
            check_name(&rung.name, &names).or_else(&err)?;
            names.push(&rung.name);
            if !(32..=8192).contains(&rung.width)
                || !(32..=8192).contains(&rung.height)
                || rung.width % 2 != 0
                || rung.height % 2 != 0
            {
                return err(format!(
                    "rung {}: width and height must be even and 32..=8192",
                    rung.name
                ));
            }
            if !(50..=200_000).contains(&rung.bitrate_kbps) {
                return err(format!(
                    "rung {}: bitrate_kbps must be 50..=200000",
                    rung.name
                ));
            }
            if let Some(p) = &rung.preset {
                if !X264_PRESETS.contains(&p.as_str()) {
                    return err(format!("rung {}: unknown x264 preset {p:?}", rung.name));
                }
            }
            // Each codec's rungs go down on their own: an H.265 rung may repeat the size
            // of an H.264 one for the players that decode it.
            let previous = self.rungs[..i].iter().rev().find(|r| r.codec == rung.codec);
            if let Some(prev) = previous {
                if rung.width >= prev.width || rung.height >= prev.height {
                    return err(format!(
                        "rung {} ({}x{}) is not smaller than rung {} ({}x{}): a ladder goes down \
                         from the source and never upscales; list rungs largest first",
                        rung.name, rung.width, rung.height, prev.name, prev.width, prev.height
                    ));
                }
            }
        }
        for a in &self.audio {
            check_name(&a.name, &names).or_else(&err)?;
            names.push(&a.name);
            if !(16..=320).contains(&a.bitrate_kbps) {
                return err(format!("audio {}: bitrate_kbps must be 16..=320", a.name));
            }
            if !(1..=2).contains(&a.channels) {
                return err(format!("audio {}: channels must be 1 or 2", a.name));
            }
        }
        Ok(())
    }

    pub fn is_passthrough(&self) -> bool {
        self.rungs.is_empty() && self.audio.is_empty()
    }
}

fn check_name(name: &str, taken: &[&str]) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid || RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "rendition name {name:?}: use 1-32 characters a-z, 0-9 and -, not video, audio or index"
        ));
    }
    if taken.contains(&name) {
        return Err(format!("rendition name {name:?} is used twice"));
    }
    Ok(())
}

/// The profiles every server has; the config file may add more or replace these.
pub fn builtin_profiles() -> BTreeMap<String, LadderProfile> {
    let rung = |name: &str, width, height, bitrate_kbps| RungConfig {
        name: name.into(),
        width,
        height,
        bitrate_kbps,
        preset: None,
        codec: RungCodec::H264,
    };
    let audio_48k = AudioRungConfig {
        name: "audio-48k".into(),
        bitrate_kbps: 48,
        channels: 1,
    };
    BTreeMap::from([
        (
            PASSTHROUGH.to_string(),
            LadderProfile {
                preset: default_preset(),
                rungs: Vec::new(),
                audio: Vec::new(),
            },
        ),
        (
            // A 4K equirectangular source for headsets on weak Wi-Fi.
            "360".to_string(),
            LadderProfile {
                preset: default_preset(),
                rungs: vec![
                    rung("1280p", 2560, 1280, 8000),
                    rung("960p", 1920, 960, 5000),
                    rung("640p", 1280, 640, 2500),
                ],
                audio: vec![audio_48k.clone()],
            },
        ),
        (
            // A 1920x960 source (phones, 360 cameras in HD mode).
            "360-hd".to_string(),
            LadderProfile {
                preset: default_preset(),
                rungs: vec![rung("640p", 1280, 640, 2500), rung("480p", 960, 480, 1200)],
                audio: vec![audio_48k],
            },
        ),
    ])
}

/// One rung as it will be encoded for a given source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RungPlan {
    pub name: String,
    /// Encoded frame size (both eyes for stereo).
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
    pub preset: String,
    pub codec: RungCodec,
}

/// What a profile means for one source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LadderPlan {
    pub rungs: Vec<RungPlan>,
    /// Rungs left out, with the reason (they would not be smaller than the source).
    pub skipped: Vec<(String, String)>,
}

/// Sizes each rung for a `source_width` x `source_height` source: the rung's width is
/// per eye, so a side-by-side frame is twice as wide; the height keeps the source's
/// aspect ratio (2:1 mono, 1:1 top-bottom, 4:1 side-by-side for equirect). A rung
/// that is not strictly smaller than the source is skipped: the ladder never upscales.
pub fn plan(
    profile: &LadderProfile,
    projection: Projection,
    source_width: u32,
    source_height: u32,
) -> LadderPlan {
    let eyes_across = if projection == Projection::EquirectStereoSbs {
        2
    } else {
        1
    };
    let mut out = LadderPlan::default();
    for rung in &profile.rungs {
        let width = rung.width.saturating_mul(eyes_across);
        let height =
            even(u64::from(width) * u64::from(source_height) / u64::from(source_width.max(1)));
        if width >= source_width || height >= source_height || height < 16 {
            out.skipped.push((
                rung.name.clone(),
                format!(
                    "{width}x{height} is not smaller than the {source_width}x{source_height} source"
                ),
            ));
            continue;
        }
        out.rungs.push(RungPlan {
            name: rung.name.clone(),
            width,
            height,
            bitrate_kbps: rung.bitrate_kbps,
            preset: rung
                .preset
                .clone()
                .unwrap_or_else(|| profile.preset.clone()),
            codec: rung.codec,
        });
    }
    out
}

fn even(v: u64) -> u32 {
    u32::try_from(v & !1).unwrap_or(!1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> LadderProfile {
        builtin_profiles().remove("360").expect("built in")
    }

    #[test]
    fn builtin_profiles_are_valid() {
        for (name, p) in builtin_profiles() {
            p.validate(&name).expect("valid");
        }
    }

    #[test]
    fn a_4k_mono_source_gets_every_rung_at_2_to_1() {
        let plan = plan(&profile(), Projection::Equirect, 3840, 1920);
        let sizes: Vec<(u32, u32)> = plan.rungs.iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(sizes, [(2560, 1280), (1920, 960), (1280, 640)]);
        assert!(plan.skipped.is_empty());
        assert_eq!(plan.rungs[0].preset, "veryfast");
    }

    #[test]
    fn stereo_layouts_keep_their_aspect() {
        let tb = plan(&profile(), Projection::EquirectStereoTb, 3840, 3840);
        assert_eq!((tb.rungs[0].width, tb.rungs[0].height), (2560, 2560));
        let sbs = plan(&profile(), Projection::EquirectStereoSbs, 7680, 1920);
        let sizes: Vec<(u32, u32)> = sbs.rungs.iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(sizes, [(5120, 1280), (3840, 960), (2560, 640)]);
    }

    #[test]
    fn rungs_not_smaller_than_the_source_are_skipped() {
        let plan = plan(&profile(), Projection::Equirect, 1920, 960);
        let names: Vec<&str> = plan.rungs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["640p"]);
        let skipped: Vec<&str> = plan.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(skipped, ["1280p", "960p"]);
    }

    #[test]
    fn an_upscaling_or_malformed_profile_is_refused() {
        let mut p = profile();
        p.rungs.swap(0, 2);
        let e = p.validate("up").expect_err("upscales");
        assert!(e.contains("upscale"), "{e}");
        let mut p = profile();
        p.rungs[1].name = "video".into();
        assert!(p.validate("x").is_err());
        let mut p = profile();
        p.rungs[1].width = 1921;
        assert!(p.validate("x").is_err());
        let mut p = profile();
        p.preset = "turbo".into();
        assert!(p.validate("x").is_err());
        let mut p = profile();
        p.audio[0].name = "640p".into();
        assert!(p.validate("x").unwrap_err().contains("twice"));
    }

    #[test]
    fn h265_rungs_go_down_on_their_own() {
        let mut p = profile();
        let mut hevc = p.rungs[1].clone();
        hevc.name = "960p-hevc".into();
        hevc.codec = RungCodec::H265;
        // The size of an H.264 rung above it, in the other codec: fine.
        p.rungs.push(hevc.clone());
        p.validate("x")
            .expect("an H.265 rung beside the H.264 ones");
        let plan = plan(&p, Projection::Equirect, 3840, 1920);
        assert_eq!(plan.rungs[3].codec, RungCodec::H265);
        // A second H.265 rung as large as the first: refused.
        hevc.name = "960p-hevc-2".into();
        p.rungs.push(hevc);
        assert!(p.validate("x").unwrap_err().contains("upscale"));
    }
}
