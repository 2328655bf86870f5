//! In-app notifications and live feeds end to end: the real binary, a real ffmpeg
//! publisher, and the feeds read as Server-Sent Events over real HTTP, as a web app
//! would.

mod common;

use std::time::{Duration, Instant};

use common::sse::{feed_client, SseReader};
use common::{api, call, client, login, source_file, Publisher, Server};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "in-app-admin-pass-1";
const USER_PASSWORD: &str = "long-enough-pass-1";
const CONFIG: &str = "[auth]\nopen_registration = true\n";
/// Long enough for ffmpeg to start, connect and publish a first complete segment.
const LIVE_WITHIN: Duration = Duration::from_secs(40);

fn start() -> Server {
    Server::start_with_env(CONFIG, &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)])
}

/// Registers `name` and signs them in.
async fn user(c: &reqwest::Client, s: &Server, name: &str) -> String {
    let r = call(
        c,
        "POST",
        &s.url("/api/v1/auth/register"),
        None,
        Some(json!({"username": name, "password": USER_PASSWORD}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    login(c, s, name, USER_PASSWORD).await
}

/// Creates stream `slug` (no reconnect window: a publisher leaving ends the session;
/// not recorded) and returns its key.
async fn stream(
    c: &reqwest::Client,
    s: &Server,
    admin: &str,
    slug: &str,
    visibility: &str,
) -> String {
    let created = api(
        c,
        s,
        admin,
        "POST",
        "/api/v1/streams",
        // Not recorded: these tests count the live notifications, not the replays.
        Some(
            json!({"slug": slug, "reconnect_window_s": 0, "visibility": visibility,
            "record": {"enabled": false}}),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["stream_key"]
        .as_str()
        .expect("key")
        .to_string()
}

async fn subscribe(c: &reqwest::Client, s: &Server, token: &str, slug: &str) {
    let sub = api(
        c,
        s,
        token,
        "POST",
        "/api/v1/me/subscriptions",
        Some(json!({"stream": slug})),
    )
    .await;
    assert_eq!(sub.status, 201, "{}", sub.text);
}

async fn notifications(c: &reqwest::Client, s: &Server, token: &str, query: &str) -> Value {
    let list = api(
        c,
        s,
        token,
        "GET",
        &format!("/api/v1/me/notifications{query}"),
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.content_type, "application/json");
    list.json
}

/// Waits until `token`'s list holds `n` notifications; returns the list.
async fn wait_for_count(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    n: usize,
    limit: Duration,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let list = notifications(c, s, token, "").await;
        let have = list["items"].as_array().map_or(0, Vec::len);
        if have >= n {
            assert_eq!(have, n, "more notifications than expected: {list:#}");
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{have} of {n} notifications within {limit:?}: {list:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until stream `slug` is in lifecycle `state`.
async fn wait_for_state(c: &reqwest::Client, s: &Server, slug: &str, state: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let info = call(
            c,
            "GET",
            &s.url(&format!("/api/v1/streams/{slug}")),
            None,
            None,
        )
        .await;
        if info.json["state"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{slug} not {state} within {limit:?}: {}",
            info.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One publish: ffmpeg connects, the stream goes live, ffmpeg is killed, the session
/// ends (no reconnect window).
async fn go_live_once(c: &reqwest::Client, s: &Server, slug: &str, key: &str) {
    let publisher = Publisher::start(source_file(), &s.publish_url(key), true);
    wait_for_state(c, s, slug, "active", LIVE_WITHIN).await;
    drop(publisher);
    wait_for_state(c, s, slug, "idle", Duration::from_secs(20)).await;
}

fn feed_url(s: &Server) -> String {
    s.url("/api/v1/me/notifications/stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_live_on_the_feed_and_gets_what_it_missed_after_a_reconnect() {
    let s = start();
    let c = client();
    let fc = feed_client();
    let admin = login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let key = stream(&c, &s, &admin, "match", "public").await;
    let erin = user(&c, &s, "erin").await;
    let frank = user(&c, &s, "frank").await;
    subscribe(&c, &s, &erin, "match").await;
    subscribe(&c, &s, &frank, "match").await;
    // frank wants live news by email only.
    let prefs = api(
        &c,
        &s,
        &frank,
        "PUT",
        "/api/v1/me/notification-preferences",
        Some(json!({"starting_soon": {"email": true, "in_app": true},
                    "live": {"email": true, "in_app": false}})),
    )
    .await;
    assert_eq!(prefs.status, 200, "{}", prefs.text);

    // Without a token there is no feed.
    let anonymous = SseReader::open(&fc, &feed_url(&s), None, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert_eq!(anonymous.content_type, "application/problem+json");

    // Their welcomes are in first; a feed opened without a resume point starts after
    // them.
    wait_for_count(&c, &s, &erin, 1, Duration::from_secs(10)).await;
    wait_for_count(&c, &s, &frank, 1, Duration::from_secs(10)).await;
    let mut erin_feed = SseReader::open(&fc, &feed_url(&s), Some(&erin), None)
        .await
        .expect("erin's feed");
    assert!(
        erin_feed.content_type.starts_with("text/event-stream"),
        "{}",
        erin_feed.content_type
    );
    let mut frank_feed = SseReader::open(&fc, &feed_url(&s), Some(&frank), None)
        .await
        .expect("frank's feed");

    // ffmpeg publishes: erin is told at once.
    let publisher = Publisher::start(source_file(), &s.publish_url(&key), true);
    let first = erin_feed.expect("notification", LIVE_WITHIN).await;
    let n1 = first.json();
    assert_eq!(n1["type"], "stream.live", "{n1:#}");
    assert_eq!(n1["title"], "Live now: match", "{n1:#}");
    assert!(
        n1["text"].as_str().is_some_and(|t| t.contains("match")),
        "{n1:#}"
    );
    assert_eq!(n1["data"]["stream_slug"], "match", "{n1:#}");
    assert!(
        n1["data"]["stream_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("st_")),
        "{n1:#}"
    );
    assert!(n1["read_at"].is_null(), "{n1:#}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(n1["created_at"].as_str().expect("created_at"))
            .is_ok(),
        "{n1:#}"
    );
    let id1 = n1["id"].as_str().expect("id").to_string();
    assert!(id1.starts_with("ntf_"), "{id1}");
    assert_eq!(first.id.as_deref(), Some(id1.as_str()));

    // And in the list, newest first after her welcome, with the unread count.
    let list = notifications(&c, &s, &erin, "").await;
    assert_eq!(list["items"][0], n1, "{list:#}");
    assert_eq!(list["items"][1]["type"], "user.created", "{list:#}");
    assert_eq!(
        list["items"][1]["title"], "Welcome to panocast, erin",
        "{list:#}"
    );
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list:#}");
    assert_eq!(list["unread_count"], 2, "{list:#}");

    // erin goes away; meanwhile the stream goes offline and live again.
    drop(erin_feed);
    drop(publisher);
    wait_for_state(&c, &s, "match", "idle", Duration::from_secs(20)).await;
    go_live_once(&c, &s, "match", &key).await;
    let list = wait_for_count(&c, &s, &erin, 3, Duration::from_secs(10)).await;
    let id2 = list["items"][0]["id"].as_str().expect("id").to_string();

    // Reconnecting from the last id seen gives exactly the missed one, then live ones.
    let mut erin_feed = SseReader::open(&fc, &feed_url(&s), Some(&erin), Some(&id1))
        .await
        .expect("resumed");
    let missed = erin_feed
        .expect("notification", Duration::from_secs(10))
        .await;
    assert_eq!(missed.id.as_deref(), Some(id2.as_str()), "{missed:?}");
    assert_eq!(missed.json()["type"], "stream.live");
    go_live_once(&c, &s, "match", &key).await;
    let third = erin_feed
        .expect("notification", Duration::from_secs(10))
        .await;
    let id3 = third.id.clone().expect("id");
    assert!(id3 != id1 && id3 != id2, "{third:?}");
    // The query form of the resume point, for clients without EventSource.
    let mut by_query = SseReader::open(
        &fc,
        &format!("{}?last_event_id={id2}", feed_url(&s)),
        Some(&erin),
        None,
    )
    .await
    .expect("resumed by query");
    let again = by_query
        .expect("notification", Duration::from_secs(10))
        .await;
    assert_eq!(again.id.as_deref(), Some(id3.as_str()));

    // Newest first, paged.
    let page1 = notifications(&c, &s, &erin, "?limit=2").await;
    let ids: Vec<&str> = page1["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    assert_eq!(ids, [id3.as_str(), id2.as_str()], "{page1:#}");
    let cursor = page1["next_cursor"].as_str().expect("next page");
    let page2 = notifications(&c, &s, &erin, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(page2["items"][0]["id"], id1.as_str(), "{page2:#}");
    assert_eq!(page2["items"][1]["type"], "user.created", "{page2:#}");
    assert!(page2.get("next_cursor").is_none(), "{page2:#}");
    assert_eq!(page2["unread_count"], 4);

    // Marking one read changes the count and the unread filter.
    let read = api(
        &c,
        &s,
        &erin,
        "POST",
        &format!("/api/v1/me/notifications/{id1}/read"),
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert!(
        read.json["read_at"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{}",
        read.text
    );
    let unread = notifications(&c, &s, &erin, "?unread=true").await;
    assert_eq!(unread["unread_count"], 3, "{unread:#}");
    assert_eq!(
        unread["items"].as_array().map(Vec::len),
        Some(3),
        "{unread:#}"
    );
    assert!(unread["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|n| n["id"] != id1.as_str()));

    // Someone else's notification does not exist for frank.
    for path in [
        format!("/api/v1/me/notifications/{id2}/read"),
        "/api/v1/me/notifications/ntf_nope/read".to_string(),
    ] {
        let theirs = api(&c, &s, &frank, "POST", &path, None).await;
        assert_eq!(theirs.status, 404, "{}", theirs.text);
        assert_eq!(theirs.content_type, "application/problem+json");
    }
    let bad_cursor = api(
        &c,
        &s,
        &erin,
        "GET",
        "/api/v1/me/notifications?cursor=x",
        None,
    )
    .await;
    assert_eq!(bad_cursor.status, 400, "{}", bad_cursor.text);

    let all = api(
        &c,
        &s,
        &erin,
        "POST",
        "/api/v1/me/notifications/read-all",
        None,
    )
    .await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.json, json!({"marked": 3, "unread_count": 0}));

    // frank, with in-app off for live, got nothing but his welcome: not in the list,
    // not on his feed (which saw three notifications for erin go by).
    let franks = notifications(&c, &s, &frank, "").await;
    let types: Vec<&Value> = franks["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|n| &n["type"])
        .collect();
    assert_eq!(types, [&json!("user.created")], "{franks:#}");
    assert_eq!(franks["unread_count"], 1);
    assert_eq!(frank_feed.next(Duration::from_millis(300)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_state_feed_follows_the_publisher_and_honours_visibility() {
    let s = start();
    let c = client();
    let fc = feed_client();
    let admin = login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let key = stream(&c, &s, &admin, "open-air", "public").await;
    stream(&c, &s, &admin, "backstage", "private").await;
    let url = |slug: &str| s.url(&format!("/api/v1/streams/{slug}/live-state/stream"));

    let mut feed = SseReader::open(&fc, &url("open-air"), None, None)
        .await
        .expect("public feed");
    assert!(feed.content_type.starts_with("text/event-stream"));
    let state = feed.expect("state", Duration::from_secs(5)).await.json();
    assert_eq!(state["state"], "idle", "{state:#}");
    assert_eq!(state["stream"]["slug"], "open-air", "{state:#}");

    let publisher = Publisher::start(source_file(), &s.publish_url(&key), true);
    let connected = feed.expect("stream.connected", LIVE_WITHIN).await.json();
    assert_eq!(connected["protocol"], "rtmp", "{connected:#}");
    let active = feed.expect("stream.active", LIVE_WITHIN).await;
    let active_json = active.json();
    assert_eq!(active_json["stream"]["slug"], "open-air");
    assert!(chrono::DateTime::parse_from_rfc3339(active_json["at"].as_str().expect("at")).is_ok());
    assert!(active.id.is_some());
    // A feed opened now starts from the current state.
    let mut late = SseReader::open(&fc, &url("open-air"), None, None)
        .await
        .expect("late feed");
    assert_eq!(
        late.expect("state", Duration::from_secs(5)).await.json()["state"],
        "active"
    );

    drop(publisher);
    let gone = feed
        .expect("stream.disconnected", Duration::from_secs(20))
        .await
        .json();
    assert_eq!(gone["reason"], "left", "{gone:#}");
    let ended = feed
        .expect("live_session.ended", Duration::from_secs(20))
        .await
        .json();
    assert_eq!(ended["reason"], "reconnect_window_expired", "{ended:#}");
    feed.expect("stream.idle", Duration::from_secs(20)).await;

    // A private stream's feed needs a token that may see it.
    let refused = SseReader::open(&fc, &url("backstage"), None, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.content_type, "application/problem+json");
    let other = api(
        &c,
        &s,
        &admin,
        "POST",
        "/api/v1/streams/open-air/playback-token",
        None,
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.text);
    let other = other.json["token"].as_str().expect("token");
    let wrong = SseReader::open(
        &fc,
        &format!("{}?token={other}", url("backstage")),
        None,
        None,
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let viewer = user(&c, &s, "gina").await;
    let not_hers = SseReader::open(&fc, &url("backstage"), Some(&viewer), None)
        .await
        .err()
        .expect("refused");
    assert!(matches!(not_hers.status, 401 | 403), "{}", not_hers.body);
    let mut owners = SseReader::open(&fc, &url("backstage"), Some(&admin), None)
        .await
        .expect("admin may");
    assert_eq!(
        owners.expect("state", Duration::from_secs(5)).await.json()["state"],
        "idle"
    );
    let missing = SseReader::open(&fc, &url("nope"), None, None)
        .await
        .err()
        .expect("404");
    assert_eq!(missing.status, 404);

    // Making the stream private ends its open public feed.
    let patched = api(
        &c,
        &s,
        &admin,
        "PATCH",
        "/api/v1/streams/open-air",
        Some(json!({"visibility": "private", "record": {"enabled": true}})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert!(
        late.ends_within(Duration::from_secs(5)).await,
        "the feed outlived the change"
    );
    let refused = SseReader::open(&fc, &url("open-air"), None, None)
        .await
        .err()
        .expect("now private");
    assert_eq!(refused.status, 401);

    // Open feeds end with the server instead of holding its shutdown for the drain.
    let mut mine = SseReader::open(&fc, &feed_url(&s), Some(&viewer), None)
        .await
        .expect("feed");
    let mut s = s;
    let (status, took) = s
        .terminate(Duration::from_secs(20))
        .expect("the server exits");
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(4),
        "shutdown took {took:?} with feeds open"
    );
    assert!(owners.ends_within(Duration::from_secs(2)).await);
    assert!(mine.ends_within(Duration::from_secs(2)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_a_notification_keeps_exactly_one_per_user_and_message() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let c = client();
    let s = Server::start_in(dir.path(), CONFIG, &env);
    let admin = login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let key = stream(&c, &s, &admin, "relay", "public").await;
    let hana = user(&c, &s, "hana").await;
    subscribe(&c, &s, &hana, "relay").await;
    let publisher = Publisher::start(source_file(), &s.publish_url(&key), true);
    wait_for_state(&c, &s, "relay", "active", LIVE_WITHIN).await;
    // Killed as soon as the stream is live: the dispatcher may or may not have moved
    // its cursor past the message yet.
    s.kill9();
    drop(publisher);

    let s = Server::start_in(dir.path(), CONFIG, &env);
    let hana = login(&c, &s, "hana", USER_PASSWORD).await;
    // Her welcome and the live notification.
    let first = wait_for_count(&c, &s, &hana, 2, Duration::from_secs(20)).await;
    assert_eq!(first["items"][0]["type"], "stream.live");
    // One more, later message: once it is in, the first was dispatched for good, and
    // a duplicate of it would be in the list too.
    go_live_once(&c, &s, "relay", &key).await;
    let list = wait_for_count(&c, &s, &hana, 3, Duration::from_secs(20)).await;
    assert_eq!(list["items"][0]["type"], "stream.live");
    assert_ne!(list["items"][0]["id"], list["items"][1]["id"]);
    assert_eq!(list["items"][1]["id"], first["items"][0]["id"], "{list:#}");
    assert_eq!(list["unread_count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_made_private_no_longer_tells_its_old_subscribers() {
    let s = start();
    let c = client();
    let admin = login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let key = stream(&c, &s, &admin, "backstage", "public").await;
    let ivy = user(&c, &s, "ivy").await;
    subscribe(&c, &s, &ivy, "backstage").await;
    subscribe(&c, &s, &admin, "backstage").await;
    wait_for_count(&c, &s, &ivy, 1, Duration::from_secs(10)).await; // her welcome
    let private = api(
        &c,
        &s,
        &admin,
        "PATCH",
        "/api/v1/streams/backstage",
        Some(json!({"visibility": "private", "record": {"enabled": true}})),
    )
    .await;
    assert_eq!(private.status, 200, "{}", private.text);
    // Published until its first segment (the stream info is the admin's to read now).
    let publisher = Publisher::start(source_file(), &s.publish_url(&key), true);
    let deadline = Instant::now() + LIVE_WITHIN;
    while api(&c, &s, &admin, "GET", "/api/v1/streams/backstage", None)
        .await
        .json["state"]
        != "active"
    {
        assert!(Instant::now() < deadline, "backstage never active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(publisher);
    // The admin (who may see it) hears of the broadcast and of its replay; both come
    // from the same messages as ivy's would.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = notifications(&c, &s, &admin, "").await;
        let titles = list["items"].to_string();
        if titles.contains("Live now: backstage") && titles.contains("Replay ready") {
            break;
        }
        assert!(Instant::now() < deadline, "admin: {list:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = notifications(&c, &s, &ivy, "").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list:#}");
    assert!(list["items"][0]["title"]
        .as_str()
        .is_some_and(|t| t.starts_with("Welcome")));
}
