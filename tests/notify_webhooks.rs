//! Webhooks end to end: the real `panocast` binary and its SQLite file, a real
//! receiver that verifies every signature with PyPI `standardwebhooks`
//! (tests/webhook_receiver), real ffmpeg publishers, `kill -9`.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::receiver::{Received, Receiver};
use common::{call, client, source_file, Answer, Publisher, Server};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "webhooks-admin-pass-1";

/// Fast retries; private targets allowed (the receiver is on loopback).
const CONFIG: &str = r#"
[webhooks]
allow_private_targets = true
retry_delays_ms = [300, 600, 1200, 2400]
timeout_ms = 5000
"#;

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(server: &Server) -> Api {
        let http = client();
        let a = call(
            &http,
            "POST",
            &server.url("/api/v1/auth/login"),
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string()),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        Api {
            token: a.json["access_token"].as_str().expect("token").to_string(),
            http,
            base: server.http.clone(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        call(
            &self.http,
            method,
            &format!("{}{path}", self.base),
            Some(&self.token),
            body.map(|b| b.to_string()),
        )
        .await
    }

    /// Registers `url`; returns the webhook id and its secret.
    async fn webhook(&self, url: &str, types: &[&str]) -> (String, String) {
        let a = self
            .call(
                "POST",
                "/api/v1/webhooks",
                Some(json!({"url": url, "event_types": types, "description": "test"})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        let secret = a.json["secret"].as_str().expect("secret").to_string();
        assert!(secret.starts_with("whsec_"), "{secret}");
        (
            a.json["webhook"]["id"].as_str().expect("id").to_string(),
            secret,
        )
    }

    /// Creates a stream; returns its key.
    async fn stream(&self, body: Value) -> String {
        let a = self.call("POST", "/api/v1/streams", Some(body)).await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.json["stream_key"].as_str().expect("key").to_string()
    }
}

fn start(config: &str) -> Server {
    Server::start_with_env(config, &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)])
}

fn of_type<'a>(got: &'a [Received], kind: &str) -> Vec<&'a Received> {
    got.iter()
        .filter(|r| r.verified && r.payload["type"] == kind)
        .collect()
}

