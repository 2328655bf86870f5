//! What the web app asks the server before and beside sign-in (issue 15): whether
//! sign-up is open (`GET /api/v1/auth/config`), the exact OBS server URL of a stream
//! (`GET /api/v1/streams/{stream}/ingest`), and the public schedule signed-out
//! visitors see (`GET /api/v1/events` without a token). The real server over real
//! HTTP, with a real ffmpeg publisher.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const ADMIN_PASSWORD: &str = "web-api-admin-password-1";

fn start(config: &str) -> Server {
    Server::start_with_env(config, &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_is_discoverable_before_sign_in() {
    let c = client();
    for (config, open) in [("", false), ("[auth]\nopen_registration = true\n", true)] {
        let server = start(config);
        let settings = call(&c, "GET", &server.url("/api/v1/auth/config"), None, None).await;
        assert_eq!(settings.status, 200, "{}", settings.text);
        assert_eq!(
            settings.json["open_registration"], open,
            "{}",
            settings.text
        );
        assert_eq!(
            settings.json["access_token_ttl_s"], 900,
            "{}",
            settings.text
        );
        // What it says is what registering does.
        let register = call(
            &c,
            "POST",
            &server.url("/api/v1/auth/register"),
            None,
            Some(json!({"username": "newcomer", "password": "newcomer-password-1"}).to_string()),
        )
        .await;
        assert_eq!(
            register.status,
            if open { 201 } else { 403 },
            "{}",
            register.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_obs_server_url_is_the_one_that_takes_the_stream() {
    let server = start("");
    let c = client();
    let admin = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    let made = api(
        &c,
        &server,
        &admin,
        "POST",
        "/api/v1/streams",
        Some(json!({"slug": "obs-cam"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let key = made.json["stream_key"].as_str().expect("key").to_owned();

    let ingest = api(
        &c,
        &server,
        &admin,
        "GET",
        "/api/v1/streams/obs-cam/ingest",
        None,
    )
    .await;
    assert_eq!(ingest.status, 200, "{}", ingest.text);
    let rtmp_url = ingest.json["rtmp_url"]
        .as_str()
        .expect("rtmp_url")
        .to_owned();
    assert_eq!(rtmp_url, format!("{}/live", server.rtmp), "{}", ingest.text);
    assert!(
        ingest.json["rtmps_url"].is_null(),
        "RTMPS is off: {}",
        ingest.text
    );

    // OBS's "Server" plus the key as "Stream key": the stream goes live.
    let _publisher = Publisher::start(source_file(), &format!("{rtmp_url}/{key}"), true);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let info = get_json(&c, &server.url("/api/v1/streams/obs-cam")).await;
        if info["live"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never live: {info}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Only who manages the stream learns where to publish it.
    let anonymous = call(
        &c,
        "GET",
        &server.url("/api/v1/streams/obs-cam/ingest"),
        None,
        None,
    )
    .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(anonymous.content_type, "application/problem+json");
    let made = api(
        &c,
        &server,
        &admin,
        "POST",
        "/api/v1/users",
        Some(json!({"username": "watcher", "password": "watcher-password-1", "role": "viewer"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let viewer = login(&c, &server, "watcher", "watcher-password-1").await;
    let refused = api(
        &c,
        &server,
        &viewer,
        "GET",
        "/api/v1/streams/obs-cam/ingest",
        None,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.content_type, "application/problem+json");
    let missing = api(
        &c,
        &server,
        &admin,
        "GET",
        "/api/v1/streams/nope/ingest",
        None,
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_public_host_names_the_server() {
    let server = start("[rtmp_ingest]\npublic_host = \"live.example.com\"\n");
    let c = client();
    let admin = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    let made = api(
        &c,
        &server,
        &admin,
        "POST",
        "/api/v1/streams",
        Some(json!({"slug": "far-cam"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let ingest = api(
        &c,
        &server,
        &admin,
        "GET",
        "/api/v1/streams/far-cam/ingest",
        None,
    )
    .await;
    let port = server.rtmp.rsplit(':').next().expect("port");
    assert_eq!(
        ingest.json["rtmp_url"],
        format!("rtmp://live.example.com:{port}/live"),
        "{}",
        ingest.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_visitors_see_public_streams_announced_events_only() {
    let server = start("");
    let c = client();
    let admin = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    for (slug, visibility) in [
        ("open-air", "public"),
        ("by-link", "unlisted"),
        ("staff-only", "private"),
    ] {
        let made = api(
            &c,
            &server,
            &admin,
            "POST",
            "/api/v1/streams",
            Some(json!({"slug": slug, "visibility": visibility})),
        )
        .await;
        assert_eq!(made.status, 201, "{}", made.text);
    }
    let start = "2099-06-01T18:00:00Z";
    for (title, stream, state) in [
        ("Open air concert", "open-air", "scheduled"),
        ("Open air rehearsal", "open-air", "draft"),
        ("Link-only talk", "by-link", "scheduled"),
        ("Staff meeting", "staff-only", "scheduled"),
    ] {
        let made = api(
            &c,
            &server,
            &admin,
            "POST",
            "/api/v1/events",
            Some(
                json!({"title": title, "stream": stream, "scheduled_start": start, "state": state}),
            ),
        )
        .await;
        assert_eq!(made.status, 201, "{title}: {}", made.text);
    }
    let titles = |a: &Answer| -> Vec<String> {
        a.json["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", a.text))
            .iter()
            .map(|e| e["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    let public = call(&c, "GET", &server.url("/api/v1/events"), None, None).await;
    assert_eq!(public.status, 200, "{}", public.text);
    assert_eq!(titles(&public), vec!["Open air concert"], "{}", public.text);

    // A cancelled event leaves the public schedule.
    let id = public.json["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let cancelled = api(
        &c,
        &server,
        &admin,
        "PATCH",
        &format!("/api/v1/events/{id}"),
        Some(json!({"state": "cancelled"})),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let after = call(&c, "GET", &server.url("/api/v1/events"), None, None).await;
    assert_eq!(titles(&after), Vec::<String>::new(), "{}", after.text);

    // Signed in, the list is as before: the admin sees all four.
    let all = api(&c, &server, &admin, "GET", "/api/v1/events", None).await;
    assert_eq!(titles(&all).len(), 4, "{}", all.text);
    // A bad token is still refused, not treated as signed out.
    let bad = call(
        &c,
        "GET",
        &server.url("/api/v1/events"),
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(bad.status, 401, "{}", bad.text);
}
