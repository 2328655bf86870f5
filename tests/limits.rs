//! Connection limits against the real binary: idle and slow HTTP clients are closed,
//! one address cannot fill a port (a real ffmpeg publisher and a viewer from another
//! address keep working), and guessing stream keys gets an address refused for a while.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{client, held_playlist_url, metric, source_file, wait_ok, Publisher, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const KEY: &str = "limits-key-0001";

fn config() -> String {
    config_holding(100)
}

fn config_holding(max_held_requests: usize) -> String {
    format!(
        r#"
[rtmp_ingest]
# Held open long enough that idle connections keep their places during the test.
handshake_timeout_ms = 30000

[limits]
rtmp_connections = 12
rtmp_connections_per_address = 4
http_connections = 64
http_connections_per_address = 8
http_header_timeout_ms = 1000
http_idle_timeout_ms = 2000
publish_failures_per_address = 3
publish_failure_window_s = 60
publish_block_s = 4
max_held_requests = {max_held_requests}

[[streams]]
slug = "cam"
key = "{KEY}"
projection = "equirect"
"#
    )
}

fn addr_of(url: &str) -> SocketAddr {
    let host_port = url.split("://").nth(1).unwrap_or(url);
    host_port.parse().expect("server address")
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8 is all
/// loopback on Linux: another address without another machine).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.expect("connect")
}

/// Reads until the server closes the connection; how long that took, or `None` if it
/// is still open at `limit`. Also returns what was read.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (None, seen),
            Ok(Ok(0)) | Ok(Err(_)) => return (Some(started.elapsed()), seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn idle_and_slow_http_clients_are_closed_and_others_are_served() {
    let server = Server::start(&config());
    let http = addr_of(&server.http);

    let opened = Instant::now();
    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(http).await.unwrap();
    // A client that never finishes its request head.
    let mut slow = TcpStream::connect(http).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A client that got its answer and then keeps the connection open, idle.
    let mut kept = TcpStream::connect(http).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    // Meanwhile everybody else is served.
    let answer = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), 200);

    for (name, stream) in [
        ("silent", &mut silent),
        ("slow header", &mut slow),
        ("kept alive", &mut kept),
    ] {
        let (closed, seen) = closed_within(stream, Duration::from_secs(8)).await;
        assert!(closed.is_some(), "{name} connection still open 8 s later");
        // Closed by the deadline (1 s header timeout), not at once.
        let after = opened.elapsed();
        assert!(
            after >= Duration::from_millis(900),
            "{name} closed after only {after:?}"
        );
        let text = String::from_utf8_lossy(&seen);
        if name == "kept alive" {
            assert!(
                text.starts_with("HTTP/1.1 200"),
                "kept-alive client got {text:?}"
            );
        }
    }
}

#[tokio::test]
async fn one_address_cannot_fill_a_port_and_a_publisher_and_viewer_from_another_get_in() {
    let server = Server::start(&config());
    let rtmp = addr_of(&server.rtmp);
    let http = addr_of(&server.http);

    // An attacker on 127.0.0.2 opens 30 idle RTMP connections: 4 are held (its share),
    // the other 26 are closed at once.
    let mut flood = Vec::new();
    for _ in 0..30 {
        flood.push(connect_from("127.0.0.2", rtmp).await);
    }
    let mut closed_at_once = 0;
    let mut held = Vec::new();
    for mut stream in flood {
        match closed_within(&mut stream, Duration::from_millis(300)).await {
            (Some(_), _) => closed_at_once += 1,
            (None, _) => held.push(stream),
        }
    }
    assert_eq!((held.len(), closed_at_once), (4, 26));

    // A real publisher from 127.0.0.1 still gets in, and the stream plays.
    let _publisher = Publisher::start(source_file(), &server.publish_url(KEY), true);
    let viewer = client();
    wait_ok(
        &viewer,
        &server.url("/hls/cam/index.m3u8"),
        Duration::from_secs(30),
    )
    .await;

    // The same attacker opens 20 idle HTTP connections: 8 are held, the rest are told
    // 503 with Retry-After; the viewer on 127.0.0.1 keeps being served.
    // (Watched all at once: the held ones are themselves closed after the 1 s header
    // timeout.)
    let mut watchers = Vec::new();
    for _ in 0..20 {
        let mut stream = connect_from("127.0.0.2", http).await;
        watchers.push(tokio::spawn(async move {
            closed_within(&mut stream, Duration::from_millis(500)).await
        }));
    }
    let mut answers = Vec::new();
    for watcher in watchers {
        if let (Some(_), seen) = watcher.await.unwrap() {
            answers.push(String::from_utf8_lossy(&seen).into_owned());
        }
    }
    assert_eq!(answers.len(), 12, "refused HTTP connections: {answers:?}");
    for a in &answers {
        assert!(a.starts_with("HTTP/1.1 503"), "refusal was {a:?}");
        assert!(
            a.to_ascii_lowercase().contains("retry-after: 5"),
            "refusal was {a:?}"
        );
        assert!(a.contains("application/problem+json"), "refusal was {a:?}");
    }
    let playlist = wait_ok(
        &viewer,
        &server.url("/hls/cam/index.m3u8"),
        Duration::from_secs(5),
    )
    .await;
    assert!(playlist.text().starts_with("#EXTM3U"));

    assert!(
        metric(
            &server,
            "panocast_connections_refused_total{port=\"rtmp\",reason=\"per_address\"}"
        )
        .await
            >= 26.0
    );
    assert!(
        metric(
            &server,
            "panocast_connections_refused_total{port=\"http\",reason=\"per_address\"}"
        )
        .await
            >= 12.0
    );
    assert!(metric(&server, "panocast_connections{port=\"rtmp\"}").await >= 5.0);
    drop(held);
}