fn slug_of(r: &Received) -> &str {
    r.payload["data"]["stream"]["slug"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_retries_log_replay_and_live_state() {
    let server = start(CONFIG);
    let api = Api::login(&server).await;
    let receiver = Receiver::start();
    let (webhook, secret) = api.webhook(&receiver.url(), &[]).await;
    receiver
        .control(&api.http, json!({"secret": secret, "fail_next": 2}))
        .await;

    // stream.created: 500, 500, then accepted, all three with the same webhook-id.
    let key = api
        .stream(json!({"slug": "hooked", "reconnect_window_s": 0}))
        .await;
    let got = receiver
        .wait_for(
            Duration::from_secs(20),
            "a verified stream.created",
            |got| {
                got.iter()
                    .any(|r| r.verified && r.payload["type"] == "stream.created")
            },
        )
        .await;
    let created = of_type(&got, "stream.created")[0];
    assert_eq!(slug_of(created), "hooked");
    assert!(
        created.webhook_id.starts_with("msg_"),
        "{}",
        created.webhook_id
    );
    let tries: Vec<&Received> = got
        .iter()
        .filter(|r| r.webhook_id == created.webhook_id)
        .collect();
    assert_eq!(
        tries.iter().map(|r| r.answer).collect::<Vec<_>>(),
        [500, 500, 204],
        "{tries:#?}"
    );

    // The delivery log shows the three attempts, once the server has recorded the
    // answer the receiver just gave.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let delivery = loop {
        let log = api
            .call(
                "GET",
                &format!("/api/v1/webhooks/{webhook}/deliveries"),
                None,
            )
            .await;
        assert_eq!(log.status, 200, "{}", log.text);
        let delivery = log.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|d| d["message_id"] == created.webhook_id.as_str())
            .unwrap_or_else(|| panic!("no delivery of {}: {}", created.webhook_id, log.text))
            .clone();
        if delivery["state"] == "delivered" {
            break delivery;
        }
        assert!(std::time::Instant::now() < deadline, "{delivery}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a["attempt"].as_u64(), a["status_code"].as_u64()))
            .collect::<Vec<_>>(),
        [
            (Some(1), Some(500)),
            (Some(2), Some(500)),
            (Some(3), Some(204))
        ],
        "{delivery}"
    );
    assert!(attempts.iter().all(|a| a["latency_ms"].is_u64()));
    assert!(attempts[0]["error"].is_string() && attempts[2].get("error").is_none());

    // A publisher going live, then away: stream.live, then stream.offline.
    let mut publisher = Publisher::start(source_file(), &server.publish_url(&key), true);
    receiver
        .wait_for(Duration::from_secs(30), "stream.live", |got| {
            of_type(got, "stream.live")
                .iter()
                .any(|r| slug_of(r) == "hooked")
        })
        .await;
    let _ = publisher.child.kill();
    let got = receiver
        .wait_for(Duration::from_secs(30), "stream.offline", |got| {
            of_type(got, "stream.offline")
                .iter()
                .any(|r| slug_of(r) == "hooked")
        })
        .await;
    let offline = of_type(&got, "stream.offline")[0];
    assert!(
        offline.payload["data"]["session"]["id"].is_string(),
        "{offline:?}"
    );
    drop(publisher);

    // Replay sends the same message again, with the same webhook-id.
    let delivery_id = delivery["id"].as_str().expect("delivery id");
    let replay = api
        .call(
            "POST",
            &format!("/api/v1/webhooks/{webhook}/deliveries/{delivery_id}/replay"),
            None,
        )
        .await;
    assert_eq!(replay.status, 202, "{}", replay.text);
    assert_eq!(replay.json["message_id"], created.webhook_id.as_str());
    receiver
        .wait_for(Duration::from_secs(10), "the replay", |got| {
            got.iter()
                .filter(|r| r.verified && r.webhook_id == created.webhook_id)
                .count()
                == 2
        })
        .await;

    // A rotated secret signs from now on: a test send verifies with the new one only.
    let rotated = api
        .call(
            "POST",
            &format!("/api/v1/webhooks/{webhook}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json["secret"].as_str().expect("secret");
    assert_ne!(new_secret, secret);
    receiver
        .control(&api.http, json!({"secret": new_secret}))
        .await;
    let test = api
        .call("POST", &format!("/api/v1/webhooks/{webhook}/test"), None)
        .await;
    assert_eq!(test.status, 202, "{}", test.text);
    receiver
        .wait_for(Duration::from_secs(10), "webhook.test", |got| {
            !of_type(got, "webhook.test").is_empty()
        })
        .await;

    // Every request verified except the ones told to fail.
    let got = receiver.received();
    assert!(
        got.iter().all(|r| r.verified || r.answer == 500),
        "{got:#?}"
    );
    // Secrets never reach the log.
    let log = server.log_lines().join("\n");
    assert!(!log.contains(&secret) && !log.contains(new_secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_kill_9_and_arrive_once_each() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let receiver = Receiver::start();
    let server = Server::start_in(dir.path(), CONFIG, &env);
    let api = Api::login(&server).await;
    let (_, secret) = api.webhook(&receiver.url(), &["stream.created"]).await;
    receiver.control(&api.http, json!({"secret": secret})).await;

    const N: usize = 20;
    for i in 0..N {
        api.stream(json!({"slug": format!("crash-{i}")})).await;
    }
    // Right after the last 201: no time to deliver, flush or shut down.
    server.kill9();
    let before = receiver.verified().len();

    let _restarted = Server::start_in(dir.path(), CONFIG, &env);
    let got = receiver
        .wait_for(Duration::from_secs(30), "every stream.created", |got| {
            let ids: HashSet<&str> = of_type(got, "stream.created")
                .iter()
                .map(|r| r.webhook_id.as_str())
                .collect();
            ids.len() >= N
        })
        .await;
    // De-duplicated by webhook-id: exactly one message per stream, none missing.
    let mut by_id: HashMap<&str, &str> = HashMap::new();
    for r in of_type(&got, "stream.created") {
        let slug = slug_of(r);
        if let Some(seen) = by_id.insert(&r.webhook_id, slug) {
            assert_eq!(seen, slug, "one webhook-id, two messages");
        }
    }
    let mut slugs: Vec<&str> = by_id.values().copied().collect();
    slugs.sort_unstable();
    let mut wanted: Vec<String> = (0..N).map(|i| format!("crash-{i}")).collect();
    wanted.sort_unstable();
    assert_eq!(slugs, wanted);
    eprintln!(
        "kill -9 after {N} creations: {before} delivered before the kill, {} after de-dup ({} requests)",
        by_id.len(),
        of_type(&got, "stream.created").len()
    );
}

#[tokio::test]
async fn internal_targets_are_refused_under_the_default_config() {
    let server = start("");
    let api = Api::login(&server).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/",
    ] {
        let a = api
            .call("POST", "/api/v1/webhooks", Some(json!({"url": url})))
            .await;
        assert_eq!(a.status, 422, "{url}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json", "{url}");
        assert!(
            a.json["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("webhook target refused")),
            "{url}: {}",
            a.text
        );
    }
    let listed = api.call("GET", "/api/v1/webhooks", None).await;
    assert_eq!(listed.json["items"], json!([]));
}
