//! Turns a recording's folder into an on-demand HLS presentation (blocking): each
//! rendition's journal is read back, its segment files cut to what the journal
//! vouches for, and a VOD media playlist (`EXT-X-PLAYLIST-TYPE:VOD`, `EXT-X-ENDLIST`)
//! written beside it; the multivariant playlist is the live one with only the
//! recorded renditions, so players see the same codecs, bandwidths and 360
//! signaling (`REQ-VIDEO-LAYOUT`) as they did live. Every step can be repeated.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

use super::disk::{init_name, segment_name, write_whole, JOURNAL, LIVE_INDEX};
use super::journal::Recorded;
use crate::packager::media_playlist::RenditionUris;

/// The on-demand multivariant playlist's file name (as live: `index.m3u8`).
pub const INDEX: &str = "index.m3u8";

/// What a finalised recording holds.
#[derive(Debug, PartialEq)]
pub struct Finalised {
    /// Seconds of the longest rendition (video when there is video).
    pub duration_s: f64,
    /// Bytes of media of every rendition.
    pub bytes: u64,
    /// The audio was written as one file for extraction.
    pub has_audio: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FinaliseError {
    #[error("the live session ended before a complete part was recorded")]
    Nothing,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Finalises the recording in `hls`; the audio rendition, when there is one, is also
/// written as one fragmented MP4 at `audio_out` when given (the source of audio
/// extraction; an upload has its own source and passes `None`).
pub fn finalise(hls: &Path, audio_out: Option<&Path>) -> Result<Finalised, FinaliseError> {
    let live_index = match fs::read_to_string(hls.join(LIVE_INDEX)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FinaliseError::Nothing),
        Err(e) => return Err(e.into()),
    };
    let mut kept = Vec::new();
    let mut duration_s: f64 = 0.0;
    let mut bytes = 0;
    let mut has_audio = false;
    let mut names: Vec<String> = fs::read_dir(hls)?
        .filter_map(Result::ok)
        .filter(|e| e.path().join(JOURNAL).is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let dir = hls.join(&name);
        let recorded = repair(
            &dir,
            Recorded::parse(&fs::read_to_string(dir.join(JOURNAL))?),
        )?;
        if recorded.segments.is_empty() {
            continue;
        }
        write_whole(
            &hls.join(format!("{name}.m3u8")),
            media_playlist(&name, &recorded).as_bytes(),
        )?;
        if name == "video" || duration_s == 0.0 {
            duration_s = if name == "video" {
                recorded.duration()
            } else {
                duration_s.max(recorded.duration())
            };
        }
        bytes += recorded.bytes();
        if name == "audio" {
            if let Some(out) = audio_out {
                concatenate(&dir, &recorded, out)?;
            }
            has_audio = true;
        }
        kept.push(name);
    }
    if kept.is_empty() {
        return Err(FinaliseError::Nothing);
    }
    let index = only_renditions(&live_index, &kept);
    if !index.contains("#EXT-X-STREAM-INF") {
        return Err(FinaliseError::Nothing);
    }
    write_whole(&hls.join(INDEX), index.as_bytes())?;
    Ok(Finalised {
        duration_s,
        bytes,
        has_audio,
    })
}

/// The segments whose files hold what the journal says: a file longer than its
/// parts (a part cut by a crash) is cut back; a segment whose file is missing or
/// short ends the rendition there.
fn repair(dir: &Path, mut recorded: Recorded) -> io::Result<Recorded> {
    let mut keep = 0;
    for seg in &recorded.segments {
        let path = dir.join(segment_name(seg.msn));
        let Ok(meta) = fs::metadata(&path) else { break };
        if !dir.join(init_name(seg.init_id)).is_file() || meta.len() < seg.bytes {
            break;
        }
        if meta.len() > seg.bytes {
            OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(seg.bytes)?;
        }
        keep += 1;
    }
    recorded.segments.truncate(keep);
    Ok(recorded)
}

/// The VOD media playlist of rendition `name` (URIs as live: `<name>/seg-<msn>.m4s`).
pub fn media_playlist(name: &str, recorded: &Recorded) -> String {
    let uris = RenditionUris { dir: name };
    let target = recorded
        .segments
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let first = recorded.segments.first().map_or(0, |s| s.msn);
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:9");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    let mut map = None;
    for (i, seg) in recorded.segments.iter().enumerate() {
        if i > 0 && seg.discontinuity {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        if map != Some(seg.init_id) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", uris.init(seg.init_id));
            map = Some(seg.init_id);
        }
        if let Some(pdt) = DateTime::<Utc>::from_timestamp_millis(seg.pdt_ms) {
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                pdt.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
        let _ = writeln!(out, "#EXTINF:{:.5},", seg.duration);
        let _ = writeln!(out, "{}", uris.segment(seg.msn));
    }
    let _ = writeln!(out, "#EXT-X-ENDLIST");
    out
}

/// `multivariant` without the variants and renditions whose playlist is not one of
/// `kept` (`<name>.m3u8`).
pub fn only_renditions(multivariant: &str, kept: &[String]) -> String {
    let keeps = |uri: &str| {
        uri.strip_suffix(".m3u8")
            .is_some_and(|stem| kept.iter().any(|k| k == stem))
    };
    let mut out = String::with_capacity(multivariant.len());
    let mut lines = multivariant.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("#EXT-X-STREAM-INF") {
            let uri = lines.next().unwrap_or_default();
            if keeps(uri.trim()) {
                let _ = writeln!(out, "{line}\n{uri}");
            }
            continue;
        }
        if let Some(uri) = uri_attribute(line) {
            if !keeps(uri) {
                continue;
            }
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

fn uri_attribute(line: &str) -> Option<&str> {
    let rest = &line[line.find("URI=\"")? + 5..];
    Some(&rest[..rest.find('"')?])
}

/// The rendition as one fragmented MP4: its first init segment and every segment
/// made with it, in order.
fn concatenate(dir: &Path, recorded: &Recorded, out: &Path) -> io::Result<()> {
    let Some(init_id) = recorded.segments.first().map(|s| s.init_id) else {
        return Ok(());
    };
    let tmp = crate::assets::files::temp_of(out);
    let mut file = io::BufWriter::new(fs::File::create(&tmp)?);
    file.write_all(&fs::read(dir.join(init_name(init_id)))?)?;
    for seg in recorded.segments.iter().filter(|s| s.init_id == init_id) {
        let mut part = fs::File::open(dir.join(segment_name(seg.msn)))?;
        io::copy(&mut io::Read::take(&mut part, seg.bytes), &mut file)?;
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()?;
    fs::rename(&tmp, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recordings::journal::Segment;

    fn seg(msn: u64, init_id: u32, discontinuity: bool, duration: f64) -> Segment {
        Segment {
            msn,
            init_id,
            discontinuity,
            pdt_ms: 1_700_000_000_000 + msn as i64 * 2000,
            duration,
            bytes: 10,
            parts: 5,
        }
    }

    #[test]
    fn a_vod_playlist_has_every_segment_its_maps_and_discontinuities() {
        let recorded = Recorded {
            inits: vec![0, 1],
            segments: vec![
                seg(3, 0, false, 2.0),
                seg(4, 0, false, 1.6),
                seg(5, 1, true, 2.4),
            ],
        };
        let text = media_playlist("video", &recorded);
        assert!(text.starts_with("#EXTM3U\n"), "{text}");
        for want in [
            "#EXT-X-PLAYLIST-TYPE:VOD\n",
            "#EXT-X-TARGETDURATION:2\n",
            "#EXT-X-MEDIA-SEQUENCE:3\n",
            "#EXT-X-MAP:URI=\"video/init-0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z\n#EXTINF:2.00000,\nvideo/seg-3.m4s\n",
            "video/seg-4.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video/init-1.mp4\"\n",
            "#EXTINF:2.40000,\nvideo/seg-5.m4s\n#EXT-X-ENDLIST\n",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    }

    #[test]
    fn the_multivariant_keeps_only_recorded_renditions() {
        let live = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"audio\",URI=\"audio.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"b\",NAME=\"a64\",URI=\"a64.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=5000000,CODECS=\"avc1.64001f,mp4a.40.2\",REQ-VIDEO-LAYOUT=\"CH-MONO,PROJ-EQUI\",AUDIO=\"a\"\nvideo.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1000000,AUDIO=\"b\"\nr480.m3u8\n";
        let kept = only_renditions(live, &["audio".into(), "video".into()]);
        assert!(kept.contains("URI=\"audio.m3u8\""));
        assert!(!kept.contains("a64.m3u8"));
        assert!(!kept.contains("r480"));
        assert!(kept.contains("REQ-VIDEO-LAYOUT=\"CH-MONO,PROJ-EQUI\",AUDIO=\"a\"\nvideo.m3u8\n"));
    }

    #[test]
    fn a_segment_file_longer_than_its_journal_is_cut_back_and_a_missing_one_ends_the_rendition() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("init-0.mp4"), b"init").expect("init");
        fs::write(dir.path().join("seg-0.m4s"), [1u8; 14]).expect("seg 0");
        let recorded = Recorded {
            inits: vec![0],
            segments: vec![seg(0, 0, false, 2.0), seg(1, 0, false, 2.0)],
        };
        let kept = repair(dir.path(), recorded).expect("repair");
        assert_eq!(kept.segments.len(), 1);
        assert_eq!(
            fs::metadata(dir.path().join("seg-0.m4s"))
                .expect("meta")
                .len(),
            10
        );
        let out = dir.path().join("audio.mp4");
        concatenate(dir.path(), &kept, &out).expect("concatenate");
        assert_eq!(fs::read(&out).expect("read").len(), 14);
    }
}
