//! Checks the fMP4 writer against an independent reader: FFmpeg.
//!
//! Real H.264 and AAC streams are encoded with ffmpeg, cut into samples, written with
//! `panocast::packager::fmp4`, and read back with ffprobe/ffmpeg. They fail when
//! ffprobe/ffmpeg are missing: scripts/deps.sh installs them.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use panocast::media::{
    AacConfig, AccessUnit, AvcConfig, MediaEvent, TrackKind, VideoConfig, WallClockAnchor,
};
use panocast::packager::fmp4::{
    audio_init_segment, fragment, video_init_segment, AudioInit, Sample, VideoInit,
};
use panocast::packager::latency::LatencyStats;
use panocast::packager::{Layout, PackagerConfig, StreamOutput, StreamPackager};
use panocast::streams::{Orientation, Projection};

const FRAMES: usize = 60;
const WIDTH: u32 = 640;
const HEIGHT: u32 = 320;

fn tools_available() -> bool {
    let ok = |tool: &str| Command::new(tool).arg("-version").output().is_ok();
    // scripts/test.sh installs them; a missing tool is a broken setup, not a skip.
    assert!(
        ok("ffprobe") && ok("ffmpeg"),
        "ffprobe/ffmpeg are not installed: run scripts/deps.sh"
    );
    true
}

/// Runs a command and returns its stdout; panics with stderr when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs `ffmpeg -v error -i file -f null -` and asserts it reports nothing.
fn assert_decodes_cleanly(file: &Path) {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "decode failed: {stderr}");
    assert!(stderr.trim().is_empty(), "decoder errors: {stderr}");
}

/// `key=value|key=value` lines of ffprobe's compact writer, one map per line.
fn compact_rows(text: &str) -> Vec<HashMap<String, String>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// ffprobe's `flat` writer output as a key → unquoted value map.
fn flat_map(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

fn probe_stream(file: &Path, stream: &str, entries: &str) -> HashMap<String, String> {
    let file = file.to_str().expect("utf-8 path");
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            stream,
            "-show_entries",
            entries,
            "-of",
            "flat",
            file,
        ],
    );
    flat_map(&out)
}

// ---------------------------------------------------------------- H.264 source

struct VideoSource {
    config: AvcConfig,
    timescale: u32,
    samples: Vec<Sample>,
    /// Decode times with the first one at 0, and presentation times on the same axis.
    dts: Vec<u64>,
    pts: Vec<i64>,
}

/// NAL units of an Annex B byte stream (start codes 00 00 01 / 00 00 00 01 removed).
fn annexb_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).map_or(data.len(), |&next| next - 3);
            // Trailing zero bytes belong to the next 4-byte start code.
            let mut nal = &data[start..end];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            nal
        })
        .collect()
}

/// An `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1) for one SPS and one
/// PPS with 4-byte NAL lengths, as the ingest would receive it over RTMP.
fn avc_record(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut record = vec![1, sps[1], sps[2], sps[3], 0xFC | 3, 0xE0 | 1];
    record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    record.extend_from_slice(sps);
    record.push(1);
    record.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    record.extend_from_slice(pps);
    record
}

/// Asserts that `sample` is a sequence of 4-byte length-prefixed NAL units.
fn assert_avcc(sample: &[u8]) {
    let mut rest = sample;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(len > 0 && 4 + len <= rest.len(), "not AVCC");
        rest = &rest[4 + len..];
    }
}

