//! A recording that hits a full disk (issue 11, item 9): the asset is marked `errored`
//! with a message a person can act on, while the live stream plays on — its playlist
//! keeps advancing. The full disk is real: a 512 KiB tmpfs mounted as the server's
//! asset folder (so the catalog database stays writable), which needs root; without
//! root the test says so on stderr and returns.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{api, call, client, read_ll_playlist, source_file_sized, Publisher, Server};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "disk-full-admin-pass-1";

/// A tmpfs of `size` at `at`, unmounted on drop (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the server may still hold files open while it is killed.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest msn of the live video playlist, if it answers.
async fn live_msn(c: &reqwest::Client, s: &Server, slug: &str) -> Option<u64> {
    let a = call(
        c,
        "GET",
        &s.url(&format!("/hls/{slug}/video.m3u8")),
        None,
        None,
    )
    .await;
    if a.status != 200 {
        return None;
    }
    read_ll_playlist(&a.text)
        .segment_lines
        .last()
        .map(|l| l.msn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_errors_the_recording_and_the_stream_plays_on() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs to fill needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(_tmpfs) = Tmpfs::mount(&dir.path().join("data/assets"), "512k") else {
        panic!("root, but mount -t tmpfs failed");
    };
    let s = Server::start_in(
        dir.path(),
        "",
        &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let c = client();
    let admin = common::login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let a = api(
        &c,
        &s,
        &admin,
        "POST",
        "/api/v1/streams",
        Some(json!({"slug": "talk", "title": "Talk", "visibility": "public"})),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["stream"]["record"]["enabled"], true, "{}", a.text);
    let stream_id = a.json["stream"]["id"].as_str().expect("id").to_string();
    let key = a.json["stream_key"].as_str().expect("key").to_string();
    // About 1 MB/s of media: the 512 KiB disk is full within seconds.
    let clip = source_file_sized(1280, 640, 6, 60);
    let _publisher = Publisher::start(&clip, &s.publish_url(&key), true);

    let deadline = Instant::now() + Duration::from_secs(30);
    let recording: Value = loop {
        let list = api(&c, &s, &admin, "GET", "/api/v1/assets?limit=100", None).await;
        assert_eq!(list.status, 200, "{}", list.text);
        let found = list.json["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["stream_id"] == stream_id.as_str() && x["state"] == "errored")
            .cloned();
        if let Some(asset) = found {
            break asset;
        }
        assert!(
            Instant::now() < deadline,
            "the recording was not errored: {}",
            list.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let message = recording["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("disk") && message.contains("full") && message.contains("Free disk space"),
        "{recording}"
    );
    assert_eq!(recording["recording"], false, "{recording}");

    // The stream plays on: its playlist keeps advancing after the disk filled.
    let first = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(msn) = live_msn(&c, &s, "talk").await {
                break msn;
            }
            assert!(Instant::now() < deadline, "no live playlist");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if live_msn(&c, &s, "talk")
            .await
            .is_some_and(|m| m >= first + 2)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the live playlist stopped at msn {first} after the disk filled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
