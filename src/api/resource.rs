//! What an HLS URL below `/hls/<slug>/` names. Pure parsing of untrusted paths.

/// A rendition's media file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaFile {
    Init(u32),
    Segment(u64),
    Part { msn: u64, part: u32 },
}

impl MediaFile {
    /// Parses `init-3.mp4`, `seg-12.m4s` or `part-12-4.m4s`.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(id) = name
            .strip_prefix("init-")
            .and_then(|s| s.strip_suffix(".mp4"))
        {
            return number(id).map(MediaFile::Init);
        }
        if let Some(msn) = name
            .strip_prefix("seg-")
            .and_then(|s| s.strip_suffix(".m4s"))
        {
            return number(msn).map(MediaFile::Segment);
        }
        let rest = name.strip_prefix("part-")?.strip_suffix(".m4s")?;
        let (msn, part) = rest.split_once('-')?;
        Some(MediaFile::Part {
            msn: number(msn)?,
            part: number(part)?,
        })
    }
}

/// A playlist file name: `index.m3u8` (None) or `<rendition>.m3u8`.
pub fn playlist_name(file: &str) -> Option<Option<&str>> {
    let stem = file.strip_suffix(".m3u8")?;
    if stem == "index" {
        return Some(None);
    }
    (!stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    .then_some(Some(stem))
}

/// Plain decimal digits only: no sign, no spaces, no overflow.
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_file_names() {
        assert_eq!(MediaFile::parse("init-0.mp4"), Some(MediaFile::Init(0)));
        assert_eq!(MediaFile::parse("seg-17.m4s"), Some(MediaFile::Segment(17)));
        assert_eq!(
            MediaFile::parse("part-17-3.m4s"),
            Some(MediaFile::Part { msn: 17, part: 3 })
        );
        for bad in [
            "seg--1.m4s",
            "seg-+1.m4s",
            "part-1.m4s",
            "part-1-x.m4s",
            "init-99999999999.mp4",
            "seg-1.mp4",
            "",
        ] {
            assert_eq!(MediaFile::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn playlist_names() {
        assert_eq!(playlist_name("index.m3u8"), Some(None));
        assert_eq!(playlist_name("video.m3u8"), Some(Some("video")));
        assert_eq!(playlist_name("audio-48k.m3u8"), Some(Some("audio-48k")));
        assert_eq!(playlist_name("../x.m3u8"), None);
        assert_eq!(playlist_name("video.mp4"), None);
    }
}
