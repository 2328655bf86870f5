//! What an uploaded file's own metadata says of its projection: the Spherical Video V2
//! boxes (`sv3d` with `proj`/`equi`, and `st3d` for stereo) in the sample entry of
//! its first video track, as 360 cameras and editors write them into MP4 and MOV.
//!
//! Our own reader rather than GStreamer's: qtdemux does not expose these boxes, and the
//! 360 boxes are the product (the packager writes the same ones). The file is walked
//! box by box with bounded reads; only `moov` is read whole (at most [`MAX_MOOV`]).
//! Anything malformed reads as "no metadata".

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::streams::Projection;

/// Larger `moov` boxes are not read (an hour of video has a few MB of tables).
const MAX_MOOV: u64 = 64 << 20;

/// The projection the file declares, `None` when it declares none we play (no
/// `sv3d`, or a cubemap or mesh projection).
pub fn projection_of(path: &Path) -> Option<Projection> {
    let moov = read_moov(path)?;
    for trak in children(&moov).filter(|(t, _)| t == b"trak") {
        let mdia = find(trak.1, b"mdia")?;
        let is_video = find(mdia, b"hdlr").is_some_and(|h| h.get(8..12) == Some(b"vide"));
        if !is_video {
            continue;
        }
        let stbl = find(find(mdia, b"minf")?, b"stbl")?;
        let stsd = find(stbl, b"stsd")?;
        // Full box (4) and entry count (4), then the first sample entry: 8 bytes of
        // box header and 78 of VisualSampleEntry fields before its child boxes.
        let (_, entry) = children(stsd.get(8..)?).next()?;
        return from_sample_entry(entry.get(78..)?);
    }
    None
}

fn from_sample_entry(entry_children: &[u8]) -> Option<Projection> {
    let sv3d = find(entry_children, b"sv3d")?;
    let proj = find(sv3d, b"proj")?;
    find(proj, b"equi")?;
    // st3d: full box (4), then stereo_mode: 0 mono, 1 top-bottom, 2 left-right.
    let stereo = find(entry_children, b"st3d")
        .and_then(|b| b.get(4).copied())
        .unwrap_or(0);
    match stereo {
        0 => Some(Projection::Equirect),
        1 => Some(Projection::EquirectStereoTb),
        2 => Some(Projection::EquirectStereoSbs),
        _ => None,
    }
}

/// The body of the top-level `moov` box, wherever it is in the file.
fn read_moov(path: &Path) -> Option<Vec<u8>> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut at = 0u64;
    while at + 8 <= len {
        file.seek(SeekFrom::Start(at)).ok()?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8]).ok()?;
        let size32 = u64::from(u32::from_be_bytes(header[0..4].try_into().ok()?));
        let (size, header_len) = match size32 {
            0 => (len - at, 8),
            1 => {
                file.read_exact(&mut header[8..16]).ok()?;
                (u64::from_be_bytes(header[8..16].try_into().ok()?), 16)
            }
            n => (n, 8),
        };
        if size < header_len || at + size > len {
            return None;
        }
        if &header[4..8] == b"moov" {
            let body = size - header_len;
            if body > MAX_MOOV {
                return None;
            }
            let mut moov = vec![0u8; usize::try_from(body).ok()?];
            file.read_exact(&mut moov).ok()?;
            return Some(moov);
        }
        at += size;
    }
    None
}

/// The boxes that tile `data` (32-bit sizes only: inside `moov` nothing is larger),
/// stopping at the first that does not fit.
fn children(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = usize::try_from(u32::from_be_bytes(data.get(0..4)?.try_into().ok()?)).ok()?;
        let fourcc: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let body = data.get(8..size)?;
        data = &data[size..];
        Some((fourcc, body))
    })
}

fn find<'a>(data: &'a [u8], fourcc: &[u8; 4]) -> Option<&'a [u8]> {
    children(data).find(|(t, _)| t == fourcc).map(|(_, b)| b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{AvcConfig, VideoConfig};
    use crate::packager::fmp4::{video_init_segment, VideoInit};
    use crate::streams::Orientation;
    use bytes::Bytes;

    fn init(projection: Projection) -> Bytes {
        let sps = Bytes::from_static(&[0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9]);
        let pps = Bytes::from_static(&[0x68, 0xEB, 0xE3, 0xCB]);
        let mut record = vec![1, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0, sps.len() as u8];
        record.extend_from_slice(&sps);
        record.extend_from_slice(&[1, 0, pps.len() as u8]);
        record.extend_from_slice(&pps);
        let config = VideoConfig::Avc(AvcConfig {
            record: Bytes::from(record),
            sps: vec![sps],
            pps: vec![pps],
            profile_idc: 0x64,
            constraint_flags: 0,
            level_idc: 0x1F,
            width: 1920,
            height: 960,
            frame_rate: Some(30.0),
        });
        video_init_segment(&VideoInit {
            track_id: 1,
            timescale: 90_000,
            config: &config,
            projection,
            orientation: Orientation::default(),
        })
    }

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, bytes).expect("write");
        f
    }

    #[test]
    fn the_projection_written_into_a_file_is_read_back() {
        for projection in [
            Projection::Equirect,
            Projection::EquirectStereoTb,
            Projection::EquirectStereoSbs,
        ] {
            let f = file_with(&init(projection));
            assert_eq!(projection_of(f.path()), Some(projection), "{projection:?}");
        }
        let flat = file_with(&init(Projection::Flat));
        assert_eq!(projection_of(flat.path()), None);
    }

    #[test]
    fn truncated_or_garbage_files_say_nothing() {
        let whole = init(Projection::Equirect);
        for cut in [0, 7, 8, 40, whole.len() / 2, whole.len() - 1] {
            let f = file_with(&whole[..cut]);
            assert_eq!(projection_of(f.path()), None, "cut at {cut}");
        }
        let mut huge = whole.to_vec();
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(projection_of(file_with(&huge).path()), None);
        assert_eq!(projection_of(file_with(&[0xff; 64]).path()), None);
        assert_eq!(projection_of(Path::new("/nonexistent/file")), None);
    }
}
