//! The player page and its embedded bundle over real HTTP: content types, cache
//! headers, gzip and the 404 for unknown streams. What the page does in a browser is
//! tested by player/tests/e2e.test.mjs.

mod common;

use std::time::Duration;

use common::*;

const CONFIG: &str = r#"
[[streams]]
slug = "cam"
key = "cam-secret-key-1"
projection = "equirect-stereo-tb"
"#;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_page_and_bundle_are_served_from_the_binary() {
    let server = Server::start(CONFIG);
    let client = client();

    // An offline stream still gets its page: the player says "offline" and waits.
    let resp = client
        .get(server.url("/watch/cam"))
        .send()
        .await
        .expect("GET /watch/cam");
    assert_eq!(resp.status(), 200);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("cache-control"), "no-cache");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert!(header("content-security-policy").contains("script-src 'self'"));
    let page = resp.text().await.expect("page");
    assert!(
        page.contains(r#"<div id="panocast" data-slug="cam"></div>"#),
        "{page}"
    );
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("script src")
        .to_string();
    assert!(script.starts_with("/player/player.js?v="), "{script}");

    // The versioned bundle: JavaScript, cached for good, gzip when asked for.
    let js = client
        .get(server.url(&script))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("GET bundle");
    assert_eq!(js.status(), 200);
    let h = js.headers().clone();
    assert_eq!(h["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["vary"], "Accept-Encoding");
    let etag = h["etag"].to_str().expect("etag").to_string();
    let body = js.bytes().await.expect("body");
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");

    // Without ?v= (or with an old one): plain bytes, revalidated by ETag.
    let plain = get(&client, &server.url("/player/player.js")).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.cache_control, "no-cache");
    assert!(plain.text().contains("__panocast"));
    let revalidated = client
        .get(server.url("/player/player.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional GET");
    assert_eq!(revalidated.status(), 304);

    let css = get(&client, &server.url("/player/player.css")).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.content_type, "text/css; charset=utf-8");

    // Unknown streams and files.
    let missing = get(&client, &server.url("/watch/nobody")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.content_type.starts_with("text/html"));
    assert!(missing.text().contains("There is no stream named nobody."));
    let escaped = get(&client, &server.url("/watch/%3Cb%3E")).await;
    assert_eq!(escaped.status, 404);
    assert!(escaped.text().contains("&lt;b&gt;"), "{}", escaped.text());
    let nofile = get(&client, &server.url("/player/secret.js")).await;
    assert_eq!(nofile.status, 404);
    assert_eq!(nofile.content_type, "application/problem+json");
}
