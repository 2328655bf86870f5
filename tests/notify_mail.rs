//! Email end to end: the real binary delivering over SMTP to a real SMTP server
//! (tests/smtp_sink/sink.py on Debian's python3-aiosmtpd, AUTH required) that saves
//! every accepted message; the tests read what a user's mailbox would show.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{api, call, client, login, source_file, Answer, Publisher, Server};
use serde_json::{json, Value};

const SMTP_USER: &str = "panocast-mailer";
const SMTP_PASSWORD: &str = "smtp-S3cret-never-in-logs";
/// `public_url` of the test that sets one (a proxy that serves panocast under a path).
const PUBLIC_URL: &str = "https://tv.panocast.test/live360";
const ADMIN_PASSWORD: &str = "mail-admin-pass-1";

/// A running SMTP server and the directory its messages land in.
struct Sink {
    child: Child,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start(port: u16) -> Sink {
        let dir = tempfile::tempdir().expect("mail dir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink/sink.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .args([SMTP_USER, SMTP_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP server (scripts/deps.sh installs python3-aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sink output");
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Sink { child, dir }
    }

    /// Every message so far, in arrival order.
    fn inbox(&self) -> Vec<Value> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("read mail dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("mail")).expect("json"))
            .collect()
    }

    async fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.inbox().into_iter().find(|m| pred(m)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail {what} within {limit:?}; inbox: {:#?}",
                self.inbox()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn config(port: u16) -> String {
    format!(
        r#"
[auth]
open_registration = true

[mail]
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "none"
username = "{SMTP_USER}"
password = "{SMTP_PASSWORD}"
from = "panocast <noreply@panocast.test>"
timeout_ms = 2000
retry_delays_ms = [200, 400, 800, 1600, 3200, 6400]
"#
    )
}

async fn register(c: &reqwest::Client, server: &Server, body: Value) -> Answer {
    call(
        c,
        "POST",
        &server.url("/api/v1/auth/register"),
        None,
        Some(body.to_string()),
    )
    .await
}

fn to(m: &Value) -> &str {
    m["to"].as_str().unwrap_or_default()
}

fn assert_no_password_in_log(server: &Server) {
    let leaked: Vec<_> = server
        .log_lines()
        .into_iter()
        .filter(|l| l.contains(SMTP_PASSWORD))
        .collect();
    assert!(
        leaked.is_empty(),
        "the SMTP password is in the log: {leaked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_gets_one_welcome_mail_with_text_and_html() {
    let port = free_port();
    let sink = Sink::start(port);
    let server = Server::start_with_env(
        &config(port),
        &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let c = client();

    // A malformed address is refused, and no account is made.
    let bad = register(
        &c,
        &server,
        json!({"username": "mallory", "password": "long-enough-pass-1", "email": "not-an-address"}),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.content_type, "application/problem+json");

    let alice = register(
        &c,
        &server,
        json!({"username": "alice", "password": "long-enough-pass-1", "email": "alice@example.com"}),
    )
    .await;
    assert_eq!(alice.status, 201, "{}", alice.text);
    assert_eq!(alice.json["email"], "alice@example.com");
    // No address, no mail; then one more with an address, so that once carol's mail
    // is in, anything more for alice would be in too.
    let bob = register(
        &c,
        &server,
        json!({"username": "bob", "password": "long-enough-pass-1"}),
    )
    .await;
    assert_eq!(bob.status, 201, "{}", bob.text);
    assert!(bob.json.get("email").is_none(), "{}", bob.text);
    let carol = register(
        &c,
        &server,
        json!({"username": "carol", "password": "long-enough-pass-1", "email": "carol@example.com"}),
    )
    .await;
    assert_eq!(carol.status, 201, "{}", carol.text);

    sink.wait_for("for carol", Duration::from_secs(20), |m| {
        to(m) == "carol@example.com"
    })
    .await;
    let inbox = sink.inbox();
    let for_alice: Vec<_> = inbox
        .iter()
        .filter(|m| to(m) == "alice@example.com")
        .collect();
    assert_eq!(for_alice.len(), 1, "{inbox:#?}");
    let m = for_alice[0];
    assert_eq!(m["subject"], "Welcome to panocast, alice");
    assert_eq!(m["rcpt_tos"], json!(["alice@example.com"]));
    assert_eq!(m["from"], "panocast <noreply@panocast.test>");
    assert_eq!(m["content_type"], "multipart/alternative");
    assert!(
        m["parts"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("text/plain")) && p.contains(&json!("text/html"))),
        "{m:#}"
    );
    assert!(
        m["text"]
            .as_str()
            .is_some_and(|t| t.contains("Welcome, alice!")),
        "{m:#}"
    );
    assert!(
        m["html"]
            .as_str()
            .is_some_and(|t| t.contains("<h1>Welcome, alice!</h1>")),
        "{m:#}"
    );
    // The link is absolute: without `public_url`, on the address the server is bound to.
    let home = server.url("/");
    assert!(home.starts_with("http://127.0.0.1:"), "{home}");
    assert!(
        m["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("Sign in: {home}"))),
        "{m:#}"
    );
    assert_eq!(m["authenticated"], true);
    assert_eq!(inbox.len(), 2, "only alice and carol get mail: {inbox:#?}");
    assert_no_password_in_log(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_waits_for_the_smtp_server_to_come_up() {
    let port = free_port();
    let server = Server::start_with_env(
        &config(port),
        &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let c = client();
    let dave = register(
        &c,
        &server,
        json!({"username": "dave", "password": "long-enough-pass-1", "email": "dave@example.com"}),
    )
    .await;
    assert_eq!(dave.status, 201, "{}", dave.text);
    // The first attempt fails: nothing listens yet.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .log_lines()
        .iter()
        .any(|l| l.contains("mail not sent"))
    {
        assert!(Instant::now() < deadline, "no failed attempt logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sink = Sink::start(port);
    let m = sink
        .wait_for("for dave", Duration::from_secs(30), |m| {
            to(m) == "dave@example.com"
        })
        .await;
    assert_eq!(m["subject"], "Welcome to panocast, dave");
    assert_no_password_in_log(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_subscriber_gets_a_live_mail_when_ffmpeg_publishes() {
    let port = free_port();
    let sink = Sink::start(port);
    let server = Server::start_with_env(
        &config(port),
        &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let c = client();
    let admin = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    let stream = api(
        &c,
        &server,
        &admin,
        "POST",
        "/api/v1/streams",
        Some(json!({"slug": "match", "reconnect_window_s": 0})),
    )
    .await;
    assert_eq!(stream.status, 201, "{}", stream.text);
    let key = stream.json["stream_key"].as_str().expect("key").to_string();

    for (name, email) in [("erin", "erin@example.com"), ("frank", "frank@example.com")] {
        let r = register(
            &c,
            &server,
            json!({"username": name, "password": "long-enough-pass-1", "email": email}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let erin = login(&c, &server, "erin", "long-enough-pass-1").await;
    let frank = login(&c, &server, "frank", "long-enough-pass-1").await;
    for token in [&erin, &frank] {
        let sub = api(
            &c,
            &server,
            token,
            "POST",
            "/api/v1/me/subscriptions",
            Some(json!({"stream": "match"})),
        )
        .await;
        assert_eq!(sub.status, 201, "{}", sub.text);
        assert!(
            sub.json["stream_id"]
                .as_str()
                .is_some_and(|s| s.starts_with("st_")),
            "{}",
            sub.text
        );
        let again = api(
            &c,
            &server,
            token,
            "POST",
            "/api/v1/me/subscriptions",
            Some(json!({"stream": "match"})),
        )
        .await;
        assert_eq!(again.status, 409, "{}", again.text);
    }
    let listed = api(&c, &server, &erin, "GET", "/api/v1/me/subscriptions", None).await;
    assert_eq!(
        listed.json["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    let unknown = api(
        &c,
        &server,
        &erin,
        "POST",
        "/api/v1/me/subscriptions",
        Some(json!({"stream": "nope"})),
    )
    .await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);

    // frank wants live news in the app only.
    assert_eq!(
        live_channels(&c, &server, &frank).await,
        json!({"email": true, "in_app": true})
    );
    let put = api(
        &c,
        &server,
        &frank,
        "PUT",
        "/api/v1/me/notification-preferences",
        Some(json!({
            "starting_soon": {"email": true, "in_app": true},
            "live": {"email": false, "in_app": true},
        })),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(
        live_channels(&c, &server, &frank).await,
        json!({"email": false, "in_app": true})
    );

    let _publisher = Publisher::start(source_file(), &server.publish_url(&key), true);
    let live = sink
        .wait_for("live for erin", Duration::from_secs(40), |m| {
            to(m) == "erin@example.com"
                && m["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Live now"))
        })
        .await;
    assert_eq!(live["subject"], "Live now: match");
    assert_eq!(live["content_type"], "multipart/alternative");
    assert!(
        live["text"]
            .as_str()
            .is_some_and(|t| t.contains("match is live")),
        "{live:#}"
    );
    assert!(
        live["html"]
            .as_str()
            .is_some_and(|t| t.contains("match is live")),
        "{live:#}"
    );
    // A link a mail client can open: absolute, to the stream's player page.
    let watch = server.url("/watch/match");
    assert!(
        live["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("Watch live: {watch}"))),
        "{live:#}"
    );
    assert!(
        live["html"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("<a href=\"{watch}\">Watch live</a>"))),
        "{live:#}"
    );
    // frank's welcome came; no live mail for him (his mails for that message would
    // have been written in the same transaction as erin's and sent in the same round).
    sink.wait_for("welcome for frank", Duration::from_secs(5), |m| {
        to(m) == "frank@example.com"
    })
    .await;
    let frank_live = sink
        .inbox()
        .into_iter()
        .filter(|m| to(m) == "frank@example.com" && m["subject"] != "Welcome to panocast, frank")
        .count();
    assert_eq!(frank_live, 0, "{:#?}", sink.inbox());

    // Unsubscribed: gone from the list, and a second delete is a 404.
    let id = listed.json["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let del = api(
        &c,
        &server,
        &erin,
        "DELETE",
        &format!("/api/v1/me/subscriptions/{id}"),
        None,
    )
    .await;
    assert_eq!(del.status, 204, "{}", del.text);
    let del = api(
        &c,
        &server,
        &erin,
        "DELETE",
        &format!("/api/v1/me/subscriptions/{id}"),
        None,
    )
    .await;
    assert_eq!(del.status, 404, "{}", del.text);
    assert_no_password_in_log(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_registration_is_mailed_after_kill_9_and_restart() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("dir");
    let env = [("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    // No SMTP server yet: the mail can only be in the database when the server dies.
    let server = Server::start_in(dir.path(), &config(port), &env);
    let c = client();
    let gina = register(
        &c,
        &server,
        json!({"username": "gina", "password": "long-enough-pass-1", "email": "gina@example.com"}),
    )
    .await;
    assert_eq!(gina.status, 201, "{}", gina.text);
    server.kill9();

    let sink = Sink::start(port);
    let server = Server::start_in(dir.path(), &config(port), &env);
    let m = sink
        .wait_for("for gina", Duration::from_secs(30), |m| {
            to(m) == "gina@example.com"
        })
        .await;
    assert_eq!(m["subject"], "Welcome to panocast, gina");
    assert_no_password_in_log(&server);
}

/// The channels the "live" notification reaches for the holder of `token`.
async fn live_channels(c: &reqwest::Client, server: &Server, token: &str) -> Value {
    let prefs = api(
        c,
        server,
        token,
        "GET",
        "/api/v1/me/notification-preferences",
        None,
    )
    .await;
    assert_eq!(prefs.status, 200, "{}", prefs.text);
    prefs.json["live"].clone()
}

/// The titles of `token`'s in-app notifications, oldest first.
async fn in_app_titles(c: &reqwest::Client, server: &Server, token: &str) -> Vec<String> {
    let a = api(
        c,
        server,
        token,
        "GET",
        "/api/v1/me/notifications?limit=100",
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let mut items: Vec<Value> = a.json["items"].as_array().cloned().unwrap_or_default();
    items.reverse();
    let mut titles: Vec<(String, String)> = items
        .iter()
        .filter_map(|n| {
            Some((
                n["created_at"].to_string(),
                n["title"].as_str()?.to_string(),
            ))
        })
        .collect();
    titles.sort_by(|a, b| a.0.cmp(&b.0));
    titles.into_iter().map(|(_, t)| t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_subscribers_hear_of_the_end_and_the_replay_by_mail_and_in_app() {
    let port = free_port();
    let sink = Sink::start(port);
    // Behind a proxy at a path: mails link there, not to the bound address.
    let server = Server::start_with_env(
        &format!("public_url = \"{PUBLIC_URL}/\"\n{}", config(port)),
        &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let c = client();
    let admin = login(&c, &server, "admin", ADMIN_PASSWORD).await;
    let stream = api(
        &c,
        &server,
        &admin,
        "POST",
        "/api/v1/streams",
        Some(json!({"slug": "seminar", "reconnect_window_s": 0})),
    )
    .await;
    assert_eq!(stream.status, 201, "{}", stream.text);
    let key = stream.json["stream_key"].as_str().expect("key").to_string();
    let start = (chrono::Utc::now() + chrono::Duration::seconds(600))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let event = api(
        &c,
        &server,
        &admin,
        "POST",
        "/api/v1/events",
        Some(json!({"title": "Seminar", "stream": "seminar", "scheduled_start": start})),
    )
    .await;
    assert_eq!(event.status, 201, "{}", event.text);
    let event_id = event.json["id"].as_str().expect("id").to_string();
    // gina by mail only, hal in the app only.
    let mut tokens = Vec::new();
    for (name, email, prefs) in [
        (
            "gina",
            "gina@example.com",
            json!({"email": true, "in_app": false}),
        ),
        (
            "hal",
            "hal@example.com",
            json!({"email": false, "in_app": true}),
        ),
    ] {
        let r = register(
            &c,
            &server,
            json!({"username": name, "password": "long-enough-pass-1", "email": email}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let token = login(&c, &server, name, "long-enough-pass-1").await;
        // Preferences before the subscription: the event's window is already
        // open (start in 10 min, lead 15), so its reminder may go out at once.
        let put = api(
            &c,
            &server,
            &token,
            "PUT",
            "/api/v1/me/notification-preferences",
            Some(json!({"starting_soon": prefs, "live": prefs})),
        )
        .await;
        assert_eq!(put.status, 200, "{}", put.text);
        let sub = api(
            &c,
            &server,
            &token,
            "POST",
            "/api/v1/me/subscriptions",
            Some(json!({"event": event_id})),
        )
        .await;
        assert_eq!(sub.status, 201, "{}", sub.text);
        tokens.push(token);
    }

    // A short broadcast, published to its end: live, then ended, then the replay.
    let mut publisher = Publisher::start(source_file(), &server.publish_url(&key), false);
    let subject =
        |want: &'static str| move |m: &Value| to(m) == "gina@example.com" && m["subject"] == want;
    sink.wait_for(
        "live",
        Duration::from_secs(40),
        subject("Live now: Seminar"),
    )
    .await;
    assert!(publisher.wait_exit(Duration::from_secs(40)).is_some());
    sink.wait_for("ended", Duration::from_secs(30), subject("Ended: Seminar"))
        .await;
    let replay = sink
        .wait_for("replay", Duration::from_secs(60), |m| {
            to(m) == "gina@example.com"
                && m["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Replay ready: seminar"))
        })
        .await;
    let asset = api(
        &c,
        &server,
        &admin,
        "GET",
        &format!("/api/v1/events/{event_id}"),
        None,
    )
    .await;
    let asset_id = asset.json["recording_asset_id"]
        .as_str()
        .expect("linked recording");
    let player = format!("{PUBLIC_URL}/watch/vod/{asset_id}");
    assert!(
        replay["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("Watch the replay: {player}"))),
        "{replay:#}"
    );
    assert!(
        replay["html"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("<a href=\"{player}\">"))),
        "{replay:#}"
    );
    let live = sink
        .inbox()
        .into_iter()
        .find(|m| to(m) == "gina@example.com" && m["subject"] == "Live now: Seminar")
        .expect("live mail");
    assert!(
        live["text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("Watch live: {PUBLIC_URL}/watch/seminar"))),
        "{live:#}"
    );
    // hal saw the same three in the app, in order, and got no mail about them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let titles = in_app_titles(&c, &server, &tokens[1]).await;
        let wanted: Vec<&str> = titles
            .iter()
            .map(String::as_str)
            // The reminder reaches hal or not, by when he subscribed.
            .filter(|t| !t.starts_with("Welcome") && !t.starts_with("Starting soon"))
            .collect();
        if wanted.len() >= 3 {
            assert_eq!(wanted[0], "Live now: Seminar", "{titles:?}");
            assert_eq!(wanted[1], "Ended: Seminar", "{titles:?}");
            assert!(wanted[2].starts_with("Replay ready: seminar"), "{titles:?}");
            break;
        }
        assert!(Instant::now() < deadline, "in-app for hal: {titles:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hal_mails = sink
        .inbox()
        .into_iter()
        .filter(|m| to(m) == "hal@example.com" && !m["subject"].to_string().contains("Welcome"))
        .count();
    assert_eq!(hal_mails, 0, "{:#?}", sink.inbox());
}