/// Encodes 2 s of test pattern with B-frames, then takes the samples (already AVCC) and
/// their timestamps from ffmpeg's MP4, and the SPS/PPS from an Annex B copy.
fn encode_video(dir: &Path) -> VideoSource {
    let mp4 = dir.join("src.mp4");
    let h264 = dir.join("src.h264");
    let (mp4_s, h264_s) = (mp4.to_str().unwrap(), h264.to_str().unwrap());
    let size = format!("testsrc2=size={WIDTH}x{HEIGHT}:rate=30");
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &size,
            "-frames:v",
            "60",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "30",
            "-bf",
            "2",
            "-pix_fmt",
            "yuv420p",
            mp4_s,
        ],
    );
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            mp4_s,
            "-c",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
            h264_s,
        ],
    );

    let annexb = std::fs::read(&h264).unwrap();
    let nals = annexb_nals(&annexb);
    let find = |kind: u8| *nals.iter().find(|n| n[0] & 0x1F == kind).expect("SPS/PPS");
    let (sps, pps) = (find(7), find(8));
    let config = AvcConfig {
        record: Bytes::from(avc_record(sps, pps)),
        sps: vec![Bytes::copy_from_slice(sps)],
        pps: vec![Bytes::copy_from_slice(pps)],
        profile_idc: sps[1],
        constraint_flags: sps[2],
        level_idc: sps[3],
        width: WIDTH,
        height: HEIGHT,
        frame_rate: Some(30.0),
    };

    let time_base = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=time_base",
            "-of",
            "csv=p=0",
            mp4_s,
        ],
    );
    let timescale: u32 = time_base
        .trim()
        .strip_prefix("1/")
        .unwrap()
        .parse()
        .unwrap();

    let packets = compact_rows(&run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,size,pos,flags",
            "-of",
            "compact=p=0",
            mp4_s,
        ],
    ));
    assert_eq!(packets.len(), FRAMES);
    let file = std::fs::read(&mp4).unwrap();
    let num = |p: &HashMap<String, String>, k: &str| p[k].parse::<i64>().unwrap();
    let first_dts = num(&packets[0], "dts");
    let dts: Vec<u64> = packets
        .iter()
        .map(|p| (num(p, "dts") - first_dts) as u64)
        .collect();
    let pts: Vec<i64> = packets.iter().map(|p| num(p, "pts") - first_dts).collect();

    let samples = packets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let pos = num(p, "pos") as usize;
            let data = &file[pos..pos + num(p, "size") as usize];
            assert_avcc(data);
            let next_dts = dts
                .get(i + 1)
                .copied()
                .unwrap_or_else(|| 2 * dts[i] - dts[i - 1]);
            Sample {
                duration: (next_dts - dts[i]) as u32,
                composition_offset: (pts[i] - dts[i] as i64) as i32,
                keyframe: p["flags"].starts_with('K'),
                data: Bytes::copy_from_slice(data),
            }
        })
        .collect();
    VideoSource {
        config,
        timescale,
        samples,
        dts,
        pts,
    }
}

/// The init segment and one fragment per `part_len` samples, numbered from 1.
fn video_segments(
    src: &VideoSource,
    projection: Projection,
    orientation: Orientation,
    part_len: usize,
) -> (Bytes, Vec<Bytes>) {
    let init = video_init_segment(&VideoInit {
        track_id: 1,
        timescale: src.timescale,
        config: &VideoConfig::Avc(src.config.clone()),
        projection,
        orientation,
    });
    let parts = src
        .samples
        .chunks(part_len)
        .enumerate()
        .map(|(n, chunk)| fragment(n as u32 + 1, 1, src.dts[n * part_len], chunk))
        .collect();
    (init, parts)
}

/// Writes init + one fragment per GOP (30 frames, each starting at a keyframe) into one
/// file.
fn write_video(
    dir: &Path,
    src: &VideoSource,
    projection: Projection,
    orientation: Orientation,
) -> std::path::PathBuf {
    let keyframes: Vec<usize> = (0..src.samples.len())
        .filter(|&i| src.samples[i].keyframe)
        .collect();
    assert_eq!(keyframes, [0, 30], "expected two GOPs");
    let (init, parts) = video_segments(src, projection, orientation, 30);
    let mut file = init.to_vec();
    for part in parts {
        file.extend_from_slice(&part);
    }
    let path = dir.join(format!("out-{projection:?}.mp4"));
    std::fs::write(&path, file).unwrap();
    path
}

// ---------------------------------------------------------------- video tests

