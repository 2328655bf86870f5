//! SIGTERM: the server stops accepting, ends its publishers and held requests cleanly,
//! finishes its playlists, and exits by itself well within 10 s.

mod common;

use std::time::Duration;

use common::{client, held_playlist_url, metric, source_file, Publisher, Server};

const KEY: &str = "shutdown-key-0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_publishers_and_held_requests_and_exits_within_ten_seconds() {
    let mut server = Server::start(&format!(
        r#"
[[streams]]
slug = "cam"
key = "{KEY}"
projection = "equirect"
"#
    ));
    let mut publisher = Publisher::start(source_file(), &server.publish_url(KEY), true);
    let viewer = client();
    let blocking = held_playlist_url(&server, &viewer, "cam").await;

    // A viewer waiting two segments ahead (held for up to three target durations).
    let held = {
        let (c, u) = (viewer.clone(), blocking);
        tokio::spawn(async move {
            let response = c.get(u).send().await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
    };
    // Until the server says it holds it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metric(&server, "panocast_held_requests ").await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the request was never held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, took) = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(10)))
        .expect("the server did not exit within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    // The held request was answered (with the ended playlist) or its connection
    // closed: never left hanging.
    let answered = tokio::time::timeout(Duration::from_secs(1), held)
        .await
        .expect("a held request was left hanging");
    if let Ok(Ok((code, body))) = answered {
        assert_eq!(code, 200, "held request answered {code}: {body}");
        assert!(
            body.contains("#EXT-X-ENDLIST"),
            "held request answered {body}"
        );
    }
    // The publisher's connection was closed by the server: ffmpeg gives up.
    assert!(
        publisher.wait_exit(Duration::from_secs(5)).is_some(),
        "ffmpeg still publishing after the server exited"
    );
    let log = server.log_lines();
    assert!(
        log.iter().any(|l| l.contains("shut down cleanly")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("RTMP connection closed: server shutting down")),
        "{log:#?}"
    );
    eprintln!("SIGTERM to exit: {took:?}");
}