#[tokio::test]
async fn guessing_stream_keys_gets_the_address_refused_for_a_while() {
    let server = Server::start(&config());
    // Four wrong keys: the fourth is one past the budget of three.
    for i in 0..4 {
        let mut guess = Publisher::start(
            source_file(),
            &server.publish_url(&format!("guess-{i}")),
            false,
        );
        let status = guess
            .wait_exit(Duration::from_secs(20))
            .expect("ffmpeg with a wrong key gives up");
        assert!(!status.success());
    }
    // Now even the right key is refused from this address, at once.
    let started = Instant::now();
    let mut refused = Publisher::start(source_file(), &server.publish_url(KEY), false);
    let status = refused
        .wait_exit(Duration::from_secs(20))
        .expect("a blocked publisher is refused");
    assert!(!status.success());
    let blocked_at = Instant::now();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "refusal took {:?}",
        started.elapsed()
    );
    assert_eq!(metric(&server, "panocast_publish_blocks_total").await, 1.0);
    assert!(metric(&server, "panocast_publish_blocked_connections_total").await >= 1.0);

    // After the block (4 s) the right key works again.
    let wait =
        Duration::from_secs(4).saturating_sub(blocked_at.elapsed()) + Duration::from_millis(500);
    tokio::time::sleep(wait).await;
    let _publisher = Publisher::start(source_file(), &server.publish_url(KEY), true);
    wait_ok(
        &client(),
        &server.url("/hls/cam/index.m3u8"),
        Duration::from_secs(30),
    )
    .await;

    // One line when the block started and one when it was lifted; no line per refusal.
    let log = server.log_lines();
    let started_lines = log
        .iter()
        .filter(|l| l.contains("refusing this address for a while"))
        .count();
    let lifted = log
        .iter()
        .filter(|l| l.contains("publish block lifted"))
        .collect::<Vec<_>>();
    assert_eq!(started_lines, 1, "{log:#?}");
    assert_eq!(lifted.len(), 1, "{log:#?}");
    assert!(
        lifted[0].contains("refused=1") || lifted[0].contains("refused=2"),
        "{}",
        lifted[0]
    );
    assert!(
        !log.iter().any(|l| l.contains(KEY) || l.contains("guess-")),
        "a key was logged"
    );
}

#[tokio::test]
async fn past_the_cap_on_held_requests_a_blocking_request_is_told_to_retry() {
    let server = Server::start(&config_holding(2));
    let _publisher = Publisher::start(source_file(), &server.publish_url(KEY), true);
    let viewer = client();
    // Held for up to three target durations.
    let blocking = held_playlist_url(&server, &viewer, "cam").await;
    let media_url = blocking.split('?').next().unwrap_or_default().to_owned();
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (c, u) = (viewer.clone(), blocking.clone());
            tokio::spawn(async move { c.get(u).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    // Wait until both are held (the gauge says so), then the third is refused at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&server, "panocast_held_requests ").await < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the two requests were never held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let third = viewer.get(&blocking).send().await.unwrap();
    assert_eq!(third.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(third.headers()["retry-after"], "1");
    assert_eq!(third.headers()["content-type"], "application/problem+json");
    assert_eq!(
        metric(&server, "panocast_held_requests_refused_total ").await,
        1.0
    );
    // A request that needs no waiting is still answered.
    assert_eq!(viewer.get(&media_url).send().await.unwrap().status(), 200);
    for h in held {
        assert_eq!(
            h.await.unwrap().unwrap(),
            200,
            "a held request was not answered"
        );
    }
}

/// `max_live_streams`: past it a new publish is refused at once while the live stream
/// plays on, a takeover of the live stream still works, and the place is free again
/// once the live publisher leaves.
#[tokio::test]
async fn past_the_live_stream_limit_a_new_publish_is_refused_and_the_live_one_plays_on() {
    let server = Server::start(&format!(
        r#"
[limits]
max_live_streams = 1

[[streams]]
slug = "cam"
key = "{KEY}"

[[streams]]
slug = "second"
key = "second-key-0001"
"#
    ));
    let c = client();
    let first = Publisher::start(source_file(), &server.publish_url(KEY), true);
    wait_ok(
        &c,
        &server.url("/hls/cam/index.m3u8"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(metric(&server, "panocast_live_streams ").await, 1.0);

    let mut refused = Publisher::start(source_file(), &server.publish_url("second-key-0001"), true);
    let status = refused
        .wait_exit(Duration::from_secs(20))
        .expect("a publish past the limit is refused");
    assert!(!status.success());
    assert_eq!(
        metric(&server, "panocast_publish_refused_at_capacity_total ").await,
        1.0
    );
    assert!(server
        .log_lines()
        .iter()
        .any(|l| l.contains("live stream limit") && l.contains("second")));
    // The live stream is untouched, and taking it over is not a new stream.
    let held = wait_ok(
        &c,
        &server.url("/hls/cam/video.m3u8"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(held.status, 200);
    let takeover = Publisher::start(source_file(), &server.publish_url(KEY), true);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .log_lines()
        .iter()
        .all(|l| !l.contains("publisher takeover"))
    {
        assert!(Instant::now() < deadline, "the takeover was refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&server, "panocast_publish_refused_at_capacity_total ").await,
        1.0
    );

    // Once nobody publishes, the second stream gets its place.
    drop(first);
    drop(takeover);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&server, "panocast_live_streams ").await > 0.0 {
        assert!(Instant::now() < deadline, "the stream never went idle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _second = Publisher::start(source_file(), &server.publish_url("second-key-0001"), true);
    wait_ok(
        &c,
        &server.url("/hls/second/index.m3u8"),
        Duration::from_secs(30),
    )
    .await;
}