#[test]
fn video_spherical_mono_yaw_pitch_roll() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = encode_video(dir.path());
    let orientation = Orientation {
        yaw: 90.0,
        pitch: -15.0,
        roll: 5.0,
    };
    let out = write_video(dir.path(), &src, Projection::Equirect, orientation);

    let info = probe_stream(
        &out,
        "v:0",
        "stream=codec_name,width,height,nb_read_frames:stream_side_data_list",
    );
    let side = "streams.stream.0.side_data_list.side_data";
    assert_eq!(info["streams.stream.0.codec_name"], "h264");
    assert_eq!(info["streams.stream.0.width"], WIDTH.to_string());
    assert_eq!(info["streams.stream.0.height"], HEIGHT.to_string());
    assert_eq!(info["streams.stream.0.nb_read_frames"], FRAMES.to_string());
    // st3d comes first in the sample entry, so FFmpeg lists Stereo 3D first.
    let mut by_type = HashMap::new();
    for i in 0..2 {
        by_type.insert(info[&format!("{side}.{i}.side_data_type")].clone(), i);
    }
    let sph = by_type["Spherical Mapping"];
    assert_eq!(info[&format!("{side}.{sph}.projection")], "equirectangular");
    assert_eq!(info[&format!("{side}.{sph}.yaw")], "90");
    assert_eq!(info[&format!("{side}.{sph}.pitch")], "-15");
    assert_eq!(info[&format!("{side}.{sph}.roll")], "5");
    let st3d = by_type["Stereo 3D"];
    assert_eq!(info[&format!("{side}.{st3d}.type")], "2D");

    assert_decodes_cleanly(&out);
}

#[test]
fn video_timestamps_and_flags_survive() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = encode_video(dir.path());
    assert!(
        src.samples.iter().any(|s| s.composition_offset != 0),
        "the source should have B-frames"
    );
    let out = write_video(dir.path(), &src, Projection::Flat, Orientation::default());
    let packets = compact_rows(&run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,size,flags",
            "-of",
            "compact=p=0",
            out.to_str().unwrap(),
        ],
    ));
    assert_eq!(packets.len(), FRAMES);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p["dts"], src.dts[i].to_string(), "dts of packet {i}");
        assert_eq!(p["pts"], src.pts[i].to_string(), "pts of packet {i}");
        assert_eq!(p["size"], src.samples[i].data.len().to_string());
        assert_eq!(
            p["flags"].starts_with('K'),
            src.samples[i].keyframe,
            "flags of {i}"
        );
    }
    // Flat video: no side data at all.
    let info = probe_stream(&out, "v:0", "stream=nb_read_frames:stream_side_data_list");
    assert_eq!(info["streams.stream.0.nb_read_frames"], FRAMES.to_string());
    assert!(!info.keys().any(|k| k.contains("side_data")), "{info:?}");
    assert_decodes_cleanly(&out);
}

#[test]
fn video_stereo_layouts() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = encode_video(dir.path());
    for (projection, expected) in [
        (Projection::EquirectStereoTb, "top and bottom"),
        (Projection::EquirectStereoSbs, "side by side"),
    ] {
        let out = write_video(dir.path(), &src, projection, Orientation::default());
        let info = probe_stream(&out, "v:0", "stream=nb_read_frames:stream_side_data_list");
        let side = "streams.stream.0.side_data_list.side_data";
        let types: Vec<_> = (0..2)
            .map(|i| info[&format!("{side}.{i}.side_data_type")].clone())
            .collect();
        let st3d = types
            .iter()
            .position(|t| t == "Stereo 3D")
            .expect("Stereo 3D");
        let sph = types
            .iter()
            .position(|t| t == "Spherical Mapping")
            .expect("Spherical");
        assert_eq!(info[&format!("{side}.{st3d}.type")], expected);
        assert_eq!(info[&format!("{side}.{sph}.projection")], "equirectangular");
        assert_eq!(info[&format!("{side}.{sph}.yaw")], "0");
        assert_eq!(info["streams.stream.0.nb_read_frames"], FRAMES.to_string());
        assert_decodes_cleanly(&out);
    }
}

// ---------------------------------------------------------------- AAC

