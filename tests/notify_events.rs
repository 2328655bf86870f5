//! Scheduled events end to end: the real binary, a real ffmpeg publisher, and the
//! standardwebhooks receiver (tests/webhook_receiver) seeing each transition in order.

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::{api, client, login, source_file, Answer, Publisher, Server};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "events-admin-pass-1";
const CONFIG: &str = r#"
[webhooks]
allow_private_targets = true
retry_delays_ms = [300, 600, 1200]
"#;

fn rfc3339_in(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The `event.*` types the receiver got for event `id`, in arrival order.
fn transitions(receiver: &Receiver, id: &str) -> Vec<String> {
    receiver
        .verified()
        .iter()
        .filter(|r| r.payload["data"]["event"]["id"] == id)
        .filter_map(|r| r.payload["type"].as_str().map(str::to_string))
        .collect()
}

/// `POST /api/v1/streams` with `body`, which must answer 201; the created stream.
async fn create_stream(c: &reqwest::Client, server: &Server, token: &str, body: Value) -> Value {
    let created = api(c, server, token, "POST", "/api/v1/streams", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json
}

async fn event_state(c: &reqwest::Client, server: &Server, token: &str, id: &str) -> String {
    let a = api(
        c,
        server,
        token,
        "GET",
        &format!("/api/v1/events/{id}"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json["state"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_goes_starting_soon_live_and_ended_with_a_webhook_for_each() {
    let server = Server::start_with_env(CONFIG, &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let c = client();
    let token = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    let receiver = Receiver::start();
    let hook = api(
        &c,
        &server,
        &token,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": receiver.url(), "event_types": [
            "event.scheduled", "event.starting_soon", "event.live", "event.ended", "event.cancelled",
            "recording.ready"
        ]})),
    )
    .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    receiver
        .control(&c, json!({"secret": hook.json["secret"]}))
        .await;
    let stream = create_stream(
        &c,
        &server,
        &token,
        json!({"slug": "class", "reconnect_window_s": 0}),
    )
    .await;
    let key = stream["stream_key"].as_str().expect("key").to_string();

    // Times without a zone are refused.
    let bad = api(
        &c,
        &server,
        &token,
        "POST",
        "/api/v1/events",
        Some(json!({
            "title": "VR class", "stream": "class", "scheduled_start": "2030-01-01T10:00:00"
        })),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.content_type, "application/problem+json");

    // A few seconds ahead with a short lead: starting_soon comes by itself.
    let created = api(
        &c,
        &server,
        &token,
        "POST",
        "/api/v1/events",
        Some(json!({
            "title": "VR class", "stream": "class", "tags": ["vr"],
            "scheduled_start": rfc3339_in(4), "starting_soon_lead_s": 2
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["state"], "scheduled");
    let id = created.json["id"].as_str().expect("id").to_string();
    receiver
        .wait_for(Duration::from_secs(15), "event.starting_soon", |_| {
            transitions(&receiver, &id).contains(&"event.starting_soon".to_string())
        })
        .await;
    assert_eq!(event_state(&c, &server, &token, &id).await, "starting_soon");

    // ffmpeg publishes: live; ffmpeg stops: the session ends (no reconnect window).
    let mut publisher = Publisher::start(source_file(), &server.publish_url(&key), true);
    receiver
        .wait_for(Duration::from_secs(30), "event.live", |_| {
            transitions(&receiver, &id).contains(&"event.live".to_string())
        })
        .await;
    let live = api(
        &c,
        &server,
        &token,
        "GET",
        &format!("/api/v1/events/{id}"),
        None,
    )
    .await;
    assert_eq!(live.json["state"], "live");
    assert!(live.json["session_id"].is_string(), "{}", live.text);
    let _ = publisher.child.kill();
    receiver
        .wait_for(Duration::from_secs(30), "event.ended", |_| {
            transitions(&receiver, &id).contains(&"event.ended".to_string())
        })
        .await;
    drop(publisher);
    assert_eq!(
        transitions(&receiver, &id),
        [
            "event.scheduled",
            "event.starting_soon",
            "event.live",
            "event.ended"
        ]
    );
    assert_eq!(event_state(&c, &server, &token, &id).await, "ended");
    // The session was recorded: its replay is announced, and the event links it.
    let session = live.json["session_id"].clone();
    let is_replay = |r: &common::receiver::Received| {
        r.verified
            && r.payload["type"] == "recording.ready"
            && r.payload["data"]["asset"]["live_session_id"] == session
    };
    let received = receiver
        .wait_for(Duration::from_secs(60), "recording.ready", |all| {
            all.iter().any(is_replay)
        })
        .await;
    let ready = received
        .into_iter()
        .find(is_replay)
        .expect("recording.ready");
    let asset = &ready.payload["data"]["asset"];
    assert_eq!(asset["source"], "live_session", "{asset}");
    assert!(asset["renditions"].to_string().contains("/vod/"), "{asset}");
    let ended = api(
        &c,
        &server,
        &token,
        "GET",
        &format!("/api/v1/events/{id}"),
        None,
    )
    .await;
    assert_eq!(
        ended.json["recording_asset_id"], asset["id"],
        "{}",
        ended.text
    );
    // The server's transitions are not the client's to make.
    let refused = api(
        &c,
        &server,
        &token,
        "PATCH",
        &format!("/api/v1/events/{id}"),
        Some(json!({"state": "cancelled"})),
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_start_re_arms_the_reminder_and_drafts_stay_quiet() {
    let server = Server::start_with_env(CONFIG, &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let c = client();
    let token = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    create_stream(&c, &server, &token, json!({"slug": "match"})).await;

    let far = api(
        &c,
        &server,
        &token,
        "POST",
        "/api/v1/events",
        Some(json!({
            "title": "Final", "stream": "match", "scheduled_start": rfc3339_in(3600)
        })),
    )
    .await;
    assert_eq!(far.status, 201, "{}", far.text);
    assert_eq!(far.json["starting_soon_lead_s"], 900);
    let id = far.json["id"].as_str().expect("id").to_string();
    let draft = api(&c, &server, &token, "POST", "/api/v1/events", Some(json!({
        "title": "Rehearsal", "stream": "match", "scheduled_start": rfc3339_in(1), "state": "draft"
    })))
    .await;
    assert_eq!(draft.status, 201, "{}", draft.text);
    let draft_id = draft.json["id"].as_str().expect("id").to_string();

    // Moved to 2 s ahead (inside the 900 s lead): starting_soon at once.
    let moved = api(
        &c,
        &server,
        &token,
        "PATCH",
        &format!("/api/v1/events/{id}"),
        Some(json!({"scheduled_start": rfc3339_in(2)})),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while event_state(&c, &server, &token, &id).await != "starting_soon" {
        assert!(std::time::Instant::now() < deadline, "never starting_soon");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Moved back out: scheduled again, and the reminder will come again.
    let back = api(
        &c,
        &server,
        &token,
        "PATCH",
        &format!("/api/v1/events/{id}"),
        Some(json!({"scheduled_start": rfc3339_in(7200)})),
    )
    .await;
    assert_eq!(back.json["state"], "scheduled", "{}", back.text);
    // The draft, long past its reminder time, never moved.
    assert_eq!(event_state(&c, &server, &token, &draft_id).await, "draft");
    let cancelled = api(
        &c,
        &server,
        &token,
        "PATCH",
        &format!("/api/v1/events/{draft_id}"),
        Some(json!({"state": "cancelled"})),
    )
    .await;
    assert_eq!(cancelled.json["state"], "cancelled", "{}", cancelled.text);
}

/// A private stream's events are as hidden as the stream: a viewer does not see them in
/// the list, gets 404 for their id, and cannot subscribe to the stream or its events
/// (answered like a stream that does not exist); the admin sees and follows them.
#[tokio::test]
async fn a_private_streams_events_are_hidden_from_those_who_cannot_see_it() {
    let server = Server::start_with_env(CONFIG, &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let c = client();
    let admin = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    let viewer = api(
        &c,
        &server,
        &admin,
        "POST",
        "/api/v1/users",
        Some(json!({"username": "vic", "password": "a-long-password", "role": "viewer"})),
    )
    .await;
    assert_eq!(viewer.status, 201, "{}", viewer.text);
    let vic = login(&c, &server, "vic", "a-long-password").await;
    for (slug, visibility) in [("board", "private"), ("hall", "public")] {
        create_stream(
            &c,
            &server,
            &admin,
            json!({"slug": slug, "visibility": visibility}),
        )
        .await;
    }
    let mut ids = Vec::new();
    for stream in ["board", "hall"] {
        let e = api(
            &c,
            &server,
            &admin,
            "POST",
            "/api/v1/events",
            Some(
                json!({"title": format!("{stream} meeting"), "stream": stream,
                        "scheduled_start": rfc3339_in(3600)}),
            ),
        )
        .await;
        assert_eq!(e.status, 201, "{}", e.text);
        ids.push(e.json["id"].as_str().expect("id").to_string());
    }
    let (private_event, public_event) = (&ids[0], &ids[1]);

    let titles = |a: &Answer| -> Vec<String> {
        a.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|e| e["title"].as_str().map(str::to_owned))
            .collect()
    };
    let seen = api(&c, &server, &vic, "GET", "/api/v1/events", None).await;
    assert_eq!(titles(&seen), ["hall meeting"], "{}", seen.text);
    let all = api(&c, &server, &admin, "GET", "/api/v1/events", None).await;
    assert_eq!(titles(&all).len(), 2, "{}", all.text);
    let path = |id: &str| format!("/api/v1/events/{id}");
    assert_eq!(
        api(&c, &server, &vic, "GET", &path(private_event), None)
            .await
            .status,
        404
    );
    assert_eq!(
        api(&c, &server, &vic, "GET", &path(public_event), None)
            .await
            .status,
        200
    );
    assert_eq!(
        api(&c, &server, &admin, "GET", &path(private_event), None)
            .await
            .status,
        200
    );

    // Subscribing: the private stream and its event answer like missing ones.
    let subscribe = |body: Value, token: String| {
        let (c, server) = (&c, &server);
        async move {
            api(
                c,
                server,
                &token,
                "POST",
                "/api/v1/me/subscriptions",
                Some(body),
            )
            .await
        }
    };
    let missing = subscribe(json!({"stream": "no-such-stream"}), vic.clone()).await;
    let hidden = subscribe(json!({"stream": "board"}), vic.clone()).await;
    assert_eq!(
        (missing.status, hidden.status),
        (422, 422),
        "{}",
        hidden.text
    );
    assert_eq!(
        hidden.json["detail"]
            .as_str()
            .map(|d| d.replace("board", "X")),
        missing.json["detail"]
            .as_str()
            .map(|d| d.replace("no-such-stream", "X")),
        "the refusal gives the private stream away"
    );
    let hidden_event = subscribe(json!({"event": private_event}), vic.clone()).await;
    assert_eq!(hidden_event.status, 422, "{}", hidden_event.text);
    assert_eq!(
        subscribe(json!({"stream": "hall"}), vic.clone())
            .await
            .status,
        201
    );
    assert_eq!(
        subscribe(json!({"stream": "board"}), admin.clone())
            .await
            .status,
        201
    );
}

/// A draft is its author's notes: a viewer and another broadcaster neither list it, nor
/// get it by id (404, like a missing event), nor find it in search, nor subscribe to it,
/// nor change or delete it. Its owner, the owner of its stream and admins see it; once
/// published it is everyone's.
#[tokio::test]
async fn someone_elses_draft_is_hidden_from_every_path() {
    let server = Server::start_with_env(CONFIG, &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let c = client();
    let admin = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    let mut tokens = Vec::new();
    for (name, role) in [
        ("bea", "broadcaster"),
        ("bob", "broadcaster"),
        ("vic", "viewer"),
    ] {
        let made = api(
            &c,
            &server,
            &admin,
            "POST",
            "/api/v1/users",
            Some(json!({"username": name, "password": "a-long-password", "role": role})),
        )
        .await;
        assert_eq!(made.status, 201, "{}", made.text);
        tokens.push(login(&c, &server, name, "a-long-password").await);
    }
    let (bea, bob, vic) = (&tokens[0], &tokens[1], &tokens[2]);
    // Both public: only the draft rule hides anything here.
    for (token, slug) in [(&admin, "hall"), (bea, "studio")] {
        create_stream(
            &c,
            &server,
            token,
            json!({"slug": slug, "visibility": "public"}),
        )
        .await;
    }
    let create = |token: String, body: Value| {
        let (c, server) = (&c, &server);
        async move {
            let e = api(c, server, &token, "POST", "/api/v1/events", Some(body)).await;
            assert_eq!(e.status, 201, "{}", e.text);
            e.json["id"].as_str().expect("id").to_string()
        }
    };
    let start = rfc3339_in(7200);
    // bea's draft on the admin's stream; the admin's draft on bea's stream.
    let beas_draft = create(
        bea.clone(),
        json!({"title": "Zeppelin launch", "stream": "hall", "scheduled_start": start, "state": "draft"}),
    )
    .await;
    let admins_draft = create(
        admin.clone(),
        json!({"title": "Studio rehearsal", "stream": "studio", "scheduled_start": start, "state": "draft"}),
    )
    .await;
    create(
        admin.clone(),
        json!({"title": "Open day", "stream": "hall", "scheduled_start": start}),
    )
    .await;

    let titles = |token: String| {
        let (c, server) = (&c, &server);
        async move {
            let a = api(c, server, &token, "GET", "/api/v1/events", None).await;
            assert_eq!(a.status, 200, "{}", a.text);
            let mut t: Vec<String> = a.json["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|e| e["title"].as_str().map(str::to_owned))
                .collect();
            t.sort();
            t
        }
    };
    let everything = ["Open day", "Studio rehearsal", "Zeppelin launch"];
    assert_eq!(titles(vic.clone()).await, ["Open day"]);
    assert_eq!(titles(bob.clone()).await, ["Open day"]);
    assert_eq!(titles(bea.clone()).await, everything);
    assert_eq!(titles(admin.clone()).await, everything);

    let status = |token: String, method: &'static str, id: String, body: Option<Value>| {
        let (c, server) = (&c, &server);
        async move {
            api(
                c,
                server,
                &token,
                method,
                &format!("/api/v1/events/{id}"),
                body,
            )
            .await
            .status
        }
    };
    for id in [&beas_draft, &admins_draft] {
        assert_eq!(status(vic.clone(), "GET", id.clone(), None).await, 404);
        assert_eq!(status(bob.clone(), "GET", id.clone(), None).await, 404);
        assert_eq!(status(bea.clone(), "GET", id.clone(), None).await, 200);
        assert_eq!(status(admin.clone(), "GET", id.clone(), None).await, 200);
    }
    // Another broadcaster cannot rename, publish or delete it either, nor learn it exists.
    let rename = Some(json!({"title": "Hijacked"}));
    assert_eq!(
        status(bob.clone(), "PATCH", beas_draft.clone(), rename).await,
        404
    );
    assert_eq!(
        status(bob.clone(), "DELETE", beas_draft.clone(), None).await,
        404
    );

    // Search finds it only for who may see it.
    let search = |token: String| {
        let (c, server) = (&c, &server);
        async move {
            let url =
                reqwest::Url::parse_with_params(&server.url("/api/v1/search"), [("q", "zeppelin")])
                    .expect("url");
            let a = common::call(c, "GET", url.as_str(), Some(&token), None).await;
            assert_eq!(a.status, 200, "{}", a.text);
            a.json["items"].as_array().map_or(0, Vec::len)
        }
    };
    assert_eq!(search(vic.clone()).await, 0);
    assert_eq!(search(bob.clone()).await, 0);
    assert_eq!(search(bea.clone()).await, 1);

    // Subscribing to it answers like an event that does not exist.
    let sub = api(
        &c,
        &server,
        vic,
        "POST",
        "/api/v1/me/subscriptions",
        Some(json!({"event": beas_draft})),
    )
    .await;
    assert_eq!(sub.status, 422, "{}", sub.text);

    // Published, it is everyone's.
    let published = api(
        &c,
        &server,
        bea,
        "PATCH",
        &format!("/api/v1/events/{beas_draft}"),
        Some(json!({"state": "scheduled"})),
    )
    .await;
    assert_eq!(published.status, 200, "{}", published.text);
    assert_eq!(published.json["title"], "Zeppelin launch");
    assert_eq!(titles(vic.clone()).await, ["Open day", "Zeppelin launch"]);
    assert_eq!(
        status(vic.clone(), "GET", beas_draft.clone(), None).await,
        200
    );
    assert_eq!(search(vic.clone()).await, 1);
    // Seen by all now, but still only Bea's to change: another broadcaster gets 403.
    assert_eq!(
        status(
            bob.clone(),
            "PATCH",
            beas_draft.clone(),
            Some(json!({"title": "Hijacked"}))
        )
        .await,
        403
    );
    assert_eq!(
        status(bob.clone(), "DELETE", beas_draft.clone(), None).await,
        403
    );
    assert_eq!(
        status(bob.clone(), "GET", beas_draft.clone(), None).await,
        200
    );
}

/// A stream going live is not every event on it starting: the event 20 hours away
/// (well outside its 15-minute lead) stays scheduled, while the one whose
/// starting-soon window is open (a one-day lead) is the one that goes live and ends.
/// An event whose window opens while its stream is live goes live then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_going_live_leaves_a_far_off_event_scheduled() {
    let server = Server::start_with_env(CONFIG, &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let c = client();
    let token = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    let stream = create_stream(
        &c,
        &server,
        &token,
        json!({"slug": "arena", "reconnect_window_s": 0}),
    )
    .await;
    let key = stream["stream_key"].as_str().expect("key").to_string();
    let mut ids = Vec::new();
    for (title, start, lead) in [
        ("Tomorrow's final", rfc3339_in(20 * 3600), 900),
        ("Season preview", rfc3339_in(21 * 3600), 86_400),
    ] {
        let e = api(
            &c,
            &server,
            &token,
            "POST",
            "/api/v1/events",
            Some(
                json!({"title": title, "stream": "arena", "scheduled_start": start,
                        "starting_soon_lead_s": lead}),
            ),
        )
        .await;
        assert_eq!(e.status, 201, "{}", e.text);
        ids.push(e.json["id"].as_str().expect("id").to_string());
    }
    let (far, open) = (&ids[0], &ids[1]);
    let wait_state = |id: String, want: &'static str, limit: Duration| {
        let (c, server, token) = (&c, &server, &token);
        async move {
            let deadline = std::time::Instant::now() + limit;
            loop {
                let state = event_state(c, server, token, &id).await;
                if state == want {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{id} is {state}, never {want}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The one-day lead has begun: the open event is starting soon already.
    wait_state(open.clone(), "starting_soon", Duration::from_secs(10)).await;
    assert_eq!(event_state(&c, &server, &token, far).await, "scheduled");

    let mut publisher = Publisher::start(source_file(), &server.publish_url(&key), true);
    wait_state(open.clone(), "live", Duration::from_secs(30)).await;
    assert_eq!(event_state(&c, &server, &token, far).await, "scheduled");
    let _ = publisher.child.kill();
    wait_state(open.clone(), "ended", Duration::from_secs(30)).await;
    drop(publisher);
    let far_event = api(
        &c,
        &server,
        &token,
        "GET",
        &format!("/api/v1/events/{far}"),
        None,
    )
    .await;
    assert_eq!(far_event.json["state"], "scheduled", "{}", far_event.text);
    assert!(
        far_event.json.get("session_id").is_none(),
        "{}",
        far_event.text
    );

    // Live again, early: when the event's window opens during the session (here: its
    // start moved to a minute from now), the event goes live with that session.
    let mut publisher = Publisher::start(source_file(), &server.publish_url(&key), true);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = api(&c, &server, &token, "GET", "/api/v1/streams/arena", None).await;
        if s.json["state"] == "active" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never live: {}",
            s.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(event_state(&c, &server, &token, far).await, "scheduled");
    let moved = api(
        &c,
        &server,
        &token,
        "PATCH",
        &format!("/api/v1/events/{far}"),
        Some(json!({"scheduled_start": rfc3339_in(60)})),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    wait_state(far.clone(), "live", Duration::from_secs(10)).await;
    let _ = publisher.child.kill();
    wait_state(far.clone(), "ended", Duration::from_secs(30)).await;
}
