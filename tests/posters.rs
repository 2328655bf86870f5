//! Posters through the real server: an ffmpeg publisher's test pattern becomes a
//! decodable 640x320 JPEG of the live stream within seconds, gated like playback
//! (private: 401 without a token, 403 with another stream's, 200 with its own) and
//! answering 304 to its ETag; an uploaded asset has a poster once it is ready.

mod common;
mod vod_support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{api, call, client, source_file_sized, Publisher, Server};
use serde_json::json;

/// GET `url` (optionally with `If-None-Match`): status, headers, body.
async fn fetch(
    c: &reqwest::Client,
    url: &str,
    etag: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, bytes::Bytes) {
    let mut req = c.get(url);
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body"))
}

/// Polls `url` until it answers 200, for at most `limit`; the last answer.
async fn wait_poster(
    c: &reqwest::Client,
    url: &str,
    limit: Duration,
) -> (reqwest::header::HeaderMap, bytes::Bytes) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, headers, body) = fetch(c, url, None).await;
        if status == 200 {
            return (headers, body);
        }
        assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
        assert!(
            Instant::now() < deadline,
            "no poster at {url} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// ffprobe's `width,height` of a JPEG, i.e. that it decodes.
fn jpeg_size(dir: &Path, name: &str, jpeg: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, jpeg).expect("write the poster");
    vod_support::probe(
        &path,
        &["-select_streams", "v:0"],
        "stream=codec_name,width,height",
    )
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_has_a_poster_gated_like_playback() {
    let s = Server::start_with_env("", &vod_support::env());
    let c = client();
    let admin = vod_support::login(&c, &s, "admin", vod_support::ADMIN_PASSWORD).await;
    let mut keys = Vec::new();
    for (slug, visibility) in [("hidden", "private"), ("open", "public")] {
        let a = api(
            &c,
            &s,
            &admin,
            "POST",
            "/api/v1/streams",
            Some(json!({"slug": slug, "title": slug, "visibility": visibility, "record": {"enabled": false}})),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text);
        keys.push(a.json["stream_key"].as_str().expect("key").to_string());
    }
    let token_of = |slug: &'static str| {
        let (c, s, admin) = (&c, &s, &admin);
        async move {
            let t = api(
                c,
                s,
                admin,
                "POST",
                &format!("/api/v1/streams/{slug}/playback-token"),
                None,
            )
            .await;
            assert_eq!(t.status, 200, "{}", t.text);
            t.json["token"].as_str().expect("token").to_string()
        }
    };
    let hidden_token = token_of("hidden").await;
    let open_token = token_of("open").await;

    let poster = s.url("/api/v1/streams/hidden/poster.jpg");
    let none = call(&c, "GET", &poster, None, None).await;
    assert_eq!(none.status, 401, "{}", none.text);
    assert_eq!(none.content_type, "application/problem+json");
    let other = call(
        &c,
        "GET",
        &format!("{poster}?token={open_token}"),
        None,
        None,
    )
    .await;
    assert_eq!(other.status, 403, "{}", other.text);
    // Allowed, but never live yet: a problem, not a picture.
    let early = call(
        &c,
        "GET",
        &format!("{poster}?token={hidden_token}"),
        None,
        None,
    )
    .await;
    assert_eq!(early.status, 404, "{}", early.text);
    assert_eq!(early.content_type, "application/problem+json");

    let clip = source_file_sized(1280, 640, 6, 60);
    let _publisher = Publisher::start(&clip, &s.publish_url(&keys[0]), true);
    let with_token = format!("{poster}?token={hidden_token}");
    let (headers, jpeg) = wait_poster(&c, &with_token, Duration::from_secs(20)).await;
    assert_eq!(header(&headers, "content-type"), "image/jpeg");
    assert!(
        header(&headers, "cache-control").contains("max-age=10"),
        "{headers:?}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        jpeg_size(dir.path(), "live.jpg", &jpeg),
        "mjpeg\n640\n320",
        "an equirect stream's poster is 640x320"
    );
    // The bearer header works as ?token= does.
    let bearer = call(&c, "GET", &poster, Some(&hidden_token), None).await;
    assert_eq!(bearer.status, 200);

    let etag = header(&headers, "etag").to_string();
    assert!(etag.starts_with('"'), "{headers:?}");
    let (status, again, body) = fetch(&c, &with_token, Some(&etag)).await;
    // Unless the poster was renewed in between, the same one: 304 and no body.
    if header(&again, "etag") == etag {
        assert_eq!(status, 304);
        assert!(body.is_empty());
    } else {
        assert_eq!(status, 200);
    }
    let (status, _, _) = fetch(&c, &with_token, Some("\"something-else\"")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_asset_has_a_poster_once_ready() {
    let s = Server::start_with_env(&vod_support::config(), &vod_support::env());
    let c = client();
    let (_, caster, _) = vod_support::tokens(&c, &s).await;
    let src = vod_support::clip(4);
    let (status, created) = vod_support::curl_upload(
        &s,
        Some(&caster),
        &src,
        &["title=Poster", "visibility=public"],
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let asset = vod_support::wait_asset(
        &c,
        &s,
        &caster,
        &id,
        Duration::from_secs(60),
        vod_support::settled,
    )
    .await;
    assert_eq!(asset["state"], "ready", "{asset}");
    let url = s.url(&format!("/api/v1/assets/{id}/poster.jpg"));
    let (headers, jpeg) = wait_poster(&c, &url, Duration::from_secs(20)).await;
    assert_eq!(header(&headers, "content-type"), "image/jpeg");
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(jpeg_size(dir.path(), "asset.jpg", &jpeg), "mjpeg\n640\n320");
    let etag = header(&headers, "etag").to_string();
    let (status, _, body) = fetch(&c, &url, Some(&etag)).await;
    assert_eq!((status, body.len()), (304, 0));
    let missing = call(
        &c,
        "GET",
        &s.url("/api/v1/assets/as_nothing/poster.jpg"),
        None,
        None,
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
}