/// Splits an ADTS stream into raw AAC frames and derives the AudioSpecificConfig
/// (ISO/IEC 14496-3 §1.6.2.1 / §1.A.2.2) from the first header.
fn parse_adts(adts: &[u8]) -> (AacConfig, Vec<Bytes>) {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let mut frames = Vec::new();
    let mut header = None;
    let mut rest = adts;
    while !rest.is_empty() {
        assert!(
            rest.len() >= 7 && rest[0] == 0xFF && rest[1] & 0xF0 == 0xF0,
            "ADTS sync"
        );
        let protection_absent = rest[1] & 1 == 1;
        let header_len = if protection_absent { 7 } else { 9 };
        let frame_len = (usize::from(rest[3] & 0x03) << 11)
            | (usize::from(rest[4]) << 3)
            | usize::from(rest[5] >> 5);
        assert!(frame_len > header_len && frame_len <= rest.len());
        header.get_or_insert([rest[2], rest[3]]);
        frames.push(Bytes::copy_from_slice(&rest[header_len..frame_len]));
        rest = &rest[frame_len..];
    }
    let [b2, b3] = header.expect("at least one frame");
    let object_type = (b2 >> 6) + 1; // ADTS profile is object type - 1
    let freq_index = (b2 >> 2) & 0x0F;
    let channels = ((b2 & 1) << 2) | (b3 >> 6);
    let asc = [
        (object_type << 3) | (freq_index >> 1),
        ((freq_index & 1) << 7) | (channels << 3),
    ];
    let config = AacConfig {
        asc: Bytes::copy_from_slice(&asc),
        object_type,
        sample_rate: RATES[usize::from(freq_index)],
        channels,
    };
    (config, frames)
}

#[test]
fn audio_aac_decodes() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let aac = dir.path().join("src.aac");
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "2",
            "-ac",
            "2",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-f",
            "adts",
            aac.to_str().unwrap(),
        ],
    );
    let (config, frames) = parse_adts(&std::fs::read(&aac).unwrap());
    assert_eq!(
        (config.sample_rate, config.channels, config.object_type),
        (44100, 2, 2)
    );
    assert!(frames.len() > 80);

    let mut file = audio_init_segment(&AudioInit {
        track_id: 1,
        config: &config,
    })
    .to_vec();
    let samples: Vec<Sample> = frames
        .iter()
        .map(|data| Sample {
            duration: AacConfig::SAMPLES_PER_FRAME,
            composition_offset: 0,
            keyframe: true,
            data: data.clone(),
        })
        .collect();
    // Several fragments of 20 frames, as LL-HLS parts would be.
    for (n, chunk) in samples.chunks(20).enumerate() {
        let base = (n * 20) as u64 * u64::from(AacConfig::SAMPLES_PER_FRAME);
        file.extend_from_slice(&fragment(n as u32 + 1, 1, base, chunk));
    }
    let out = dir.path().join("audio.mp4");
    std::fs::write(&out, file).unwrap();

    let info = probe_stream(
        &out,
        "a:0",
        "stream=codec_type,codec_name,profile,sample_rate,channels,nb_read_frames",
    );
    assert_eq!(info["streams.stream.0.codec_type"], "audio");
    assert_eq!(info["streams.stream.0.codec_name"], "aac");
    assert_eq!(info["streams.stream.0.profile"], "LC");
    assert_eq!(info["streams.stream.0.sample_rate"], "44100");
    assert_eq!(info["streams.stream.0.channels"], "2");
    assert_eq!(
        info["streams.stream.0.nb_read_frames"],
        frames.len().to_string()
    );
    assert_decodes_cleanly(&out);
}

#[test]
fn video_as_hls_parts() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = encode_video(dir.path());
    // 6 parts of 10 frames: most start on a non-keyframe, as LL-HLS parts do. Each file
    // must stand on its own (default-base-is-moof, absolute tfdt).
    let (init, parts) = video_segments(&src, Projection::Equirect, Orientation::default(), 10);
    std::fs::write(dir.path().join("init.mp4"), &init).unwrap();
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"init.mp4\"\n",
    );
    for (n, part) in parts.iter().enumerate() {
        std::fs::write(dir.path().join(format!("part{n}.m4s")), part).unwrap();
        playlist.push_str(&format!("#EXTINF:0.33333,\npart{n}.m4s\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    let m3u8 = dir.path().join("video.m3u8");
    std::fs::write(&m3u8, playlist).unwrap();

    let info = probe_stream(&m3u8, "v:0", "stream=nb_read_frames:stream_side_data_list");
    assert_eq!(info["streams.stream.0.nb_read_frames"], FRAMES.to_string());
    assert!(info.values().any(|v| v == "Spherical Mapping"), "{info:?}");
    assert_decodes_cleanly(&m3u8);

    // The second GOP's part on its own, behind the init segment: timestamps come from
    // its tfdt, not from earlier fragments.
    let mut alone = init.to_vec();
    alone.extend_from_slice(&parts[3]);
    let alone_path = dir.path().join("alone.mp4");
    std::fs::write(&alone_path, alone).unwrap();
    let packets = compact_rows(&run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "packet=dts,flags",
            "-of",
            "compact=p=0",
            alone_path.to_str().unwrap(),
        ],
    ));
    assert_eq!(packets.len(), 10);
    assert_eq!(packets[0]["dts"], src.dts[30].to_string());
    assert!(packets[0]["flags"].starts_with('K'));
}

