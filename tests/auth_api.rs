//! Accounts, tokens, the catalog and playback gating, over real HTTP against the real
//! binary and its SQLite file.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{call, client, read_ll_playlist, source_file, wait_ok, Answer, Publisher};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "admin-password-1";

/// `panocast serve` on a data directory that outlives it; killed (SIGKILL) on drop.
struct Srv {
    child: Child,
    http: String,
    rtmp: String,
}

impl Srv {
    fn start(data: &Path, config: &str) -> Srv {
        std::fs::create_dir_all(data).expect("data dir");
        let config_path = data.with_extension("toml");
        std::fs::write(&config_path, config).expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_panocast"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args([
                "--http",
                "127.0.0.1:0",
                "--rtmp",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data)
            .env("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start panocast");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut http, mut rtmp) = (None, None);
        while http.is_none() || rtmp.is_none() {
            let line = lines
                .next()
                .expect("panocast printed its URLs")
                .expect("line");
            if let Some(url) = line.strip_prefix("HTTP API:") {
                http = url
                    .split_whitespace()
                    .next()
                    .map(|u| u.trim_end_matches("/api/v1").to_string());
            }
            if let Some(url) = line.strip_prefix("RTMP ingest:") {
                rtmp = Some(url.trim().to_string());
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Srv {
            child,
            http: http.unwrap_or_default(),
            rtmp: rtmp.unwrap_or_default(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(c: &reqwest::Client, s: &Srv, user: &str, password: &str) -> Answer {
    call(
        c,
        "POST",
        &s.url("/api/v1/auth/login"),
        None,
        Some(json!({"username": user, "password": password}).to_string()),
    )
    .await
}

async fn access(c: &reqwest::Client, s: &Srv, user: &str, password: &str) -> String {
    let a = login(c, s, user, password).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json["access_token"].as_str().expect("token").to_string()
}

fn assert_problem(a: &Answer, status: u16) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.text);
    assert_eq!(a.json["status"], status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_roles_bad_input_and_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let c = client();
    let s = Srv::start(&data, "");
    let api = |p: &str| s.url(p);

    // Login, refresh rotation, reuse revokes the family, logout.
    let first = login(&c, &s, "admin", ADMIN_PASSWORD).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["token_type"], "Bearer");
    assert_eq!(first.json["expires_in"], 900);
    assert_problem(&login(&c, &s, "admin", "wrong-password!").await, 401);
    assert_problem(&login(&c, &s, "nobody", "wrong-password!").await, 401);
    let r0 = first.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let refresh = |t: &str| json!({ "refresh_token": t }).to_string();
    let second = call(
        &c,
        "POST",
        &api("/api/v1/auth/refresh"),
        None,
        Some(refresh(&r0)),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let r1 = second.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    assert_ne!(r0, r1);
    let reuse = call(
        &c,
        "POST",
        &api("/api/v1/auth/refresh"),
        None,
        Some(refresh(&r0)),
    )
    .await;
    assert_problem(&reuse, 401);
    let after = call(
        &c,
        "POST",
        &api("/api/v1/auth/refresh"),
        None,
        Some(refresh(&r1)),
    )
    .await;
    assert_problem(&after, 401);
    let third = login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let r2 = third.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    let out = call(
        &c,
        "POST",
        &api("/api/v1/auth/logout"),
        None,
        Some(refresh(&r2)),
    )
    .await;
    assert_eq!(out.status, 204);
    assert_problem(
        &call(
            &c,
            "POST",
            &api("/api/v1/auth/refresh"),
            None,
            Some(refresh(&r2)),
        )
        .await,
        401,
    );
    let admin = third.json["access_token"]
        .as_str()
        .expect("access")
        .to_string();

    // Accounts: admins create them; registration is closed by default.
    let new_user = |name: &str, role: &str| {
        json!({"username": name, "password": "a-long-password", "role": role}).to_string()
    };
    for (name, role) in [
        ("bob", "broadcaster"),
        ("eve", "broadcaster"),
        ("vic", "viewer"),
    ] {
        let a = call(
            &c,
            "POST",
            &api("/api/v1/users"),
            Some(&admin),
            Some(new_user(name, role)),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text);
    }
    assert_problem(
        &call(
            &c,
            "POST",
            &api("/api/v1/users"),
            Some(&admin),
            Some(new_user("bob", "viewer")),
        )
        .await,
        409,
    );
    let reg = json!({"username": "x1x", "password": "a-long-password"}).to_string();
    assert_problem(
        &call(&c, "POST", &api("/api/v1/auth/register"), None, Some(reg)).await,
        403,
    );
    let bob = access(&c, &s, "bob", "a-long-password").await;
    let eve = access(&c, &s, "eve", "a-long-password").await;
    let vic = access(&c, &s, "vic", "a-long-password").await;
    assert_problem(
        &call(&c, "GET", &api("/api/v1/users"), Some(&vic), None).await,
        403,
    );
    assert_problem(
        &call(
            &c,
            "POST",
            &api("/api/v1/users"),
            Some(&bob),
            Some(new_user("zed", "admin")),
        )
        .await,
        403,
    );
    let users = call(&c, "GET", &api("/api/v1/users?limit=2"), Some(&admin), None).await;
    assert_eq!(users.json["items"].as_array().map(Vec::len), Some(2));
    let me = call(&c, "GET", &api("/api/v1/users/me"), Some(&vic), None).await;
    assert_eq!(me.json["role"], "viewer");

    // Catalog role checks on every route.
    let stream = |slug: &str, vis: &str| {
        json!({"slug": slug, "visibility": vis, "projection": "equirect-stereo-tb", "orientation": {"yaw": 45.0}, "tags": ["a"]}).to_string()
    };
    assert_problem(
        &call(
            &c,
            "POST",
            &api("/api/v1/streams"),
            None,
            Some(stream("s1", "public")),
        )
        .await,
        401,
    );
    assert_problem(
        &call(
            &c,
            "POST",
            &api("/api/v1/streams"),
            Some(&vic),
            Some(stream("s1", "public")),
        )
        .await,
        403,
    );
    let created = call(
        &c,
        "POST",
        &api("/api/v1/streams"),
        Some(&bob),
        Some(stream("bob-pub", "public")),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.json["stream_key"]
        .as_str()
        .is_some_and(|k| k.len() >= 32));
    assert_eq!(
        created.json["stream"]["playback_url"],
        "/hls/bob-pub/index.m3u8"
    );
    assert_eq!(created.json["stream"]["watch_url"], "/watch/bob-pub");
    assert!(created.json["stream"]["embed_html"]
        .as_str()
        .is_some_and(|h| h.contains("<iframe src=\"/watch/bob-pub\"")));
    for (slug, vis) in [("bob-unl", "unlisted"), ("bob-priv", "private")] {
        assert_eq!(
            call(
                &c,
                "POST",
                &api("/api/v1/streams"),
                Some(&bob),
                Some(stream(slug, vis))
            )
            .await
            .status,
            201
        );
    }
    assert_problem(
        &call(
            &c,
            "POST",
            &api("/api/v1/streams"),
            Some(&eve),
            Some(stream("bob-pub", "public")),
        )
        .await,
        409,
    );
    let patch = json!({"title": "Bob live"}).to_string();
    for (who, status) in [(&vic, 403), (&eve, 403), (&bob, 200), (&admin, 200)] {
        let a = call(
            &c,
            "PATCH",
            &api("/api/v1/streams/bob-pub"),
            Some(who),
            Some(patch.clone()),
        )
        .await;
        assert_eq!(a.status, status, "{}", a.text);
    }
    assert_problem(
        &call(
            &c,
            "PATCH",
            &api("/api/v1/streams/bob-pub"),
            None,
            Some(patch.clone()),
        )
        .await,
        401,
    );
    for path in ["/api/v1/streams/bob-pub/key"] {
        assert_problem(&call(&c, "POST", &api(path), Some(&vic), None).await, 403);
        assert_problem(&call(&c, "POST", &api(path), Some(&eve), None).await, 403);
        assert_eq!(
            call(&c, "POST", &api(path), Some(&bob), None).await.status,
            200
        );
    }
    // Private streams are invisible to others, so they are 404 to them.
    assert_problem(
        &call(
            &c,
            "POST",
            &api("/api/v1/streams/bob-priv/playback-token"),
            Some(&eve),
            None,
        )
        .await,
        404,
    );
    assert_problem(
        &call(
            &c,
            "POST",
            &api("/api/v1/streams/bob-priv/playback-token"),
            None,
            None,
        )
        .await,
        401,
    );
    assert_eq!(
        call(
            &c,
            "POST",
            &api("/api/v1/streams/bob-priv/playback-token"),
            Some(&bob),
            None
        )
        .await
        .status,
        200
    );
    assert_problem(
        &call(
            &c,
            "DELETE",
            &api("/api/v1/streams/bob-unl"),
            Some(&eve),
            None,
        )
        .await,
        403,
    );
    assert_eq!(
        call(
            &c,
            "DELETE",
            &api("/api/v1/streams/bob-unl"),
            Some(&bob),
            None
        )
        .await
        .status,
        204
    );
    assert_problem(
        &call(&c, "GET", &api("/api/v1/streams/bob-unl"), None, None).await,
        404,
    );
    // Lists: anonymous sees public only; owners their own; admins all.
    let slugs = |a: &Answer| -> Vec<String> {
        a.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["slug"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let anon = call(&c, "GET", &api("/api/v1/streams"), None, None).await;
    assert_eq!(slugs(&anon), ["bob-pub", "demo"]);
    let mine = call(&c, "GET", &api("/api/v1/streams"), Some(&bob), None).await;
    assert_eq!(slugs(&mine), ["bob-priv", "bob-pub", "demo"]);
    let page = call(
        &c,
        "GET",
        &api("/api/v1/streams?limit=1"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(slugs(&page), ["bob-priv"]);
    let next = page.json["next_cursor"].as_str().expect("cursor");
    let page2 = call(
        &c,
        "GET",
        &api(&format!("/api/v1/streams?limit=1&cursor={next}")),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(slugs(&page2), ["bob-pub"]);
    let info = call(&c, "GET", &api("/api/v1/streams/bob-pub"), None, None).await;
    assert_eq!(info.json["title"], "Bob live");
    assert_eq!(info.json["projection"], "equirect-stereo-tb");
    assert_eq!(info.json["orientation"]["yaw"], 45.0);
    assert_problem(
        &call(&c, "GET", &api("/api/v1/streams/bob-priv"), None, None).await,
        401,
    );
    assert_eq!(
        call(
            &c,
            "GET",
            &api("/api/v1/streams/bob-priv"),
            Some(&bob),
            None
        )
        .await
        .status,
        200
    );

    // Bad input is a 4xx problem, never a 500.
    let streams_url = api("/api/v1/streams");
    let post = |body: &str| call(&c, "POST", &streams_url, Some(&bob), Some(body.to_string()));
    assert_problem(&post("{\"slug\": ").await, 400);
    assert_problem(&post(r#"{"slug": "ok-1", "colour": "red"}"#).await, 422);
    assert_problem(&post(r#"{"slug": 7}"#).await, 422);
    assert_problem(
        &post(r#"{"slug": "ok-2", "visibility": "secret"}"#).await,
        422,
    );
    assert_problem(&post(r#"{"slug": "Bad Slug"}"#).await, 422);
    // Just over the 64 KiB limit: the server answers before reading it all, which can
    // reset the connection under the client's feet, so a failed send is retried.
    let huge = json!({"slug": "big", "description": "x".repeat(70_000)}).to_string();
    let mut too_large = None;
    for _ in 0..5 {
        let sent = c
            .post(&streams_url)
            .header("authorization", format!("Bearer {bob}"))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await;
        if let Ok(resp) = sent {
            too_large = Some(resp.status().as_u16());
            break;
        }
    }
    assert_eq!(too_large, Some(413));
    assert_problem(
        &call(&c, "GET", &api("/api/v1/streams?limit=abc"), None, None).await,
        400,
    );
    let no_type = c
        .post(api("/api/v1/auth/login"))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(no_type.status().as_u16(), 415);
    // OpenAPI and docs.
    let doc = call(&c, "GET", &api("/api/v1/openapi.json"), None, None).await;
    assert!(doc.json["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    let docs = call(&c, "GET", &api("/api/v1/docs"), None, None).await;
    assert!(
        docs.status == 200 && !docs.text.contains("https://") && !docs.text.contains("http://")
    );

    // kill -9 right after acknowledged writes: everything is still there.
    let ack = call(
        &c,
        "POST",
        &api("/api/v1/streams"),
        Some(&eve),
        Some(stream("eve-last", "public")),
    )
    .await;
    assert_eq!(ack.status, 201);
    drop(s);
    let s = Srv::start(&data, "");
    let admin = access(&c, &s, "admin", ADMIN_PASSWORD).await;
    let all = call(&c, "GET", &s.url("/api/v1/streams"), Some(&admin), None).await;
    assert_eq!(slugs(&all), ["bob-priv", "bob-pub", "demo", "eve-last"]);
    access(&c, &s, "eve", "a-long-password").await;
}

/// Signs `claims` with the server's own Ed25519 key (read from its data directory).
fn forge(data: &Path, claims: &Value) -> String {
    let pkcs8 = std::fs::read(data.join("jwt-ed25519.pk8")).expect("key file");
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        claims,
        &EncodingKey::from_ed_der(&pkcs8),
    )
    .expect("sign")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_attack_matrix_and_rate_limits() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let c = client();
    let s = Srv::start(&data, "[auth]\naccount_burst = 3\naccount_per_minute = 1\n");
    let admin = access(&c, &s, "admin", ADMIN_PASSWORD).await;
    let mut ids = Vec::new();
    for slug in ["p1", "p2"] {
        let body = json!({"slug": slug, "visibility": "private"}).to_string();
        let a = call(
            &c,
            "POST",
            &s.url("/api/v1/streams"),
            Some(&admin),
            Some(body),
        )
        .await;
        ids.push(a.json["stream"]["id"].as_str().expect("id").to_string());
    }
    let me = call(&c, "GET", &s.url("/api/v1/users/me"), Some(&admin), None).await;
    let sub = me.json["id"].as_str().expect("id").to_string();
    let t = now();
    let api_claims = json!({"iss": "panocast", "aud": "api", "sub": sub, "exp": t + 600, "nbf": t, "iat": t, "role": "admin"});
    let with = |base: &Value, key: &str, value: Value| {
        let mut v = base.clone();
        v[key] = value;
        v
    };
    // A well-formed forged token is accepted: the matrix below fails for its flaw only.
    assert_eq!(
        call(
            &c,
            "GET",
            &s.url("/api/v1/users/me"),
            Some(&forge(&data, &api_claims)),
            None
        )
        .await
        .status,
        200
    );

    let jwks = call(&c, "GET", &s.url("/.well-known/jwks.json"), None, None).await;
    let x = jwks.json["keys"][0]["x"].as_str().expect("x").to_string();
    use base64::Engine;
    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&x)
        .expect("x");
    let payload = b64(api_claims.to_string().as_bytes());
    let alg_none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    let hs256_public = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &api_claims,
        &EncodingKey::from_secret(&public),
    )
    .expect("hs");
    let hs256_x = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &api_claims,
        &EncodingKey::from_secret(x.as_bytes()),
    )
    .expect("hs");
    let other_key = {
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .expect("key");
        jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &api_claims,
            &EncodingKey::from_ed_der(doc.as_ref()),
        )
        .expect("sign")
    };
    let good = forge(&data, &api_claims);
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        parts[1] = b64(with(&api_claims, "role", json!("admin"))
            .to_string()
            .replace("\"sub\"", "\"sub\" ")
            .as_bytes());
        parts.join(".")
    };
    let bad_api = [
        ("alg none", alg_none),
        ("HS256 with the public key", hs256_public),
        ("HS256 with the JWK x", hs256_x),
        ("another key", other_key),
        ("tampered payload", tampered),
        (
            "expired",
            forge(&data, &with(&api_claims, "exp", json!(t - 3600))),
        ),
        (
            "not yet valid",
            forge(&data, &with(&api_claims, "nbf", json!(t + 3600))),
        ),
        (
            "wrong issuer",
            forge(&data, &with(&api_claims, "iss", json!("evil"))),
        ),
        (
            "wrong audience",
            forge(&data, &with(&api_claims, "aud", json!("playback"))),
        ),
        (
            "no exp",
            forge(&data, &{
                let mut v = api_claims.clone();
                v.as_object_mut().expect("obj").remove("exp");
                v
            }),
        ),
    ];
    for (what, token) in &bad_api {
        let a = call(&c, "GET", &s.url("/api/v1/users/me"), Some(token), None).await;
        assert_eq!(a.status, 401, "{what} accepted: {}", a.text);
    }

    // Playback tokens: the real one opens its stream only; flawed ones open nothing.
    let issued = call(
        &c,
        "POST",
        &s.url(&format!("/api/v1/streams/{}/playback-token", ids[0])),
        Some(&admin),
        None,
    )
    .await;
    let p1_token = issued.json["token"].as_str().expect("token").to_string();
    let play =
        |stream: &str, token: &str| s.url(&format!("/api/v1/streams/{stream}?token={token}"));
    assert_eq!(
        call(&c, "GET", &play("p1", &p1_token), None, None)
            .await
            .status,
        200
    );
    assert_problem(
        &call(&c, "GET", &play("p2", &p1_token), None, None).await,
        403,
    );
    let pb = json!({"iss": "panocast", "aud": "playback", "sub": sub, "exp": t + 600, "nbf": t, "iat": t, "stream": ids[1]});
    assert_eq!(
        call(&c, "GET", &play("p2", &forge(&data, &pb)), None, None)
            .await
            .status,
        200
    );
    let bad_playback = [
        ("access token as playback token", admin.clone()),
        ("forged access token", good.clone()),
        ("expired", forge(&data, &with(&pb, "exp", json!(t - 3600)))),
        (
            "not yet valid",
            forge(&data, &with(&pb, "nbf", json!(t + 3600))),
        ),
        (
            "wrong issuer",
            forge(&data, &with(&pb, "iss", json!("evil"))),
        ),
        (
            "wrong audience",
            forge(&data, &with(&pb, "aud", json!("api"))),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none"}"#),
                b64(pb.to_string().as_bytes())
            ),
        ),
    ];
    for (what, token) in &bad_playback {
        for url in [
            s.url(&format!("/hls/p2/index.m3u8?token={token}")),
            play("p2", token),
        ] {
            let a = call(&c, "GET", &url, None, None).await;
            assert_eq!(a.status, 401, "{what} accepted at {url}: {}", a.text);
        }
        // And as a bearer header.
        let a = call(
            &c,
            "GET",
            &s.url("/hls/p2/video/init-0.mp4"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(a.status, 401, "{what} accepted as bearer: {}", a.text);
    }

    // Login is rate limited per account.
    let mut limited = None;
    for _ in 0..6 {
        let a = login(&c, &s, "admin", "not-the-password").await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
    }
    let limited = limited.expect("login rate limited");
    assert_problem(&limited, 429);
}

async fn publish_fails(url: &str) -> bool {
    let mut p = Publisher::start(source_file(), url, false);
    match p.wait_exit(Duration::from_secs(10)) {
        Some(status) => !status.success(),
        None => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_stream_plays_only_with_its_token_and_key_rotation() {
    let dir = tempfile::tempdir().expect("tmp");
    let data: PathBuf = dir.path().join("data");
    let c = client();
    let s = Srv::start(&data, "");
    let admin = access(&c, &s, "admin", ADMIN_PASSWORD).await;
    let body = json!({"slug": "secret", "visibility": "private"}).to_string();
    let created = call(
        &c,
        "POST",
        &s.url("/api/v1/streams"),
        Some(&admin),
        Some(body),
    )
    .await;
    let old_key = created.json["stream_key"]
        .as_str()
        .expect("key")
        .to_string();
    let rotated = call(
        &c,
        "POST",
        &s.url("/api/v1/streams/secret/key"),
        Some(&admin),
        None,
    )
    .await;
    let key = rotated.json["stream_key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_ne!(key, old_key);
    assert!(
        publish_fails(&format!("{}/{old_key}", s.rtmp)).await,
        "old key still publishes"
    );

    let _publisher = Publisher::start(source_file(), &format!("{}/{key}", s.rtmp), true);
    let token = call(
        &c,
        "POST",
        &s.url("/api/v1/streams/secret/playback-token"),
        Some(&admin),
        None,
    )
    .await;
    let token = token.json["token"].as_str().expect("token").to_string();
    let demo_token = call(
        &c,
        "POST",
        &s.url("/api/v1/streams/demo/playback-token"),
        Some(&admin),
        None,
    )
    .await;
    let demo_token = demo_token.json["token"]
        .as_str()
        .expect("token")
        .to_string();

    let index = wait_ok(
        &c,
        &s.url(&format!("/hls/secret/index.m3u8?token={token}")),
        Duration::from_secs(20),
    )
    .await;
    assert!(
        index.cache_control.starts_with("private"),
        "{}",
        index.cache_control
    );
    let text = index.text();
    assert!(
        text.contains(&format!("video.m3u8?token={token}")),
        "{text}"
    );
    // Without a token, or with another stream's: refused, on every kind of resource.
    for path in [
        "/hls/secret/index.m3u8",
        "/hls/secret/video.m3u8",
        "/hls/secret/video/init-0.mp4",
        "/hls/secret/video/seg-0.m4s",
    ] {
        assert_problem(&call(&c, "GET", &s.url(path), None, None).await, 401);
        assert_problem(
            &call(
                &c,
                "GET",
                &s.url(&format!("{path}?token={demo_token}")),
                None,
                None,
            )
            .await,
            403,
        );
        assert_problem(
            &call(&c, "GET", &s.url(path), Some(&demo_token), None).await,
            403,
        );
    }

    // With it: the media playlist, and every URI it names, carry the token and play.
    let deadline = Instant::now() + Duration::from_secs(25);
    let playlist = loop {
        let f = common::get(&c, &s.url(&format!("/hls/secret/video.m3u8?token={token}"))).await;
        assert_eq!(f.status, 200, "{}", f.text());
        let p = read_ll_playlist(&f.text());
        if !p.segments.is_empty() && !p.parts.is_empty() {
            break (f.text(), p);
        }
        assert!(Instant::now() < deadline, "no segment in time");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (text, p) = playlist;
    let suffix = format!("?token={token}");
    let map = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|r| r.split('"').next())
        .expect("map");
    let mut uris = vec![
        map.to_string(),
        p.segments[0].1.clone(),
        p.parts[0].uri.clone(),
    ];
    uris.extend(p.preload_hint.clone());
    for uri in &uris {
        assert!(uri.ends_with(&suffix), "{uri} lacks the token");
    }
    for uri in &uris[..3] {
        let f = common::get(&c, &s.url(&format!("/hls/secret/{uri}"))).await;
        assert_eq!(f.status, 200, "{uri}");
        assert_eq!(f.content_type, "video/mp4");
    }
    // The same resources with the token as a bearer header.
    let bare = uris[1].trim_end_matches(&suffix);
    let a = call(
        &c,
        "GET",
        &s.url(&format!("/hls/secret/{bare}")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    // Public streams need nothing.
    assert_ne!(
        call(&c, "GET", &s.url("/hls/demo/index.m3u8"), None, None)
            .await
            .status,
        401
    );
}
