//! Uploads and audio downloads through the real server: tus-js-client from Node
//! (interrupted halfway and resumed) and `curl -F`, the extraction job, the MP3 and
//! M4A as ffprobe/ffmpeg read them, Range requests, and every bad input.

mod common;
mod vod_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{call, client, Server};
use vod_support::*;

fn assert_problem(status: u16, a: &common::Answer, want: u16) {
    assert_eq!(status, want, "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.text);
}

/// `npm ci` in tests/tus_client when its node_modules is missing.
fn tus_client() -> &'static Path {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tus_client"));
    if !dir.join("node_modules/tus-js-client").is_dir() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .expect("npm is installed (scripts/deps.sh checks for it)");
        assert!(ok.success(), "npm ci in {dir:?}");
    }
    dir
}

fn node(args: &[&str]) -> String {
    let out = Command::new("node")
        .arg("upload.mjs")
        .args(args)
        .current_dir(tus_client())
        .output()
        .expect("run node");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "node upload.mjs {}: {text}{}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_and_curl_uploads_give_mp3_and_m4a_downloads() {
    let src = clip(10);
    let s = Server::start_with_env(&config(), &env());
    let c = client();
    let (admin, caster, watcher) = tokens(&c, &s).await;
    let work = tempfile::tempdir().expect("temp dir");

    // tus-js-client: the first half, an interruption, then a resume from where the
    // server says it is.
    let endpoint = s.url("/api/v1/uploads");
    let first = node(&[
        "first",
        &endpoint,
        &caster,
        &src.to_string_lossy(),
        "Tus talk",
    ]);
    let upload_url = line(&first, "URL ").to_string();
    let size = std::fs::metadata(&src).expect("clip").len();
    let head = c
        .head(&upload_url)
        .bearer_auth(&caster)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    let offset: u64 = head.headers()["upload-offset"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert_eq!(offset, size.div_ceil(2), "the first half is stored");
    assert!(
        call(&c, "GET", &s.url("/api/v1/assets"), Some(&caster), None)
            .await
            .json["items"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "no asset before the last byte"
    );
    let resumed = node(&[
        "resume",
        &upload_url,
        &caster,
        &src.to_string_lossy(),
        "Tus talk",
    ]);
    let tus_asset = line(&resumed, "ASSET ")
        .rsplit('/')
        .next()
        .expect("asset id")
        .to_string();
    assert!(tus_asset.starts_with("as_"), "{resumed}");

    // curl -F, and both become ready.
    let (status, created) = curl_upload(&s, Some(&caster), &src, &["title=My talk: 360°"]);
    assert_eq!(status, 201, "{created}");
    let curl_asset = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["state"], "preparing");
    for id in [&tus_asset, &curl_asset] {
        let asset = wait_asset(&c, &s, &caster, id, Duration::from_secs(60), settled).await;
        assert_eq!(asset["state"], "ready", "{asset}");
        assert_eq!(asset["projection"], "equirect");
        assert!((asset["duration_s"].as_f64().expect("duration") - 10.0).abs() < 0.1);
        let renditions = asset["renditions"].as_array().expect("renditions");
        assert!(renditions
            .iter()
            .all(|r| r["state"] == "ready" && r["size_bytes"].as_u64() > Some(0)));
    }
    let tus = call(
        &c,
        "GET",
        &s.url(&format!("/api/v1/assets/{tus_asset}")),
        None,
        None,
    )
    .await;
    assert_eq!(
        (tus.status, tus.json["title"].as_str()),
        (200, Some("Tus talk")),
        "public: {}",
        tus.text
    );

    // The MP3: codec mp3, the source's duration within 0.1 s.
    let mp3_url = s.url(&format!("/api/v1/assets/{curl_asset}/audio.mp3"));
    let (status, headers, mp3) = fetch(&c, &mp3_url, &caster, None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "audio/mpeg");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"My talk_ 360.mp3\""
    );
    let mp3_path = work.path().join("a.mp3");
    std::fs::write(&mp3_path, &mp3).expect("write mp3");
    assert_eq!(
        probe(&mp3_path, &["-select_streams", "a:0"], "stream=codec_name"),
        "mp3"
    );
    let src_audio: f64 = probe(&src, &["-select_streams", "a:0"], "stream=duration")
        .parse()
        .expect("source duration");
    let mp3_duration: f64 = probe(&mp3_path, &[], "format=duration")
        .parse()
        .expect("mp3 duration");
    assert!(
        (mp3_duration - src_audio).abs() <= 0.1,
        "mp3 {mp3_duration} s, source audio {src_audio} s"
    );

    // Range: 206 with exactly those bytes.
    let (status, headers, part) = fetch(&c, &mp3_url, &caster, Some("bytes=1000-1999")).await;
    assert_eq!(status, 206);
    assert_eq!(
        headers["content-range"],
        format!("bytes 1000-1999/{}", mp3.len())
    );
    assert_eq!(&part[..], &mp3[1000..2000]);
    let (status, _, tail) = fetch(&c, &mp3_url, &caster, Some("bytes=-100")).await;
    assert_eq!((status, &tail[..]), (206, &mp3[mp3.len() - 100..]));
    let (status, headers, _) = fetch(
        &c,
        &mp3_url,
        &caster,
        Some(&format!("bytes={}-", mp3.len())),
    )
    .await;
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], format!("bytes */{}", mp3.len()));

    // The M4A: the source's AAC frames, byte for byte (not re-encoded). GStreamer's
    // qtdemux applies the source's edit list, so the encoder-priming frame before it
    // and the padding frame after it may be left out: the rest is one unbroken run of
    // the source's frames.
    let m4a_url = s.url(&format!("/api/v1/assets/{curl_asset}/audio.m4a"));
    let (status, headers, m4a) = fetch(&c, &m4a_url, &caster, None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "audio/mp4");
    let m4a_path = work.path().join("a.m4a");
    std::fs::write(&m4a_path, &m4a).expect("write m4a");
    let ours = aac_frames(&m4a_path, &work.path().join("ours.aac"));
    let theirs = aac_frames(&src, &work.path().join("src.aac"));
    assert!(!theirs.is_empty());
    assert!(
        ours.len() + 2 * 1024 > theirs.len(),
        "{} of {} bytes",
        ours.len(),
        theirs.len()
    );
    assert!(
        theirs.windows(ours.len()).any(|w| w == ours.as_slice()),
        "the M4A's AAC frames are not the source's ({} vs {} bytes)",
        ours.len(),
        theirs.len()
    );

    // Who sees what: the curl asset is private (the default).
    let list = |t: Option<String>| {
        let c = c.clone();
        let url = s.url("/api/v1/assets");
        async move {
            call(&c, "GET", &url, t.as_deref(), None).await.json["items"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0)
        }
    };
    assert_eq!(list(Some(admin.clone())).await, 2);
    assert_eq!(list(Some(caster.clone())).await, 2);
    assert_eq!(
        list(Some(watcher.clone())).await,
        1,
        "the viewer sees the public one"
    );
    assert_eq!(list(None).await, 1);
    let a = call(
        &c,
        "GET",
        &s.url(&format!("/api/v1/assets/{curl_asset}")),
        Some(&watcher),
        None,
    )
    .await;
    assert_problem(a.status, &a, 404);
    let (status, _, _) = fetch(&c, &mp3_url, &watcher, None).await;
    assert_eq!(status, 404);

    // One job of each kind per asset, succeeded; a succeeded job cannot be retried.
    let jobs = call(
        &c,
        "GET",
        &s.url(&format!("/api/v1/jobs?asset={curl_asset}")),
        Some(&caster),
        None,
    )
    .await;
    let all = jobs.json["items"].as_array().expect("jobs").clone();
    let mut kinds: Vec<&str> = all.iter().filter_map(|j| j["kind"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["extract_audio", "transcode_hls"], "{}", jobs.text);
    let items: Vec<_> = all
        .iter()
        .filter(|j| j["kind"] == "extract_audio")
        .cloned()
        .collect();
    assert_eq!(
        (items[0]["state"].as_str(), items[0]["progress"].as_u64()),
        (Some("succeeded"), Some(100))
    );
    let job = items[0]["id"].as_str().expect("job id");
    let a = call(
        &c,
        "POST",
        &s.url(&format!("/api/v1/jobs/{job}/retry")),
        Some(&caster),
        None,
    )
    .await;
    assert_problem(a.status, &a, 409);
    let a = call(&c, "GET", &s.url("/api/v1/jobs"), Some(&watcher), None).await;
    assert_problem(a.status, &a, 403);

    // Deletion takes the files too.
    let a = call(
        &c,
        "DELETE",
        &s.url(&format!("/api/v1/assets/{curl_asset}")),
        Some(&watcher),
        None,
    )
    .await;
    assert_problem(a.status, &a, 404);
    let a = call(
        &c,
        "DELETE",
        &s.url(&format!("/api/v1/assets/{curl_asset}")),
        Some(&caster),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text);
    let (status, _, _) = fetch(&c, &mp3_url, &caster, None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_answer() {
    let s = Server::start_with_env(&config(), &env());
    let c = client();
    let (_admin, caster, watcher) = tokens(&c, &s).await;
    let work = tempfile::tempdir().expect("temp dir");

    // Not media, and 0 bytes: the asset is errored with the reason; no download.
    let text = work.path().join("notes.mp4");
    std::fs::write(&text, "these are my lecture notes, not a video\n").expect("write");
    let empty = work.path().join("empty.mp4");
    std::fs::write(&empty, "").expect("write");
    let truncated = work.path().join("cut.mp4");
    let full = std::fs::read(clip(10)).expect("clip");
    std::fs::write(&truncated, &full[..4000]).expect("write");
    for (file, reason) in [
        (&text, "not a media file"),
        (&empty, "empty (0 bytes)"),
        (&truncated, "GStreamer"),
    ] {
        let (status, created) = curl_upload(&s, Some(&caster), file, &[]);
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id");
        let asset = wait_asset(&c, &s, &caster, id, Duration::from_secs(30), settled).await;
        assert_eq!(asset["state"], "errored", "{asset}");
        let message = asset["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{file:?}: {message}");
        assert!(asset["renditions"]
            .as_array()
            .expect("r")
            .iter()
            .all(|r| r["state"] == "errored"));
        let url = s.url(&format!("/api/v1/assets/{id}/audio.mp3"));
        let (status, _, body) = fetch(&c, &url, &caster, None).await;
        assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
        let jobs = call(
            &c,
            "GET",
            &s.url(&format!("/api/v1/jobs?asset={id}")),
            Some(&caster),
            None,
        )
        .await;
        for job in jobs.json["items"].as_array().expect("jobs") {
            assert_eq!(job["state"], "failed", "{}", jobs.text);
            assert_eq!(job["attempts"], 1, "bad input is not retried: {job}");
        }
    }

    // A video without audio plays: ready, its audio renditions errored with why.
    let silent = common::encoded_clip(
        Path::new("ffmpeg"),
        "vod-silent-2s.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x160:rate=30",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let (_, created) = curl_upload(&s, Some(&caster), &silent, &[]);
    let id = created["id"].as_str().expect("id");
    let asset = wait_asset(&c, &s, &caster, id, Duration::from_secs(30), settled).await;
    assert_eq!(asset["state"], "ready", "{asset}");
    for r in asset["renditions"].as_array().expect("renditions") {
        if r["kind"] == "hls" {
            assert_eq!(r["state"], "ready", "{asset}");
        } else {
            assert_eq!(r["state"], "errored", "{asset}");
            assert!(
                r["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("no audio track"),
                "{asset}"
            );
        }
    }

    // Over the limit: 413, and nothing is kept.
    let big = work.path().join("big.mp4");
    std::fs::write(&big, vec![0u8; MAX_BYTES as usize + 1]).expect("write");
    let (status, body) = curl_upload(&s, Some(&caster), &big, &[]);
    assert_eq!(status, 413, "{body}");
    let tus_big = c
        .post(s.url("/api/v1/uploads"))
        .bearer_auth(&caster)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", (MAX_BYTES + 1).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(tus_big.status(), 413);

    // No token 401, a viewer 403, a bad projection 422.
    let (status, _) = curl_upload(&s, None, &text, &[]);
    assert_eq!(status, 401);
    let (status, _) = curl_upload(&s, Some(&watcher), &text, &[]);
    assert_eq!(status, 403);
    let (status, _) = curl_upload(&s, Some(&caster), &text, &["projection=cube"]);
    assert_eq!(status, 422);
    for token in [None, Some(&watcher)] {
        let mut req = c
            .post(s.url("/api/v1/uploads"))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", "10");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let status = req.send().await.expect("POST").status().as_u16();
        assert_eq!(status, if token.is_none() { 401 } else { 403 });
    }

    // tus: a PATCH at the wrong offset is a 409 and changes nothing.
    let created = c
        .post(s.url("/api/v1/uploads"))
        .bearer_auth(&caster)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "10")
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    let location = s.url(created.headers()["location"].to_str().expect("location"));
    let patch = |offset: &str, body: &'static [u8]| {
        c.patch(&location)
            .bearer_auth(&caster)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset)
            .body(body)
            .send()
    };
    let r = patch("0", b"hello").await.expect("PATCH");
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["upload-offset"].to_str().ok()
        ),
        (204, Some("5"))
    );
    let r = patch("3", b"world").await.expect("PATCH");
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c
        .head(&location)
        .bearer_auth(&caster)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(r.headers()["upload-offset"], "5");
    // tus checksum: a body that does not match its Upload-Checksum is a 460 and leaves
    // nothing behind; an unknown algorithm is a 400; a matching one is kept.
    let second = c
        .post(s.url("/api/v1/uploads"))
        .bearer_auth(&caster)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "10")
        .send()
        .await
        .expect("POST");
    assert_eq!(second.status(), 201);
    let second = s.url(second.headers()["location"].to_str().expect("location"));
    let r = c
        .patch(&second)
        .bearer_auth(&caster)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", "0")
        .body(&b"hello"[..])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 204);
    let checked = |checksum: &'static str, body: &'static [u8]| {
        c.patch(&second)
            .bearer_auth(&caster)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", "5")
            .header("Upload-Checksum", checksum)
            .body(body)
            .send()
    };
    // sha1("world") is fCEUM/AgcVl3Qeb/Wo6jR4mrv0M=.
    let r = checked("sha1 fCEUM/AgcVl3Qeb/Wo6jR4mrv0M=", b"w0rld")
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 460);
    assert_eq!(r.headers()["upload-offset"], "5");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = checked("md5 fCEUM/AgcVl3Qeb/Wo6jR4mrv0M=", b"world")
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 400);
    let r = checked("sha1 fCEUM/AgcVl3Qeb/Wo6jR4mrv0M=", b"world")
        .await
        .expect("PATCH");
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], "10");
    let options = c
        .request(reqwest::Method::OPTIONS, s.url("/api/v1/uploads"))
        .send()
        .await
        .expect("OPTIONS");
    assert!(options.headers()["tus-extension"]
        .to_str()
        .is_ok_and(|e| e.contains("checksum")));
    assert_eq!(options.headers()["tus-checksum-algorithm"], "sha1,sha256");
    // Without Tus-Resumable: 400; another version: 412 naming ours; termination: 204,
    // then 404.
    let r = c
        .head(&location)
        .bearer_auth(&caster)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(r.status(), 400);
    let r = c
        .head(&location)
        .bearer_auth(&caster)
        .header("Tus-Resumable", "0.2.2")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["tus-version"].to_str().ok()
        ),
        (412, Some("1.0.0"))
    );
    let r = c
        .delete(&location)
        .bearer_auth(&caster)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), 204);
    let r = patch("5", b"world").await.expect("PATCH");
    assert_eq!(r.status(), 404);

    // tus discovery, and CORS lets a browser read the tus headers.
    let r = c
        .request(reqwest::Method::OPTIONS, s.url("/api/v1/uploads"))
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    assert!(r.headers()["tus-extension"]
        .to_str()
        .expect("ascii")
        .contains("termination"));
    let r = c
        .get(s.url("/api/v1/assets"))
        .header("Origin", "http://app.example")
        .send()
        .await
        .expect("GET");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_string();
    for h in [
        "upload-offset",
        "location",
        "tus-resumable",
        "upload-length",
    ] {
        assert!(exposed.contains(h), "{exposed}");
    }
    let a = call(
        &c,
        "GET",
        &s.url("/api/v1/assets/as_nope"),
        Some(&caster),
        None,
    )
    .await;
    assert_problem(a.status, &a, 404);
}