// ---------------------------------------------------------------- live layout change

/// Probes `init` + `media` written to one file: ffprobe's side data of the video.
fn probe_side_data(
    dir: &Path,
    name: &str,
    init: &[u8],
    media: &[&[u8]],
) -> HashMap<String, String> {
    let mut file = init.to_vec();
    for m in media {
        file.extend_from_slice(m);
    }
    let path = dir.join(name);
    std::fs::write(&path, file).unwrap();
    assert_decodes_cleanly(&path);
    probe_stream(&path, "v:0", "stream=nb_read_frames:stream_side_data_list")
}

#[test]
fn a_live_layout_change_gives_a_new_init_segment_without_spherical_metadata() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = encode_video(dir.path());
    let output = Arc::new(StreamOutput::new("cam"));
    let mut packager = StreamPackager::new(
        PackagerConfig {
            part_target: Duration::from_millis(200),
            segment_target: Duration::from_secs(2),
            window_segments: 10,
            part_hold_back_parts: 3.0,
        },
        Arc::clone(&output),
        Arc::new(LatencyStats::default()),
        Layout {
            projection: Projection::Equirect,
            orientation: Orientation::default(),
        },
    );
    packager.begin_session(WallClockAnchor::now());
    packager.push(MediaEvent::VideoConfig(Arc::new(VideoConfig::Avc(
        src.config.clone(),
    ))));
    // The samples as an ingest would hand them on, in the source's own timebase.
    for (i, sample) in src.samples.iter().enumerate() {
        if i == 10 {
            // An admin sets the live stream flat: the keyframe at frame 30 cuts.
            packager.set_layout(Layout {
                projection: Projection::Flat,
                orientation: Orientation::default(),
            });
        }
        packager.push(MediaEvent::Unit(AccessUnit {
            kind: TrackKind::Video,
            dts: src.dts[i] as i64,
            pts: src.pts[i],
            timebase: src.timescale,
            keyframe: sample.keyframe,
            data: sample.data.clone(),
            received: Instant::now(),
        }));
    }
    packager.end_session();

    let (old_init, old_segment, new_init, new_part, new_segment, playlist) = {
        let st = output.lock();
        let r = st.rendition("video").expect("video rendition");
        let w = &r.window;
        let playlist = r.playlist.as_ref().expect("playlist").full.clone();
        (
            w.init(0).expect("init 0").clone(),
            w.segment(0).expect("segment 0"),
            w.init(1).expect("init 1").clone(),
            w.part(1, 0).expect("part 1-0").clone(),
            w.segment(1).expect("segment 1"),
            String::from_utf8(playlist.to_vec()).unwrap(),
        )
    };
    assert!(
        playlist.contains(
            "video/seg-0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video/init-1.mp4\"\n"
        ),
        "{playlist}"
    );

    // Before the change: equirectangular.
    let chunks: Vec<&[u8]> = old_segment.iter().map(|b| b.as_ref()).collect();
    let old = probe_side_data(dir.path(), "old.mp4", &old_init, &chunks);
    assert_eq!(old["streams.stream.0.nb_read_frames"], "30");
    assert!(
        old.iter()
            .any(|(k, v)| k.ends_with(".projection") && v == "equirectangular"),
        "{old:?}"
    );
    // After: the new init segment and a part carry no spherical side data at all.
    let new = probe_side_data(dir.path(), "new-part.mp4", &new_init, &[&new_part]);
    assert!(!new.keys().any(|k| k.contains("side_data")), "{new:?}");
    let chunks: Vec<&[u8]> = new_segment.iter().map(|b| b.as_ref()).collect();
    let whole = probe_side_data(dir.path(), "new.mp4", &new_init, &chunks);
    assert_eq!(whole["streams.stream.0.nb_read_frames"], "30");
    assert!(!whole.keys().any(|k| k.contains("side_data")), "{whole:?}");
}
